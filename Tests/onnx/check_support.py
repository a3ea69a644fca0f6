"""What the ONNX check scripts share: running compressor, and Fashion-MNIST pixels as compressor reads them."""
import gzip
import os
import subprocess

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


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
