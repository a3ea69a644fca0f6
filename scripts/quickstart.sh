#!/usr/bin/env bash
# Installs what is missing, builds compressor in release mode and runs the main job
# on the shipped LeNet-5: its layers, its test accuracy, its latency, and an ONNX export.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
bin=.build/release/compressor
out=${OUT:-/tmp/compressor-quickstart}
mkdir -p "$out"
$bin info models/lenet5.bin
$bin eval models/lenet5.bin
$bin bench models/lenet5.bin --batch 1,64 --threads 1
$bin convert models/lenet5.bin -o "$out/lenet5.onnx"
