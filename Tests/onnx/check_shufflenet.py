#!/usr/bin/env python3
"""Checks ShuffleNetV2 (Ma et al. 2018) units and a GhostNet module as PyTorch's exporter writes them.

The model is built here with onnx.helper, random weights, opset 17, in the forms
torch.onnx.export (TorchScript) gives torchvision's ShuffleNetV2 and GhostNet:
- a unit of stride 1 whose `x.chunk(2, dim=1)` is a `Split` with a constant split
  input, another whose halves are two `Slice` nodes, and a downsampling unit whose
  two branches both convolve (depthwise 3x3 stride 2, 1x1 convs);
- `channel_shuffle(x, 2)`: `Reshape [N, 2, C/2, H, W]` -> `Transpose perm [0, 2, 1, 3, 4]`
  -> `Reshape [N, C, H, W]`, the first target built by Shape -> Gather -> Unsqueeze ->
  Concat from the input's batch, the second written as [N, -1, H, W];
- a GhostNet module: primary 1x1 conv, a cheap depthwise 3x3 on its output, Concat,
  and a `Slice` keeping the first `oup` channels.

Steps: (1) `compressor predict --raw` on the ONNX file vs onnxruntime; (2) the file
converted to a native model, channel-pruned (`compressor prune --granularity channel
--target-macs 0.6`), its MACs checked to have dropped; (3) the pruned model converted
back to ONNX and run by onnxruntime vs `compressor predict` on the pruned model (and
re-imported); (4) a Split with an opset-11 `split` attribute vs onnxruntime; (5) a
Transpose other than the shuffle's is refused with one message. `--full` runs (1)-(3)
on ShuffleNetV2 x1.0 at 224x224 instead.

Usage: check_shufflenet.py --compressor .build/debug/compressor --work /tmp/shufflenet-check
"""
import argparse
import os
import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOLERANCE = 1e-4  # relative to the output's largest magnitude


