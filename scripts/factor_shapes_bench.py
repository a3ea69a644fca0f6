#!/usr/bin/env python3
"""Per-MAC speed of the convolution shapes low-rank factorization produces.

Writes one single-Conv ONNX model per shape (the protobuf is encoded here, so
no onnx package is needed), times each with `compressor bench --layers --json`
at batch 1 and 64 on one thread, and prints a Markdown table: the Conv step's
time (layout reorders at the model's edges are separate steps and not counted),
GMAC/s, and the time per MAC relative to the 3x3 reference of the same spatial
size. See docs/lowrank.md, "Kernels for factor shapes".

Usage: scripts/factor_shapes_bench.py [--compressor PATH] [--seconds S] [--out DIR]
                                      [--only SUBSTRING] [--json FILE]
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys


# --- protobuf wire encoding, just enough for an ONNX ModelProto -----------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def attribute_int(name, value):
    return field_bytes(1, name) + field_varint(3, value) + field_varint(20, 2)


def attribute_ints(name, values):
    return field_bytes(1, name) + b"".join(field_varint(8, v) for v in values) + field_varint(20, 7)


def tensor(name, dims, values):
    return (b"".join(field_varint(1, d) for d in dims) + field_varint(2, 1) + field_bytes(8, name)
            + field_bytes(9, struct.pack(f"<{len(values)}f", *values)))


def value_info(name, dims):
    """A float tensor whose dimension 0 is the symbolic batch `N`."""
    dim_n = field_bytes(1, field_bytes(2, "N"))
    shape = dim_n + b"".join(field_bytes(1, field_varint(1, d)) for d in dims)
    tensor_type = field_varint(1, 1) + field_bytes(2, shape)
    return field_bytes(1, name) + field_bytes(2, field_bytes(1, tensor_type))


def conv_node(name, x, y, c, n, kh, kw, groups, rng):
    """A Conv node `name` reading `x`, writing `y`, padded to keep the spatial size, and its initializers."""
    fan_in = c // groups * kh * kw
    weight = [rng.gauss(0, (2 / fan_in) ** 0.5) for _ in range(n * (c // groups) * kh * kw)]
    bias = [rng.gauss(0, 0.1) for _ in range(n)]
    pads = [kh // 2, kw // 2, kh // 2, kw // 2]
    node = (field_bytes(1, x) + field_bytes(1, name + ".W") + field_bytes(1, name + ".b") + field_bytes(2, y)
            + field_bytes(3, name) + field_bytes(4, "Conv")
            + field_bytes(5, attribute_ints("kernel_shape", [kh, kw]))
            + field_bytes(5, attribute_ints("pads", pads))
            + field_bytes(5, attribute_ints("strides", [1, 1]))
            + field_bytes(5, attribute_int("group", groups)))
    initializers = (field_bytes(5, tensor(name + ".W", [n, c // groups, kh, kw], weight))
                    + field_bytes(5, tensor(name + ".b", [n], bias)))
    return field_bytes(1, node), initializers


def conv_model(c, n, h, w, kh, kw, groups, seed):
    """`y = conv(pre(x))`: a 1x1 `pre` conv `c -> c` first, so that `conv` reads its input
    in the layout the runtime gives a conv's output, as inside a factor chain."""
    rng = random.Random(seed)
    pre, pre_init = conv_node("pre", "x", "p", c, c, 1, 1, 1, rng)
    conv, conv_init = conv_node("conv", "p", "y", c, n, kh, kw, groups, rng)
    graph = (pre + conv + field_bytes(2, "factor-shape") + pre_init + conv_init
             + field_bytes(11, value_info("x", [c, h, w]))
             + field_bytes(12, value_info("y", [n, h, w])))
    opset = field_bytes(1, "") + field_varint(2, 13)
    return field_varint(1, 8) + field_bytes(7, graph) + field_bytes(8, opset)


# --- the shapes -----------------------------------------------------------------

REFERENCES = {28: [16, 32], 14: [64], 7: [128]}
# Factor ranks at each spatial size, as the shipped models' layers there would get them.
RANKS = {28: [12, 20, 24, 37, 48], 14: [20, 24, 37, 48, 64], 7: [37, 48, 64, 128]}
MIXED = {14: [(64, 20), (20, 64), (128, 37), (37, 128), (32, 12), (12, 32)]}


