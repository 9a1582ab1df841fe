#!/usr/bin/env bash
# `make demo`: the main job on a bundled model. Until the model runtime lands this runs the
# kernel self-check (consumer) and a quick kernel benchmark.
set -euo pipefail
build=${1:-build}
"$build/tests/apr_consumer"
"$build/bin/bench_kernels" --quick
