#!/usr/bin/env bash
# Makes the Dockerfile-free way to run mediasim in a pod: a directory (and a .tar.gz of it) with
# mediasim, the shared libraries it needs beyond glibc, and the spoken texts of the given
# scenarios, that runs on a stock debian:12 image (the same Debian the binaries were built on).
#
#   deploy/k8s/bundle.sh [-b BUILD_DIR] OUT_DIR [SCENARIO.yaml...]
#
# OUT_DIR/mediasim/bin/mediasim     wrapper: sets LD_LIBRARY_PATH, runs mediasim.bin
# OUT_DIR/mediasim/lib/             libfmt, libyaml-cpp, libssl, ... (what ldd lists)
# OUT_DIR/mediasim/tts/             the TTS cache filled with the scenarios' spoken texts (the pods
#                                   have no espeak-ng: pass --tts-cache /data/mediasim/tts)
# OUT_DIR/mediasim-bundle.tar.gz    the above, to `kubectl cp` onto the volume (README.md)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
if [ "${1:-}" = "-b" ]; then build=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [-b BUILD_DIR] OUT_DIR [SCENARIO.yaml...]" >&2; exit 2; }
out=$1; shift
[ -x "$build/bin/mediasim" ] || {
  echo "bundle: $build/bin/mediasim not found (build it: cmake --build build --target mediasim)" >&2
  exit 2
}

root="$out/mediasim"
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib" "$root/tts"
for exe in mediasim; do
  cp "$build/bin/$exe" "$root/bin/$exe.bin"
  cat > "$root/bin/$exe" <<WRAP
#!/bin/sh
# Runs $exe with the libraries of this bundle (deploy/k8s/bundle.sh).
here=\$(dirname "\$0")
LD_LIBRARY_PATH="\$here/../lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/$exe.bin" "\$@"
WRAP
  chmod +x "$root/bin/$exe"
  # Every library but glibc's own (libc, libm, ld-linux, ...), which debian:12 has.
  ldd "$build/bin/$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*) ;;
      *) cp -L "$lib" "$root/lib/" ;;
    esac
  done
done

# Speak each scenario's texts into the cache: loading a scenario speaks them. The single call
# goes to a closed loopback port and fails at once (exit 1); exit 2 is a bad scenario.
for s in "$@"; do
  rc=0
  "$root/bin/mediasim" run "$s" --stream ws://127.0.0.1:1/ --calls 1 --tts-cache "$root/tts" \
    --quiet >/dev/null 2>"$out/bundle-scenario.log" || rc=$?
  if [ "$rc" -ge 2 ]; then
    echo "bundle: $s:" >&2; cat "$out/bundle-scenario.log" >&2; exit 2
  fi
done
rm -f "$out/bundle-scenario.log"

tar -C "$out" -czf "$out/mediasim-bundle.tar.gz" mediasim
echo "bundle: $out/mediasim-bundle.tar.gz ($(du -sh "$root" | cut -f1))"
