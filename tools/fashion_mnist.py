"""The Fashion-MNIST files of Debian's dataset-fashion-mnist package, read with numpy alone
(shared by tools/quantized_to_pytorch.py and tools/onnx_run.py)."""
import gzip

import numpy as np

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An idx(.gz) array (the MNIST file format) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
