#!/usr/bin/env bash
# bench/frame_cost.sh: what one media frame costs the simulator, in counts that do not depend
# on how busy the machine is (issue 3 §6). Wall-clock pacing on a shared machine swings with
# other people's builds; instruction and syscall counts do not.
#
# It runs `mediasim run bench/capacity_call.yaml` with CALLS calls against a fresh
# mediasim-server twice, with a short and a long hold (HOLD_A, HOLD_B), under the tool, and
# divides the difference of the counts by the difference of the frames the simulator sent
# (summary.json messages.sent): the marginal cost of one frame during the hold, start-up and
# call set-up cancelled out. Each call during its hold sends one media frame every 20 ms and
# receives nothing, so "per frame" is the whole per-frame cost: pacing, building, writing.
#
#   TOOL=perf       perf stat: task-clock (CPU ms, machine-load dependent), syscalls per frame
#                   (sendmsg/sendto/writev/write, epoll_wait, timerfd_settime) — kernel work
#   TOOL=callgrind  valgrind --tool=callgrind: user-space instructions (Ir) per frame; slow
#                   (~50x), so keep CALLS small enough for the simulator to keep up
#   SIDE=server     count the reference server instead (it runs under the tool, the simulator
#                   natively): what one received media frame costs it — read, parse, record to
#                   WAV + SQLite, the echo bot's VAD — during the hold
#   SIM=path        the mediasim binary (default build/bin/mediasim); SERVER= likewise
#   CALLS=20 HOLD_A=2s HOLD_B=10s
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
TOOL=${TOOL:-perf}
SIM=${SIM:-$root/build/bin/mediasim}
SERVER=${SERVER:-$root/build/bin/mediasim-server}
CALLS=${CALLS:-20}
HOLD_A=${HOLD_A:-2s}
HOLD_B=${HOLD_B:-10s}

SIDE=${SIDE:-sim}
[[ $SIDE == sim || $SIDE == server ]] || { echo "frame_cost.sh: SIDE is sim or server" >&2; exit 2; }

tmp=$(mktemp -d -t mediasim-frame-cost.XXXXXX)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_server DIR [WRAPPER...]: a fresh server (under WRAPPER) with its data in DIR; sets port.
start_server() {
    local dir=$1
    shift
    "$@" "$SERVER" --listen 127.0.0.1:0 --data "$dir/data" --threads 1 >"$dir/server.log" 2>&1 &
    server_pid=$!
    port=""
    for _ in $(seq 600); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/server.log" | head -1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || { cat "$dir/server.log" >&2; exit 1; }
}
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# run HOLD -> prints "frames count1 count2 ..." for the tool
run() {
    local hold=$1 dir=$tmp/run-$1
    mkdir -p "$dir"
    if [[ $SIDE == server ]]; then
        run_server_side "$hold" "$dir"
        return
    fi
    start_server "$dir"
    sed -e "s|silence: 40s|silence: $hold|" \
        -e "s|audio: ../scenarios/audio/hello.wav|audio: $root/scenarios/audio/hello.wav|" \
        "$here/capacity_call.yaml" >"$dir/call.yaml"
    local cmd=("$SIM" run "$dir/call.yaml" --stream "ws://127.0.0.1:$port/media" --calls "$CALLS"
        --concurrency "$CALLS" --rate 200 --threads 1 --out "$dir/out" --quiet)
    if [[ $TOOL == callgrind ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "${cmd[@]}" \
            >"$dir/stdout" 2>"$dir/stderr" || true
        ir=$(sed -n 's/^summary: *//p' "$dir/cg.out")
        echo "$(frames "$dir") $ir"
    else
        perf stat -x, -o "$dir/stat" -e task-clock,context-switches \
            -e syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_writev \
            -e syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait \
            -e syscalls:sys_enter_timerfd_settime,raw_syscalls:sys_enter \
            -- "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr" || true
        echo "$(frames "$dir") $(awk -F, '!/^#/ && NF > 2 {printf "%s ", $1}' "$dir/stat")"
    fi
    stop_server
}

# The server under the tool, the simulator native; the counts are the server's.
run_server_side() {
    local hold=$1 dir=$2
    sed -e "s|silence: 40s|silence: $hold|" \
        -e "s|audio: ../scenarios/audio/hello.wav|audio: $root/scenarios/audio/hello.wav|" \
        "$here/capacity_call.yaml" >"$dir/call.yaml"
    if [[ $TOOL == callgrind ]]; then
        start_server "$dir" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out"
    else
        start_server "$dir"
        perf stat -x, -o "$dir/stat" -p "$server_pid" -e task-clock,context-switches \
            -e syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_writev \
            -e syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait \
            -e syscalls:sys_enter_timerfd_settime,raw_syscalls:sys_enter 2>/dev/null &
        local perf_pid=$!
        sleep 0.3
    fi
    "$SIM" run "$dir/call.yaml" --stream "ws://127.0.0.1:$port/media" --calls "$CALLS" \
        --concurrency "$CALLS" --rate 200 --threads 1 --out "$dir/out" --quiet \
        >"$dir/stdout" 2>"$dir/stderr" || true
    if [[ $TOOL == callgrind ]]; then
        stop_server
        echo "$(frames "$dir") $(sed -n 's/^summary: *//p' "$dir/cg.out")"
    else
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        stop_server
        echo "$(frames "$dir") $(awk -F, '!/^#/ && NF > 2 {printf "%s ", $1}' "$dir/stat")"
    fi
}
frames() {
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]+"/out/summary.json"));
c=s["calls"]; print(s["messages"]["sent"]) if c["failed"]==0 else sys.exit("failed calls: %s" % c)' "$1"
}

a=($(run "$HOLD_A"))
b=($(run "$HOLD_B"))
df=$((b[0] - a[0]))
echo "# mediasim frame cost ($SIDE): $TOOL, $CALLS calls, hold $HOLD_A vs $HOLD_B, $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $SIDE == server ]]; then echo "# $SERVER"; else echo "# $SIM"; fi
echo "frames sent: ${a[0]} vs ${b[0]} (marginal $df)"
if [[ $TOOL == callgrind ]]; then
    python3 -c "import sys; a,b,f=map(int,sys.argv[1:]); print(f'instructions (Ir) per frame: {(b-a)/f:.0f}')" \
        "${a[1]}" "${b[1]}" "$df"
else
    names=(task-clock-ms context-switches sendmsg sendto writev write epoll_wait timerfd_settime all-syscalls)
    for i in "${!names[@]}"; do
        python3 -c "import sys; a,b,f=map(float,sys.argv[2:]); print(f'{sys.argv[1]:>16} per frame: {(b-a)/f:.4f}')" \
            "${names[$i]}" "${a[$((i + 1))]}" "${b[$((i + 1))]}" "$df"
    done
fi
