#!/usr/bin/env python3
"""ONNX export check: every built-in architecture, exported by `compressor convert`,
is valid ONNX and computes what compressor computes.

For each architecture (and again after `compressor fold-bn`; the 3x224x224 resnet18 and
mobilenetv2 once, unfolded, at batch 1 only, to keep the check quick):
  1. `compressor init --arch A --seed S`, then `compressor convert A.bin -o A.onnx`;
  2. onnx.checker.check_model(full_check=True) and strict onnx shape inference, which must
     give the output [N, classes]; Sub and Div (the normalization) come first; the metadata
     names the architecture and the class names;
  3. the same seeded random batch of pixels in [0, 1] goes through onnxruntime and
     `compressor predict A.bin x.npy -o y.npy`, at batch 5 and, for the dynamic batch
     dimension, at batch 1 and 7 (resnet18, mobilenetv2: batch 1); outputs must agree to float32 tolerance:
     max |ort - compressor| <= 1e-4 + 1e-4 * max |compressor|.

Freshly initialized BatchNorm layers are near identity (scale 1, bias 0, mean 0, var 1);
compressor's runtime tests check BatchNorm with random statistics against the reference
evaluator, and this check covers the BatchNormalization export's wiring and epsilon.

Needs numpy, onnx and onnxruntime (e.g. /tmp/peer/bin/python). Usage:
    python Tests/onnx/check_architectures.py --compressor .build/debug/compressor --work /tmp/onnx-check
Prints one line per model and `onnx export check: N passed, M failed`; exits 1 on any failure.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

from check_support import compare, run

ARCHITECTURES = ["lenet300", "lenet5", "vgg-small", "resnet20", "mobilenet-small", "resnet18", "mobilenetv2"]
BATCHES = [5, 1, 7]
# The ImageNet-shaped built-ins (1.8G and 0.3G MACs per image): one image, no fold-bn variant.
LARGE = {"resnet18", "mobilenetv2"}


def check_onnx_file(path, arch):
    """Checker, strict shape inference, normalization nodes and metadata. Returns the class count."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = inferred.graph.output[0].type.tensor_type.shape.dim
    assert len(out) == 2 and out[0].dim_param == "N", f"output shape is {out}, expected [N, classes]"
    ops = [n.op_type for n in model.graph.node]
    assert ops[:2] == ["Sub", "Div"], f"graph starts with {ops[:2]}, expected the normalization Sub, Div"
    props = {p.key: p.value for p in model.metadata_props}
    assert props.get("compressor.architecture") == arch, f"metadata architecture is {props.get('compressor.architecture')}"
    classes = out[1].dim_value
    names = props.get("compressor.class_names", "").split("\n")
    assert len(names) == classes, f"{len(names)} class names for {classes} outputs"
    return classes


def check_model(compressor, model_bin, arch, work, rng, batches):
    """Exports model_bin and checks it; returns the worst (abs, rel) error over the batches."""
    model_onnx = model_bin[:-4] + ".onnx"
    run([compressor, "convert", model_bin, "-o", model_onnx])
    check_onnx_file(model_onnx, arch)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_onnx, options, providers=["CPUExecutionProvider"])
    sample = [d for d in session.get_inputs()[0].shape[1:]]
    worst = (0.0, 0.0)
    for batch in batches:
        x = rng.random([batch] + sample, dtype=np.float32)
        err = compare(compressor, model_bin, session, x, work)
        worst = (max(worst[0], err[0]), max(worst[1], err[1]))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True, help="path of the compressor binary")
    ap.add_argument("--work", required=True, help="directory for models and arrays (created)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    passed = failed = 0
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    for arch in ARCHITECTURES:
        plain = os.path.join(args.work, f"{arch}.bin")
        folded = os.path.join(args.work, f"{arch}.folded.bin")
        variants = [(arch, plain)] + ([] if arch in LARGE else [(f"{arch} + fold-bn", folded)])
        for label, path in variants:
            try:
                if path == plain:
                    run([args.compressor, "init", "--arch", arch, "--seed", str(args.seed), "-o", plain])
                else:
                    run([args.compressor, "fold-bn", plain, "-o", folded])
                err_abs, err_rel = check_model(args.compressor, path, arch, args.work, rng,
                                               [1] if arch in LARGE else BATCHES)
                print(f"ok    {label:<26} max abs {err_abs:.2e}  max rel {err_rel:.2e}")
                passed += 1
            except Exception as e:  # one line per failure, then go on with the next model
                print(f"FAIL  {label:<26} {type(e).__name__}: {e}")
                failed += 1
    print(f"onnx export check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
