#!/usr/bin/env bash
# bench/server_capacity.sh [STEPS...]: how many concurrent media streams the reference server
# sustains with recording on (issue 4 §9), and with transcription on, how many per core.
#
# For each step N (default: 500 1000 1500 2000) it starts a fresh `mediasim-server` (data dir
# in a temp dir: every stream recorded to WAV + SQLite) and drives it with bench/stream_load: N
# Media Streams (upgrade, connected, start, one 160-byte media frame per 20 ms, stop), started
# at N/RAMP_S per second, each holding HOLD seconds. stream_load is a lean sender (about the
# kernel's TCP cost, see bench/loopback_floor), so that the server under test gets this 2-core
# machine's cycles; `mediasim run` (bench/capacity.sh) measures the two together. Columns:
#
#   streams done fail     stream_load's count of streams that completed (stop, close) / failed
#   load %core, p99       the sender's CPU and its own pacing error p99 (ms)
#   srv %core, MB         the server's CPU over the plateau (all streams up), in % of one core
#                         (200 = both), and its peak RSS
#   q>100ms, qmax         mediasim_server_frame_queue_ms from /metrics at the end of the step:
#                         frames queued over 100 ms before they reached storage, and the longest
#   frames/s              mediasim_server_frames_in_per_second sampled mid-plateau
#   (TRANSCRIBE=1) rtf, busy%  the transcription real-time factor (since start) and how busy
#                         the workers were over 5 s of the plateau (recognition time / time)
#
# A step passes when every stream completed and no frame was queued over 100 ms (and, with
# TRANSCRIBE=1, the workers under 90 % busy and the server under 90 % of a core: both keep up;
# run it with SERVER_CPUS=0 LOAD_CPUS=1 for streams per core).
#
# Environment:
#   SERVER_CPUS=0-1 SERVER_THREADS=2   taskset list and --threads of the server
#   LOAD_CPUS=                         the sender's CPU (one thread; default unpinned: pinned
#                                      beside one of the server's threads it starves that one)
#   HOLD=30 RAMP_S=5                   seconds each stream holds; the ramp takes RAMP_S seconds
#   TRANSCRIBE=0                       1: PocketSphinx on every stream (WORKERS=1 engines), the
#                                      caller saying scenarios/audio/hello.wav then 1 s of
#                                      silence, over and over (AUDIO= another WAV); HINTS=1
#                                      gives the stream flow that sentence as its phrase list
#   NICE=0 BUILD=1 BUILD_DIR=build-rel as in capacity.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(500 1000 1500 2000)
SERVER_CPUS=${SERVER_CPUS:-0-1}
SERVER_THREADS=${SERVER_THREADS:-$(cpu_count "$SERVER_CPUS")}
LOAD_CPUS=${LOAD_CPUS-}
HOLD=${HOLD:-30}
RAMP_S=${RAMP_S:-5}
TRANSCRIBE=${TRANSCRIBE:-0}
WORKERS=${WORKERS:-1}
NICE=${NICE:-0}
BUILD=${BUILD:-1}
BUILD_DIR=${BUILD_DIR:-build-rel}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ $BUILD == 1 ]] && build_release mediasim-server stream_load
server=$root/$BUILD_DIR/bin/mediasim-server
load=$root/$BUILD_DIR/bin/stream_load
[[ -x $server && -x $load ]] || {
    echo "server_capacity.sh: $server or $load missing (run with BUILD=1)" >&2
    exit 2
}

tmp=$(mktemp -d -t mediasim-server-capacity.XXXXXX)
trap bench_cleanup EXIT

config=()
load_audio=()
if [[ $TRANSCRIBE == 1 ]]; then
    audio=${AUDIO:-}
    if [[ -z $audio ]]; then
        audio=$tmp/talk.wav
        sox "$root/scenarios/audio/hello.wav" "$audio" pad 0 1
    fi
    cat >"$tmp/server.yaml" <<EOF
transcription:
  engine: pocketsphinx
  workers: $WORKERS
  partials: false
EOF
    if [[ ${HINTS:-0} == 1 ]]; then
        printf '  hints:\n    stream: ["hello i need some help"]\n' >>"$tmp/server.yaml"
    fi
    config=(--config "$tmp/server.yaml")
    load_audio=(--audio "$audio")
fi
load_cpu=()
[[ -n $LOAD_CPUS ]] && load_cpu=(--cpu "$LOAD_CPUS")
nice_cmd=()
[[ $NICE != 0 ]] && nice_cmd=(nice -n "$NICE")

tick=$(getconf CLK_TCK)
echo "# mediasim server capacity bench, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "# build: Release ($BUILD_DIR); server on CPUs $SERVER_CPUS (--threads $SERVER_THREADS), recording on$([[ $TRANSCRIBE == 1 ]] && echo ", PocketSphinx x $WORKERS on every stream$([[ ${HINTS:-0} == 1 ]] && echo ' (phrase-list hints)')"); stream_load on CPU ${LOAD_CPUS:-any}; hold ${HOLD}s, ramp ${RAMP_S}s"
[[ $NICE != 0 ]] && echo "# both processes at nice $NICE"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%7s %6s %5s | %6s %6s | %6s %7s | %8s %7s | %8s |%s %s\n' streams done fail "load%" "p99ms" \
    "srv%" "srvMB" "q>100ms" "qmax" "frames/s" "$([[ $TRANSCRIBE == 1 ]] && printf ' %6s %6s |' rtf "busy%")" result
