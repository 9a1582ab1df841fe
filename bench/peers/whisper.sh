#!/usr/bin/env bash
# bench/peers/whisper.sh WHISPER_CPP_SRC [OUT_DIR]
#
# apr against whisper.cpp on the very same random Whisper weights: builds whisper-bench from a
# whisper.cpp checkout outside this repo (Release, GGML_NATIVE) into OUT_DIR (default
# /tmp/whisper-build), writes the synthetic weights bench_whisper times as whisper.cpp model
# files there (bench_whisper --write-ggml), runs whisper-bench RUNS times per model and
# bench_whisper once with the same threads, and prints one JSON: per size and dtype the median
# encoder ms (one 30 s window) and decoder ms per token of each, and whisper.cpp / apr (above 1:
# apr is faster). whisper-bench decodes 256 single tokens at positions 0..255, so bench_whisper
# decodes 256 after its 4-token prompt. A model whisper.cpp cannot run is reported with its error.
#
# Environment: SIZES (default tiny,base), DTYPES (f32,f16,q8_0), THREADS (2), RUNS (5),
# APR_BUILD (default <repo>/build-perf).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 WHISPER_CPP_SRC [OUT_DIR]" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "$1" && pwd)
out=$(mkdir -p "${2:-/tmp/whisper-build}" && cd "${2:-/tmp/whisper-build}" && pwd)
for dir in "$src" "$out"; do
  if [[ "$dir/" == "$repo/"* ]]; then
    echo "$dir is inside the apr repo: peer sources and builds stay outside it" >&2
    exit 2
  fi
done
sizes=${SIZES:-tiny,base}
dtypes=${DTYPES:-f32,f16,q8_0}
threads=${THREADS:-2}
runs=${RUNS:-5}
apr_build=${APR_BUILD:-$repo/build-perf}

echo "building whisper-bench from $src into $out" >&2
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DWHISPER_BUILD_TESTS=OFF \
  -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_SDL2=OFF -DWHISPER_CURL=OFF >&2
cmake --build "$out" --target whisper-bench -j"$(nproc)" >&2

echo "building apr's bench_whisper into $apr_build" >&2
cmake -S "$repo" -B "$apr_build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$apr_build" --target bench_whisper -j"$(nproc)" >&2

mkdir -p "$out/models"
"$apr_build/bin/bench_whisper" --sizes "$sizes" --dtypes "$dtypes" --write-ggml "$out/models" > /dev/null

# whisper-bench prints "encode time = X ms / 1 runs (X ms per run)" and "decode time = ... (Y ms per run)"
peer_results="$out/whisper-bench.jsonl"
: > "$peer_results"
for size in ${sizes//,/ }; do
  for dtype in ${dtypes//,/ }; do
    model="$out/models/ggml-$size-$dtype.bin"
    for ((run = 0; run < runs; ++run)); do
      echo "whisper-bench $size $dtype run $run" >&2
      if log=$("$out/bin/whisper-bench" -m "$model" -t "$threads" 2>&1); then
        encode=$(sed -n 's/.*encode time = *[0-9.]* ms \/ *[0-9]* runs ( *\([0-9.]*\) ms per run).*/\1/p' <<< "$log")
        decode=$(sed -n 's/.*decode time = *[0-9.]* ms \/ *[0-9]* runs ( *\([0-9.]*\) ms per run).*/\1/p' <<< "$log")
        jq -nc --arg size "$size" --arg dtype "$dtype" --argjson encode "$encode" --argjson decode "$decode" \
          '{size: $size, dtype: $dtype, encode_ms: $encode, decode_ms_per_token: $decode}' >> "$peer_results"
      else
        error=$(grep -m1 -E "GGML_ASSERT|error" <<< "$log" || echo "exit status $?")
        jq -nc --arg size "$size" --arg dtype "$dtype" --arg error "$error" '{size: $size, dtype: $dtype, error: $error}' >> "$peer_results"
        break
      fi
    done
  done
done

echo "bench_whisper $sizes $dtypes" >&2
apr_results="$out/bench_whisper.json"
"$apr_build/bin/bench_whisper" --sizes "$sizes" --dtypes "$dtypes" --runs "$runs" --tokens 256 --threads "$threads" > "$apr_results"

jq -n --slurpfile peer "$peer_results" --slurpfile apr "$apr_results" --arg threads "$threads" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  {model: "whisper dims, apr synthetic weights (bench_whisper writes the whisper.cpp files from the same ones)",
   threads: ($threads | tonumber),
   log_mel: $apr[0].log_mel,
   results: [$apr[0].results[] as $mine
             | ($peer | map(select(.size == $mine.size and .dtype == $mine.dtype))) as $runs
             | if ($runs | map(select(.error)) | length) > 0 then
                 {size: $mine.size, dtype: $mine.dtype, apr_encode_ms: $mine.encode_ms,
                  apr_decode_ms_per_token: $mine.decode_ms_per_token, whisper_cpp_error: ($runs | map(.error) | first)}
               else
                 ($runs | map(.encode_ms) | median) as $encode
                 | ($runs | map(.decode_ms_per_token) | median) as $decode
                 | {size: $mine.size, dtype: $mine.dtype,
                    apr_encode_ms: $mine.encode_ms, whisper_cpp_encode_ms: $encode, encode_ratio: ($encode / $mine.encode_ms),
                    apr_decode_ms_per_token: $mine.decode_ms_per_token, whisper_cpp_decode_ms_per_token: $decode,
                    decode_ratio: ($decode / $mine.decode_ms_per_token)}
               end]}'
