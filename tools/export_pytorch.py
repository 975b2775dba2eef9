#!/usr/bin/python3
"""Export a PyTorch CNN to genie's HDF5 weight format (io/model_file.h), with a graph description.

The module is traced with torch.fx into genie's graph JSON (models/graph.h): conv / bn / linear /
relu / relu6 / leaky_relu / add / maxpool / avgpool (global) / flatten / identity, each node named
by its module path (the state_dict prefix of its parameters). Nodes traced inside a residual block
(torchvision's BasicBlock, Bottleneck, InvertedResidual, ResBottleneckBlock, MnasNet's
_InvertedResidual, or any module path given in `blocks`) carry that block's path and kind, from which
genie derives its reconstruction units. Anything else (a custom op, dilation, ceil_mode pooling, …)
is an error naming the fx node, so a file is never written for a network genie would compute
differently.

Python API:
    export(module, path, arch=None, input_shape=(3, 224, 224), mean=None, std=None,
           num_classes=None, blocks=None, graph=True)
CLI (torchvision models; PyTorch is a tool here, never a dependency of the engine):
    /usr/bin/python3 tools/export_pytorch.py resnet18 out.h5 [--state-dict W.pth | --seed 0]
        [--input-shape 3 224 224] [--mean ...] [--std ...] [--num-classes 1000]
"""
import argparse
import json
import operator
import os
import sys

import h5py
import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

# Block classes (by class name, so torchvision's private classes need no import) → unit kind.
BLOCK_KINDS = {
    "BasicBlock": "basic_block",
    "Bottleneck": "bottleneck",
    "InvertedResidual": "inverted_residual",
    "ResBottleneckBlock": "regnet_block",
    "_InvertedResidual": "mnas_block",
}

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class ExportError(RuntimeError):
    pass


class _PathTracer(torch.fx.Tracer):
    """fx tracer that records, for every created node, the stack of module paths it was traced in."""

    def __init__(self):
        super().__init__()
        self._stack = []

    def call_module(self, m, forward, args, kwargs):
        self._stack.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._stack.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["genie_stack"] = list(self._stack)
        return node


def _pair(v, what, where):
    if isinstance(v, (tuple, list)):
        if len(v) != 2 or v[0] != v[1]:
            raise ExportError(f"{where}: expected a square {what}, got {v}")
        return int(v[0])
    return int(v)


def _is_global_pool_size(v):
    return v == 1 or tuple(v) == (1, 1) if isinstance(v, (int, tuple, list)) else False


