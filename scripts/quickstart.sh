#!/usr/bin/env bash
# Installs what is missing, builds compressor in release mode and runs the main job:
# create a LeNet-5, show its layers, measure its latency and check its accuracy path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
bin=.build/release/compressor
out=${OUT:-/tmp/compressor-quickstart}
mkdir -p "$out"
$bin init --arch lenet5 --seed 1 -o "$out/lenet5.bin"
$bin info "$out/lenet5.bin"
$bin bench "$out/lenet5.bin" --batch 1,64 --threads 1
$bin eval "$out/lenet5.bin" --limit 1000
