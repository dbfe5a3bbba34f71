#!/usr/bin/env bash
# bench/capacity.sh [STEPS...]: how many concurrent bidirectional calls one `mediasim run`
# process carries against the reference server on loopback (issue 3 §6).
#
# For each step N (default: 100 250 500 1000 1500 2000) it starts a fresh `mediasim-server`
# (its own data dir under a temp dir), runs `mediasim run bench/capacity_call.yaml --stream
# ws://127.0.0.1:PORT/media --calls N --concurrency N --rate R --threads T --out DIR --quiet`
# and prints one table row: calls, completed, failed, simulator CPU (% of one core over the
# plateau where all calls are up, and µs of CPU per call-second over the whole run), simulator
# peak RSS (MB, and KB per call: peak / N, so gross of the ~20 MB an idle run takes), send pacing error p50/p99/p99.9/max
# (summary.json metrics.pacing_error), response latency p99, server CPU % and peak RSS.
# A step passes when no call failed, pacing p99 <= 1 ms (the simulator: "sim") and no media
# frame was queued in the server more than 100 ms before it was handed to storage ("srv":
# mediasim_server_frame_queue_ms from the server's /metrics at the end of the step; columns
# q>100ms, the number of such frames, and qmax, the longest).
#
# Environment:
#   SIM_CPUS=1 SERVER_CPUS=0   taskset CPU lists (default: the simulator on core 1, the server on
#                              core 0, so that neither steals the other's core); PIN=0 disables.
#   SIM_THREADS=1              mediasim run --threads (default: one per CPU in SIM_CPUS)
#   SERVER_THREADS=1           mediasim-server --threads (default: one per CPU in SERVER_CPUS)
#   NICE=0                     run both processes at this nice level (e.g. -10 as root): on a
#                              machine shared with builds, it keeps their time slices from
#                              showing up as the simulator's pacing error; say so with the figures
#   HOLD=30s                   the hold time of every call (the scenario's silence step)
#   RAMP_S=5                   calls start at N/RAMP_S per second (at least 50/s)
#   BUILD=1                    build Release in $BUILD_DIR first (BUILD=0: use what is there)
#   BUILD_DIR=build-rel        the build directory (e.g. build, the developers' Release build)
#   KEEP=DIR                   keep each step's --out DIR under DIR (default: a temp dir, removed)
#   PERF=FILE                  record the simulator of the LAST step with `perf record -g`
#                              (software cpu-clock event; works in VMs without PMU counters)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(100 250 500 1000 1500 2000)

