#!/usr/bin/env python3
"""ONNX check of factorized models: each `compressor lowrank` method's factor layers, exported by
`compressor convert`, compute in onnxruntime what they compute in compressor.

For each case (a shipped model, a method, small ranks, no fine-tuning):
  1. `compressor lowrank MODEL -o X.bin --method M ...`, then `compressor convert X.bin -o X.onnx`;
  2. onnx.checker.check_model(full_check=True) and strict onnx shape inference;
  3. the first 64 Fashion-MNIST test images (scaled as compressor's loader scales them) go
     through onnxruntime and `compressor predict X.bin x.npy -o y.npy`, at batch 64 and 1;
     outputs must agree to float32 tolerance (check_support.compare):
     max |ort - compressor| <= 1e-4 + 1e-4 * max |compressor|, and so must the top-1 classes.

The cases cover every factor shape: svd's two linears (lenet5 fc1), channel's k x k and 1x1,
spatial's k x 1 and 1 x k with split padding and (resnet20) stride, tucker2's 1x1 / k x k / 1x1 (one rank,
per-mode AxB and VBMF ranks), cp's depthwise k x 1 and 1 x k, and separable's depthwise k x k
with depth multiplier 1 and 2 (groups = C, C*m outputs; resnet20: stride 2) before a 1x1.

Needs numpy, onnx and onnxruntime. Usage:
    python Tests/onnx/check_lowrank.py --compressor .build/debug/compressor --work /tmp/onnx-lowrank
Prints one line per case and `onnx lowrank check: N passed, M failed`; exits 1 on any failure.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

from check_support import compare, images, run

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")
CASES = [
    ("lenet5", "svd", ["--layers", "fc*", "--layer-rank", "fc1=16", "--exclude", "fc2"]),
    ("vgg-small", "channel", ["--rank", "8"]),
    ("vgg-small", "spatial", ["--rank", "8", "--exclude", "conv1"]),  # conv1 (one input channel) has full rank 3
    ("vgg-small", "tucker2", ["--rank", "8"]),
    ("vgg-small", "tucker2", ["--rank-selection", "vbmf", "--layer-rank", "conv6=16x24"]),
    ("vgg-small", "cp", ["--rank", "8", "--layers", "conv2,conv4,conv6"]),
    ("vgg-small", "separable", ["--rank", "1"]),
    ("vgg-small", "separable", ["--rank", "2", "--layers", "conv3,conv5"]),
    # resnet20's stride-2 convs: the split strides of spatial, a strided depthwise factor.
    ("resnet20", "spatial", ["--rank", "2"]),
    ("resnet20", "separable", ["--rank", "2"]),
]
IMAGES = 64


def check_case(index, compressor, model, method, options, work, x):
    """Factorizes, exports and compares; returns the worst (abs, rel) error and the factor node count."""
    name = f"{index:02d}-{model}-{method}"
    model_bin, model_onnx = os.path.join(work, name + ".bin"), os.path.join(work, name + ".onnx")
    run([compressor, "lowrank", os.path.join(MODELS, model + ".bin"), "-o", model_bin, "--method", method] + options)
    run([compressor, "convert", model_bin, "-o", model_onnx])
    checked = onnx.load(model_onnx)
    onnx.checker.check_model(checked, full_check=True)
    onnx.shape_inference.infer_shapes(checked, strict_mode=True)
    factors = [n.name for n in checked.graph.node if ".factor" in n.name]
    assert factors, "the exported graph has no factor nodes"
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_onnx, session_options, providers=["CPUExecutionProvider"])
    worst = (0.0, 0.0)
    for batch in [x, x[:1]]:
        err = compare(compressor, model_bin, session, batch, work)
        worst = (max(worst[0], err[0]), max(worst[1], err[1]))
        ours = np.load(os.path.join(work, "y.npy")).argmax(axis=1)
        theirs = session.run(None, {session.get_inputs()[0].name: batch})[0].argmax(axis=1)
        assert (ours == theirs).all(), f"top-1 differs on {int((ours != theirs).sum())} of {len(ours)} images"
    return worst, len(factors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True, help="path of the compressor binary")
    ap.add_argument("--work", required=True, help="directory for models and arrays (created)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    x = images("t10k-images-idx3-ubyte.gz", IMAGES)
    passed = failed = 0
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    for index, (model, method, options) in enumerate(CASES):
        label = f"{model} {method} {' '.join(options)}"
        try:
            (err_abs, err_rel), factors = check_case(index, args.compressor, model, method, options, args.work, x)
            print(f"ok    {label:<66} {factors:>2} factors  max abs {err_abs:.2e}  max rel {err_rel:.2e}")
            passed += 1
        except Exception as e:  # one line per failure, then go on with the next case
            print(f"FAIL  {label:<66} {type(e).__name__}: {e}")
            failed += 1
    print(f"onnx lowrank check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
