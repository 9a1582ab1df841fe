#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it for a bounded time.
# usage: scripts/fuzz.sh SOURCE.cpp WORK_DIR SECONDS FIXTURES_DIR
# The source names its seed files in a line "// seeds: <glob relative to FIXTURES_DIR> ..." (and
# optionally "// repo seeds: <glob relative to the repository> ...").
set -euo pipefail
source=$1 work=$2 seconds=$3 fixtures=$4
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$source" .cpp)
mkdir -p "$work/$name.corpus"
libs=$(pkg-config --cflags --libs fmt libzstd liblz4 zlib libpcre2-8 libutf8proc fftw3 libsodium)
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/include" -I"$root/tests" "$source" -o "$work/$name" $libs -lpthread
seeds=$(sed -n 's|^// seeds: ||p' "$source" | head -n 1)
for pattern in $seeds; do
  for file in $fixtures/$pattern; do [ -f "$file" ] && cp "$file" "$work/$name.corpus/" || true; done
done
# "// repo seeds: <glob relative to the repository>" for inputs no fixture has (e.g. manifests)
repo_seeds=$(sed -n 's|^// repo seeds: ||p' "$source" | head -n 1)
for pattern in $repo_seeds; do
  for file in $root/$pattern; do [ -f "$file" ] && cp "$file" "$work/$name.corpus/" || true; done
done
cd "$work"
"./$name" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576 -timeout=10 \
  -print_final_stats=1 "$name.corpus" 2>&1 | tail -n 20