def shapes():
    """(label, kind, c, n, h, kh, kw, groups); kind names the row group of the table."""
    out = []
    for size, channels in REFERENCES.items():
        for ch in channels:
            out.append((f"3x3 {ch}->{ch} @{size}", "3x3", ch, ch, size, 3, 3, 1))
    for size in REFERENCES:
        for ch in RANKS[size]:
            out.append((f"1x1 {ch}->{ch} @{size}", "1x1", ch, ch, size, 1, 1, 1))
        for c, n in MIXED.get(size, []):
            out.append((f"1x1 {c}->{n} @{size}", "1x1", c, n, size, 1, 1, 1))
        for ch in RANKS[size]:
            out.append((f"3x1 {ch}->{ch} @{size}", "3x1", ch, ch, size, 3, 1, 1))
            out.append((f"1x3 {ch}->{ch} @{size}", "1x3", ch, ch, size, 1, 3, 1))
        for ch in RANKS[size]:
            for m in (1, 2):
                out.append((f"dw3x3 {ch}x{m} @{size}", f"dw x{m}", ch, ch * m, size, 3, 3, ch))
    return out


def macs(c, n, h, kh, kw, groups):
    return n * (c // groups) * kh * kw * h * h


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compressor", default=os.path.join(here, "..", ".build", "release", "compressor"))
    parser.add_argument("--seconds", type=float, default=0.25, help="bench --seconds per configuration")
    parser.add_argument("--out", default=os.path.join(here, "..", "out", "factor-shapes"))
    parser.add_argument("--only", default="", help="run only shapes whose label contains this")
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for i, (label, kind, c, n, h, kh, kw, groups) in enumerate(shapes()):
        if args.only not in label:
            continue
        path = os.path.join(args.out, label.replace(" ", "_").replace(">", "").replace("@", "s") + ".onnx")
        with open(path, "wb") as f:
            f.write(conv_model(c, n, h, h, kh, kw, groups, seed=i))
        report = json.loads(subprocess.run(
            [args.compressor, "bench", path, "--batch", "1,64", "--threads", "1", "--layers", "--json",
             "--seconds", str(args.seconds), "--repetitions", "5"],
            check=True, capture_output=True, text=True).stdout)
        times = {}
        for detail in report["details"]:
            profile = detail["layers"]
            step = next(s for s in profile["steps"] if s["node"] == "conv")
            # Layout conversions of the conv's input (not of the model's output).
            reorder = sum(s["minMs"] for s in profile["steps"] if s["node"].startswith("p#"))
            times[profile["batch"]] = (step["minMs"], step["kernel"], reorder)
        rows.append(dict(label=label, kind=kind, size=h, macs=macs(c, n, h, kh, kw, groups),
                         ms1=times[1][0], ms64=times[64][0], kernel=times[1][1],
                         reorder1=times[1][2], reorder64=times[64][2]))
        print(f"{label}: {times}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print_table(rows)


def print_table(rows):
    # The reference per spatial size: ns per MAC of its 3x3 convs (the mean if several).
    reference = {}
    for batch in (1, 64):
        for size in REFERENCES:
            refs = [r[f"ms{batch}"] / (r["macs"] * batch) for r in rows if r["kind"] == "3x3" and r["size"] == size]
            if refs:
                reference[(batch, size)] = sum(refs) / len(refs)
    print("| shape | kernel | MMAC/image | b1 ms | b1 GMAC/s | b1 vs 3x3 | b64 ms | b64 GMAC/s | b64 vs 3x3"
          " | b64 input reorder ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cells = [r["label"], r["kernel"], f"{r['macs'] / 1e6:.2f}"]
        for batch in (1, 64):
            ms = r[f"ms{batch}"]
            per_mac = ms / (r["macs"] * batch)
            ref = reference.get((batch, r["size"]))
            cells += [f"{ms:.3f}", f"{r['macs'] * batch / ms / 1e6:.1f}", f"{per_mac / ref:.2f}x" if ref else ""]
        cells.append(f"{r['reorder64']:.3f}" if r["reorder64"] else "")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
