#!/usr/bin/env bash
# Runs the four per-frame paths in C++ (bench_core) and in Python (python_frames.py) in the same
# run, on one core each, and prints the time per frame and the ratio for each path.
#   bench/compare_python.sh [BUILD_DIR]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/bin/bench_core
[ -x "$bin" ] || { echo "compare_python: $bin not found; build first: cmake --build $build --target bench_core" >&2; exit 2; }
py=$(command -v python3)
"$py" -c 'import audioop' 2>/dev/null || { echo "compare_python: $py has no audioop (needs Python ≤ 3.12)" >&2; exit 2; }

cpp_json=$(mktemp); trap 'rm -f "$cpp_json"' EXIT
taskset -c 0 "$bin" --benchmark_filter='Frame' --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$cpp_json" 2>/dev/null
py_json=$(taskset -c 0 "$py" bench/python_frames.py)

"$py" - "$cpp_json" "$py_json" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1]))
py = json.loads(sys.argv[2])
ns = {}
for b in cpp["benchmarks"]:
    if b.get("aggregate_name") == "median":
        name = b["run_name"].replace("BM_", "")
        unit = {"ns": 1, "us": 1e3, "ms": 1e6}[b["time_unit"]]
        ns[name] = b["cpu_time"] * unit
print(f"{'path':<18} {'C++ µs/frame':>13} {'Python µs/frame':>16} {'ratio':>8}   (python {py['python']}, one core)")
for name in ["InboundFrame", "OutboundFrame", "InboundFrame16k", "OutboundFrame16k"]:
    c = ns[name] / 1000
    p = py[name]
    print(f"{name:<18} {c:>13.3f} {p:>16.3f} {p / c:>7.1f}x")
PY
