#!/usr/bin/env bash
# Checks compressor against the outside world: ONNX export vs onnxruntime for every
# built-in architecture and for the factor layers of every lowrank method, the int8 QDQ
# export vs onnxruntime (unoptimized and on its integer kernels), import of foreign ONNX
# models (ConvNeXt's channels-last blocks, ShuffleNetV2 units, a GhostNet module and an
# encoder-decoder with Resize and ConvTranspose among them: import, channel pruning,
# export), ONNX's backend node tests, and import of QDQ models written by onnxruntime's
# quantizer.
# Usage: scripts/onnx-checks.sh [path/to/compressor]   (default: .build/debug/compressor)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/compressor}
venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import numpy, onnx, onnxruntime" 2>/dev/null \
  || "$venv/bin/pip" install -q --disable-pip-version-check numpy onnx onnxruntime
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for check in Tests/onnx/check_architectures.py Tests/onnx/check_lowrank.py Tests/onnx/check_qdq.py Tests/onnx/check_imports.py Tests/onnx/check_convnext.py Tests/onnx/check_shufflenet.py Tests/onnx/check_encoder_decoder.py \
             Tests/onnx/check_activations.py; do
  if [ -f "$check" ]; then
    mkdir -p "$work/$(basename "$check" .py)"
    "$venv/bin/python" "$check" --compressor "$bin" --work "$work/$(basename "$check" .py)" || status=1
  fi
done
# Import of QDQ models written by onnxruntime's quantizer (needs onnxruntime.quantization
# and the Fashion-MNIST IDX files).
mkdir -p "$work/check_qdq_import"
"$venv/bin/python" Tests/onnx/check_qdq_import.py --compressor "$bin" --work "$work/check_qdq_import" || status=1
exit $status
