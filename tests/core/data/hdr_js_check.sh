#!/bin/sh
# hdr-histogram-js reads what Mediasim writes: the test binary writes our encodings and an
# interval log, then hdr_vectors.mjs decodes them and compares counts and percentiles.
# Usage: hdr_js_check.sh CORE_HISTOGRAM_TEST HDR_VECTORS_MJS
# Needs `node` and hdr-histogram-js installed under $MEDIASIM_HDR_JS
# (mkdir -p /tmp/hdrjs && cd /tmp/hdrjs && npm install hdr-histogram-js); exits 77 (skipped)
# when either is missing.
set -eu
test_bin=$1
script=$2
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
if [ -z "${MEDIASIM_HDR_JS:-}" ] || [ ! -d "$MEDIASIM_HDR_JS/node_modules/hdr-histogram-js" ]; then
    echo "SKIP: set MEDIASIM_HDR_JS to a directory where 'npm install hdr-histogram-js' was run"
    exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MEDIASIM_HDR_OUT=$out "$test_bin" --gtest_filter=HdrJs.WritesOurEncodingsForTheJsCheck
test -s "$out/ours.json" && test -s "$out/ours.hlog"
node "$script" check "$out/ours.json" "$out/ours.hlog"
