#!/usr/bin/env python3
"""QDQ ONNX export check: int8 models written by `compressor convert` are valid ONNX,
compute in onnxruntime what compressor computes, and run on onnxruntime's integer kernels.

Each case quantizes a shipped model (models/NAME.bin) with `compressor quantize`, exports it
with `compressor convert`, and checks on the first --images Fashion-MNIST test images
(pixels scaled by float32(1/255) as `compressor eval` does):

  (e) onnx.checker.check_model(full_check=True) and strict shape inference pass; the graph
      has one QuantizeLinear + DequantizeLinear pair per activation quantizer and int8
      weights / int32 biases behind DequantizeLinear.
  (a) onnxruntime with graph optimizations disabled (ORT_DISABLE_ALL: the Q/DQ nodes run as
      written) against `compressor predict` on the same .bin. Both compute every layer in
      float32 on dequantized values, but in different summation orders, so a value that
      lands within a rounding error of a quantizer's half-step can round to the neighbouring
      integer in one and not the other; the step then propagates to the logits. Measured
      (commit of this script, 1,000 images): vgg-small 2.7% of images with such a flip
      (logits max |diff| 0.037), resnet20 11.5% (0.11), lenet5 0.1% (0.012), weights-only
      lenet300 none (1.8e-5). So the tolerance is:
        - an image "agrees to float tolerance" when max |ort - ours| <= 1e-4 + 1e-4 max |ours|;
          weights-only models (no activation quantizer, nothing to flip) must agree on every
          image; quantized ones on at least MIN_FLOAT_AGREEMENT of them;
        - logits max |diff| <= MAX_LOGIT_DIFF on every image;
        - the top-1 class agrees on every image whose top-2 margin exceeds 2 x MAX_LOGIT_DIFF
          (measured: on every image).
  (b) onnxruntime with all optimizations (ORT_ENABLE_ALL) saves its optimized model
      (SessionOptions.optimized_model_filepath); every Conv and Gemm that reads a
      DequantizeLinear activation must have become an integer kernel (QLinearConv, QGemm, or
      ConvInteger / MatMulInteger / QLinearMatMul / MatMulIntegerToFloat), and no
      DequantizeLinear of an activation is left. The op types are printed.
  (c) per layer (Conv, Gemm, Add, pools on DequantizeLinear inputs): the layer's QDQ group is
      cut out (onnx.utils.Extractor: inputs = the integers its DequantizeLinear nodes read,
      output = the integers of its QuantizeLinear, or the float output of the logits Gemm), fed
      the integers the unoptimized full model computes on the first LAYER_IMAGES images, and
      run unoptimized and optimized: the optimized graph must hold the integer kernel, and the
      integers may differ by at most one quantization step (float outputs: 1e-4 relative).
  (d) top-1 of the optimized model on the --images test images within MAX_TOP1_POINTS points of
      `compressor eval --limit N` on the same .bin.

Needs numpy, onnx and onnxruntime. Usage:
    python Tests/onnx/check_qdq.py --compressor .build/debug/compressor --work /tmp/qdq-check
    python Tests/onnx/check_qdq.py --compressor .build/release/compressor --work /tmp/q --images 10000 \\
        --calibration-images 512   # the numbers of docs/quantization.md
Prints what each check measured and `qdq export check: N passed, M failed`; exits 1 on any failure.
"""
import argparse
import collections
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.utils
import onnxruntime as ort

from check_support import DATA, idx, images, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (label, shipped model, quantize options besides --format int8 and --calibration-images)
CASES = [
    ("vgg-small int8", "vgg-small", []),
    ("resnet20 int8", "resnet20", []),
    ("lenet5 s8 act, per-tensor w", "lenet5", ["--activations", "int8", "--weights", "per-tensor"]),
    ("lenet300 weights only", "lenet300", ["--activations", "none"]),
]

FLOAT_ABS, FLOAT_REL = 1e-4, 1e-4
MIN_FLOAT_AGREEMENT = 0.75
MAX_LOGIT_DIFF = 0.5
MAX_LAYER_STEPS = 1
MAX_TOP1_POINTS = 0.1
LAYER_IMAGES = 32
BATCH = 256

