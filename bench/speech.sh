#!/usr/bin/env bash
# Offline transcription figures (bench/README.md "Transcription"): PocketSphinx word error rate
# with and without hints, on espeak-ng sentences and on Debian's recorded Asterisk prompts, and
# the real-time factor / streams per core through the server's TranscriptionService.
# Usage: bench/speech.sh [BUILD_DIR] (default build; needs the speech_bench target)
set -euo pipefail
build=${1:-build}
bin="$build/bin/speech_bench"
[ -x "$bin" ] || cmake --build "$build" --target speech_bench
here=$(cd "$(dirname "$0")" && pwd)
texts=$(mktemp)
trap 'rm -f "$texts"' EXIT
zcat /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz > "$texts"
sounds=/usr/share/asterisk/sounds/en
echo "== espeak-ng sentences (bench/speech_sentences.txt)"
"$bin" wer --sentences "$here/speech_sentences.txt"
echo "== recorded Asterisk prompts (first 60 with plain-word texts)"
"$bin" wer --prompts "$texts" --sounds "$sounds" --limit 60
echo "== real-time factor: 2 streams of 10 recorded prompts, one worker, no hints"
"$bin" rtf --prompts "$texts" --sounds "$sounds" --limit 10 --streams 2
echo "== real-time factor as the assistant runs: 4 streams of the espeak-ng sentences, with hints"
"$bin" rtf --sentences "$here/speech_sentences.txt" --streams 4 --hints
