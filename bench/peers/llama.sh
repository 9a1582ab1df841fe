#!/usr/bin/env bash
# bench/peers/llama.sh LLAMA_CPP_SRC [OUT_DIR]
#
# apr against llama.cpp on the very same random Qwen2-0.5B weights: builds llama-bench from a
# llama.cpp checkout outside this repo (Release, GGML_NATIVE) into OUT_DIR (default
# /tmp/llama-build), writes the synthetic weights bench_qwen2 runs as GGUF files there
# (synth_qwen2_gguf), times both with the same threads, prompt and generation lengths, and prints
# one JSON: per dtype and test, the median tokens/s of each and apr / llama.cpp.
#
# Environment: DTYPES (default f32,f16,q8_0,q4_0), THREADS (2), PP (128,512), TG (128), RUNS (3),
# APR_BUILD (default <repo>/build-perf).
# LLAMA_CMAKE_FLAGS (more CMake arguments for llama.cpp, split at spaces). CMake also reads
# CFLAGS/CXXFLAGS when it first configures OUT_DIR: on the Intel Xeon VM, whose CPU flags list
# AMX, GGML_NATIVE's AMX kernels crash in ldtilecfg on Q8_0/Q4_0; CFLAGS and CXXFLAGS set to
# "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" build llama.cpp without them.
#
# A llama.cpp source without GitHub: node-llama-cpp's npm package carries the whole tree as a git
# bundle (npm pack node-llama-cpp --ignore-scripts; tar xzf node-llama-cpp-*.tgz;
# git clone package/llama/gitRelease.bundle /tmp/llama.cpp).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 LLAMA_CPP_SRC [OUT_DIR]" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "$1" && pwd)
out=$(mkdir -p "${2:-/tmp/llama-build}" && cd "${2:-/tmp/llama-build}" && pwd)
for dir in "$src" "$out"; do
  if [[ "$dir/" == "$repo/"* ]]; then
    echo "$dir is inside the apr repo: peer sources and builds stay outside it" >&2
    exit 2
  fi
done
dtypes=${DTYPES:-f32,f16,q8_0,q4_0}
threads=${THREADS:-2}
pp=${PP:-128,512}
tg=${TG:-128}
runs=${RUNS:-3}
apr_build=${APR_BUILD:-$repo/build-perf}

echo "building llama-bench from $src into $out" >&2
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF ${LLAMA_CMAKE_FLAGS:-} >&2
cmake --build "$out" --target llama-bench -j"$(nproc)" >&2

echo "building apr's bench_qwen2 and synth_qwen2_gguf into $apr_build" >&2
cmake -S "$repo" -B "$apr_build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$apr_build" --target bench_qwen2 synth_qwen2_gguf -j"$(nproc)" >&2

mkdir -p "$out/models"
llama_results="$out/llama-bench.json"
echo "[]" > "$llama_results"
for dtype in ${dtypes//,/ }; do
  model="$out/models/apr-qwen2-0.5b-$dtype.gguf"
  [[ -s "$model" ]] || "$apr_build/bin/synth_qwen2_gguf" --dtype "$dtype" -o "$model"
  echo "llama-bench $dtype" >&2
  "$out/bin/llama-bench" -m "$model" -t "$threads" -p "$pp" -n "$tg" -r "$runs" -o json 2>/dev/null |
    jq --arg dtype "$dtype" 'map(. + {apr_dtype: $dtype})' > "$out/llama-bench-$dtype.json"
  jq -s 'add' "$llama_results" "$out/llama-bench-$dtype.json" > "$llama_results.tmp" && mv "$llama_results.tmp" "$llama_results"
done

echo "bench_qwen2 $dtypes" >&2
apr_results="$out/bench_qwen2.json"
"$apr_build/bin/bench_qwen2" --dtypes "$dtypes" --pp "$pp" --tg "$tg" --runs "$runs" --threads "$threads" > "$apr_results"

# llama-bench reports every run (samples_ts); bench_qwen2 reports the median of its runs.
jq -n --slurpfile llama "$llama_results" --slurpfile apr "$apr_results" --arg threads "$threads" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  ($llama[0] | map({dtype: .apr_dtype,
                    test: (if .n_gen > 0 then "tg\(.n_gen)" else "pp\(.n_prompt)" end),
                    tok_per_s: (.samples_ts | median)})) as $peer
  | {model: "qwen2-0.5b dims, apr synthetic weights (seed shared by bench_qwen2 and the GGUF files)",
     threads: ($threads | tonumber),
     llama_cpp: {kv_cache: "f16", flash_attn: "auto"},
     apr: {kv_cache: "f32"},
     results: [$peer[] as $p
               | ($apr[0].results[] | select(.dtype == $p.dtype) | .["\($p.test)_tok_per_s"]) as $mine
               | {dtype: $p.dtype, test: $p.test, apr_tok_per_s: $mine, llama_cpp_tok_per_s: $p.tok_per_s,
                  ratio: ($mine / $p.tok_per_s)}]}'
