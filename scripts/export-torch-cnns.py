#!/usr/bin/env python3
"""Writes torchvision's ResNet-18 and MobileNetV2 to ONNX, the PyTorch side of the peer
benchmark (scripts/bench_peers.sh times compressor and onnxruntime on these same files).

Both as in their papers (He et al. 2016; Sandler et al. 2018), as torchvision builds them:
3x224x224 input, 1000 classes, torchvision's own random initialization after
torch.manual_seed(SEED), then BatchNorm affine parameters and running statistics drawn at
random (seed SEED + 1; scripts/torch_cnns.py) so eval-mode BatchNorm is far from the
identity. Exported by PyTorch's TorchScript exporter at opset 17, batch dimension dynamic
("N"). With the default seeds the files are the ones scripts/onnx-families.py writes for
these two families. When onnxruntime is installed, each file is run on a seeded batch of 2
and its largest difference from PyTorch's output is printed.

Usage (needs torch, torchvision and onnx; e.g. /work/torchvenv/bin/python):
    python scripts/export-torch-cnns.py OUTDIR [--seed 0]
Writes OUTDIR/resnet18.onnx and OUTDIR/mobilenet_v2.onnx.
"""
import argparse
import os

import numpy as np
import torch
import torchvision

from torch_cnns import export, seeded

MODELS = {"resnet18": torchvision.models.resnet18, "mobilenet_v2": torchvision.models.mobilenet_v2}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0, help="weights' seed; BatchNorm statistics use seed + 1")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(1)
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    for name, make in MODELS.items():
        model = seeded(make, seed=args.seed, statistics_seed=args.seed + 1)
        path = os.path.join(args.outdir, name + ".onnx")
        export(model, 224, path)
        parameters = sum(p.numel() for p in model.parameters())
        line = f"wrote {path}: torchvision {torchvision.__version__} {name}, {parameters:,} parameters"
        if ort is not None:
            x = np.random.default_rng(args.seed).random((2, 3, 224, 224), dtype=np.float32)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            got = session.run(None, {"input": x})[0]
            with torch.no_grad():
                want = model(torch.from_numpy(x)).numpy()
            line += f"; onnxruntime vs PyTorch: max |diff| / max |PyTorch| {np.max(np.abs(got - want)) / np.max(np.abs(want)):.1e}"
        print(line)


if __name__ == "__main__":
    main()
