#!/usr/bin/env python3
"""Prints the Markdown of scripts/bench_peers.sh's results directory, ready for
docs/benchmarks.md: the machine (CPU, vector extensions, kernel sets, load average before and
after), one table with every inference cell (median ms per batch over the alternating rounds,
for each of our kernel sets and for onnxruntime; ratio = compressor / onnxruntime, below 1 is
faster; spread = the largest (max - min) / median over the rounds of any of the row's
timings), the conv GFLOP/s of resnet18 at batch 8 on one thread, then training images/s for
compressor and PyTorch. Standard library only.

Usage: python3 scripts/bench_peers_table.py OUTDIR
"""
import collections
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]

# (file name, label): the order of the table.
MODELS = [("lenet5", "lenet5"), ("vgg-small", "vgg-small"), ("resnet20", "resnet20"),
          ("mobilenet-small", "mobilenet-small"), ("resnet18", "resnet18"), ("mobilenetv2", "mobilenetv2"),
          ("torch-resnet18", "resnet18 (PyTorch export)"), ("torch-mobilenet_v2", "mobilenet_v2 (PyTorch export)")]


def machine():
    """The lines of machine.txt as a dict (key: rest of line), in order."""
    info = {}
    path = os.path.join(out, "machine.txt")
    if os.path.exists(path):
        for line in open(path):
            key, _, value = line.rstrip("\n").partition(": ")
            info[key] = value
    return info


def rounds(pattern, key_ms):
    """{(batch, threads): [ms per round]} over the files matching pattern."""
    cells = {}
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        for r in json.load(open(path))["results"]:
            cells.setdefault((r["batch"], r["threads"]), []).append(r[key_ms])
    return cells


def spread(times):
    return (max(times) - min(times)) / statistics.median(times) if len(times) > 1 else None


info = machine()
sets = info.get("kernel sets", "default").split()
for key in ["cpu", "extensions", "cores", "onnxruntime", "compressor", "kernel sets", "rounds", "load before", "load after"]:
    if key in info:
        print(f"- {key}: {info[key]}")
for key, value in info.items():
    if key.startswith("kernel set ") and key != "kernel sets":
        print(f"- {key}: {value}")
print()

ours_label = (lambda s: "compressor ms") if sets == ["default"] else (lambda s: f"compressor {s} ms")
ratio_label = (lambda s: "ratio") if sets == ["default"] else (lambda s: f"ratio {s}")
header = ["model", "batch", "threads"] + [ours_label(s) for s in sets] + ["onnxruntime ms"] \
    + [ratio_label(s) for s in sets] + ["spread"]
print("| " + " | ".join(header) + " |")
print("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
for name, label in MODELS:
    theirs = rounds(f"ort-{name}-r*.json", "median_ms")
    ours = {s: rounds(f"ours-{name}-{s}-r*.json", "medianMs") for s in sets}
    for cell in sorted(theirs, key=lambda k: (k[1], k[0])):
        row_times = [theirs[cell]] + [ours[s][cell] for s in sets if cell in ours[s]]
        t = statistics.median(theirs[cell])
        mine = [statistics.median(ours[s][cell]) if cell in ours[s] else None for s in sets]
        spreads = [x for x in map(spread, row_times) if x is not None]
        cells = [label, str(cell[0]), str(cell[1])] + [f"{m:.3f}" if m else "-" for m in mine] + [f"{t:.3f}"] \
            + [f"{m / t:.2f}" if m else "-" for m in mine] + [f"{max(spreads):.0%}" if spreads else "-"]
        print("| " + " | ".join(cells) + " |")

# Conv GFLOP/s of resnet18 at batch 8, one thread.
macs_path = os.path.join(out, "conv-macs-resnet18.json")
if os.path.exists(macs_path):
    macs = json.load(open(macs_path))
    print()
    for s in sets:
        path = os.path.join(out, f"layers-resnet18-{s}.json")
        if not os.path.exists(path):
            continue
        profile = json.load(open(path))["details"][0]["layers"]
        steps = [st for st in profile["steps"] if st["node"] in macs]
        seconds = sum(st["medianMs"] for st in steps) / 1e3
        flops = 2 * sum(macs[st["node"]] for st in steps) * profile["batch"]
        missing = sorted(set(macs) - {st["node"] for st in steps})
        note = f" ({len(missing)} conv layers not timed on their own: {', '.join(missing)})" if missing else ""
        print(f"resnet18 convs, batch {profile['batch']}, {profile['threads']} thread, kernels {s}: "
              f"{flops / seconds / 1e9:.1f} GFLOP/s ({len(steps)} conv layers, {flops / 2 / 1e9:.2f} G MACs per batch without "
              f"padding zeros, {seconds * 1e3:.1f} ms){note}")

# Training: medians over the rounds of images/s (train-compressor-MODEL-rN.json, train-torch-rN.txt).
torch_runs = collections.defaultdict(list)
for path in glob.glob(os.path.join(out, "train-torch-r*.txt")):
    for line in open(path):
        m = re.match(r"(\S+) threads (\d): (\d+) images/s", line)
        if m:
            torch_runs[(m.group(1), int(m.group(2)))].append(float(m.group(3)))
ours_runs = collections.defaultdict(list)
for path in glob.glob(os.path.join(out, "train-compressor-*-r*.json")):
    a = re.match(r"train-compressor-(.+)-r\d+\.json", os.path.basename(path)).group(1)
    for r in json.load(open(path))["results"]:
        ours_runs[(a, r["threads"])].append(r["imagesPerSecond"])
if ours_runs:
    print()
    print("Training, one SGD step at batch 64 (forward, backward, update), images/s, median over "
          f"{max(len(v) for v in ours_runs.values())} alternating rounds; ratio = compressor / PyTorch, above 1 is faster:")
    print()
    print("| model | threads | compressor images/s | PyTorch images/s | ratio | spread |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    order = [name for name, _ in MODELS]
    for (a, threads) in sorted(ours_runs, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
        ours = ours_runs[(a, threads)]
        theirs = torch_runs.get((a, threads), [])
        spread = max((max(v) - min(v)) / statistics.median(v) for v in (ours, theirs) if v)
        o = statistics.median(ours)
        t = statistics.median(theirs) if theirs else None
        ratio = f"{o / t:.2f}" if t else "-"
        print(f"| {a} | {threads} | {o:.0f} | {t or 0:.0f} | {ratio} | {spread:.0%} |")