best=0
for n in "${steps[@]}"; do
    step=$tmp/step-$n
    mkdir -p "$step/data"
    "${nice_cmd[@]}" taskset -c "$SERVER_CPUS" "$server" --listen 127.0.0.1:0 --data "$step/data" \
        --threads "$SERVER_THREADS" "${config[@]}" >"$step/server.log" 2>&1 &
    server_pid=$!
    port=$(wait_port "$step/server.log")
    [[ -n $port ]] || {
        echo "server_capacity.sh: the server did not start:" >&2
        cat "$step/server.log" >&2
        exit 1
    }
    : >"$step/server.samples"
    sample "$server_pid" "$step/server.samples" &
    sampler_pid=$!
    rate=$(((n + RAMP_S - 1) / RAMP_S))
    ((rate < 10)) && rate=10
    ramp_s=$(python3 -c "print($n / $rate)")
    # Mid-plateau: the server's own frames/s gauge (and the transcription queue).
    (
        sleep "$(python3 -c "print($ramp_s + ($HOLD - $ramp_s) / 2)")"
        cut -d' ' -f1 /proc/uptime >"$step/mid.t"
        fetch "http://127.0.0.1:$port/metrics" >"$step/metrics-mid.txt"
        sleep 5
        cut -d' ' -f1 /proc/uptime >"$step/mid2.t"
        fetch "http://127.0.0.1:$port/metrics" >"$step/metrics-mid2.txt"
    ) &
    mid_pid=$!
    set +e
    "${nice_cmd[@]}" "$load" --url "ws://127.0.0.1:$port/media" --streams "$n" --rate "$rate" \
        --hold "$HOLD" "${load_cpu[@]}" "${load_audio[@]}" >"$step/load.out" 2>"$step/load.err"
    set -e
    wait "$mid_pid" 2>/dev/null || true
    fetch "http://127.0.0.1:$port/metrics" >"$step/metrics.txt"
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    row=$(python3 - "$step" "$n" "$tick" "$HOLD" "$ramp_s" "$TRANSCRIBE" "$(cpu_count "$SERVER_CPUS")" <<'EOF'
import sys
step, n, tick, hold, ramp, transcribe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    float(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1"
server_cpus = int(sys.argv[7])
raw = open(f"{step}/load.out").read()
first_failure = raw.split(" first_failure=", 1)[1].strip() if " first_failure=" in raw else ""
kv = dict(p.split("=", 1) for p in raw.split(" first_failure=")[0].split() if "=" in p)
if "completed" not in kv:
    print(f"{n:7} load failed: {open(step + '/load.err').read().strip()[:200]}")
    sys.exit()

def metrics(path):
    m = {}
    try:
        for line in open(path):
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            m[name] = float(value)
    except OSError:
        pass
    return m

end, mid = metrics(f"{step}/metrics.txt"), metrics(f"{step}/metrics-mid.txt")
q_over = end.get('mediasim_server_frame_queue_ms_bucket{le="+Inf"}', float("nan")) - \
    end.get('mediasim_server_frame_queue_ms_bucket{le="100"}', float("nan"))
q_max = end.get("mediasim_server_frame_queue_max_ms", float("nan"))
fps = mid.get("mediasim_server_frames_in_per_second", float("nan"))
sm = []
for line in open(f"{step}/server.samples"):
    p = line.split()
    if len(p) == 4:
        sm.append((float(p[0]), int(p[1]), int(p[2])))
cpu = float("nan")
if len(sm) > 2:
    t0 = sm[0][0]
    w = [x for x in sm if t0 + ramp + 1.0 <= x[0] <= t0 + hold - 1.0]
    if len(w) < 2:
        w = sm
    cpu = 100.0 * (w[-1][1] - w[0][1]) / tick / (w[-1][0] - w[0][0])
hwm = max((x[2] for x in sm), default=0) / 1024
done, failed = int(kv["completed"]), int(kv["failed"])
ok = done == n and failed == 0 and q_over == 0
extra = ""
if transcribe:
    # The workers' busy share over 5 s of the plateau: recognition time (RTF x audio) added
    # between two samples, over the time between them, per worker.
    mid2 = metrics(f"{step}/metrics-mid2.txt")
    busy = lambda m: m.get("mediasim_server_transcription_real_time_factor", float("nan")) * \
        m.get("mediasim_server_transcription_audio_seconds_total", float("nan"))
    dt = float(open(f"{step}/mid2.t").read()) - float(open(f"{step}/mid.t").read())
    workers = mid2.get("mediasim_server_transcription_workers", 1) or 1
    util = (busy(mid2) - busy(mid)) / dt / workers
    rtf = end.get("mediasim_server_transcription_real_time_factor", float("nan"))
    ok = ok and util < 0.9 and cpu < 90 * server_cpus
    extra = f" {rtf:6.3f} {100 * util:6.1f} |"
print(f"{n:7} {done:6} {failed:5} | {float(kv['cpu_pct']):6.1f} {float(kv['pacing_p99_ms']):6.2f} | "
      f"{cpu:6.1f} {hwm:7.1f} | {q_over:8.0f} {q_max:7.1f} | {fps:8.0f} |{extra} "
      f"{'PASS' if ok else 'FAIL'}" + (f" ({first_failure})" if first_failure else ""))
EOF
    )
    echo "$row"
    if [[ $row == *PASS* ]] && ((n > best)); then best=$n; fi
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# largest passing step: $best"
