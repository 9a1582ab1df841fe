#!/usr/bin/env bash
# Installs apr from BUILD_DIR into a scratch prefix, builds tests/packaging/installed_consumer
# against it with find_package(apr), and runs it on the fixtures.
# usage: install_test.sh SOURCE_DIR BUILD_DIR WORK_DIR FIXTURES_DIR
set -euo pipefail
source_dir=$1 build_dir=$2 work=$3 fixtures=$4
rm -rf "$work"
cmake --install "$build_dir" --prefix "$work/prefix" > "$work.install.log" 2>&1 || { cat "$work.install.log"; exit 1; }
test -f "$work/prefix/include/apr/apr.hpp"
test -x "$work/prefix/bin/apr"
grep -q "complete -F _apr apr" "$work/prefix/share/bash-completion/completions/apr"
# -O1: what is tested is finding and using the installed tree; -O3 would double the compile time
cmake -S "$source_dir/tests/packaging/installed_consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=-O1 > "$work.configure.log" 2>&1 || { cat "$work.configure.log"; exit 1; }
cmake --build "$work/build" > "$work.build.log" 2>&1 || { cat "$work.build.log"; exit 1; }
"$work/build/installed_consumer" "$fixtures"
