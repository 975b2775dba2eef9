#!/usr/bin/python3
"""Writes tests/data/io/h5py_fixture.h5: what h5py produces for the shapes of data users bring.

Run with Debian's /usr/bin/python3 (h5py, numpy) from the repository root:
    /usr/bin/python3 tests/data/io/make_fixtures.py
The test (tests/test_io.cpp) hard-codes the values written here.
"""
import os

import h5py
import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h5py_fixture.h5")
with h5py.File(out, "w", track_order=False) as f:
    # nested groups, as in a torch state_dict saved with "/" separators
    f.create_dataset("layer1/0/conv1/weight", data=np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8)
    f.create_dataset("layer1/0/bn1/running_var", data=np.array([0.5, 1.5], dtype=np.float64))
    # flat dotted name next to it
    f.create_dataset("fc.bias", data=np.array([-1.25, 0.0, 3.5], dtype=np.float32))
    f.create_dataset("labels", data=np.array([3, 0, 9, 200], dtype=np.int64))
    f.create_dataset("codes", data=np.array([[-128, 127], [0, -1]], dtype=np.int8))
    f.create_dataset("pixels", data=np.array([0, 255, 17], dtype=np.uint8))
    f.create_dataset("scalar", data=np.float32(2.5))
    f.create_dataset("gz", data=np.linspace(-1, 1, 5000, dtype=np.float32), compression="gzip")
    f.attrs["arch"] = "tiny"                                 # variable-length UTF-8
    f.attrs["fixed"] = np.bytes_("fixed-len")                # fixed-length ASCII
    f.attrs["input_shape"] = np.array([3, 8, 8], dtype=np.int32)
    f.attrs["input_mean"] = np.array([0.5, 0.25, 0.125])   # float64
    f.attrs["num_classes"] = 10                             # int64 scalar
    f.attrs["normalized"] = True                            # numpy bool → int8 enum
    f.attrs["ratio"] = np.float32(0.75)
    f.attrs["whole"] = np.array([4.0, -2.0])                # float64 holding integers
    f["fc.bias"].attrs["note"] = "bias"
    f["layer1/0/conv1/weight"].attrs["scale"] = np.array([1.5, 2.5], dtype=np.float32)
print(out, os.path.getsize(out), "bytes")
