#!/usr/bin/env bash
# Installs every Debian package Mediasim needs to build, test and run.
# Idempotent: when nothing is missing it returns in well under a second.
# Uses sudo only when not root. Set MEDIASIM_SKIP_SETUP=1 to skip entirely.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config python3 clang libclang-rt-14-dev
  # libraries
  libboost1.81-dev nlohmann-json3-dev libfmt-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev zlib1g-dev libsqlite3-dev libspeexdsp-dev libsimdjson-dev
  libespeak-ng-dev libpocketsphinx-dev libsphinxbase-dev
  # runtime data and audio tools
  espeak-ng sox pocketsphinx pocketsphinx-en-us
  asterisk-core-sounds-en-wav asterisk-core-sounds-en
  openssl
  # the HTML report test renders in a real browser
  chromium
  # mediasim check's tests: JUnit XML validated by xmllint; Twilio-style Python sample servers
  libxml2-utils python3-websockets
)

[ "${MEDIASIM_SKIP_SETUP:-0}" = 1 ] && exit 0

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
