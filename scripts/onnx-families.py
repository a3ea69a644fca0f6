#!/usr/bin/env python3
"""CNN families as PyTorch writes them, through compressor: import, prune, export, time.

For each family (random weights, BatchNorm statistics and affine parameters drawn at
random so eval-mode BatchNorm is far from the identity; seed 0), the model is exported by
PyTorch's TorchScript exporter (opset 17, dynamic batch), then:

1. import: `compressor predict --raw` on a seeded uniform batch of 2 against onnxruntime
   (all graph optimizations off); the error is max |ours - ort| / max |ort|.
2. channel pruning: `compressor prune MODEL.onnx --granularity channel --target-macs 0.6`
   (l1 criterion, no data needed), then `compressor convert` to ONNX, and the pruned
   export run by onnxruntime against `compressor predict` on the pruned native file.
3. latency: `compressor bench` (batch 1, one thread) on the original and the pruned
   model, and onnxruntime (`ort_latency.py`: all optimizations on) on both ONNX files,
   right after each other.

Writes OUTDIR/<family>.onnx, <family>-pruned.bin/.onnx and OUTDIR/results.json; prints a
Markdown table. A family that fails at a step gets the step's first error line in the
table and the script goes on.

Usage (needs torch and torchvision from PyPI, onnx, onnxruntime):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch torchvision onnx onnxruntime
    /tmp/torchvenv/bin/python scripts/onnx-families.py OUTDIR [--compressor .build/release/compressor]
        [--families mobilenet_v3_small,...] [--round-to 8] [--no-bench]
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from torch import nn

from torch_cnns import export, seeded

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_LATENCY = os.path.join(ROOT, "..", "shared", "bench", "ort_latency.py")


# GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020), written
# from the paper: Table 1's stages, ghost modules with ratio 2 and a 3x3 cheap depthwise
# operation, squeeze-and-excitation gated by relu6(x + 3) / 6.
def divisible(v, divisor=4):
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class GhostModule(nn.Module):
    def __init__(self, inp, oup, relu):
        super().__init__()
        self.oup = oup
        primary = math.ceil(oup / 2)
        act = [nn.ReLU(inplace=True)] if relu else []
        self.primary = nn.Sequential(nn.Conv2d(inp, primary, 1, bias=False), nn.BatchNorm2d(primary), *act)
        self.cheap = nn.Sequential(nn.Conv2d(primary, primary, 3, padding=1, groups=primary, bias=False),
                                   nn.BatchNorm2d(primary), *act)

    def forward(self, x):
        a = self.primary(x)
        return torch.cat([a, self.cheap(a)], dim=1)[:, :self.oup, :, :]


class SqueezeExcite(nn.Module):
    def __init__(self, channels):
        super().__init__()
        reduced = divisible(channels * 0.25)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(torch.relu(self.reduce(s)))
        return x * (torch.nn.functional.relu6(s + 3.0) / 6.0)


class GhostBottleneck(nn.Module):
    def __init__(self, inp, mid, out, kernel, stride, se):
        super().__init__()
        self.ghost1 = GhostModule(inp, mid, relu=True)
        self.dw = (nn.Sequential(nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                                 nn.BatchNorm2d(mid)) if stride > 1 else nn.Identity())
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.ghost2 = GhostModule(mid, out, relu=False)
        if inp == out and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inp, inp, kernel, stride, kernel // 2, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        return self.ghost2(self.se(self.dw(self.ghost1(x)))) + self.shortcut(x)


class GhostNet(nn.Module):
    # (kernel, expansion, output, squeeze-excite, stride) per bottleneck, Table 1 of the paper.
    STAGES = [[(3, 16, 16, 0, 1)], [(3, 48, 24, 0, 2)], [(3, 72, 24, 0, 1)], [(5, 72, 40, 1, 2)],
              [(5, 120, 40, 1, 1)], [(3, 240, 80, 0, 2)],
              [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 1, 1),
               (3, 672, 112, 1, 1)],
              [(5, 672, 160, 1, 2)],
              [(5, 960, 160, 0, 1), (5, 960, 160, 1, 1), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1)]]

    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        blocks, channels = [], 16
        for stage in self.STAGES:
            for kernel, mid, out, se, stride in stage:
                blocks.append(GhostBottleneck(channels, mid, out, kernel, stride, se))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(channels, 960, 1, bias=False), nn.BatchNorm2d(960), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Conv2d(960, 1280, 1), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


FAMILIES = {
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), 224),
    "mobilenet_v3_large": (lambda: torchvision.models.mobilenet_v3_large(), 224),
    "shufflenet_v2_x1_0": (lambda: torchvision.models.shufflenet_v2_x1_0(), 224),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), 224),
    "ghostnet": (lambda: GhostNet(), 224),
    "inception_v3": (lambda: torchvision.models.inception_v3(aux_logits=False, init_weights=True), 299),
    # Families that imported before issue 15, kept as a regression check.
    "resnet18": (lambda: torchvision.models.resnet18(), 224),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), 224),
}
TARGETS = ["mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x1_0", "convnext_tiny", "ghostnet",
           "inception_v3"]


def build(name):
    make, size = FAMILIES[name]
    return seeded(make, seed=0, statistics_seed=1), size


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip() or r.stdout.strip() or f"exit {r.returncode}").splitlines()[0][:300])
    return r.stdout


def ort_outputs(path, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def ours(compressor, model, x, work):
    xp, yp = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
    np.save(xp, x)
    run([compressor, "predict", model, xp, "--raw", "-o", yp])
    return np.load(yp)


def relative_error(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def bench_ours(compressor, model):
    out = json.loads(run([compressor, "bench", model, "--batch", "1", "--threads", "1", "--json"]))
    return out["results"][0]["medianMs"]


def bench_ort(model):
    run([sys.executable, ORT_LATENCY, model, "--batch", "1", "--threads", "1", "--json", model + ".ort.json"])
    with open(model + ".ort.json") as f:
        return json.load(f)["results"][0]["median_ms"]


def info(compressor, model):
    out = json.loads(run([compressor, "info", model, "--json"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--compressor", default=os.path.join(ROOT, ".build", "release", "compressor"))
    ap.add_argument("--families", default=",".join(TARGETS))
    ap.add_argument("--target-macs", default="0.6")
    ap.add_argument("--round-to", default=None,
                    help="prune --round-to N: keep each layer's channel count a multiple of N")
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(1)
    results = {}
    for name in args.families.split(","):
        row = {"family": name}
        results[name] = row
        base = os.path.join(args.outdir, name)
        try:
            model, size = build(name)
            onnx_path = base + ".onnx"
            export(model, size, onnx_path)
            ops = sorted({n.op_type for n in onnx.load(onnx_path).graph.node})
            row["onnx_ops"] = ops
            rng = np.random.default_rng(0)
            x = rng.random((2, 3, size, size), dtype=np.float32)
            with torch.no_grad():
                row["torch_vs_ort"] = relative_error(model(torch.from_numpy(x)).numpy(), ort_outputs(onnx_path, x))
            step = "import"
            row["import_error"] = relative_error(ours(args.compressor, onnx_path, x, args.outdir), ort_outputs(onnx_path, x))
            step = "prune"
            pruned = base + "-pruned.bin"
            run([args.compressor, "prune", onnx_path, "-o", pruned, "--granularity", "channel",
                 "--target-macs", args.target_macs] + (["--round-to", args.round_to] if args.round_to else []))
            step = "export"
            pruned_onnx = base + "-pruned.onnx"
            run([args.compressor, "convert", pruned, "-o", pruned_onnx])
            row["pruned_export_error"] = relative_error(ours(args.compressor, pruned, x, args.outdir),
                                                        ort_outputs(pruned_onnx, x))
            step = "info"
            for key, path in (("original", onnx_path), ("pruned", pruned)):
                summary = info(args.compressor, path)
                row[key + "_info"] = {k: summary[k] for k in ("parameters", "macs") if k in summary}
            if not args.no_bench:
                step = "bench"
                row["ours_ms"] = bench_ours(args.compressor, onnx_path)
                row["ours_pruned_ms"] = bench_ours(args.compressor, pruned)
                row["ort_ms"] = bench_ort(onnx_path)
                row["ort_pruned_ms"] = bench_ort(pruned_onnx)
        except Exception as e:  # noqa: BLE001 - one family's failure is a table cell
            row["failed"] = f"{locals().get('step', 'build/export')}: {e}"
        print(json.dumps(row), flush=True)
    with open(os.path.join(args.outdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    print()
    print("| family | import rel. error vs onnxruntime | pruned MACs | pruned export rel. error | "
          "ours ms (b1, 1 thr) | onnxruntime ms | pruned: ours ms | pruned: onnxruntime ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        if "failed" in r:
            print(f"| {name} | failed at {r['failed']} | | | | | | |")
            continue
        macs = (r.get("pruned_info", {}).get("macs"), r.get("original_info", {}).get("macs"))
        ratio = f"{macs[0] / macs[1]:.2f}x" if all(macs) else "?"
        fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else "-"
        print(f"| {name} | {r['import_error']:.1e} | {ratio} | {r['pruned_export_error']:.1e} | "
              f"{fmt(r.get('ours_ms'))} | {fmt(r.get('ort_ms'))} | {fmt(r.get('ours_pruned_ms'))} | "
              f"{fmt(r.get('ort_pruned_ms'))} |")


if __name__ == "__main__":
    main()
