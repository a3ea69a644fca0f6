#!/usr/bin/env bash
# Sparse kernels on LeNet-5 with fc1 and fc2 pruned 92% by magnitude (`compressor prune
# --layer-sparsity`, no fine-tuning, written to out/lenet5-fc92.bin), dense vs auto kernels
# measured in one run on one thread: the fc layers' batch-1 step times and whole-model
# latency at batch 1 and 64.
# Usage: scripts/sparse-bench.sh [SECONDS_PER_CONFIGURATION]. See docs/sparse-kernels.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
swift build -c release --product compressor >&2
mkdir -p out
.build/release/compressor prune models/lenet5.bin -o out/lenet5-fc92.bin --layer-sparsity fc1=0.92,fc2=0.92 >&2
.build/release/compressor bench out/lenet5-fc92.bin \
  --batch 1,64 --threads 1 --sparse dense,auto --layers --seconds "${1:-2}" --json > out/sparse-bench.json
python3 - out/sparse-bench.json <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
runs = list(zip(report["results"], report["details"]))
def fc(detail, key):
    return sum(s[key] for s in detail["layers"]["steps"] if s["node"] in ("fc1", "fc2")) * 1000
def kernels(detail):
    return " + ".join(s["kernel"] for s in detail["layers"]["steps"] if s["node"] in ("fc1", "fc2"))
one = {d["sparseKernels"]: d for r, d in runs if r["batch"] == 1}
print("| fc1 + fc2, batch 1 | kernels | median us | min us |")
print("| --- | --- | ---: | ---: |")
for policy in ("dense", "auto"):
    d = one[policy]
    print(f"| {policy} | {kernels(d)} | {fc(d, 'medianMs'):.2f} | {fc(d, 'minMs'):.2f} |")
print(f"| ratio dense / auto | | {fc(one['dense'], 'medianMs') / fc(one['auto'], 'medianMs'):.2f}x"
      f" | {fc(one['dense'], 'minMs') / fc(one['auto'], 'minMs'):.2f}x |")
print()
print("| whole model | batch | dense median ms | auto median ms | ratio |")
print("| --- | ---: | ---: | ---: | ---: |")
by = {(r["batch"], d["sparseKernels"]): r for r, d in runs}
for batch in sorted({r["batch"] for r, _ in runs}):
    dense, auto = by[(batch, "dense")]["medianMs"], by[(batch, "auto")]["medianMs"]
    print(f"| lenet5, fc 92% zero | {batch} | {dense:.3f} | {auto:.3f} | {dense / auto:.2f}x |")
PY
