#!/usr/bin/env bash
# Installs the Debian 12 packages the training scripts use (only `make models` needs them):
# PyTorch, NumPy/SciPy, the regex module (Unicode classes in the BPE split), OpenBLAS (Debian's
# torch links the reference BLAS otherwise: one training step measured 18 s instead of 1.7 s),
# espeak-ng (speech), and the fortune cookies (text).
set -euo pipefail
packages=(python3-torch python3-numpy python3-scipy python3-regex libopenblas0-pthread espeak-ng fortunes fortunes-min)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "train/install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
