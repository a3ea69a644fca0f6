#!/usr/bin/env python3
"""Checks the MobileNetV3 / GhostNet / ConvNeXt activations end to end against onnxruntime.

A small MobileNetV3-style network built with onnx.helper at opset 17, as PyTorch
writes one: conv -> BN -> HardSwish -> depthwise conv -> BN -> HardSwish -> a
squeeze-and-excitation block gated by HardSigmoid (alpha 1/6) -> 1x1 projection
-> BN -> GELU in its Erf form (Div by sqrt 2, Erf, Add 1, Mul x, Mul 0.5) -> a
GhostNet gate written as relu6(x + 3) / 6 (Add, Clip, Div) -> 1x1 conv -> the
hard swish written out, x * Clip(x + 3, 0, 6) / 6 -> global pool -> Gemm.

1. `compressor predict --raw` on the ONNX file equals onnxruntime (1e-4 relative).
2. The import folded every decomposed activation: converting it back at opset 20
   writes HardSwish x3, HardSigmoid x2 and Gelu, and no Erf or Clip.
3. `compressor prune --granularity channel` removes channels (every conv and the
   Gemm lose inputs or outputs), `compressor convert` writes the pruned model as
   ONNX at opsets 13 and 20, and onnxruntime's outputs on those files equal
   `compressor predict --raw` on the pruned native model.

Usage: check_activations.py --compressor .build/debug/compressor --work /tmp/act-check
Needs: pip install numpy onnx onnxruntime
"""
import argparse
import collections
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def mobilenet_v3_block(rng):
    f = lambda *s: (rng.standard_normal(s) * 0.4).astype(np.float32)  # noqa: E731
    inits = []
    nodes = []
    n = helper.make_node

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def scalar(name, value):
        # PyTorch writes scalars as Constant nodes.
        nodes.append(n("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.float32))))
        return name

    def conv(name, x, out, inp, k, groups=1, bias=False):
        inputs = [x, const(f"{name}.w", f(out, inp // groups, k, k))]
        if bias:
            inputs.append(const(f"{name}.b", f(out)))
        nodes.append(n("Conv", inputs, [name], name=name, kernel_shape=[k, k], pads=[k // 2] * 4, group=groups))
        return name

    def bn(name, x, c):
        nodes.append(n("BatchNormalization", [x, const(f"{name}.s", 1 + f(c)), const(f"{name}.b", f(c)),
                                              const(f"{name}.m", f(c)), const(f"{name}.v", 1 + np.abs(f(c)))],
                       [name], name=name, epsilon=1e-5))
        return name

    three, zero, six = scalar("three", 3.0), scalar("zero", 0.0), scalar("six", 6.0)
    half, one, sqrt2 = scalar("half", 0.5), scalar("one", 1.0), scalar("sqrt2", 1.4142135381698608)

    h = bn("stem.bn", conv("stem", "x", 16, 3, 3), 16)
    nodes.append(n("HardSwish", [h], ["stem.act"], name="stem.act"))
    h = bn("dw.bn", conv("dw", "stem.act", 16, 16, 3, groups=16), 16)
    nodes.append(n("HardSwish", [h], ["dw.act"], name="dw.act"))
    # Squeeze-and-excitation, HardSigmoid gate (nn.Hardsigmoid: alpha 1/6).
    nodes.append(n("GlobalAveragePool", ["dw.act"], ["se.pool"], name="se.pool"))
    nodes.append(n("Relu", [conv("se.reduce", "se.pool", 8, 16, 1, bias=True)], ["se.relu"], name="se.relu"))
    nodes.append(n("HardSigmoid", [conv("se.expand", "se.relu", 16, 8, 1, bias=True)], ["se.gate"],
                   name="se.gate", alpha=1.0 / 6, beta=0.5))
    nodes.append(n("Mul", ["dw.act", "se.gate"], ["se.out"], name="se.mul"))
    p = bn("project.bn", conv("project", "se.out", 24, 16, 1), 24)
    # GELU as torch writes x * 0.5 * (1 + erf(x / sqrt 2)) at opset 17.
    nodes += [n("Div", [p, sqrt2], ["gelu.div"], name="gelu.div"), n("Erf", ["gelu.div"], ["gelu.erf"], name="gelu.erf"),
              n("Add", ["gelu.erf", one], ["gelu.add"], name="gelu.add"),
              n("Mul", [p, "gelu.add"], ["gelu.mul"], name="gelu.mul"),
              n("Mul", ["gelu.mul", half], ["gelu"], name="gelu.half")]
    # GhostNet's gate: relu6(s + 3) / 6 on a squeezed branch, times the features.
    nodes.append(n("GlobalAveragePool", ["gelu"], ["ghost.pool"], name="ghost.pool"))
    s = conv("ghost.fc", "ghost.pool", 24, 24, 1, bias=True)
    nodes += [n("Add", [s, three], ["ghost.add"], name="ghost.add"),
              n("Clip", ["ghost.add", zero, six], ["ghost.clip"], name="ghost.clip"),
              n("Div", ["ghost.clip", six], ["ghost.gate"], name="ghost.gate"),
              n("Mul", ["gelu", "ghost.gate"], ["ghost.out"], name="ghost.mul")]
    # The hard swish written out: x * Clip(x + 3, 0, 6) / 6.
    e = conv("expand", "ghost.out", 32, 24, 1, bias=True)
    nodes += [n("Add", [e, three], ["hs.add"], name="hs.add"),
              n("Clip", ["hs.add", zero, six], ["hs.clip"], name="hs.clip"),
              n("Mul", [e, "hs.clip"], ["hs.mul"], name="hs.mul"),
              n("Div", ["hs.mul", six], ["hs"], name="hs.div"),
              n("GlobalAveragePool", ["hs"], ["head.pool"], name="head.pool"),
              n("Flatten", ["head.pool"], ["head.flat"], name="head.flat"),
              n("Gemm", ["head.flat", const("fc.w", f(10, 32)), const("fc.b", f(10))], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "mobilenet_v3_block",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="check_activations")
    model.ir_version = 8
    return model


def ort_run(path, x):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def compare(label, got, want, failures):
    err = np.abs(got.astype(np.float64) - want)
    good = got.shape == want.shape and bool(np.all(err <= 1e-4 + 1e-4 * np.abs(want)))
    print(f"{'PASS' if good else 'FAIL'} {label} {list(got.shape)}: max abs error {err.max():.2e}")
    if not good:
        failures.append(label)


def predict(compressor, model, x_path, out):
    ok, message = run([compressor, "predict", model, "--raw", "--input", f"x={x_path}", "-o", out])
    return np.load(out) if ok else message


def op_counts(path):
    return collections.Counter(node.op_type for node in onnx.load(path).graph.node)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    compressor = os.path.abspath(args.compressor)
    work = args.work
    os.makedirs(work, exist_ok=True)
    failures = []
    rng = np.random.default_rng(0)
    model = mobilenet_v3_block(rng)
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(work, "mobilenet_v3_block.onnx")
    onnx.save(model, path)
    x = rng.random((3, 3, 16, 16), dtype=np.float32)
    x_path = os.path.join(work, "x.npy")
    np.save(x_path, x)

    # 1. Import against onnxruntime.
    got = predict(compressor, path, x_path, os.path.join(work, "imported.npy"))
    if isinstance(got, str):
        failures.append(f"import: {got}")
    else:
        compare("imported block vs onnxruntime", got, ort_run(path, x), failures)

    # 2. Every decomposed activation folded: the re-export has the single ops.
    native = os.path.join(work, "block.bin")
    back = os.path.join(work, "block_opset20.onnx")
    for cmd in ([compressor, "convert", path, "-o", native], [compressor, "convert", native, "-o", back, "--opset", "20"]):
        ok, message = run(cmd)
        if not ok:
            failures.append(f"{' '.join(cmd[1:3])}: {message}")
    if os.path.exists(back):
        ops = op_counts(back)
        good = (ops["HardSwish"], ops["HardSigmoid"], ops["Gelu"], ops["Erf"], ops["Clip"]) == (3, 2, 1, 0, 0)
        print(f"{'PASS' if good else 'FAIL'} import folded the decomposed activations: {dict(sorted(ops.items()))}")
        if not good:
            failures.append("folding: expected HardSwish x3, HardSigmoid x2, Gelu x1, no Erf or Clip")

    # 3. Channel pruning, then ONNX export of the pruned model at two opsets.
    pruned = os.path.join(work, "pruned.bin")
    ok, message = run([compressor, "prune", path, "-o", pruned, "--granularity", "channel", "--sparsity", "0.25"])
    if not ok:
        failures.append(f"prune: {message}")
    else:
        want = predict(compressor, pruned, x_path, os.path.join(work, "pruned.npy"))
        if isinstance(want, str):
            failures.append(f"predict pruned: {want}")
        for opset in (13, 20):
            out = os.path.join(work, f"pruned_opset{opset}.onnx")
            ok, message = run([compressor, "convert", pruned, "-o", out, "--opset", str(opset)])
            if not ok:
                failures.append(f"convert pruned (opset {opset}): {message}")
                continue
            pruned_model = onnx.load(out)
            onnx.checker.check_model(pruned_model, full_check=True)
            weights = {i.name: list(i.dims) for i in pruned_model.graph.initializer}
            shrunk = (weights.get("stem.w", [16])[0] < 16 and weights.get("project.w", [24])[0] < 24
                      and weights.get("expand.w", [32])[0] < 32 and weights.get("fc.w", [0, 32])[1] < 32)
            print(f"{'PASS' if shrunk else 'FAIL'} pruned opset {opset}: stem {weights.get('stem.w')}, "
                  f"project {weights.get('project.w')}, expand {weights.get('expand.w')}, fc {weights.get('fc.w')}; "
                  f"ops {dict(sorted(op_counts(out).items()))}")
            if not shrunk:
                failures.append(f"pruned opset {opset}: channels were not removed")
            if not isinstance(want, str):
                compare(f"pruned opset {opset}: onnxruntime vs compressor", want, ort_run(out, x), failures)
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
