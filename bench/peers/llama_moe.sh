#!/usr/bin/env bash
# bench/peers/llama_moe.sh LLAMA_CPP_SRC [OUT_DIR]
#
# apr against llama.cpp on the very same random Qwen2-MoE weights (Qwen1.5-MoE-A2.7B's shape with
# widths halved and 6 layers; see bench/qwen2_moe.cpp): builds llama-bench from a llama.cpp
# checkout outside this repo into OUT_DIR (default /tmp/llama-build), has bench_qwen2_moe write
# the weights it times as qwen2moe GGUF files there, times both with the same threads, prompt and
# generation lengths, and prints one JSON: per dtype and test, the median tokens/s of each and
# apr / llama.cpp, plus apr's routing time.
#
# Environment: DTYPES (default q8_0,q4_0), THREADS (2), PP (128,512), TG (64), RUNS (3),
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
dtypes=${DTYPES:-q8_0,q4_0}
threads=${THREADS:-2}
pp=${PP:-128,512}
tg=${TG:-64}
runs=${RUNS:-3}
apr_build=${APR_BUILD:-$repo/build-perf}

echo "building llama-bench from $src into $out" >&2
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF ${LLAMA_CMAKE_FLAGS:-} >&2
cmake --build "$out" --target llama-bench -j"$(nproc)" >&2

echo "building apr's bench_qwen2_moe into $apr_build" >&2
cmake -S "$repo" -B "$apr_build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$apr_build" --target bench_qwen2_moe -j"$(nproc)" >&2

mkdir -p "$out/models"
"$apr_build/bin/bench_qwen2_moe" --write-gguf "$out/models" --dtypes "$dtypes" >&2
llama_results="$out/llama-bench-moe.json"
echo "[]" > "$llama_results"
for dtype in ${dtypes//,/ }; do
  echo "llama-bench qwen2moe $dtype" >&2
  "$out/bin/llama-bench" -m "$out/models/apr-qwen2moe-$dtype.gguf" -t "$threads" -p "$pp" -n "$tg" -r "$runs" -o json 2>/dev/null |
    jq --arg dtype "$dtype" 'map(. + {apr_dtype: $dtype})' > "$out/llama-bench-moe-$dtype.json"
  jq -s 'add' "$llama_results" "$out/llama-bench-moe-$dtype.json" > "$llama_results.tmp" && mv "$llama_results.tmp" "$llama_results"
done

echo "bench_qwen2_moe $dtypes" >&2
apr_results="$out/bench_qwen2_moe.json"
"$apr_build/bin/bench_qwen2_moe" --dtypes "$dtypes" --pp "$pp" --tg "$tg" --runs "$runs" --threads "$threads" > "$apr_results"

# llama-bench reports every run (samples_ts); bench_qwen2_moe reports the median of its runs.
jq -n --slurpfile llama "$llama_results" --slurpfile apr "$apr_results" --arg threads "$threads" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  ($llama[0] | map({dtype: .apr_dtype,
                    test: (if .n_gen > 0 then "tg\(.n_gen)" else "pp\(.n_prompt)" end),
                    tok_per_s: (.samples_ts | median)})) as $peer
  | {model: "Qwen1.5-MoE-A2.7B shape (widths halved, 6 layers), apr synthetic weights shared by both",
     threads: ($threads | tonumber),
     routing: $apr[0].routing,
     results: [$peer[] as $p
               | ($apr[0].results[] | select(.dtype == $p.dtype) | .["\($p.test)_tok_per_s"]) as $mine
               | {dtype: $p.dtype, test: $p.test, apr_tok_per_s: $mine, llama_cpp_tok_per_s: $p.tok_per_s,
                  ratio: ($mine / $p.tok_per_s)}]}'
