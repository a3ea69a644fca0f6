#!/usr/bin/env python3
"""Prints the Markdown tables of scripts/bench_peers.sh's results directory:
median ms per batch (best round of each side) and ratio compressor / onnxruntime,
then training images/s for compressor and PyTorch."""
import glob
import json
import os
import re
import sys

out = sys.argv[1]


def best(pattern, key_ms, key_batch="batch", key_threads="threads"):
    times = {}
    for path in glob.glob(os.path.join(out, pattern)):
        for r in json.load(open(path))["results"]:
            k = (r[key_batch], r[key_threads])
            times[k] = min(times.get(k, float("inf")), r[key_ms])
    return times


print("| model | batch | threads | compressor ms | onnxruntime ms | ratio |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for a in ["lenet5", "vgg-small", "resnet20"]:
    ours, theirs = best(f"compressor-{a}-*.json", "medianMs"), best(f"ort-{a}-*.json", "median_ms")
    for k in sorted(ours, key=lambda k: (k[1], k[0])):
        print(f"| {a} | {k[0]} | {k[1]} | {ours[k]:.3f} | {theirs[k]:.3f} | {ours[k] / theirs[k]:.2f} |")

print()
torch = {}
for line in open(os.path.join(out, "train-torch.txt")):
    m = re.match(r"(\S+) threads (\d): (\d+) images/s", line)
    if m:
        torch[(m.group(1), int(m.group(2)))] = float(m.group(3))
print("| model | threads | compressor images/s | PyTorch images/s | ratio |")
print("| --- | ---: | ---: | ---: | ---: |")
for a in ["lenet5", "vgg-small"]:
    for r in json.load(open(os.path.join(out, f"train-compressor-{a}.json")))["results"]:
        t = torch.get((a, r["threads"]))
        ratio = f"{r['imagesPerSecond'] / t:.2f}" if t else "-"
        print(f"| {a} | {r['threads']} | {r['imagesPerSecond']:.0f} | {t or 0:.0f} | {ratio} |")
