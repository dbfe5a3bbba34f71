#!/usr/bin/env bash
# The main job, from nothing: installs what is missing, builds mediasim and mediasim-server,
# starts the reference server on a free loopback port, plays the default scenario
# (scenarios/conversation.yaml) against it, and shows the summary and where the report,
# recordings and logs are. Extra arguments go to `mediasim demo` (see `mediasim demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR=$PWD
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${MEDIASIM_JOBS:-$(nproc)}" --target mediasim mediasim-server
exec build/bin/mediasim demo "$@"
