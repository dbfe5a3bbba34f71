#!/usr/bin/env bash
# bench/soak.sh: a soak of the reference server (issue 7 §3). Starts a fresh `mediasim-server`
# (its own data dir under a temp dir) and runs
#   mediasim soak bench/soak_call.yaml --webhook http://127.0.0.1:PORT/voice
#       --duration $DURATION --concurrency $CONCURRENCY --window "$WINDOW" --server-pid PID --out $OUT
# then prints one row per minute from soak.jsonl: calls ended and failed, response latency
# p50/p99, the server's audio jitter p99, send pacing p99 and the server's RSS; and the verdict
# (soak.json: memory and p99 latency slopes per minute, the first minute left out as warm-up).
#
# Environment:
#   DURATION=30m CONCURRENCY=200   the soak (WINDOW=1m: one row per window)
#   RATE=10                        at most this many new calls per second: the first calls are
#                                  staggered instead of all starting at once (200 calls of
#                                  ~26 s sustain ~7.7/s, so RATE=10 leaves concurrency the limit)
#   NICE=10                        both processes at this nice level (a shared machine)
#   OUT=DIR                        keep the soak's output there (default: soak-out/ in the repo)
#   BIN_DIR=DIR                    where mediasim and mediasim-server are (default build-rel/bin,
#                                  built first with BUILD=1, the default)
#   KEEP_DATA=1                    keep the server's recordings (~16 KB per call-second: 200
#                                  calls for 30 min write ~6 GB); removed by default
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

DURATION=${DURATION:-30m}
CONCURRENCY=${CONCURRENCY:-200}
NICE=${NICE:-10}
OUT=${OUT:-$root/soak-out}
BUILD=${BUILD:-1}
BIN_DIR=${BIN_DIR:-$root/build-rel/bin}
KEEP_DATA=${KEEP_DATA:-0}
WINDOW=${WINDOW:-1m}
RATE=${RATE:-10}

if [[ $BUILD == 1 && $BIN_DIR == "$root/build-rel/bin" ]]; then
    export CCACHE_BASEDIR=$root
    cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEDIASIM_BUILD_TESTS=OFF >/dev/null
    nice cmake --build build-rel -j2 --target mediasim mediasim-server >/dev/null
fi
sim=$BIN_DIR/mediasim
server=$BIN_DIR/mediasim-server
[[ -x $sim && -x $server ]] || {
    echo "soak.sh: $sim or $server missing" >&2
    exit 2
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d -t mediasim-soak.XXXXXX)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [[ $KEEP_DATA == 1 ]]; then echo "soak.sh: server data kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

sed -e "s|audio: ../scenarios/audio/hello.wav|audio: $root/scenarios/audio/hello.wav|" \
    "$here/soak_call.yaml" >"$tmp/soak_call.yaml"

nice -n "$NICE" "$server" --listen 127.0.0.1:0 --data "$tmp/data" >"$tmp/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n '1s|^listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/server.log")
    [[ -n $port ]] && break
    sleep 0.05
done
[[ -n $port ]] || {
    echo "soak.sh: the server did not start:" >&2
    cat "$tmp/server.log" >&2
    exit 1
}

echo "# mediasim soak bench, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $DURATION at $CONCURRENCY calls (at most $RATE new/s), bench/soak_call.yaml, nice $NICE, output in $OUT"
rm -rf "$OUT"
set +e
nice -n "$NICE" "$sim" soak "$tmp/soak_call.yaml" --webhook "http://127.0.0.1:$port/voice" \
    --duration "$DURATION" --concurrency "$CONCURRENCY" --rate "$RATE" --window "$WINDOW" --server-pid "$server_pid" \
    --out "$OUT" >"$tmp/soak.stdout" 2>"$tmp/soak.stderr"
rc=$?
set -e
cp "$tmp/soak.stderr" "$OUT/soak.stderr" 2>/dev/null || true
[[ -f $OUT/soak.jsonl ]] || {
    echo "soak.sh: no soak.jsonl (exit $rc):" >&2
    tail -20 "$tmp/soak.stderr" >&2
    exit 1
}
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'min':>5} {'ended':>6} {'failed':>6} | {'resp p50':>8} {'resp p99':>8} | {'jitter99':>8} {'pace p99':>8} | {'server RSS':>10}")
print(f"{'':>5} {'':>6} {'':>6} | {'ms':>8} {'ms':>8} | {'ms':>8} {'ms':>8} | {'MB':>10}")
def ms(d, k):
    return f"{d[k] / 1000:8.1f}" if k in d else f"{'-':>8}"
for line in open(f"{out}/soak.jsonl"):
    w = json.loads(line)
    rss = w.get("server_rss_bytes")
    print(f"{w['t'] / 60:5.1f} {w['completed'] + w['failed']:6d} {w['failed']:6d} | "
          f"{ms(w['response_latency_us'], 'p50')} {ms(w['response_latency_us'], 'p99')} | "
          f"{ms(w['jitter_us'], 'p99')} {ms(w['pacing_error_us'], 'p99')} | "
          f"{(rss / 1e6 if rss else float('nan')):10.1f}")
v = json.load(open(f"{out}/soak.json"))
print("verdict:", json.dumps(v))
PY
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg); mediasim soak exit $rc; report: $OUT/soak.html"
