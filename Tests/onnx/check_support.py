"""What the ONNX check scripts share: running compressor, comparing its outputs with onnxruntime's, and
Fashion-MNIST pixels as compressor reads them."""
import gzip
import os
import subprocess

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
# compressor and onnxruntime agree to float32 tolerance: max |ort - compressor| <= ABS_TOL + REL_TOL * max |compressor|.
ABS_TOL = 1e-4
REL_TOL = 1e-4


def run(cmd):
    """Runs a command, raising with its stderr on failure; returns its stdout."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def idx(path):
    """An IDX array (gzip)."""
    with gzip.open(path) as f:
        b = f.read()
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(b[3])]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * b[3]).reshape(dims)


def images(name, count):
    """The first `count` images of the IDX file `name` in DATA as float32 [N, 1, 28, 28] pixels,
    scaled by float32(1/255) as compressor's loader scales them (`Float(pixel:)`)."""
    raw = idx(os.path.join(DATA, name))[:count]
    return (raw.astype(np.float32) * np.float32(1.0 / 255.0)).reshape(len(raw), 1, 28, 28)


def compare(compressor, model_bin, session, x, work):
    """Runs x through compressor predict and onnxruntime; returns (max abs, max rel) error."""
    x_path, y_path = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
    np.save(x_path, x)
    run([compressor, "predict", model_bin, x_path, "-o", y_path])
    ref = np.load(y_path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert got.shape == ref.shape, f"onnxruntime output {got.shape}, compressor {ref.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
    scale = float(np.max(np.abs(ref)))
    if err > ABS_TOL + REL_TOL * scale:
        raise AssertionError(f"batch {x.shape[0]}: max abs error {err:.3g} beyond tolerance (max |ref| {scale:.3g})")
    return err, err / max(scale, 1e-30)
