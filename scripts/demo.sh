#!/usr/bin/env bash
# `make demo`: the small models trained here (tools/train, committed under models/): a chat with
# fortune-lm (Qwen2 architecture), streamed, with tokens per second; speech-commands (Whisper
# architecture) transcribing the bundled clips it never saw in training, with timings and the
# word error rate; then apr's quality gates on the LM: held-out perplexity and the Pareto report
# of its F16, Q8_0 and Q4_0 variants.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
apr=$build/bin/apr
models=$root/models/fortune-lm
lm=$models/fortune-lm-q8_0.apr
mkdir -p "$build/demo"

echo "== chat with $(basename "$lm") (streamed; timings on the last line of each reply)"
for prompt in "Tell me a fortune." "Say something about computers." "Give me a quote about love." "What do you know about science?"; do
  echo "> $prompt"
  "$apr" run "$lm" --chat --prompt "$prompt" -n 80 --temperature 0.7 --top-p 0.9 --seed 7 2>&1
  echo
done

speech=$root/models/speech-commands
echo "== transcribe 12 of the bundled clips with speech-commands-q8_0.apr (held-out espeak-ng speech)"
: > "$build/demo/heard.tsv"
head -n 12 "$speech/clips/references.tsv" > "$build/demo/said.tsv"
while IFS=$'\t' read -r clip reference; do
  heard=$("$apr" transcribe "$speech/speech-commands-q8_0.apr" "$speech/clips/$clip" --language en --temperature 0 2> "$build/demo/transcribe.log")
  heard=${heard# }
  printf '%s\t%s\n' "$clip" "$heard" >> "$build/demo/heard.tsv"
  echo "$clip: said \"$reference\", heard \"$heard\""
  echo "    $(grep -o '[0-9.]* s of audio in .*' "$build/demo/transcribe.log" || true)"
done < "$build/demo/said.tsv"
"$apr" eval wer "$build/demo/said.tsv" "$build/demo/heard.tsv"
echo "== all $(wc -l < "$speech/clips/references.tsv") bundled clips in one run"
rm -rf "$build/demo/heard" && mkdir -p "$build/demo/heard"
"$apr" transcribe "$speech/speech-commands-q8_0.apr" "$speech"/clips/clip*.wav --language en -f txt -o "$build/demo/heard" 2> "$build/demo/transcribe.log"
awk '/ s of audio in / { for (i = 1; i < NF; ++i) { if ($(i + 1) == "s" && $(i + 2) == "of") audio += $i; if ($i == "in") run += $(i + 1); if ($(i + 1) == "tokens") tokens += $i }; ++n }
     END { if (n) printf "    %d clips: %.1f s of audio in %.2f s (%.1fx real time), %d tokens (%.0f tokens/s, encoder included)\n", n, audio, run, audio / run, tokens, tokens / run }' "$build/demo/transcribe.log"
for text in "$build"/demo/heard/*.txt; do printf '%s.wav\t%s\n' "$(basename "$text" .txt)" "$(tr '\n' ' ' < "$text")"; done > "$build/demo/heard-all.tsv"
"$apr" eval wer "$speech/clips/references.tsv" "$build/demo/heard-all.tsv"

echo "== held-out perplexity of $(basename "$models/fortune-lm-f16.apr") (658 fortunes it never saw)"
"$apr" eval perplexity "$models/fortune-lm-f16.apr" --text "$models/heldout.txt"

q4=$build/demo/fortune-lm-q4_0.apr
echo "== F16 -> Q4_0 with the precision gate"
"$apr" convert "$models/fortune-lm-f16.apr" --quantize q4_0 -o "$q4"
echo "== Pareto report: size, perplexity, KL against F16, decode speed"
"$apr" eval pareto "$models/fortune-lm-f16.apr" "$lm" "$q4" --text "$models/heldout.txt" --max-tokens 8192