PIN=${PIN:-1}
SIM_CPUS=${SIM_CPUS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
HOLD=${HOLD:-30s}
RAMP_S=${RAMP_S:-5}
BUILD=${BUILD:-1}
BUILD_DIR=${BUILD_DIR:-build-rel}
NICE=${NICE:-0}

if [[ $PIN == 1 ]]; then
    SIM_THREADS=${SIM_THREADS:-$(cpu_count "$SIM_CPUS")}
    SERVER_THREADS=${SERVER_THREADS:-$(cpu_count "$SERVER_CPUS")}
    sim_pin=(taskset -c "$SIM_CPUS")
    server_pin=(taskset -c "$SERVER_CPUS")
else
    SIM_THREADS=${SIM_THREADS:-$(nproc)}
    SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
    sim_pin=()
    server_pin=()
fi
if [[ $NICE != 0 ]]; then
    sim_pin=(nice -n "$NICE" "${sim_pin[@]}")
    server_pin=(nice -n "$NICE" "${server_pin[@]}")
fi

# Every call holds a socket in the simulator and a socket plus a recording in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_step=0
for n in "${steps[@]}"; do ((n > max_step)) && max_step=$n; done
if (($(ulimit -n) < 2 * max_step + 256)); then
    echo "capacity.sh: ulimit -n is $(ulimit -n), too low for $max_step calls" \
        "(need about $((2 * max_step + 256)))" >&2
    exit 2
fi

[[ $BUILD == 1 ]] && build_release mediasim mediasim-server
sim=$root/$BUILD_DIR/bin/mediasim
server=$root/$BUILD_DIR/bin/mediasim-server
[[ -x $sim && -x $server ]] || {
    echo "capacity.sh: $sim or $server missing (run with BUILD=1)" >&2
    exit 2
}

tmp=$(mktemp -d -t mediasim-capacity.XXXXXX)
trap bench_cleanup EXIT

# The scenario with this run's hold time; the audio path made absolute.
scenario=$tmp/capacity_call.yaml
sed -e "s|silence: 40s|silence: $HOLD|" \
    -e "s|audio: ../scenarios/audio/hello.wav|audio: $root/scenarios/audio/hello.wav|" \
    "$here/capacity_call.yaml" >"$scenario"
grep -q "silence: $HOLD" "$scenario" || {
    echo "capacity.sh: could not set the hold time in $scenario" >&2
    exit 2
}


tick=$(getconf CLK_TCK)
echo "# mediasim capacity bench, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "# build: Release ($BUILD_DIR); scenario: bench/capacity_call.yaml, hold $HOLD; ramp N/${RAMP_S}s"
if [[ $PIN == 1 ]]; then
    echo "# pinning: simulator on CPU $SIM_CPUS (--threads $SIM_THREADS), server on CPU $SERVER_CPUS (--threads $SERVER_THREADS)"
else
    echo "# pinning: none (simulator --threads $SIM_THREADS, server --threads $SERVER_THREADS)"
fi
[[ $NICE != 0 ]] && echo "# both processes at nice $NICE"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%6s %6s %5s | %6s %8s %7s %7s | %6s %6s %6s %6s | %7s | %6s %7s %8s %7s | %s\n' \
    calls done fail "simCPU" "us/call·s" "simMB" "KB/call" "p50" "p99" "p99.9" "max" \
    "resp99" "srvCPU" "srvMB" "q>100ms" "qmax" "load1 result"
printf '%6s %6s %5s | %6s %8s %7s %7s | %6s %6s %6s %6s | %7s | %6s %7s %8s %7s |\n' \
    "" "" "" "%core" "" "peak" "" "ms" "ms" "ms" "ms" "ms" "%core" "peak" "frames" "ms"

best=0
last_index=$((${#steps[@]} - 1))
for i in "${!steps[@]}"; do
    n=${steps[$i]}
    step=$tmp/step-$n
    mkdir -p "$step/data"
    "${server_pin[@]}" "$server" --listen 127.0.0.1:0 --data "$step/data" \
        --threads "$SERVER_THREADS" >"$step/server.log" 2>&1 &
    server_pid=$!
    port=$(wait_port "$step/server.log")
    [[ -n $port ]] || {
        echo "capacity.sh: the server did not start:" >&2
        cat "$step/server.log" >&2
        exit 1
    }
    rate=$(((n + RAMP_S - 1) / RAMP_S))
    ((rate < 50)) && rate=50
    sim_cmd=("$sim" run "$scenario" --stream "ws://127.0.0.1:$port/media" --calls "$n"
        --concurrency "$n" --rate "$rate" --threads "$SIM_THREADS" --out "$step/out" --quiet)
    if [[ -n ${PERF:-} && $i == "$last_index" ]]; then
        sim_cmd=(perf record -e cpu-clock -F 999 -g -o "$PERF" -- "${sim_cmd[@]}")
    fi
    : >"$step/server.samples"
    sample "$server_pid" "$step/server.samples" &
    sampler_pid=$!
    t_start=$(cut -d' ' -f1 /proc/uptime)
    set +e
    "${sim_pin[@]}" "${sim_cmd[@]}" >"$step/sim.stdout" 2>"$step/sim.stderr" &
    sim_pid=$!
    # With perf, the simulator is perf's child: sample that one.
    if [[ -n ${PERF:-} && $i == "$last_index" ]]; then
        for _ in $(seq 100); do
            child=$(pgrep -P "$sim_pid" -x mediasim || true)
            [[ -n $child ]] && break
            sleep 0.05
        done
        sim_sample_pid=${child:-$sim_pid}
    else
        sim_sample_pid=$sim_pid
    fi
    : >"$step/sim.samples"
    sample "$sim_sample_pid" "$step/sim.samples" &
    sim_sampler=$!
    wait "$sim_pid"
    sim_rc=$?
    wait "$sim_sampler" 2>/dev/null
    set -e
    t_end=$(cut -d' ' -f1 /proc/uptime)
    fetch "http://127.0.0.1:$port/metrics" >"$step/metrics.txt"
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    if [[ ! -f $step/out/summary.json ]]; then
        echo "capacity.sh: step $n: the simulator wrote no summary (exit $sim_rc):" >&2
        tail -5 "$step/sim.stderr" >&2
        continue
    fi
    row=$(python3 - "$step" "$n" "$tick" "$HOLD" "$rate" <<'EOF'
import json, sys
step, n, tick, hold, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    int(sys.argv[5])
hold_s = float(hold[:-1]) * 60 if hold.endswith("m") else float(hold.rstrip("s"))
s = json.load(open(f"{step}/out/summary.json"))
calls = [json.loads(l) for l in open(f"{step}/out/calls.jsonl") if l.strip()]
call_s = sum(c.get("duration_seconds", 0) for c in calls)

def samples(path):
    out = []
    for line in open(path):
        p = line.split()
        if len(p) == 4:
            out.append((float(p[0]), int(p[1]), int(p[2]), int(p[3])))
    return out

def plateau_cpu(sm):
    # % of one core over the plateau: from the end of the ramp + 3 s to 3 s before the first
    # hang-ups (all calls up). Fallback: the whole run.
    if len(sm) < 2:
        return float("nan")
    t0 = sm[0][0]
    lo, hi = t0 + plateau_from, t0 + plateau_to
    w = [x for x in sm if lo <= x[0] <= hi]
    if len(w) < 2:
        w = sm
    return 100.0 * (w[-1][1] - w[0][1]) / tick / (w[-1][0] - w[0][0])

sim = samples(f"{step}/sim.samples")
srv = samples(f"{step}/server.samples")
# The ramp takes n/rate s; each call speaks (2 s), hears the echo (~2.5 s), then holds.
ramp = n / rate
plateau_from, plateau_to = ramp + 2.0, 4.0 + hold_s - 1.0
sim_cpu_ticks = sim[-1][1] if sim else 0
sim_cpu_pct = plateau_cpu(sim)
us_per_call_s = sim_cpu_ticks / tick * 1e6 / call_s if call_s else float("nan")
sim_hwm_kb = max((x[2] for x in sim), default=0)
kb_per_call = sim_hwm_kb / n  # gross: includes the ~20 MB of an idle process
srv_cpu_pct = plateau_cpu(srv)
srv_hwm_kb = max((x[2] for x in srv), default=0)
m = s["metrics"]
pe = m["pacing_error"]
rl = m["response_latency"]
c = s["calls"]
ms = lambda us: us / 1000.0
# The server's queueing (mediasim_server_frame_queue_ms): frames queued over 100 ms, longest.
q_over, q_max = float("nan"), float("nan")
buckets = {}
for line in open(f"{step}/metrics.txt"):
    if line.startswith("mediasim_server_frame_queue_ms_bucket"):
        le = line.split('le="')[1].split('"')[0]
        buckets[le] = int(line.split()[-1])
    elif line.startswith("mediasim_server_frame_queue_max_ms "):
        q_max = float(line.split()[-1])
if "100" in buckets and "+Inf" in buckets:
    q_over = buckets["+Inf"] - buckets["100"]
sim_ok = c["failed"] == 0 and c["completed"] == n and pe["p99"] <= 1000
srv_ok = c["failed"] == 0 and q_over == 0
ok = sim_ok and srv_ok
verdict = "PASS" if ok else ("FAIL" + (" sim" if not sim_ok else "") + (" srv" if not srv_ok else ""))
load1 = open("/proc/loadavg").read().split()[0]
print(f"{n:6d} {c['completed']:6d} {c['failed']:5d} | {sim_cpu_pct:6.1f} {us_per_call_s:8.1f} "
      f"{sim_hwm_kb/1024:7.1f} {kb_per_call:7.1f} | {ms(pe['p50']):6.2f} {ms(pe['p99']):6.2f} "
      f"{ms(pe['p99_9']):6.2f} {ms(pe['max']):6.1f} | {ms(rl['p99']):7.1f} | "
      f"{srv_cpu_pct:6.1f} {srv_hwm_kb/1024:7.1f} {q_over:8} {q_max:7.1f} | {load1} {verdict}"
      + ("" if not c["failed_by_class"] else f" failed: {c['failed_by_class']}"))
EOF
    )
    echo "$row"
    if [[ $row == *PASS* ]] && ((n > best)); then best=$n; fi
    if [[ -n ${KEEP:-} ]]; then
        mkdir -p "$KEEP"
        rm -rf "$KEEP/step-$n"
        cp -r "$step/out" "$KEEP/step-$n"
        cp "$step"/*.samples "$step"/sim.std* "$KEEP/step-$n/" 2>/dev/null || true
    fi
    rm -rf "$step"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# largest passing step (no failed call, pacing p99 <= 1 ms, no frame queued > 100 ms): $best"