def trace_graph(module, blocks=None):
    """Returns genie's graph description (a dict) for `module` in eval mode."""
    blocks = dict(blocks or {})
    modules = dict(module.named_modules())
    tracer = _PathTracer()
    fx_graph = tracer.trace(module)

    nodes = []      # genie nodes (dicts)
    index = {}      # fx node → genie index (-1 = input); None for non-tensor values (x.size(0))
    output = None

    def block_of(fx_node):
        for path in fx_node.meta.get("genie_stack", []):
            if path in blocks:
                return path, blocks[path]
            m = modules.get(path)
            if m is not None and type(m).__name__ in BLOCK_KINDS:
                return path, BLOCK_KINDS[type(m).__name__]
        return "", ""

    def tensor_input(fx_node, arg):
        if not isinstance(arg, torch.fx.Node) or index.get(arg, None) is None:
            raise ExportError(f"fx node '{fx_node.name}' ({fx_node.op} {fx_node.target}): expected a "
                              f"tensor input, got {arg!r}")
        return index[arg]

    def emit(fx_node, op, name, inputs, **fields):
        block, kind = block_of(fx_node)
        n = {"op": op, "name": name, "inputs": inputs}
        n.update(fields)
        if block:
            n["block"] = block
            n["block_kind"] = kind
        nodes.append(n)
        index[fx_node] = len(nodes) - 1

    def unsupported(fx_node, why=""):
        raise ExportError(f"fx node '{fx_node.name}' ({fx_node.op} {fx_node.target}) is not supported "
                          f"by genie's graph{': ' + why if why else ''}")

    seen_input = False
    for fx_node in fx_graph.nodes:
        op, tgt, args, kwargs = fx_node.op, fx_node.target, fx_node.args, fx_node.kwargs
        if op == "placeholder":
            if seen_input:
                unsupported(fx_node, "genie models take exactly one input tensor")
            seen_input = True
            index[fx_node] = -1
        elif op == "output":
            out = args[0]
            if not isinstance(out, torch.fx.Node):
                unsupported(fx_node, "expected a single output tensor")
            output = tensor_input(fx_node, out)
        elif op == "call_module":
            m = modules[tgt]
            where = f"module '{tgt}' ({type(m).__name__})"
            x = tensor_input(fx_node, args[0])
            if isinstance(m, nn.Conv2d):
                if _pair(m.dilation, "dilation", where) != 1:
                    raise ExportError(f"{where}: expected dilation 1, got {m.dilation}")
                if m.padding_mode != "zeros" or isinstance(m.padding, str):
                    raise ExportError(f"{where}: expected numeric zero padding, got {m.padding} "
                                      f"({m.padding_mode})")
                emit(fx_node, "conv", tgt, [x], **{
                    "in": m.in_channels, "out": m.out_channels,
                    "kernel": _pair(m.kernel_size, "kernel", where),
                    "stride": _pair(m.stride, "stride", where),
                    "pad": _pair(m.padding, "padding", where), "groups": m.groups,
                    "bias": m.bias is not None})
            elif isinstance(m, nn.BatchNorm2d):
                if not m.track_running_stats:
                    raise ExportError(f"{where}: expected running statistics (track_running_stats)")
                fields = {"out": m.num_features, "eps": float(m.eps)}
                if not m.affine:
                    fields["affine"] = False
                emit(fx_node, "bn", tgt, [x], **fields)
            elif isinstance(m, nn.Linear):
                emit(fx_node, "linear", tgt, [x], **{"in": m.in_features, "out": m.out_features,
                                                     "bias": m.bias is not None})
            elif isinstance(m, nn.ReLU):
                emit(fx_node, "relu", tgt, [x])
            elif isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and m.min_val == 0.0
                                             and m.max_val == 6.0):
                emit(fx_node, "relu6", tgt, [x])
            elif isinstance(m, nn.LeakyReLU):
                emit(fx_node, "leaky_relu", tgt, [x], slope=float(m.negative_slope))
            elif isinstance(m, nn.MaxPool2d):
                if m.ceil_mode or _pair(m.dilation, "dilation", where) != 1:
                    raise ExportError(f"{where}: expected floor mode and dilation 1")
                stride = m.stride if m.stride is not None else m.kernel_size
                emit(fx_node, "maxpool", tgt, [x], kernel=_pair(m.kernel_size, "kernel", where),
                     stride=_pair(stride, "stride", where), pad=_pair(m.padding, "padding", where))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                if not _is_global_pool_size(m.output_size):
                    raise ExportError(f"{where}: expected output size 1 (global pooling), got "
                                      f"{m.output_size}")
                emit(fx_node, "avgpool", tgt, [x])
            elif isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise ExportError(f"{where}: expected Flatten(1, -1)")
                emit(fx_node, "flatten", tgt, [x])
            elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
                emit(fx_node, "identity", tgt, [x])
            else:
                unsupported(fx_node, f"no genie op for {type(m).__name__}")
        elif op == "call_function":
            if tgt in (operator.add, operator.iadd, torch.add):
                if len(args) != 2 or kwargs:
                    unsupported(fx_node, "expected a + b")
                emit(fx_node, "add", "", [tensor_input(fx_node, args[0]), tensor_input(fx_node, args[1])])
            elif tgt in (F.relu, torch.relu):
                emit(fx_node, "relu", "", [tensor_input(fx_node, args[0])])
            elif tgt is F.relu6:
                emit(fx_node, "relu6", "", [tensor_input(fx_node, args[0])])
            elif tgt is torch.flatten:
                start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
                if start != 1 or (len(args) > 2 and args[2] != -1):
                    unsupported(fx_node, "expected torch.flatten(x, 1)")
                emit(fx_node, "flatten", "", [tensor_input(fx_node, args[0])])
            elif tgt is F.adaptive_avg_pool2d:
                size = args[1] if len(args) > 1 else kwargs.get("output_size")
                if not _is_global_pool_size(size):
                    unsupported(fx_node, "expected output size 1")
                emit(fx_node, "avgpool", "", [tensor_input(fx_node, args[0])])
            elif tgt is F.dropout:
                emit(fx_node, "identity", "", [tensor_input(fx_node, args[0])])
            elif tgt is torch.mean:
                dims = args[1] if len(args) > 1 else kwargs.get("dim")
                if sorted(int(d) % 4 for d in dims) != [2, 3] or kwargs.get("keepdim", False):
                    unsupported(fx_node, "expected mean over dims [2, 3]")
                emit(fx_node, "avgpool", "", [tensor_input(fx_node, args[0])])
            else:
                unsupported(fx_node)
        elif op == "call_method":
            x = args[0]
            if tgt == "size":
                index[fx_node] = None  # a shape value (x.size(0) for view); not a tensor
            elif tgt == "mean":
                dims = args[1] if len(args) > 1 else kwargs.get("dim")
                if len(args) > 2 or kwargs.get("keepdim", False) or \
                        sorted(int(d) % 4 for d in dims) != [2, 3]:
                    unsupported(fx_node, "expected x.mean([2, 3])")
                emit(fx_node, "avgpool", "", [tensor_input(fx_node, x)])
            elif tgt == "flatten":
                start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
                if start != 1:
                    unsupported(fx_node, "expected x.flatten(1)")
                emit(fx_node, "flatten", "", [tensor_input(fx_node, x)])
            elif tgt in ("view", "reshape"):
                shape = args[1:] if len(args) > 2 else args[1]
                if len(shape) != 2 or shape[1] != -1:
                    unsupported(fx_node, "expected x.view(N, -1)")
                emit(fx_node, "flatten", "", [tensor_input(fx_node, x)])
            elif tgt in ("relu", "relu_"):
                emit(fx_node, "relu", "", [tensor_input(fx_node, x)])
            elif tgt in ("add", "add_"):
                emit(fx_node, "add", "", [tensor_input(fx_node, x), tensor_input(fx_node, args[1])])
            else:
                unsupported(fx_node)
        else:  # get_attr and anything newer
            unsupported(fx_node)
    if output is None:
        raise ExportError("traced graph has no output")
    return {"format": "genie-graph-1", "output": output, "nodes": nodes}


