#!/usr/bin/env python3
"""Multiply-accumulates of every Conv node of an ONNX model for one image, padding zeros not
counted: a product of a weight with a padded border position is no work. For each spatial axis,
the (output position, kernel tap) pairs whose input position lies inside the image are counted;
a node's MACs are rows x columns x output channels x input channels per group. (Counting padding
too, as `compressor info` does, gives out_h x out_w x O x C/groups x kh x kw.)

scripts/bench_peers.sh divides 2 x these MACs by the `compressor bench --layers` time of the
same layers for conv GFLOP/s. Node names are the ONNX node names, which are `compressor`'s node
names for files it exported or imported.

Usage (needs onnx): python scripts/conv_macs.py MODEL.onnx  -> prints JSON {node: MACs}
"""
import json
import sys

import onnx
from onnx import numpy_helper, shape_inference


def taps_inside(size, out, kernel, stride, pad_begin, dilation):
    """(output position, tap) pairs of one axis whose input position is inside [0, size)."""
    return sum(1 for o in range(out) for k in range(kernel)
               if 0 <= o * stride - pad_begin + k * dilation < size)


def conv_macs(model):
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    weights = {t.name: list(t.dims) for t in inferred.graph.initializer}
    result = {}
    for node in inferred.graph.node:
        if node.op_type != "Conv":
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = weights.get(node.input[1]) or shapes.get(node.input[1])
        x, y = shapes[node.input[0]], shapes[node.output[0]]
        kernel = attributes.get("kernel_shape", w[2:])
        strides = attributes.get("strides", [1, 1])
        dilations = attributes.get("dilations", [1, 1])
        pads = attributes.get("pads", [0, 0, 0, 0])
        if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise SystemExit(f"{node.name}: auto_pad is not supported")
        rows = taps_inside(x[2], y[2], kernel[0], strides[0], pads[0], dilations[0])
        cols = taps_inside(x[3], y[3], kernel[1], strides[1], pads[1], dilations[1])
        result[node.name] = rows * cols * w[0] * w[1]
    return result


if __name__ == "__main__":
    print(json.dumps(conv_macs(onnx.load(sys.argv[1])), indent=1))
