#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. installs missing Debian packages (scripts/setup.sh),
#   2. builds everything with -Werror and runs the unit tests under AddressSanitizer + UBSan,
#   3. runs each libFuzzer target for a short bounded time (scripts/fuzz.sh),
#   4. builds everything with -Werror (Release) and runs every test through ctest.
# Environment: MEDIASIM_JOBS (default: nproc), MEDIASIM_FUZZ_SECONDS (default 15; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${MEDIASIM_JOBS:-$(nproc)}
export CCACHE_BASEDIR=$root

bash scripts/setup.sh

stage() { printf '\n==== %s\n' "$*"; }

stage "AddressSanitizer + UBSan build of the unit tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEDIASIM_WERROR=ON \
  -DMEDIASIM_SANITIZE=ON -DMEDIASIM_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs" --target unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs" --timeout 600

if [ "${MEDIASIM_FUZZ_SECONDS:-15}" != 0 ] && [ -x scripts/fuzz.sh ]; then
  stage "libFuzzer targets, ${MEDIASIM_FUZZ_SECONDS:-15} s each"
  bash scripts/fuzz.sh "${MEDIASIM_FUZZ_SECONDS:-15}"
fi

# An independent HdrHistogram implementation (hdr-histogram-js, from the npm registry) reads our
# encodings and interval logs in the e2e suite; skipped when npm is not on the machine.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  hdrjs=$root/build/hdrjs
  if [ ! -d "$hdrjs/node_modules/hdr-histogram-js" ]; then
    mkdir -p "$hdrjs"
    (cd "$hdrjs" && npm install --silent --no-audit --no-fund hdr-histogram-js@3.0.1 >/dev/null 2>&1) ||
      echo "test: could not install hdr-histogram-js; its check will be skipped" >&2
  fi
  export MEDIASIM_HDR_JS=$hdrjs
fi

stage "Release build (-Werror) and the whole suite"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEDIASIM_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900
