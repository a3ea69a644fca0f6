#!/usr/bin/env bash
# The project's test command: installs what is missing, builds, runs the ONNX
# checks against onnxruntime (in a virtual environment), then the Swift tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 scripts/check-layering.py
swift build --build-tests
bash scripts/onnx-checks.sh .build/debug/compressor
swift test --skip-build
