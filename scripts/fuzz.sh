#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for SECONDS seconds on a
# copy of its seed corpus (fuzz/corpus/<target>/). Exits non-zero when a target crashes or fails
# a property, printing the crashing input's path; keep that input as a regression test:
#   cp <input> tests/regress/<target>/   (tests/core/regress_test.cpp replays it)
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 15 s; all targets)
# Environment: MEDIASIM_JOBS (build parallelism, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-15}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_protocol fuzz_base64 fuzz_wav)
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
export CCACHE_BASEDIR=$root

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DMEDIASIM_BUILD_FUZZ=ON -DMEDIASIM_BUILD_TESTS=OFF -DMEDIASIM_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"${MEDIASIM_JOBS:-2}" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/$t
  work=build-fuzz/fuzz-work/$t
  artifacts=build-fuzz/fuzz-artifacts/$t
  rm -rf "$work" "$artifacts"
  mkdir -p "$work" "$artifacts"
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  log=build-fuzz/fuzz-work/$t.log
  echo "fuzz.sh: $t for ${seconds}s (corpus $work, log $log)"
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$work" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$log" | sed "s/^/  $t: /" || true
  else
    status=1
    echo "fuzz.sh: $t FAILED; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    for f in "$artifacts"/*; do
      [ -e "$f" ] && echo "fuzz.sh: crashing input: $root/$f (keep it: cp $f tests/regress/$t/)" >&2
    done
  fi
done
exit $status
