#!/usr/bin/env bash
# Installs the Debian 12 packages apr builds, tests and documents with.
# Idempotent and silent when everything is already present; needs root (or sudo) otherwise.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libxsimd-dev xtl-dev libfmt-dev libzstd-dev liblz4-dev zlib1g-dev nlohmann-json3-dev
  catch2 libcli11-dev libcpp-httplib-dev libsodium-dev libcurl4-openssl-dev
  libsndfile1-dev libsoxr-dev libasound2-dev libpcre2-dev libutf8proc-dev libfftw3-dev libncurses-dev libyaml-cpp-dev
  doxygen graphviz clang libclang-rt-14-dev
  emscripten chromium
)

# Node.js + npm run the official openai client in the server tests and drive Chromium through the
# WebAssembly demo (any Debian-packaged node works).
command -v npm >/dev/null || packages+=(nodejs npm)

root=$(cd "$(dirname "$0")/.." && pwd)
# npm packages of the tests, from the committed lockfiles (installed once, not at test time).
npm_install() {
  local dir_package dir package
  for dir_package in serve/openai_client:openai wasm:playwright-core; do
    dir=$root/tests/${dir_package%%:*} package=${dir_package#*:}
    if [ ! -d "$dir/node_modules/$package" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "install-deps: npm ci in tests/${dir_package%%:*}" >&2
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  npm_install
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_install
