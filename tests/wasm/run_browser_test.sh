#!/usr/bin/env bash
# CTest wasm.browser: (re)builds the WebAssembly demo when stale (a build by `make wasm` is reused),
# then drives it in headless Chromium (browser_test.mjs); screenshots and results.json go to OUT.
# Usage: run_browser_test.sh SOURCE_DIR WASM_DIR OUT_DIR CHROMIUM
set -euo pipefail
source_dir=$1 wasm_dir=$2 out=$3 chromium=$4
if [ ! -d "$source_dir/tests/wasm/node_modules/playwright-core" ]; then
  echo "wasm.browser: playwright-core is not installed (scripts/install-deps.sh runs npm ci in tests/wasm)" >&2
  exit 1
fi
"$source_dir/examples/wasm/build.sh" "$wasm_dir"
rm -rf "$out"
exec node "$source_dir/tests/wasm/browser_test.mjs" "$wasm_dir/site" "$out" --chromium "$chromium"
