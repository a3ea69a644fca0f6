#!/usr/bin/env bash
# Latency of a model before and after channel pruning, in compressor's runtime
# and in onnxruntime on the exported ONNX files, measured in the same run:
# batch 1 and 64, one thread, two alternating rounds; prints medians and the
# speed-up (dense / pruned) per configuration, taking each model's best round.
#   scripts/bench_pruned.sh DENSE.bin PRUNED.bin [OUTDIR]
# Needs a release build and python3 -m venv /tmp/peer && /tmp/peer/bin/pip install numpy onnx onnxruntime
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/.build/release/compressor
ort=${ORT_PYTHON:-/tmp/peer/bin/python}
shared=${SHARED_BENCH:-$repo/../shared/bench}
dense=$1 pruned=$2 out=${3:-/tmp/bench-pruned}
mkdir -p "$out"
for m in dense pruned; do
  "$bin" convert "${!m}" -o "$out/$m.onnx" > /dev/null
done
for round in 1 2; do
  for m in dense pruned; do
    "$bin" bench "${!m}" --batch 1,64 --threads 1 --json > "$out/compressor-$m-$round.json"
    "$ort" "$shared/ort_latency.py" "$out/$m.onnx" --batch 1,64 --threads 1 --json "$out/ort-$m-$round.json" > /dev/null
  done
done
python3 - "$out" <<'PY'
import json, sys, glob
out = sys.argv[1]
def medians(path):
    d = json.load(open(path))
    rows = d.get("results") or d.get("measurements") or d
    return {(r["batch"], r["threads"]): r.get("medianMs", r.get("median_ms")) for r in rows}
def best(runtime, model):
    ms = {}
    for f in sorted(glob.glob(f"{out}/{runtime}-{model}-*.json")):
        for k, v in medians(f).items():
            ms[k] = min(ms.get(k, v), v)
    return ms
print("| runtime | batch | threads | dense ms | pruned ms | speed-up |")
print("|---|---:|---:|---:|---:|---:|")
for runtime in ["compressor", "ort"]:
    d, p = best(runtime, "dense"), best(runtime, "pruned")
    for k in sorted(d):
        print(f"| {'onnxruntime' if runtime == 'ort' else runtime} | {k[0]} | {k[1]} | {d[k]:.3f} | {p[k]:.3f} | {d[k] / p[k]:.2f}x |")
PY
