#!/usr/bin/env bash
# Builds apr for the browser with Debian's emscripten: examples/wasm/apr_wasm.cpp (the C API) and
# the headers it includes -> OUT/{simd,simd-mt,scalar}/apr.{js,wasm}, then the page in OUT/site.
#   simd     SIMD128 (xsimd's sse4_1 kernels through emscripten's SSE headers), one thread
#   simd-mt  the same with pthreads (the page uses it when it is cross-origin isolated)
#   scalar   no SIMD at all: the reference the SIMD build is measured against
# Usage: examples/wasm/build.sh [OUT [VARIANT...]]   (default build-wasm/, every variant and the page;
#        with VARIANTs, only those builds, as the CMake build runs them side by side; a variant is
#        rebuilt only when stale)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build-wasm}" && cd "${1:-$root/build-wasm}" && pwd)
shift $(($# > 0 ? 1 : 0))
only=("$@")
for name in "${only[@]}"; do
  case $name in simd | simd-mt | scalar) ;; *) echo "wasm: unknown variant '$name' (expected simd, simd-mt or scalar)" >&2; exit 2 ;; esac
done
here=$root/examples/wasm
command -v emcc >/dev/null || { echo "wasm: emcc not found (apt-get install emscripten, or scripts/install-deps.sh)" >&2; exit 1; }
# Debian's emscripten runs its JavaScript tools with the system node, which may not search
# Debian's node module folder (acorn lives there).
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

# The header-only dependencies, and nothing else of /usr/include (that would shadow emscripten's libc).
mkdir -p "$out/sysinc"
for dir in xsimd xtl fmt nlohmann; do
  [ -d /usr/include/$dir ] || { echo "wasm: /usr/include/$dir missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
  ln -sfn /usr/include/$dir "$out/sysinc/$dir"
done

common=(-std=c++20 -O3 -DNDEBUG -DFMT_HEADER_ONLY -fwasm-exceptions -I"$root/include" -isystem "$out/sysinc")
exports=_apr_chat_open,_apr_last_error,_apr_chat_info,_apr_chat_tokenize,_apr_chat_send,_apr_chat_reset,_apr_memory_bytes,_apr_chat_close,_malloc,_free
link=(-fwasm-exceptions --js-library "$here/apr_host.js" -sMODULARIZE=1 -sEXPORT_NAME=createApr -sENVIRONMENT=web,worker,node
      -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=2GB -sFORCE_FILESYSTEM=1 -sEXPORTED_FUNCTIONS=$exports
      -sEXPORTED_RUNTIME_METHODS=FS,ccall,UTF8ToString)

# True when $1 is missing or older than any source it is made from.
stale() {
  [ ! -f "$1" ] && return 0
  [ -n "$(find "$root/include" "$here" -newer "$1" \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' -o -name 'apr_host.js' -o -name build.sh \) -print -quit)" ]
}

build() {
  local name=$1; shift
  local flags=("$@")
  local dir=$out/$name
  stale "$dir/apr.wasm" || return 0
  mkdir -p "$dir"
  echo "wasm: building $name" >&2
  local start=$SECONDS
  nice emcc "${common[@]}" "${flags[@]}" -c "$here/apr_wasm.cpp" -o "$dir/apr_wasm.o"
  nice emcc "${flags[@]}" "${link[@]}" "${extra_link[@]}" "$dir/apr_wasm.o" -o "$dir/apr.js"
  echo "wasm: $name in $((SECONDS - start)) s: $(du -k "$dir/apr.wasm" | cut -f1) KiB" >&2
}

# True when variant $1 is to be built: every variant without VARIANT arguments, else the named ones.
wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local name
  for name in "${only[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

extra_link=()
wanted simd && build simd -msimd128 -msse4.1
wanted scalar && build scalar
extra_link=(-sPTHREAD_POOL_SIZE='Math.min(navigator.hardwareConcurrency||2,8)')
wanted simd-mt && build simd-mt -msimd128 -msse4.1 -pthread
[ ${#only[@]} -eq 0 ] || exit 0

# The page: its files, the three builds and the bundled chat model, linked into one folder.
site=$out/site
mkdir -p "$site/models"
for file in index.html app.js worker.js style.css; do ln -sfn "$here/$file" "$site/$file"; done
for name in simd simd-mt scalar; do ln -sfn "$out/$name" "$site/$name"; done
for file in "$root"/models/fortune-lm/*.apr; do ln -sfn "$file" "$site/models/$(basename "$file")"; done
echo "wasm: page in $site (serve it with: node examples/wasm/serve.mjs $site)" >&2
