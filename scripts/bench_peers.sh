#!/usr/bin/env bash
# Same-run comparisons with the peers on this machine (run it on a quiet machine):
#  - inference: `compressor bench` vs onnxruntime (../shared/bench/ort_latency.py) on the
#    same freshly initialized models exported to ONNX, alternating, two rounds;
#  - training: `compressor bench --train` vs PyTorch (scripts/torch_train_bench.py),
#    one full SGD step at batch 64 with the data in memory.
# Needs a release build and two virtual environments:
#   python3 -m venv /tmp/peer && /tmp/peer/bin/pip install numpy onnx onnxruntime
#   python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0+cpu   (or torch)
# Usage: scripts/bench_peers.sh [OUTDIR]    (default /tmp/peer-bench)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/.build/release/compressor
ort=${ORT_PYTHON:-/tmp/peer/bin/python}
torch=${TORCH_PYTHON:-/tmp/torchenv/bin/python}
shared=${SHARED_BENCH:-$repo/../shared/bench}
out=${1:-/tmp/peer-bench}
mkdir -p "$out"
for a in lenet5 vgg-small resnet20; do
  "$bin" init --arch "$a" --seed 0 -o "$out/$a.bin" > /dev/null
  "$bin" convert "$out/$a.bin" -o "$out/$a.onnx" > /dev/null
done
for round in 1 2; do
  for a in lenet5 vgg-small resnet20; do
    "$bin" bench "$out/$a.bin" --batch 1,64 --threads 1,2 --json > "$out/compressor-$a-$round.json"
    "$ort" "$shared/ort_latency.py" "$out/$a.onnx" --batch 1,64 --threads 1,2 --json "$out/ort-$a-$round.json" > /dev/null
  done
done
for a in lenet5 vgg-small; do
  "$bin" bench "$out/$a.bin" --train --batch 64 --threads 1,2 --repetitions 15 --json > "$out/train-compressor-$a.json"
done
"$torch" "$repo/scripts/torch_train_bench.py" lenet5 vgg-small > "$out/train-torch.txt"
python3 "$repo/scripts/bench_peers_table.py" "$out"
