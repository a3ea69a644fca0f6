#!/usr/bin/env python3
"""Checks ConvNeXt's channels-last LayerNorm and block against onnxruntime.

A small two-stage ConvNeXt (Liu et al. 2022) is written with onnx.helper as PyTorch's
TorchScript exporter writes torchvision's convnext at opset 17:
  stem       Conv 4x4 s4 -> Transpose [0,2,3,1] -> LayerNormalization (axis -1) -> Transpose [0,3,1,2]
  block      Conv depthwise 7x7 -> Transpose [0,2,3,1] -> LayerNormalization -> MatMul + Add (C->4C)
             -> activation -> MatMul + Add (4C->C) -> Transpose [0,3,1,2] -> Mul by layer scale [C,1,1]
             -> Add (residual); one block writes the layer scale as the original ConvNeXt code does,
             a Mul by [C] before the Transpose
  downsample Transpose -> LayerNormalization -> Transpose -> Conv 2x2 s2
  head       GlobalAveragePool -> Transpose -> LayerNormalization -> Transpose -> Flatten -> Gemm
The activation is Relu, and GELU in PyTorch's Erf form (x * 0.5 * (1 + erf(x / sqrt 2)));
a variant whose activation the importer does not know is reported as SKIP with the reason.
At opset 13 each LayerNormalization is written decomposed, as PyTorch writes it below 17
(ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul, Add).

Each variant is imported and compared with onnxruntime (`compressor predict --raw`), then
channel-pruned (`compressor prune --granularity channel`), exported (`compressor convert`,
at opset 13, where LayerNorm is written decomposed, and at opset 17) and the export is run by
onnxruntime and compared with `compressor predict` on the pruned model.

Usage: check_convnext.py --compressor .build/debug/compressor --work /tmp/convnext-check
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RTOL, ATOL = 1e-4, 1e-5


def build(rng, activation, opset=17, widths=(16, 32), blocks=(2, 1)):
    f = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    inits, nodes = [], []
    counter = [0]

    def const(array, base):
        counter[0] += 1
        name = f"{base}_{counter[0]}"
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, **attrs):
        counter[0] += 1
        out = f"/{op}_{counter[0]}_output_0"
        nodes.append(helper.make_node(op, inputs, [out], name=f"/{op}_{counter[0]}", **attrs))
        return out

    def layer_norm_channels_last(x, c):
        scale = const((1 + f(c)).astype(np.float32), "ln.weight")
        bias = const(f(c), "ln.bias")
        if opset >= 17:
            return node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-6)
        # torch.nn.functional.layer_norm below opset 17.
        mean = node("ReduceMean", [x], axes=[-1], keepdims=1)
        d = node("Sub", [x, mean])
        sq = node("Pow", [d, const(np.array(2.0, np.float32), "two")])
        var = node("ReduceMean", [sq], axes=[-1], keepdims=1)
        shifted = node("Add", [var, const(np.array(1e-6, np.float32), "eps")])
        normalized = node("Div", [d, node("Sqrt", [shifted])])
        return node("Add", [node("Mul", [normalized, scale]), bias])

    def layer_norm_2d(x, c):
        t = node("Transpose", [x], perm=[0, 2, 3, 1])
        n = layer_norm_channels_last(t, c)
        return node("Transpose", [n], perm=[0, 3, 1, 2])

    def act(x):
        if activation == "relu":
            return node("Relu", [x])
        # torch.nn.GELU() exported at opset 17: Div, Erf, Add, Mul, Mul.
        d = node("Div", [x, const(np.array(1.4142135381698608, np.float32), "sqrt2")])
        e = node("Erf", [d])
        a = node("Add", [e, const(np.array(1.0, np.float32), "one")])
        m = node("Mul", [x, a])
        return node("Mul", [m, const(np.array(0.5, np.float32), "half")])

    def block(x, c, gamma_channels_last):
        w = const(f(c, 1, 7, 7), "dwconv.weight")
        b = const(f(c), "dwconv.bias")
        y = node("Conv", [x, w, b], group=c, kernel_shape=[7, 7], pads=[3, 3, 3, 3], strides=[1, 1])
        y = node("Transpose", [y], perm=[0, 2, 3, 1])
        y = layer_norm_channels_last(y, c)
        y = node("MatMul", [y, const(f(c, 4 * c), "onnx::MatMul")])
        y = node("Add", [const(f(4 * c), "block.3.bias"), y])
        y = act(y)
        y = node("MatMul", [y, const(f(4 * c, c), "onnx::MatMul")])
        bias = const(f(c), "block.5.bias")
        if gamma_channels_last:
            # PyTorch writes equal parameters once and the others as Identity nodes of it.
            bias = node("Identity", [bias])
        y = node("Add", [bias, y])
        gamma = (rng.uniform(0.5, 1.5, c)).astype(np.float32)
        if gamma_channels_last:
            y = node("Mul", [const(gamma, "gamma"), y])
            y = node("Transpose", [y], perm=[0, 3, 1, 2])
        else:
            y = node("Transpose", [y], perm=[0, 3, 1, 2])
            y = node("Mul", [const(gamma.reshape(c, 1, 1), "layer_scale"), y])
        return node("Add", [y, x])

    x = node("Conv", ["x", const(f(widths[0], 3, 4, 4), "stem.weight"), const(f(widths[0]), "stem.bias")],
             kernel_shape=[4, 4], strides=[4, 4], pads=[0, 0, 0, 0])
    x = layer_norm_2d(x, widths[0])
    for stage, (c, count) in enumerate(zip(widths, blocks)):
        if stage > 0:
            x = layer_norm_2d(x, widths[stage - 1])
            x = node("Conv", [x, const(f(c, widths[stage - 1], 2, 2), "down.weight"), const(f(c), "down.bias")],
                     kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
        for k in range(count):
            x = block(x, c, gamma_channels_last=(stage == 0 and k == 1))
    x = node("GlobalAveragePool", [x])
    x = layer_norm_2d(x, widths[-1])
    x = node("Flatten", [x], axis=1)
    nodes.append(helper.make_node("Gemm", [x, const(f(10, widths[-1]), "classifier.weight"),
                                           const(f(10), "classifier.bias")], ["logits"], name="/classifier/Gemm",
                                  alpha=1.0, beta=1.0, transB=1))
    graph = helper.make_graph(nodes, f"convnext_{activation}_opset{opset}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch")
    model.ir_version = 8
    return model


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def ort_run(path, x):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def compare(label, got, want, failures):
    err = np.abs(got.astype(np.float64) - want)
    good = got.shape == want.shape and bool(np.all(err <= ATOL + RTOL * np.abs(want)))
    print(f"{'PASS' if good else 'FAIL'} {label}: max abs error {err.max():.2e} (|y| up to {np.abs(want).max():.2f})")
    if not good:
        failures.append(label)


def check(compressor, work, activation, opset, failures):
    rng = np.random.default_rng(3)
    model = build(rng, activation, opset)
    activation = f"{activation}, opset {opset}"
    onnx.checker.check_model(model, full_check=True)
    stem = f"convnext_{activation.replace(', ', '_').replace(' ', '')}"
    path = os.path.join(work, f"{stem}.onnx")
    onnx.save(model, path)
    x = rng.random((2, 3, 32, 32), dtype=np.float32)
    x_path = os.path.join(work, "x.npy")
    np.save(x_path, x)
    out = os.path.join(work, f"{stem}_out.npy")
    ok, message = run([compressor, "predict", path, "--raw", "--input", f"x={x_path}", "-o", out])
    if not ok:
        if not activation.startswith("relu") and "Erf" in message:
            print(f"SKIP convnext ({activation}): the importer does not know this activation yet: {message}")
            return
        print(f"FAIL convnext ({activation}) import: {message}")
        failures.append(f"convnext ({activation}) import")
        return
    compare(f"convnext ({activation}) imported vs onnxruntime", np.load(out), ort_run(path, x), failures)
    pruned = os.path.join(work, f"{stem}_pruned.bin")
    ok, message = run([compressor, "prune", path, "--granularity", "channel", "--sparsity", "0.4",
                       "--criterion", "l1", "-o", pruned])
    if not ok:
        print(f"FAIL convnext ({activation}) prune: {message}")
        failures.append(f"convnext ({activation}) prune")
        return
    pruned_out = os.path.join(work, f"{stem}_pruned_out.npy")
    ok, message = run([compressor, "predict", pruned, "--raw", "--input", f"x={x_path}", "-o", pruned_out])
    if not ok:
        failures.append(f"convnext ({activation}) pruned predict: {message}")
        return
    got = np.load(pruned_out)
    for export_opset in (13, 17):
        exported = os.path.join(work, f"{stem}_pruned_{export_opset}.onnx")
        ok, message = run([compressor, "convert", pruned, "-o", exported, "--opset", str(export_opset)])
        if not ok:
            print(f"FAIL convnext ({activation}) convert at opset {export_opset}: {message}")
            failures.append(f"convnext ({activation}) convert {export_opset}")
            continue
        onnx.checker.check_model(onnx.load(exported), full_check=True)
        compare(f"convnext ({activation}) pruned, exported at opset {export_opset}, onnxruntime vs compressor",
                got, ort_run(exported, x), failures)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    failures = []
    for activation, opset in (("relu", 17), ("relu", 13), ("gelu", 17)):
        check(os.path.abspath(args.compressor), args.work, activation, opset, failures)
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
