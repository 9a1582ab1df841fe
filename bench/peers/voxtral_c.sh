#!/usr/bin/env bash
# bench/peers/voxtral_c.sh VOXTRAL_C_SRC [OUT_DIR]
#
# apr against antirez/voxtral.c on the very same random Voxtral Mini 4B Realtime weights: copies
# a voxtral.c checkout outside this repo into OUT_DIR (default /tmp/voxtral-c-build) and builds
# its BLAS backend there (`make blas`, OpenBLAS from Debian's libopenblas-dev); writes the
# weights once with `apr synth voxtral` as a Mistral folder (BF16 consolidated.safetensors +
# params.json, as released) plus a tekken.json of the real vocabulary size (voxtral.c needs one;
# its tokens are placeholders: random weights decode no words); writes SECONDS of audio as a
# WAV; runs voxtral.c RUNS times on it (OPENBLAS_NUM_THREADS=THREADS) and bench_voxtral with the
# same threads on the same folder and WAV; prints one JSON: per apr dtype the median encoder ms
# per second of (padded) audio, decoder ms per token and prompt ms of each, and voxtral.c / apr
# (above 1: apr is faster). voxtral.c runs its weights as BF16 (converted to f32 for sgemm);
# apr's bf16 row is the like-for-like one, q8_0 and q4_0 are what apr adds.
#
# Environment: DTYPES (default bf16,q8_0,q4_0), THREADS (2), RUNS (3), AUDIO_SECONDS (10),
# APR_BUILD (default <repo>/build).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 VOXTRAL_C_SRC [OUT_DIR]" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "$1" && pwd)
out=$(mkdir -p "${2:-/tmp/voxtral-c-build}" && cd "${2:-/tmp/voxtral-c-build}" && pwd)
for dir in "$src" "$out"; do
  if [[ "$dir/" == "$repo/"* ]]; then
    echo "$dir is inside the apr repo: peer sources and builds stay outside it" >&2
    exit 2
  fi
done
dtypes=${DTYPES:-bf16,q8_0,q4_0}
threads=${THREADS:-2}
runs=${RUNS:-3}
seconds=${AUDIO_SECONDS:-10}
apr_build=${APR_BUILD:-$repo/build}

for package in libopenblas-dev jq; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || apt-get install -y "$package" >&2
done

echo "building voxtral.c (make blas) from $src in $out/src" >&2
rm -rf "$out/src" && mkdir -p "$out/src" && cp -r "$src"/. "$out/src/"
make -C "$out/src" blas >&2

echo "building apr and bench_voxtral in $apr_build" >&2
cmake -S "$repo" -B "$apr_build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$apr_build" --target apr_cli bench_voxtral -j"$(nproc)" >&2

model="$out/model"
if [[ ! -f "$model/consolidated.safetensors" ]]; then
  echo "writing the random Voxtral Mini 4B Realtime weights to $model (BF16, about 9 GB)" >&2
  "$apr_build/bin/apr" synth voxtral -o "$model" >&2
fi
if [[ ! -f "$model/tekken.json" ]]; then
  # Tekken layout: 1000 special tokens first, then 130072 ranks of base64 bytes (bytes 0-255, then letter pairs and triples)
  python3 - "$model/tekken.json" <<'EOF'
import base64, itertools, json, string, sys
specials = ["<unk>", "<s>", "</s>"] + [f"<SPECIAL_{i}>" for i in range(3, 32)] + ["[STREAMING_PAD]"] + [f"<SPECIAL_{i}>" for i in range(33, 1000)]
pieces = [bytes([b]) for b in range(256)]
letters = string.ascii_lowercase
for n in (2, 3, 4):
    for combo in itertools.product(letters, repeat=n):
        if len(pieces) == 130072:
            break
        pieces.append(("".join(combo)).encode())
