#!/usr/bin/env bash
# Same-session comparison: per model, alternating a previous binary (/tmp/compressor-before),
# this build and onnxruntime (venv /tmp/peer). Usage: scripts/bench_vs_ort.sh RUN_LABEL
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "${WORKDIR:-/tmp/pm}"  # holds A.bin and A.onnx for lenet5, vgg-small, resnet20
R=$1
mkdir -p run
for A in lenet5 vgg-small resnet20; do
  /tmp/compressor-before bench $A.bin --batch 1,64 --threads 1,2 --json > run/b_${A}_$R.json
  "$REPO"/.build/release/compressor bench $A.bin --batch 1,64 --threads 1,2 --json > run/c_${A}_$R.json
  /tmp/peer/bin/python /work/shared/bench/ort_latency.py $A.onnx --batch 1,64 --threads 1,2 --json run/o_${A}_$R.json > /dev/null
done
