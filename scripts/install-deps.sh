#!/usr/bin/env bash
# Installs the Debian packages compressor builds against and the Fashion-MNIST data.
# Safe to run repeatedly: it only installs what is missing.
set -euo pipefail
pkgs=(pkg-config python3-venv libopenblas-dev liblapacke-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