# Float op -> the integer kernels onnxruntime may turn its QDQ group into.
INTEGER_FORMS = {
    "Conv": {"QLinearConv", "ConvInteger"},
    "Gemm": {"QGemm", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat"},
    "MatMul": {"QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat"},
    "Add": {"QLinearAdd"},
    "Mul": {"QLinearMul"},
    "AveragePool": {"QLinearAveragePool"},
    "GlobalAveragePool": {"QLinearGlobalAveragePool"},
    "Concat": {"QLinearConcat"},
    "MaxPool": {"MaxPool", "NhwcMaxPool"},
}


def test_images(n):
    """The first n test images as float32 pixels, scaled like compressor's loader, and labels."""
    labels = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))[:n]
    return images("t10k-images-idx3-ubyte.gz", n), labels.astype(np.int64)


def session(path, optimize, optimized_path=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_batches(sess, x):
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])


class QDQGraph:
    """The exported graph's nodes by output, readers and the layers on DequantizeLinear inputs."""

    def __init__(self, model):
        self.model = model
        g = model.graph
        self.initializers = {t.name for t in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.readers = collections.defaultdict(list)
        for n in g.node:
            for i in n.input:
                self.readers[i].append(n)

    def scale(self, q_or_dq):
        """The scalar scale of a QuantizeLinear or DequantizeLinear node."""
        t = next(t for t in self.model.graph.initializer if t.name == q_or_dq.input[1])
        return float(onnx.numpy_helper.to_array(t))

    def activation_inputs(self, node):
        """(quantizer input, dequantized value) for every activation input of node: node reads the value from a
        DequantizeLinear of a QuantizeLinear that reads the quantizer input. None if an input is not quantized."""
        pairs = []
        for value in node.input:
            if value == "" or value in self.initializers:
                continue
            dq = self.producer.get(value)
            if dq is None or dq.op_type != "DequantizeLinear":
                return None
            if dq.input[0] in self.initializers:
                continue
            q = self.producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear":
                return None
            pairs.append((q.input[0], value))
        return pairs

    def layers(self):
        """(node, activation inputs, output, step) for every layer of INTEGER_FORMS on quantized inputs: output is the
        DequantizeLinear after the layer's QuantizeLinear, step its scale; or the float output (step None)."""
        found = []
        for n in self.model.graph.node:
            if n.op_type not in INTEGER_FORMS:
                continue
            inputs = self.activation_inputs(n)
            if not inputs:
                continue
            out = n.output[0]
            users = self.readers[out]
            if len(users) == 1 and users[0].op_type in ("Relu", "Clip"):
                out = users[0].output[0]
                users = self.readers[out]
            dqs = self.readers[users[0].output[0]] if len(users) == 1 and users[0].op_type == "QuantizeLinear" else []
            if len(dqs) == 1 and dqs[0].op_type == "DequantizeLinear":
                found.append((n, inputs, dqs[0].output[0], self.scale(users[0])))
            else:
                found.append((n, inputs, n.output[0], None))
        return found


def with_outputs(model, names):
    """A copy of the shape-inferred model that also outputs the values `names`."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    have = {o.name for o in inferred.graph.output}
    for name in names:
        if name not in have:
            inferred.graph.output.append(infos[name])
            have.add(name)
    return inferred


def check_structure(model, qdq_model_bin_info):
    """(e): checker, strict shape inference, and counts of the Q/DQ pieces."""
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = model.graph
    ops = collections.Counter(n.op_type for n in g.node)
    types = {t.name: t.data_type for t in g.initializer}
    dq_of = [n.input[0] for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in types]
    int8 = sum(1 for t in dq_of if types[t] in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8))
    int32 = sum(1 for t in dq_of if types[t] == onnx.TensorProto.INT32)
    quantizers, weights = qdq_model_bin_info
    assert ops["QuantizeLinear"] >= quantizers, f"{ops['QuantizeLinear']} QuantizeLinear for {quantizers} quantizers"
    assert int8 == weights, f"{int8} int8 initializers behind DequantizeLinear, the model has {weights} int8 tensors"
    if quantizers == 0:
        assert int32 == 0 and ops["QuantizeLinear"] == 0, "a weights-only model must keep float biases and activations"
    return ops, int8, int32


def check_unoptimized(ours, theirs, quantized):
    """(a): returns (images agreeing to float tolerance, max |diff|, top-1 agreements, images)."""
    diff = np.abs(theirs.astype(np.float64) - ours).max(axis=1)
    tol = FLOAT_ABS + FLOAT_REL * np.abs(ours).max(axis=1)
    agree = int((diff <= tol).sum())
    n = len(ours)
    top2 = np.sort(ours, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * MAX_LOGIT_DIFF
    same = ours.argmax(1) == theirs.argmax(1)
    if not quantized:
        assert agree == n, f"weights-only: {n - agree} image(s) beyond float tolerance (max |diff| {diff.max():.3g})"
    assert agree >= MIN_FLOAT_AGREEMENT * n, f"only {agree}/{n} images agree to float tolerance"
    assert diff.max() <= MAX_LOGIT_DIFF, f"logits differ by {diff.max():.3g} > {MAX_LOGIT_DIFF}"
    assert same[clear].all(), f"top-1 differs on {int((~same[clear]).sum())} image(s) with a clear margin"
    return agree, float(diff.max()), int(same.sum()), n


def check_optimized_ops(graph, optimized):
    """(b): every quantized Conv/Gemm became an integer kernel. Returns the op counts."""
    ops = collections.Counter(n.op_type for n in optimized.graph.node)
    for op in ("Conv", "Gemm", "MatMul"):
        quantized = sum(1 for n, _, _, _ in graph.layers() if n.op_type == op)
        integer = sum(ops[o] for o in INTEGER_FORMS[op])
        assert integer >= quantized, f"{quantized} quantized {op} but {integer} integer kernels: {dict(ops)}"
        if quantized:
            assert ops[op] == 0, f"{ops[op]} float {op} left next to {integer} integer kernels: {dict(ops)}"
    if graph.layers():
        assert ops["DequantizeLinear"] == 0, f"{ops['DequantizeLinear']} DequantizeLinear left: {dict(ops)}"
    return ops


def check_layers(graph, model, x, work):
    """(c): per layer, optimized vs unoptimized within one step. Returns (layers, max steps, integers off, integers).

    Each layer's graph starts at the QuantizeLinear of each input, fed the dequantized values (on the grid, so both
    runs quantize them to the same integers; with int8 activations onnxruntime's x86 optimizer needs the Q/DQ pair
    to convert them to uint8), and ends at the DequantizeLinear after the layer's QuantizeLinear."""
    layers = graph.layers()
    if not layers:
        return 0, 0, 0, 0
    names = sorted({v for _, inputs, _, _ in layers for _, v in inputs} | {o for _, _, o, _ in layers})
    full = with_outputs(model, names)
    path = os.path.join(work, "with_outputs.onnx")
    onnx.save(full, path)
    sess = session(path, optimize=False)
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    extractor = onnx.utils.Extractor(full)
    worst, off, total = 0, 0, 0
    for node, inputs, output, step in layers:
        sources = sorted({source for source, _ in inputs})
        sub = extractor.extract_model(sources, [output])
        sub_path = os.path.join(work, "layer.onnx")
        opt_path = os.path.join(work, "layer.opt.onnx")
        onnx.save(sub, sub_path)
        feeds = {source: values[v] for source, v in inputs}
        plain = session(sub_path, optimize=False).run(None, feeds)[0]
        fast = session(sub_path, optimize=True, optimized_path=opt_path).run(None, feeds)[0]
        kernels = {n.op_type for n in onnx.load(opt_path).graph.node}
        assert kernels & INTEGER_FORMS[node.op_type], f"{node.name}: optimized layer has {sorted(kernels)}"
        assert node.op_type not in kernels or node.op_type == "MaxPool", \
            f"{node.name}: optimized layer keeps a float {node.op_type}: {sorted(kernels)}"
        if step is not None:
            steps = np.rint(np.abs(plain.astype(np.float64) - fast) / step).astype(np.int64)
            assert steps.max() <= MAX_LAYER_STEPS, f"{node.name}: optimized differs by {steps.max()} steps"
            worst = max(worst, int(steps.max()))
            off += int((steps > 0).sum())
            total += steps.size
        else:
            err = np.abs(plain.astype(np.float64) - fast).max()
            assert err <= 1e-4 * max(1.0, np.abs(plain).max()), f"{node.name}: float output differs by {err:.3g}"
    return len(layers), worst, off, total