vocab = [{"rank": r, "token_bytes": base64.b64encode(p).decode(), "token_str": p.decode("latin-1")} for r, p in enumerate(pieces)]
doc = {"config": {"pattern": r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
                  "num_vocab_tokens": len(pieces), "default_vocab_size": 131072, "default_num_special_tokens": 1000, "version": "v7"},
       "vocab": vocab, "special_tokens": [{"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(specials)]}
json.dump(doc, open(sys.argv[1], "w"))
EOF
fi
audio="$out/audio-${seconds}s.wav"
python3 - "$audio" "$seconds" <<'EOF'
import math, random, struct, sys, wave
path, seconds = sys.argv[1], float(sys.argv[2])
random.seed(5)
frames = bytearray()
for i in range(int(seconds * 16000)):
    t = i / 16000
    v = (0.2 * math.sin(2 * math.pi * (220 + 40 * math.sin(t)) * t) + 0.1 * math.sin(2 * math.pi * 1100 * t)) * (0.5 + 0.5 * math.sin(6 * math.pi * t))
    frames += struct.pack("<h", max(-32768, min(32767, int((v + random.gauss(0, 0.02)) * 32767))))
with wave.open(path, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(bytes(frames))
EOF

# voxtral.c prints "Encoder: M mel -> T tokens (X ms)" and "Decoder: N text tokens (S steps) in D ms (prefill P ms + Y ms/step)"
peer_results="$out/voxtral-c.jsonl"
: > "$peer_results"
for ((run = 0; run < runs; ++run)); do
  echo "voxtral.c run $run" >&2
  start=$(date +%s%N)
  log=$(OPENBLAS_NUM_THREADS=$threads "$out/src/voxtral" -d "$model" -i "$audio" 2>&1 >/dev/null)
  wall_ms=$((($(date +%s%N) - start) / 1000000))
  mel=$(sed -n 's/^Encoder: \([0-9]*\) mel.*/\1/p' <<< "$log")
  encoder_ms=$(sed -n 's/^Encoder: .*(\([0-9.]*\) ms)$/\1/p' <<< "$log")
  prefill_ms=$(sed -n 's/^Decoder: .*(prefill \([0-9.]*\) ms.*/\1/p' <<< "$log")
  step_ms=$(sed -n 's/^Decoder: .* + \([0-9.]*\) ms\/step).*/\1/p' <<< "$log")
  steps=$(sed -n 's/^Decoder: .*(\([0-9]*\) steps).*/\1/p' <<< "$log")
  if [[ -z "$encoder_ms" || -z "$step_ms" ]]; then
    echo "voxtral.c printed no timings:" >&2
    echo "$log" >&2
    exit 1
  fi
  jq -nc --argjson mel "$mel" --argjson encoder "$encoder_ms" --argjson prefill "${prefill_ms:-0}" --argjson step "$step_ms" \
    --argjson steps "${steps:-0}" --argjson wall_ms "$wall_ms" \
    '{mel_frames: $mel, encoder_ms: $encoder, encoder_ms_per_audio_s: ($encoder / ($mel / 100)), decoder_prompt_ms: $prefill,
      decoder_ms_per_token: $step, decoder_steps: $steps, wall_s: ($wall_ms / 1000)}' >> "$peer_results"
done

echo "bench_voxtral $dtypes" >&2
apr_results="$out/bench_voxtral.json"
"$apr_build/bin/bench_voxtral" "$model" --audio "$audio" --dtypes "$dtypes" --runs "$runs" --threads "$threads" > "$apr_results"

jq -n --slurpfile peer "$peer_results" --slurpfile apr "$apr_results" --arg threads "$threads" --arg seconds "$seconds" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  ($peer | map(.encoder_ms_per_audio_s) | median) as $peer_encoder
  | ($peer | map(.decoder_ms_per_token) | median) as $peer_step
  | {model: "Voxtral Mini 4B Realtime dims, random BF16 weights written by apr synth voxtral (the same folder for both)",
     threads: ($threads | tonumber), audio_s: ($seconds | tonumber), copy_bandwidth_gbs: $apr[0].copy_bandwidth_gbs,
     voxtral_c: {encoder_ms_per_audio_s: $peer_encoder, decoder_ms_per_token: $peer_step,
                 decoder_prompt_ms: ($peer | map(.decoder_prompt_ms) | median), wall_s: ($peer | map(.wall_s) | median)},
     results: [$apr[0].results[] | . + {voxtral_c_over_apr_encoder: ($peer_encoder / .encoder_ms_per_audio_s),
                                        voxtral_c_over_apr_decoder: ($peer_step / .decoder_ms_per_token)}],
     peak_rss_mb: $apr[0].peak_rss_mb}'
