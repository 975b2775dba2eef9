#!/usr/bin/python3
"""Loads a genie quantized model (quantized.h5) into PyTorch and evaluates it.

The file is the integer model genie_run writes (engine/qmodel.h): int8 weight codes with per-channel
steps and zero points, one step per activation quantizer with the inputs it applies to, FP32
biases and BatchNorm, and the model graph. This script rebuilds the same simulated-quantization
inference in PyTorch, independently of genie's code:

    weight    = (code - zero) * step                      (per output channel)
    input x   = round(clamp(x / s, qn, qp)) * s           (each listed consumer input;
                                                            qn, qp from bits and signedness)

so a user can run, check or deploy the quantized network with PyTorch, and so that genie's own
accuracy figure can be reproduced by a second implementation.

    tools/quantized_to_pytorch.py out/demo/quantized.h5 --eval fashion-mnist
    tools/quantized_to_pytorch.py out/demo/quantized.h5 --eval data.h5 --limit 1000 --json
    tools/quantized_to_pytorch.py out/demo/quantized.h5 --torchscript w4a4.pt   # torch.jit.load-able

From Python (sys.path.append("tools")): `from quantized_to_pytorch import load;
net = load("quantized.h5")` gives a torch.nn.Module taking normalized N x C x H x W float32
images (net.mean / net.std hold the normalization) and returning logits.
Needs PyTorch and h5py (Debian: python3-torch python3-h5py).
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from fashion_mnist import FASHION_MNIST, read_idx



class QuantizedNet(torch.nn.Module):
    """The graph of a genie quantized model file, with its weights dequantized from the integer
    codes and its activation quantizers applied to the inputs the file lists."""

    def __init__(self, path):
        super().__init__()
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", b"")
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            if fmt != "genie-qmodel-1":
                raise ValueError(f"{path}: expected a genie quantized model (format genie-qmodel-1), "
                                 f"got format '{fmt}'")
            if int(f.attrs.get("checkpoint", 0)):
                raise ValueError(f"{path}: a resume checkpoint, not a finished quantized model")
            graph = json.loads(_str(f.attrs["graph"]))
            if graph.get("format") != "genie-graph-1":
                raise ValueError(f"{path}: expected graph format genie-graph-1")
            self.nodes = graph["nodes"]
            self.output = graph.get("output", -1)
            if self.output < 0:
                self.output = len(self.nodes) - 1
            self.settings = json.loads(_str(f.attrs["settings"]))
            self.input_shape = tuple(int(v) for v in f.attrs["input_shape"])
            self.mean = [float(v) for v in f.attrs["input_mean"]]
            self.std = [float(v) for v in f.attrs["input_std"]]
            self.params = {}
            for key in f:
                if key.startswith("param."):
                    self.params[key[len("param."):]] = torch.from_numpy(
                        np.asarray(f[key], dtype=np.float32))
            for node in self.nodes:
                if node["op"] not in ("conv", "linear"):
                    continue
                name = node["name"]
                codes = f[name + ".weight_codes"]
                offset = int(codes.attrs["code_offset"])
                c = torch.from_numpy(np.asarray(codes, dtype=np.int64) + offset).float()
                step = torch.from_numpy(np.asarray(f[name + ".weight_step"], dtype=np.float32))
                zero = torch.from_numpy(np.asarray(f[name + ".weight_zero"], dtype=np.float32))
                shape = (-1,) + (1,) * (c.dim() - 1)
                self.params[name + ".weight"] = (c - zero.view(shape)) * step.view(shape)
            # (node, input slot) -> (step, qn, qp)
            self.act = {}
            i = 0
            while f"act.{i}.step" in f:
                d = f[f"act.{i}.step"]
                if "consumers" not in d.attrs:
                    raise ValueError(f"{path}: activation quantizer {i} does not list its consumers "
                                     "(a file from genie before 2026-11-26: quantize again)")
                bits, signed = int(d.attrs["bits"]), bool(int(d.attrs["signed"]))
                qn = -(2 ** (bits - 1)) if signed else 0
                qp = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
                step = torch.tensor(float(np.asarray(d, dtype=np.float32).reshape(-1)[0]))
                cons = [int(v) for v in d.attrs["consumers"]]
                for node, slot in zip(cons[0::2], cons[1::2]):
                    self.act[(node, slot)] = (step, float(qn), float(qp))
                i += 1
        for k, v in self.params.items():
            self.register_buffer(k.replace(".", "__"), v, persistent=False)

    def _p(self, name, what):
        return self.params.get(f"{name}.{what}")

    def forward(self, x):
        vals = []
        for i, n in enumerate(self.nodes):
            ins = [x if j < 0 else vals[j] for j in n["inputs"]]
            for k in range(len(ins)):
                q = self.act.get((i, k))
                if q is not None:
                    s, qn, qp = q
                    ins[k] = torch.round(torch.clamp(ins[k] / s, qn, qp)) * s
            op, name = n["op"], n.get("name", "")
            a = ins[0]
            if op == "conv":
                y = F.conv2d(a, self._p(name, "weight"), self._p(name, "bias") if n.get("bias") else None,
                             n.get("stride", 1), n.get("pad", 0), 1, n.get("groups", 1))
            elif op == "linear":
                y = F.linear(a, self._p(name, "weight"), self._p(name, "bias") if n.get("bias") else None)
            elif op == "bn":
                affine = n.get("affine", True)
                y = F.batch_norm(a, self._p(name, "running_mean"), self._p(name, "running_var"),
                                 self._p(name, "weight") if affine else None,
                                 self._p(name, "bias") if affine else None, False, 0.0,
                                 n.get("eps", 1e-5))
            elif op == "relu":
                y = F.relu(a)
            elif op == "relu6":
                y = F.hardtanh(a, 0.0, 6.0)
            elif op == "leaky_relu":
                y = F.leaky_relu(a, n.get("slope", 0.0))
            elif op == "identity":
                y = a
            elif op == "add":
                y = ins[0] + ins[1]
            elif op in ACTIVATIONS:
                y = ACTIVATIONS[op](a)
            elif op == "mul":
                y = ins[0] * ins[1]
            elif op == "concat":
                y = torch.cat(ins, 1)
            elif op == "slice":
                y = a[:, n.get("start", 0):n.get("start", 0) + n["out"]]
            elif op == "shuffle":
                g = n.get("groups", 1)
                s = a.shape
                y = a.reshape(s[0], g, s[1] // g, *s[2:]).transpose(1, 2).reshape(s)
            elif op == "maxpool":
                y = F.max_pool2d(a, n["kernel"], n.get("stride", 1), n.get("pad", 0),
                                 ceil_mode=n.get("ceil_mode", False))
            elif op == "avgpool2d":
                y = F.avg_pool2d(a, n["kernel"], n.get("stride", 1), n.get("pad", 0),
                                 ceil_mode=n.get("ceil_mode", False),
                                 count_include_pad=n.get("count_include_pad", True))
            elif op == "adaptive_avgpool":
                y = F.adaptive_avg_pool2d(a, tuple(n["size"]))
            elif op == "avgpool":
                y = a.mean([2, 3], keepdim=bool(n.get("keepdim", False)))
            elif op == "pad":
                y = F.pad(a, tuple(n["pads"]))
            elif op == "flatten":
                y = a.flatten(1)
            else:
                raise ValueError(f"node {i} ({name}): op '{op}' is not known to this script")
            vals.append(y)
        return vals[self.output]


ACTIVATIONS = {"sigmoid": torch.sigmoid, "silu": F.silu, "hardswish": F.hardswish,
               "hardsigmoid": F.hardsigmoid, "gelu": F.gelu}


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    """The quantized model in `path` as a torch.nn.Module in eval mode."""
    return QuantizedNet(path).eval()


def save_torchscript(net, path, example):
    """Traces `net` on `example` and saves it to `path` (under a temporary name, then renamed);
    checks that the saved module reproduces the network's output on the example."""
    with torch.no_grad():
        traced = torch.jit.trace(net, example, check_trace=False)
        tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                           f".{os.path.basename(path)}.tmp-{os.getpid()}")
        try:
            traced.save(tmp)
            if not torch.equal(torch.jit.load(tmp)(example), net(example)):
                raise RuntimeError("the traced module does not reproduce the network")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def dataset(src, net):
    """(images normalized like genie's evaluation, labels) of fashion-mnist[:test|:train] or an
    HDF5 file with `images` (N x C x H x W, float32 in the model's normalized space, or uint8
    pixels) and `labels`."""
    if src.startswith("fashion-mnist"):
        split = src.partition(":")[2] or "test"
        prefix = {"test": "t10k", "train": "train"}[split]
        x = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-labels-idx1-ubyte.gz"))
        x = torch.from_numpy(x.astype(np.float32)).unsqueeze(1) / 255.0
    else:
        with h5py.File(src, "r") as f:
            x = np.asarray(f["images"])
            y = np.asarray(f["labels"])
            # float32 images are in the model's normalized space unless marked normalized = 0
            norm = f["images"].attrs.get("normalized", f.attrs.get("normalized", 1))
        if x.dtype == np.uint8:
            x = torch.from_numpy(x.astype(np.float32)) / 255.0
        elif int(norm):
            return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
        else:
            x = torch.from_numpy(x.astype(np.float32))
    mean = torch.tensor(net.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(net.std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std, torch.from_numpy(y.astype(np.int64))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="quantized.h5 written by genie_run quantize")
    p.add_argument("--eval", default="fashion-mnist",
                   help="fashion-mnist[:test|:train] (default) or an HDF5 file with images, labels")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--logits", help="write an HDF5 file with `logits` (N x classes, float32) and "
                   "`predictions` (N, int32)")
    p.add_argument("--torchscript", help="also save the model as TorchScript (torch.jit.load needs "
                   "neither genie nor this script)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        net = load(a.model)
    except (OSError, KeyError, ValueError) as e:
        msg = str(e) if a.model in str(e) else f"{a.model}: {e}"
        print(f"quantized_to_pytorch: {msg}", file=sys.stderr)
        return 2
    try:
        x, y = dataset(a.eval, net)
    except (OSError, KeyError, ValueError) as e:
        print(f"quantized_to_pytorch: --eval {a.eval}: {e}", file=sys.stderr)
        return 2
    if a.limit > 0:
        x, y = x[:a.limit], y[:a.limit]
    if a.torchscript:
        try:
            save_torchscript(net, a.torchscript, x[:2])
        except (OSError, RuntimeError) as e:
            print(f"quantized_to_pytorch: --torchscript {a.torchscript}: {e}", file=sys.stderr)
            return 2
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), a.batch):
            outs.append(net(x[i:i + a.batch]))
    logits = torch.cat(outs)
    pred = logits.argmax(1)
    top1 = int((pred == y).sum()) / len(y)
    if a.logits:  # written under a temporary name, then renamed: never half-written
        tmp = os.path.join(os.path.dirname(os.path.abspath(a.logits)),
                           f".{os.path.basename(a.logits)}.tmp-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as f:
                f["logits"] = logits.numpy().astype(np.float32)
                f["predictions"] = pred.numpy().astype(np.int32)
            os.replace(tmp, a.logits)
        except OSError as e:
            if os.path.exists(tmp):
                os.remove(tmp)
            print(f"quantized_to_pytorch: --logits {a.logits}: {e}", file=sys.stderr)
            return 2
    r = {"model": a.model, "eval": a.eval, "images": len(y), "top1": top1,
         "torch": torch.__version__, "settings": net.settings}
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{a.model}: top-1 {100 * top1:.2f} % on {len(y)} images of {a.eval} "
              f"(PyTorch {torch.__version__}, W{net.settings.get('wbits')}A{net.settings.get('abits')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
