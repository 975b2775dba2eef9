#!/usr/bin/env python3
"""Checks an ONNX model written by genie_run export and evaluates it in ONNX Runtime.

The file is a QuantizeLinear / DequantizeLinear network: one input "input" (float32 N x C x H x W,
images already normalized, (x / 255 - mean) / std per channel) and one output "logits" (float32
N x classes); its metadata_props hold input_mean and input_std (comma-separated, one value per
channel) and input_shape ("C,H,W"). This script checks the file with onnx.checker (full check),
runs it with ONNX Runtime's CPU provider and reports top-1: genie's accuracy reproduced by a
runtime that shares no code with it.

    tools/onnx_run.py out/demo/model.onnx --eval fashion-mnist
    tools/onnx_run.py out/demo/model.onnx --eval data.h5 --limit 1000 --json --logits out.h5
    tools/onnx_run.py --selftest-rounding          # ORT's QuantizeLinear: half to even, saturates

--eval takes fashion-mnist[:test|:train] (the idx files in /usr/share/datasets/fashion-mnist) or
an HDF5 file with `images` (N x C x H x W: float32 in the model's normalized space unless the
dataset or the file has the attribute normalized = 0, or uint8 pixels) and `labels`.
Exit codes: 0 ok, 1 the rounding self-test failed, 2 an error (message on stderr), 3 a Python
package is missing. Needs onnx, onnxruntime and numpy; h5py for HDF5 input and --logits.
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from fashion_mnist import FASHION_MNIST, read_idx
except ImportError as _e:
    _MISSING = _e.name or str(_e)
else:
    _MISSING = None


class Missing(Exception):
    """A Python package this run needs is not installed (exit code 3)."""


class Failed(Exception):
    """An error, with its message (exit code 2)."""


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise Missing(e.name or "h5py") from e
    return h5py


def _floats(meta, key):
    if key not in meta:
        raise ValueError(f"the model has no {key} metadata to normalize the images with")
    try:
        return np.array([float(v) for v in meta[key].split(",")], dtype=np.float32)
    except ValueError:
        raise ValueError(f"metadata {key} '{meta[key]}': not comma-separated numbers") from None


def dataset(src, meta, limit):
    """(images normalized like genie's evaluation, float32 contiguous; labels, int64) of
    fashion-mnist[:test|:train] or an HDF5 file with `images` and `labels`."""
    if src.startswith("fashion-mnist"):
        split = src.partition(":")[2] or "test"
        if src.partition(":")[0] != "fashion-mnist" or split not in ("test", "train"):
            raise ValueError("expected fashion-mnist[:test|:train] or an HDF5 file")
        prefix = {"test": "t10k", "train": "train"}[split]
        x = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-labels-idx1-ubyte.gz"))
        x, y = x[:limit or None, None], y[:limit or None]
        pixels = True
    else:
        with _h5py().File(src, "r") as f:
            x = np.asarray(f["images"][:limit or None])
            y = np.asarray(f["labels"][:limit or None])
            # float32 images are in the model's normalized space unless marked normalized = 0
            norm = f["images"].attrs.get("normalized", f.attrs.get("normalized", 1))
        if x.ndim != 4:
            raise ValueError(f"images: expected N x C x H x W, got shape {list(x.shape)}")
        pixels = x.dtype == np.uint8
        if not pixels and int(norm):
            return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)
    x = x.astype(np.float32)
    if pixels:
        x /= np.float32(255.0)
    mean, std = _floats(meta, "input_mean"), _floats(meta, "input_std")
    if len(mean) not in (1, x.shape[1]) or len(std) not in (1, x.shape[1]):
        raise ValueError(f"input_mean / input_std have {len(mean)} / {len(std)} values for "
                         f"{x.shape[1]} image channels")
    x = (x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)


def selftest_rounding():
    """Runs QuantizeLinear -> DequantizeLinear (scale 1, zero point 0) in ORT with an int8 and an
    INT4 zero point: rounding must be half to even and out-of-range values must saturate."""
    x = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 200.0, -200.0]
    cases = [("int8", TensorProto.INT8, [-2, -2, -0, 0, 2, 2, 4, 127, -128]),
             ("int4", TensorProto.INT4, [-2, -2, -0, 0, 2, 2, 4, 7, -8])]
    results = []
    for name, qtype, want in cases:
        nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"])]
        graph = helper.make_graph(
            nodes, f"rounding_{name}",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(x)])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(x)])],
            [helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0]),
             helper.make_tensor("zero", qtype, [], [0])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        model.ir_version = 10
        r = {"zero_point": name, "input": x, "expected": [float(v) for v in want]}
        try:
            onnx.checker.check_model(model, full_check=True)
            sess = ort.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
            r["got"] = sess.run(None, {"x": np.array(x, dtype=np.float32)})[0].tolist()
        except Exception as e:  # e.g. a runtime without INT4 QuantizeLinear
            r["error"] = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        r["ok"] = r.get("got") == want
        results.append(r)
    return {"rounding": "half_to_even", "ok": all(r["ok"] for r in results), "opset": 21,
            "onnxruntime": ort.__version__, "cases": results}


def evaluate(a):
    """Checks and runs a.model on a.eval; returns the result dict."""
    try:
        model = onnx.load(a.model)
    except Exception as e:  # OSError, protobuf DecodeError, ...
        raise Failed(str(e) if a.model in str(e) else f"{a.model}: {e}") from None
    if not a.no_check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # ValidationError, InferenceError
            raise Failed(f"{a.model}: onnx.checker: {e}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    opts = ort.SessionOptions()
    if a.threads > 0:
        opts.intra_op_num_threads = a.threads
    level = "disable" if a.no_optimize else a.level
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"],
                                    disabled_optimizers=a.disable_optimizer or None)
    except Exception as e:
        raise Failed(f"{a.model}: ONNX Runtime: {e}") from None
    ins, outs = [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    if len(ins) != 1:
        raise Failed(f"{a.model}: expected one graph input, got {ins}")
    out = "logits" if "logits" in outs else outs[0]
    try:
        x, y = dataset(a.eval, meta, a.limit)
    except (OSError, KeyError, ValueError) as e:
        raise Failed(f"--eval {a.eval}: {e}") from None
    if len(y) == 0 or len(y) != len(x):
        raise Failed(f"--eval {a.eval}: {len(x)} images and {len(y)} labels")
    shape = meta.get("input_shape")
    if shape and shape.replace(" ", "") != ",".join(str(d) for d in x.shape[1:]):
        raise Failed(f"--eval {a.eval}: images are {list(x.shape[1:])}, the model's input_shape "
                     f"is {shape}")
    parts = []
    try:
        for i in range(0, len(x), a.batch):
            parts.append(np.asarray(sess.run([out], {ins[0]: x[i:i + a.batch]})[0], np.float32))
    except Exception as e:
        raise Failed(f"{a.model}: ONNX Runtime: {e}") from None
    logits = np.concatenate(parts)
    if logits.ndim != 2 or len(logits) != len(y):
        raise Failed(f"{a.model}: output {out} has shape {list(logits.shape)}, expected "
                     f"[{len(y)}, classes]")
    pred = logits.argmax(1)
    if a.logits:
        write_logits(a.logits, logits, pred, y)
    return {"model": a.model, "eval": a.eval, "images": len(y),
            "top1": int((pred == y).sum()) / len(y), "onnxruntime": ort.__version__,
            "onnx": onnx.__version__, "opset": opset, "ir_version": model.ir_version,
            "checked": not a.no_check, "level": "disable" if a.no_optimize else a.level,
            "disabled_optimizers": a.disable_optimizer or []}


def write_logits(path, logits, pred, y):
    """`logits`, `predictions` and `labels` in an HDF5 file written under a temporary name in
    the same folder, then renamed: never half-written."""
    h5py = _h5py()
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f["logits"] = logits.astype(np.float32)
            f["predictions"] = pred.astype(np.int32)
            f["labels"] = y.astype(np.int32)
        os.replace(tmp, path)
    except (OSError, ValueError) as e:
        raise Failed(f"--logits {path}: {e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", help="model.onnx written by genie_run export")
    p.add_argument("--eval", default="fashion-mnist",
                   help="fashion-mnist[:test|:train] (default) or an HDF5 file with images, labels")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (default: ORT's)")
    p.add_argument("--logits", help="write an HDF5 file with `logits` (N x classes, float32), "
                   "`predictions` and `labels` (N, int32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-check", action="store_true", help="skip onnx.checker.check_model")
    p.add_argument("--no-optimize", action="store_true", help="the same as --level disable")
    p.add_argument("--level", choices=["all", "extended", "basic", "disable"], default="all",
                   help="ORT graph optimization level (default all, ORT's default); models "
                   "exported with --act-storage narrow (4-/2-bit activation pairs) run in ORT "
                   "1.32 at basic or below")
    p.add_argument("--disable-optimizer", action="append", metavar="NAME",
                   help="turn one ORT graph optimizer off (repeatable); WeightBiasQuantization "
                   "keeps float biases as they are instead of rounding them to int32 with scale "
                   "input scale x weight scale, which gives genie's own numerics")
    p.add_argument("--selftest-rounding", action="store_true",
                   help="check ORT's QuantizeLinear rounding (half to even) and saturation "
                   "(int8, INT4); MODEL is then optional")
    a = p.parse_args(argv)
    if a.model is None and not a.selftest_rounding:
        p.error("MODEL is required (unless --selftest-rounding)")
    if a.batch <= 0 or a.limit < 0:
        p.error("--batch must be > 0 and --limit >= 0")
    if _MISSING:
        print(f"onnx_run: Python package '{_MISSING}' is not installed "
              "(needs onnx, onnxruntime, numpy)", file=sys.stderr)
        return 3
    r, rc = {}, 0
    try:
        if a.selftest_rounding:
            st = selftest_rounding()
            rc = 0 if st["ok"] else 1
            if not a.json:
                for c in st["cases"]:
                    got = c.get("got", "error: " + c.get("error", ""))
                    print(f"QuantizeLinear/DequantizeLinear {c['zero_point']}: {c['input']} -> "
                          f"{got} ({'ok' if c['ok'] else 'expected ' + str(c['expected'])})")
                print(f"rounding self-test (ONNX Runtime {ort.__version__}, opset 21): "
                      f"{'ok, half to even' if st['ok'] else 'FAILED'}")
            if a.model is None:
                if a.json:
                    print(json.dumps(st))
                return rc
            r["selftest_rounding"] = st
        r = {**evaluate(a), **r}
    except Missing as e:
        print(f"onnx_run: Python package '{e}' is not installed (needed for HDF5 files)",
              file=sys.stderr)
        return 3
    except Failed as e:
        print(f"onnx_run: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{a.model}: top-1 {100 * r['top1']:.2f} % on {r['images']} images of {a.eval} "
              f"(ONNX Runtime {ort.__version__}, opset {r['opset']})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
