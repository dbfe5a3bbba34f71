# bench/lib.sh: helpers shared by the capacity benches (sourced).

cpu_count() {  # number of CPUs in a taskset list like "0", "0,1", "0-1"
    python3 -c 'import sys
n=0
for p in sys.argv[1].split(","):
    a,_,b=p.partition("-"); n+= (int(b)-int(a)+1) if b else 1
print(n)' "$1"
}

# sample PID FILE: one line per 0.25 s: monotonic seconds, utime+stime ticks, VmHWM kB, VmRSS kB.
sample() {
    local pid=$1 out=$2
    while [[ -r /proc/$pid/stat ]]; do
        local stat hwm rss now
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || break
        hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
        now=$(cut -d' ' -f1 /proc/uptime)
        # Fields after the "(comm)": state is $3 overall; utime=$14, stime=$15.
        echo "$now $(echo "${stat##*) }" | awk '{print $12 + $13}') $hwm $rss" >>"$out"
        sleep 0.25
    done
}

# wait_port LOG: the port of a mediasim-server that logs "listening on http://127.0.0.1:PORT"
# (empty after 5 s).
wait_port() {
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$1" | head -1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    echo "$port"
}

# fetch URL: the body (empty when it cannot be read).
fetch() {
    python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1" 2>/dev/null || true
}

# build_release TARGET...: configure and build these targets, Release, in $BUILD_DIR.
build_release() {
    export CCACHE_BASEDIR=$root
    cmake -S "$root" -B "$root/$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DMEDIASIM_BUILD_TESTS=OFF >/dev/null
    cmake --build "$root/$BUILD_DIR" -j2 --target "$@" >/dev/null
}

# The EXIT trap of a bench that runs a server and samplers: stops what is left, removes $tmp.
server_pid=""
sampler_pid=""
bench_cleanup() {
    [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null || true
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    [[ -n ${tmp:-} ]] && rm -rf "$tmp"
}