class Builder:
    def __init__(self, rng):
        self.rng, self.nodes, self.inits, self.count = rng, [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array, base="c"):
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, base=None, outputs=1, **attrs):
        outs = [self.name(base or op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs[0] if outputs == 1 else outs

    def conv(self, x, cin, cout, k=1, stride=1, groups=1, relu=True, bn=False):
        w = self.const(self.rng.normal(0, (2.0 / (cin // groups * k * k)) ** 0.5, (cout, cin // groups, k, k)).astype(np.float32), "w")
        inputs = [x, w] if bn else [x, w, self.const(self.rng.normal(0, 0.1, cout).astype(np.float32), "b")]
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=groups)
        if bn:
            params = [self.rng.uniform(0.5, 1.5, cout), self.rng.normal(0, 0.1, cout), self.rng.normal(0, 0.1, cout),
                      self.rng.uniform(0.5, 1.5, cout)]
            y = self.node("BatchNormalization", [y] + [self.const(p.astype(np.float32), "bn") for p in params], epsilon=1e-5)
        return self.node("Relu", [y]) if relu else y

    def batch_dim(self, x):
        shape = self.node("Shape", [x])
        n = self.node("Gather", [shape, self.const(np.array(0, dtype=np.int64), "i")], axis=0)
        return self.node("Unsqueeze", [n, self.const(np.array([0], dtype=np.int64), "axes")])

    def channel_shuffle(self, x, channels, h, w, groups=2):
        ints = lambda *v: self.const(np.array(v, dtype=np.int64), "dims")
        target = self.node("Concat", [self.batch_dim(x), ints(groups), ints(channels // groups), ints(h), ints(w)], axis=0)
        y = self.node("Reshape", [x, target])
        y = self.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
        back = self.node("Concat", [self.batch_dim(x), ints(-1), ints(h), ints(w)], axis=0)
        return self.node("Reshape", [y, back])

    def branch(self, x, cin, cout, stride, bn=True):
        y = self.conv(x, cin, cout, bn=bn)
        y = self.conv(y, cout, cout, k=3, stride=stride, groups=cout, relu=False, bn=bn)
        return self.conv(y, cout, cout, bn=bn)

    def unit(self, x, channels, h, w, chunk, bn=True):
        half = channels // 2
        if chunk == "split":
            x1, x2 = self.node("Split", [x, self.const(np.array([half, half], dtype=np.int64), "split")], outputs=2, axis=1)
        else:
            i64 = lambda v: self.const(np.array([v], dtype=np.int64), "s")
            x1 = self.node("Slice", [x, i64(0), i64(half), i64(1)])
            x2 = self.node("Slice", [x, i64(half), i64(9223372036854775807), i64(1)])
        y = self.node("Concat", [x1, self.branch(x2, half, half, 1, bn)], axis=1)
        return self.channel_shuffle(y, channels, h, w)

    def down_unit(self, x, cin, cout, h, w, bn=True):
        half = cout // 2
        left = self.conv(x, cin, cin, k=3, stride=2, groups=cin, relu=False, bn=bn)
        left = self.conv(left, cin, half, bn=bn)
        y = self.node("Concat", [left, self.branch(x, cin, half, 2, bn)], axis=1)
        return self.channel_shuffle(y, cout, h // 2, w // 2)

    def ghost(self, x, cin, oup):
        init = (oup + 1) // 2
        primary = self.conv(x, cin, init, bn=True)
        cheap = self.conv(primary, init, init, k=3, groups=init, bn=True)
        y = self.node("Concat", [primary, cheap], axis=1)
        return self.node("Slice", [y, self.const(np.array([0], dtype=np.int64)), self.const(np.array([oup], dtype=np.int64)),
                                   self.const(np.array([1], dtype=np.int64))])


def shufflenet_v2_x1(rng):
    """ShuffleNetV2 x1.0 as torchvision writes it (BatchNorm folded into the convs, as torch's exporter does in
    eval mode; `chunk` as Split; the head's mean over H and W as ReduceMean), 3x224x224, 1000 classes."""
    b = Builder(rng)
    x = b.conv("x", 3, 24, k=3, stride=2)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    size, cin = 56, 24
    for cout, repeats in ((116, 4), (232, 8), (464, 4)):
        x = b.down_unit(x, cin, cout, size, size, bn=False)
        size, cin = size // 2, cout
        for _ in range(repeats - 1):
            x = b.unit(x, cout, size, size, "split", bn=False)
    x = b.conv(x, 464, 1024)
    x = b.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    fc = b.const(rng.normal(0, 0.01, (1000, 1024)).astype(np.float32), "fc")
    logits = b.node("Gemm", [x, fc, b.const(np.zeros(1000, np.float32), "fcb")], transB=1)
    graph = helper.make_graph(b.nodes, "shufflenet_v2_x1_0",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["N", 1000])], b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def shufflenet_model(rng):
    b = Builder(rng)
    x = b.conv("x", 3, 24, k=3, stride=2, bn=True)                     # 24 x 16 x 16
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])   # 24 x 8 x 8
    x = b.down_unit(x, 24, 48, 8, 8)                                   # 48 x 4 x 4
    x = b.unit(x, 48, 4, 4, "split")
    x = b.unit(x, 48, 4, 4, "slice")
    x = b.ghost(x, 48, 37)                                             # 37 x 4 x 4
    x = b.conv(x, 37, 64, bn=True)
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    fc = b.const(rng.normal(0, 0.1, (10, 64)).astype(np.float32), "fc")
    logits = b.node("Gemm", [x, fc, b.const(np.zeros(10, np.float32), "fcb")], transB=1)
    graph = helper.make_graph(b.nodes, "ShuffleNetV2 units + Ghost module",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["N", 10])], b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()}")
    return r.stdout


def predict(compressor, model, x_path, out_path):
    run([compressor, "predict", model, "--raw", "--input", f"x={x_path}", "-o", out_path])
    return np.load(out_path)


def compare(label, got, want):
    err = float(np.abs(got.astype(np.float64) - want).max())
    scale = float(np.abs(want).max())
    good = got.shape == want.shape and err <= TOLERANCE * max(scale, 1.0)
    print(f"{'PASS' if good else 'FAIL'} {label}: max abs error {err:.2e} (largest output {scale:.2f})")
    return good


def macs(compressor, model):
    return json.loads(run([compressor, "info", model, "--json"]))["macs"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--full", action="store_true",
                    help="ShuffleNetV2 x1.0 at 224x224 instead of the small units (slow with a debug build)")
    args = ap.parse_args()
    import onnxruntime as ort
    compressor = os.path.abspath(args.compressor)
    os.makedirs(args.work, exist_ok=True)
    path = lambda name: os.path.join(args.work, name)
    rng = np.random.default_rng(0)
    model = shufflenet_v2_x1(rng) if args.full else shufflenet_model(rng)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path("shufflenet.onnx"))
    x = rng.random((2, 3, 224, 224) if args.full else (2, 3, 32, 32), dtype=np.float32)
    np.save(path("x.npy"), x)
    ok = True
    want = ort.InferenceSession(path("shufflenet.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ok &= compare(f"{model.graph.name} imported vs onnxruntime",
                  predict(compressor, path("shufflenet.onnx"), path("x.npy"), path("imported.npy")), want)
    run([compressor, "convert", path("shufflenet.onnx"), "-o", path("shufflenet.bin")])
    run([compressor, "prune", path("shufflenet.bin"), "-o", path("pruned.bin"), "--granularity", "channel",
         "--target-macs", "0.6"])
    before, after = macs(compressor, path("shufflenet.bin")), macs(compressor, path("pruned.bin"))
    shrunk = after <= 0.65 * before
    print(f"{'PASS' if shrunk else 'FAIL'} channel pruning: MACs {before:.0f} -> {after:.0f} ({after / before:.2f}x)")
    ok &= shrunk
    run([compressor, "convert", path("pruned.bin"), "-o", path("pruned.onnx")])
    pruned = onnx.load(path("pruned.onnx"))
    onnx.checker.check_model(pruned, full_check=True)
    ops = sorted({n.op_type for n in pruned.graph.node})
    print(f"     pruned export ops: {', '.join(ops)}")
    want = ort.InferenceSession(path("pruned.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ok &= compare("pruned model (compressor) vs its ONNX export (onnxruntime)",
                  predict(compressor, path("pruned.bin"), path("x.npy"), path("pruned_out.npy")), want)
    ok &= compare("pruned ONNX export re-imported vs onnxruntime",
                  predict(compressor, path("pruned.onnx"), path("x.npy"), path("reimported.npy")), want)
    ok &= check_split_attribute(compressor, path)
    ok &= check_refusal(compressor, path)
    return 0 if ok else 1


def check_split_attribute(compressor, path):
    """Split with sizes as an attribute (opset 11) and three unequal outputs, joined in another order."""
    import onnxruntime as ort
    nodes = [helper.make_node("Split", ["x"], ["a", "b", "c"], name="split", axis=1, split=[2, 5, 1]),
             helper.make_node("Concat", ["c", "a", "b"], ["y"], name="join", axis=1)]
    graph = helper.make_graph(nodes, "split11", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 3, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6), path("split11.onnx"))
    x = np.random.default_rng(1).random((2, 8, 3, 3), dtype=np.float32)
    np.save(path("split11_x.npy"), x)
    want = ort.InferenceSession(path("split11.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    return compare("Split with a split attribute (opset 11)",
                   predict(compressor, path("split11.onnx"), path("split11_x.npy"), path("split11_y.npy")), want)


def check_refusal(compressor, path):
    """A Transpose outside the channel shuffle fails with one message naming the node and the supported pattern."""
    i64 = lambda *v: numpy_helper.from_array(np.array(v, dtype=np.int64), f"c{len(v)}_{v[0]}")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="channels_last", perm=[0, 2, 3, 1]),
             helper.make_node("Gather", ["t", "c2_0"], ["y"], name="pick_two", axis=1)]
    graph = helper.make_graph(nodes, "refused", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [i64(0, 2)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path("refused.onnx"))
    r = subprocess.run([compressor, "convert", path("refused.onnx"), "-o", path("refused.bin")], capture_output=True, text=True)
    message = (r.stderr + r.stdout).strip()
    good = r.returncode != 0 and "channels_last" in message and "channel shuffle" in message and len(message.splitlines()) == 1
    print(f"{'PASS' if good else 'FAIL'} Transpose outside the channel shuffle refused: {message}")
    return good


if __name__ == "__main__":
    sys.exit(main())
