#!/usr/bin/env bash
# Installs the Debian 12 packages apr builds, tests and documents with.
# Idempotent and silent when everything is already present; needs root (or sudo) otherwise.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libxsimd-dev xtl-dev libfmt-dev libzstd-dev liblz4-dev zlib1g-dev nlohmann-json3-dev
  catch2 libcli11-dev libcpp-httplib-dev libsodium-dev libcurl4-openssl-dev
  libsndfile1-dev libsoxr-dev libasound2-dev libpcre2-dev libutf8proc-dev libfftw3-dev
  doxygen graphviz clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
