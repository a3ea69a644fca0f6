#!/usr/bin/env python3
"""Encoder-decoder check: Resize, ConvTranspose and a skip Concat, as a segmentation CNN writes them.

A small encoder-decoder built with onnx.helper at opset 17 (the ops PyTorch's exporter writes):
conv -> conv stride 2 -> conv -> ConvTranspose stride 2 (+BatchNorm, ReLU) -> Concat with the skip ->
conv -> Resize nearest x2 (asymmetric, floor: F.interpolate's nearest, scales) -> conv ->
Resize linear (pytorch_half_pixel: bilinear, align_corners=False) to sizes folded from a
Shape -> Slice -> Concat chain -> output feature map [N, 4, 40, 40]. Then:

1. `compressor predict --raw` of the ONNX file must equal onnxruntime's output;
2. `compressor prune --granularity channel --sparsity 0.25` of the ONNX file: a quarter of
   every prunable group, the ConvTranspose's output channels (weight axis 1, with the
   BatchNorm after it) among them; the group that reaches the graph output, the head
   conv's, is left whole (an output feature map is no classifier's logits, but its
   channels are still the model's answer);
3. `compressor convert` of the pruned model back to ONNX: onnxruntime on that file must
   equal `compressor predict --raw` of the pruned model, and the ConvTranspose must have
   lost input and output channels.
4. Resize at opset 10 and Upsample at opset 9 (nearest and linear) agree with onnxruntime,
   and a cubic Resize is refused with a message naming the node and the mode.

Usage: check_encoder_decoder.py --compressor .build/debug/compressor --work /tmp/encdec
Needs: pip install numpy onnx onnxruntime
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def encoder_decoder(rng):
    f = lambda *s: (rng.standard_normal(s) * (2.0 / np.prod(s[1:])) ** 0.5).astype(np.float32)  # noqa: E731
    b = lambda c: (rng.standard_normal(c) * 0.1).astype(np.float32)  # noqa: E731
    inits = [
        const("w0", f(8, 3, 3, 3)), const("b0", b(8)),
        const("w1", f(16, 8, 3, 3)), const("b1", b(16)),
        const("w2", f(16, 16, 3, 3)), const("b2", b(16)),
        const("wt", f(16, 8, 2, 2)), const("bt", b(8)),
        const("bn_scale", (1 + b(8)).astype(np.float32)), const("bn_bias", b(8)),
        const("bn_mean", b(8)), const("bn_var", (1 + np.abs(b(8))).astype(np.float32)),
        const("w3", f(12, 16, 3, 3)), const("b3", b(12)),
        const("w4", f(4, 12, 3, 3)), const("b4", b(4)),
        const("scales", np.array([1, 1, 2, 2], np.float32)),
        const("starts", np.array([0], np.int64)), const("ends", np.array([2], np.int64)),
        const("spatial", np.array([40, 40], np.int64)),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w0", "b0"], ["c0"], name="stem", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", ["c0"], ["skip"], name="stem_relu"),
        n("Conv", ["skip", "w1", "b1"], ["c1"], name="down", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Relu", ["c1"], ["r1"], name="down_relu"),
        n("Conv", ["r1", "w2", "b2"], ["c2"], name="bottleneck", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"], name="bottleneck_relu"),
        n("ConvTranspose", ["r2", "wt", "bt"], ["up"], name="up", kernel_shape=[2, 2], strides=[2, 2]),
        n("BatchNormalization", ["up", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["up_bn"], name="up_bn"),
        n("Relu", ["up_bn"], ["up_relu"], name="up_relu"),
        n("Concat", ["up_relu", "skip"], ["joined"], name="join", axis=1),
        n("Conv", ["joined", "w3", "b3"], ["c3"], name="fuse", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", ["c3"], ["r3"], name="fuse_relu"),
        n("Resize", ["r3", "", "scales"], ["big"], name="upsample_nearest", mode="nearest",
          coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        n("Conv", ["big", "w4", "b4"], ["c4"], name="head", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Shape", ["c4"], ["shape"], name="shape"),
        n("Slice", ["shape", "starts", "ends"], ["batch_channels"], name="slice"),
        n("Concat", ["batch_channels", "spatial"], ["sizes"], name="sizes", axis=0),
        n("Resize", ["c4", "", "", "sizes"], ["y"], name="upsample_bilinear", mode="linear",
          coordinate_transformation_mode="pytorch_half_pixel"),
    ]
    graph = helper.make_graph(
        nodes, "encoder_decoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 40, 40])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="check_encoder_decoder")
    model.ir_version = 8
    return model


def single_resize(op, opset, attributes, scales, shape=(1, 2, 5, 4), sizes=None):
    """One Resize or Upsample node over x, with constant scales (or sizes)."""
    inputs, inits = ["x"], []
    if op == "Resize" and opset >= 11:
        inputs.append("")
    inputs.append("scales")
    inits.append(const("scales", np.asarray(scales, np.float32)))
    if sizes is not None:
        inputs.append("sizes")
        inits.append(const("sizes", np.asarray(sizes, np.int64)))
    node = helper.make_node(op, inputs, ["y"], name="resize", **attributes)
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(shape[1:]))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="check_encoder_decoder")
    model.ir_version = 7
    return model


def check_legacy_and_refusals(compressor, work, failures):
    """Resize at opset 10 and Upsample at opset 9 (asymmetric coordinates) against onnxruntime; cubic refused by name."""
    import onnxruntime as ort
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    x_path = os.path.join(work, "small_x.npy")
    np.save(x_path, x)
    cases = [("Resize", 10, {"mode": "nearest"}, [1, 1, 2, 3]), ("Resize", 10, {"mode": "linear"}, [1, 1, 2, 1.5]),
             ("Resize", 10, {"mode": "nearest"}, [1, 1, 0.5, 0.5]), ("Upsample", 9, {"mode": "nearest"}, [1, 1, 2, 2]),
             ("Upsample", 9, {"mode": "linear"}, [1, 1, 3, 2])]
    for k, (op, opset, attributes, scales) in enumerate(cases):
        path = os.path.join(work, f"legacy{k}.onnx")
        onnx.save(single_resize(op, opset, attributes, scales), path)
        want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        out = os.path.join(work, f"legacy{k}.npy")
        run([compressor, "predict", path, "--raw", "--input", f"x={x_path}", "-o", out])
        compare(f"{op} opset {opset} {attributes['mode']} scales {scales[2:]} vs onnxruntime", np.load(out), want, failures)
    path = os.path.join(work, "cubic.onnx")
    onnx.save(single_resize("Resize", 13, {"mode": "cubic"}, [1, 1, 2, 2]), path)
    r = subprocess.run([compressor, "predict", path, "--raw", "--input", f"x={x_path}", "-o", os.path.join(work, "cubic.npy")],
                       capture_output=True, text=True)
    message = (r.stderr or r.stdout).strip()
    good = r.returncode != 0 and "mode cubic" in message and "'resize'" in message
    print(f"{'PASS' if good else 'FAIL'} cubic Resize refused by name: {message}")
    if not good:
        failures.append("cubic Resize not refused by name")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()}")
    return r.stdout


def compare(label, got, want, failures):
    err = np.abs(got.astype(np.float64) - want)
    good = got.shape == want.shape and np.all(err <= 1e-4 + 1e-4 * np.abs(want))
    print(f"{'PASS' if good else 'FAIL'} {label} {list(got.shape)}: max abs error {err.max():.2e}")
    if not good:
        failures.append(label)


def initializer_shapes(path):
    m = onnx.load(path)
    return {i.name: list(i.dims) for i in m.graph.initializer}


def main():
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    compressor = os.path.abspath(args.compressor)
    os.makedirs(args.work, exist_ok=True)
    failures = []
    rng = np.random.default_rng(0)
    model = encoder_decoder(rng)
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(args.work, "encoder_decoder.onnx")
    onnx.save(model, path)
    x = rng.random((2, 3, 16, 16), dtype=np.float32)
    x_path = os.path.join(args.work, "x.npy")
    np.save(x_path, x)

    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    out = os.path.join(args.work, "imported.npy")
    run([compressor, "predict", path, "--raw", "--input", f"x={x_path}", "-o", out])
    compare("imported encoder-decoder vs onnxruntime", np.load(out), want, failures)

    pruned = os.path.join(args.work, "pruned.bin")
    report = json.loads(run([compressor, "prune", path, "-o", pruned, "--granularity", "channel",
                             "--sparsity", "0.25", "--json"]))
    pruned_onnx = os.path.join(args.work, "pruned.onnx")
    run([compressor, "convert", pruned, "-o", pruned_onnx])
    onnx.checker.check_model(onnx.load(pruned_onnx), full_check=True)
    out = os.path.join(args.work, "pruned.npy")
    run([compressor, "predict", pruned, "--raw", "--input", f"x={x_path}", "-o", out])
    session = ort.InferenceSession(pruned_onnx, providers=["CPUExecutionProvider"])
    compare("pruned encoder-decoder (compressor) vs its ONNX export (onnxruntime)",
            np.load(out), session.run(None, {session.get_inputs()[0].name: x})[0], failures)
    shapes = initializer_shapes(pruned_onnx)
    up = [s for name, s in shapes.items() if name == "wt"]
    # Both of its channel axes: its input channels (axis 0) and its own output channels (axis 1).
    shrunk = bool(up) and up[0][0] < 16 and up[0][1] < 8
    print(f"{'PASS' if shrunk else 'FAIL'} ConvTranspose weight after channel pruning: {up[0] if up else 'missing'} "
          f"(was [16, 8, 2, 2])")
    if not shrunk:
        failures.append("ConvTranspose lost no channels")
    print("prune: " + "; ".join(report.get("changes", [])))
    check_legacy_and_refusals(compressor, args.work, failures)
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
