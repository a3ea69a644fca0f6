#!/usr/bin/env python3
"""Writes the small ONNX fixtures the Swift tests import (Tests/CompressTests/Fixtures/onnx):
models built with onnx.helper, an input batch and onnxruntime's outputs as .npy golden values.

    python Tests/onnx/make_fixtures.py        # needs numpy, onnx, onnxruntime

Seeded: rerunning writes the same files (up to onnxruntime's float rounding).
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CompressTests", "Fixtures", "onnx")
n = helper.make_node


def const(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def save(model, name, x):
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(OUT, f"{name}.onnx")
    onnx.save(model, path)
    np.save(os.path.join(OUT, f"{name}_x.npy"), x)
    outputs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for i, y in enumerate(outputs):
        np.save(os.path.join(OUT, f"{name}_y{i}.npy"), y.astype(np.float32))


def model(nodes, inits, opset, x_shape, outputs, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in outputs], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_fixtures")
    m.ir_version = 7
    return m


def opset13_cnn(rng):
    """Pad->Conv (no bias), BatchNorm, Clip(0,6) inputs, Shape chain Reshape, MatMul+Add, Softmax(axis -1)."""
    f = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    inits = [const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), const("w", f(4, 2, 3, 3)),
             const("s", 1 + f(4)), const("b", f(4)), const("m", f(4)), const("v", 1 + np.abs(f(4))),
             const("lo", np.array(0, np.float32)), const("hi", np.array(6, np.float32)),
             const("i0", np.array(0, np.int64)), const("axes0", np.array([0], np.int64)),
             const("rest", np.array([-1], np.int64)), const("fc", f(64, 3)), const("fcb", f(3))]
    nodes = [n("Pad", ["x", "pads"], ["p"], name="pad"), n("Conv", ["p", "w"], ["c"], name="conv"),
             n("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
             n("Clip", ["bn", "lo", "hi"], ["r"], name="clip"),
             n("MaxPool", ["r"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             n("Shape", ["mp"], ["shape"], name="shape"), n("Gather", ["shape", "i0"], ["batch"], name="gather"),
             n("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
             n("Concat", ["batch1", "rest"], ["target"], name="concat", axis=0),
             n("Reshape", ["mp", "target"], ["flat"], name="reshape"),
             n("MatMul", ["flat", "fc"], ["mm"], name="matmul"), n("Add", ["mm", "fcb"], ["logits"], name="bias"),
             n("Softmax", ["logits"], ["probs"], name="softmax")]
    return model(nodes, inits, 13, ["N", 2, 8, 8], [("logits", ["N", 3]), ("probs", ["N", 3])], "opset13_cnn")


def opset9_attributes(rng):
    """Opset 9: Pad/Clip/Dropout/Unsqueeze/ReduceMean attributes, pre-13 Softmax on 4-D, Gemm transB=1."""
    f = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    inits = [const("w", f(3, 2, 3, 3)), const("wb", f(3)), const("g", f(5, 3)), const("gc", f(5))]
    nodes = [n("Pad", ["x"], ["p"], name="pad", pads=[0, 0, 1, 0, 0, 0, 1, 2]),
             n("Conv", ["p", "w", "wb"], ["c"], name="conv", strides=[1, 1]),
             n("Clip", ["c"], ["r"], name="clip", min=0.0, max=6.0),
             n("Dropout", ["r"], ["d"], name="dropout", ratio=0.3),
             n("Softmax", ["d"], ["sm"], name="softmax4d"),
             n("ReduceMean", ["sm"], ["gap"], name="mean", axes=[2, 3], keepdims=0),
             n("Gemm", ["gap", "g", "gc"], ["y"], name="gemm", transB=1, alpha=2.0)]
    return model(nodes, inits, 9, ["N", 2, 6, 5], [("y", ["N", 5])], "opset9_attributes")


def channel_shuffle(rng):
    """ShuffleNetV2's unit as torch writes it (opset 17): Split with a constant split input, a branch,
    Concat, the channel shuffle Reshape [N, 2, 4, 4, 4] (target from a Shape chain) -> Transpose
    [0, 2, 1, 3, 4] -> Reshape [N, -1, 4, 4], then a Slice with a negative start and an end past the axis."""
    f = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    inits = [const("split", i64(4, 4)), const("w", f(4, 4, 1, 1)), const("b", f(4)), const("zero", np.array(0, np.int64)),
             const("first", i64(0)), const("dims5", i64(2, 4, 4, 4)), const("dims4", i64(-1, 4, 4)),
             const("starts", i64(-7)), const("ends", i64(9223372036854775807)), const("axes", i64(1))]
    nodes = [n("Split", ["x", "split"], ["left", "right"], axis=1), n("Conv", ["right", "w", "b"], ["c"]),
             n("Relu", ["c"], ["r"]), n("Concat", ["left", "r"], ["cat"], axis=1),
             n("Shape", ["cat"], ["shape"]), n("Gather", ["shape", "zero"], ["batch"], axis=0),
             n("Unsqueeze", ["batch", "first"], ["batch1"]),
             n("Concat", ["batch1", "dims5"], ["target5"], axis=0), n("Reshape", ["cat", "target5"], ["grouped"]),
             n("Transpose", ["grouped"], ["swapped"], perm=[0, 2, 1, 3, 4]),
             n("Concat", ["batch1", "dims4"], ["target4"], axis=0), n("Reshape", ["swapped", "target4"], ["shuffled"]),
             n("Slice", ["shuffled", "starts", "ends", "axes"], ["y"])]
    m = model(nodes, inits, 17, ["N", 8, 4, 4], [("y", ["N", 7, 4, 4])], "channel_shuffle")
    m.ir_version = 8
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    save(opset13_cnn(rng), "opset13_cnn", rng.random((2, 2, 8, 8), dtype=np.float32))
    save(opset9_attributes(rng), "opset9_attributes", rng.random((3, 2, 6, 5), dtype=np.float32))
    bad = model([n("Sin", ["x"], ["s"], name="sine"), n("Relu", ["s"], ["r"], name="relu"),
                 n("Erf", ["r"], ["y"], name="erf")], [], 13, ["N", 4], [("y", ["N", 4])], "unsupported")
    onnx.checker.check_model(bad)
    onnx.save(bad, os.path.join(OUT, "unsupported.onnx"))
    shuffle_rng = np.random.default_rng(15)
    save(channel_shuffle(shuffle_rng), "channel_shuffle", shuffle_rng.random((2, 8, 4, 4), dtype=np.float32))


if __name__ == "__main__":
    main()