def export(module, path, arch=None, input_shape=(3, 224, 224), mean=None, std=None,
           num_classes=None, blocks=None, graph=True, attrs=None):
    """Writes `module`'s state_dict and description to `path` (HDF5, genie's weight format).

    arch: a built-in genie architecture name, or any label (default "graph") when graph=True.
    blocks: extra {module path: unit kind} for custom residual blocks.
    attrs: extra root attributes (e.g. {"dataset": "…"}).
    """
    module = module.eval()
    c = int(input_shape[0])
    mean = list(mean) if mean is not None else ([0.0] * c)
    std = list(std) if std is not None else ([1.0] * c)
    if len(mean) != c or len(std) != c:
        raise ExportError(f"expected {c} mean/std values, got {len(mean)}/{len(std)}")
    desc = trace_graph(module, blocks) if graph else None
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(module(torch.zeros(1, *input_shape)).shape[1])
    tmp = f"{path}.tmp-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        for key, t in module.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            f.create_dataset(key, data=t.detach().cpu().float().numpy())
        f.attrs["arch"] = arch or "graph"
        f.attrs["input_shape"] = np.array(input_shape, dtype=np.int64)
        f.attrs["input_mean"] = np.array(mean, dtype=np.float64)
        f.attrs["input_std"] = np.array(std, dtype=np.float64)
        f.attrs["num_classes"] = np.int64(num_classes)
        if desc is not None:
            f.attrs["graph"] = json.dumps(desc, separators=(",", ":"))
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    os.replace(tmp, path)
    return desc


def main(argv=None):
    import torchvision
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("arch", help="torchvision model name (resnet18, mobilenet_v2, …)")
    p.add_argument("out", help="output .h5")
    p.add_argument("--state-dict", help="a .pth state_dict to load (default: seeded random init)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-shape", type=int, nargs=3, default=[3, 224, 224])
    p.add_argument("--mean", type=float, nargs="+", default=IMAGENET_MEAN)
    p.add_argument("--std", type=float, nargs="+", default=IMAGENET_STD)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--no-graph", action="store_true", help="omit the graph (built-in archs only)")
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    builder = getattr(torchvision.models, a.arch, None)
    if builder is None:
        sys.exit(f"export_pytorch: unknown torchvision model '{a.arch}'")
    m = builder(num_classes=a.num_classes)
    if a.state_dict:
        m.load_state_dict(torch.load(a.state_dict, map_location="cpu"))
    export(m, a.out, arch=a.arch, input_shape=a.input_shape, mean=a.mean, std=a.std,
           num_classes=a.num_classes, graph=not a.no_graph)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