def quantized_counts(compressor, model_bin):
    """(activation quantizers, int8 tensors) from `compressor info --json`."""
    info = json.loads(run([compressor, "info", model_bin, "--json"]))
    text = json.dumps(info)
    quantizers = text.count('"QuantizeDequantize"')
    precisions = info.get("precisions") or info.get("storage", {}).get("precisions") or []
    weights = sum(1 for p in precisions if "int8" in json.dumps(p))
    return quantizers, weights


def check_case(args, label, source, options, x, labels, work):
    model_bin = os.path.join(work, source + ".int8.bin")
    model_onnx = os.path.join(work, source + ".int8.onnx")
    run([args.compressor, "quantize", os.path.join(ROOT, "models", source + ".bin"), "-o", model_bin, "--format", "int8",
         "--calibration-images", str(args.calibration_images)] + options)
    run([args.compressor, "convert", model_bin, "-o", model_onnx])
    model = onnx.load(model_onnx)
    counts = quantized_counts(args.compressor, model_bin)
    ops, int8, int32 = check_structure(model, counts)
    quantized = counts[0] > 0
    print(f"      (e) checker ok; {ops['QuantizeLinear']} QuantizeLinear, {ops['DequantizeLinear']} DequantizeLinear, "
          f"{int8} int8 and {int32} int32 initializers")

    np.save(os.path.join(work, "x.npy"), x)
    run([args.compressor, "predict", model_bin, os.path.join(work, "x.npy"), "-o", os.path.join(work, "y.npy")])
    ours = np.load(os.path.join(work, "y.npy"))
    plain = run_batches(session(model_onnx, optimize=False), x)
    agree, worst, top1, n = check_unoptimized(ours, plain, quantized)
    print(f"      (a) unoptimized: {agree}/{n} images to float tolerance ({n - agree} with a quantizer flip), "
          f"logits max |diff| {worst:.3g}, top-1 agrees on {top1}/{n}")

    opt_path = os.path.join(work, source + ".int8.opt.onnx")
    fast_session = session(model_onnx, optimize=True, optimized_path=opt_path)
    graph = QDQGraph(model)
    opt_ops = check_optimized_ops(graph, onnx.load(opt_path))
    print(f"      (b) optimized ops: {', '.join(f'{k} {v}' for k, v in sorted(opt_ops.items()))}")

    layers, steps, off, total = check_layers(graph, model, x[:LAYER_IMAGES], work)
    if layers:
        print(f"      (c) {layers} layers on {LAYER_IMAGES} images: optimized within {steps} step(s) of unoptimized, "
              f"{off} of {total} integers off by one")

    fast = run_batches(fast_session, x)
    ort_top1 = float((fast.argmax(1) == labels).mean())
    ours_top1 = json.loads(run([args.compressor, "eval", model_bin, "--limit", str(len(x)), "--json"]))["top1"]
    gap = 100 * abs(ort_top1 - ours_top1)
    assert gap <= MAX_TOP1_POINTS + 1e-9, f"top-1 onnxruntime {ort_top1:.4f} vs compressor eval {ours_top1:.4f}"
    fast_diff = float(np.abs(fast.astype(np.float64) - ours).max())
    print(f"      (d) top-1 on {len(x)} test images: onnxruntime optimized {100 * ort_top1:.2f}%, "
          f"compressor eval {100 * ours_top1:.2f}% (logits max |diff| vs ours {fast_diff:.3g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compressor", required=True, help="path of the compressor binary")
    ap.add_argument("--work", required=True, help="directory for models and arrays (created)")
    ap.add_argument("--images", type=int, default=1000, help="test images for (a) and (d)")
    ap.add_argument("--calibration-images", type=int, default=64, help="quantize --calibration-images")
    ap.add_argument("--only", help="run only the cases whose label contains this")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    x, labels = test_images(args.images)
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    passed = failed = 0
    for label, source, options in CASES:
        if args.only and args.only not in label:
            continue
        print(f"case  {label}")
        try:
            check_case(args, label, source, options, x, labels, args.work)
            print(f"ok    {label}")
            passed += 1
        except Exception as e:  # one line per failure, then go on with the next case
            print(f"FAIL  {label}: {type(e).__name__}: {e}")
            failed += 1
    print(f"qdq export check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
