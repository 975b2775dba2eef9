#!/usr/bin/python3
"""Export a PyTorch CNN to genie's HDF5 weight format (io/model_file.h), with a graph description.

The module is traced with torch.fx (shapes from one forward of a zero image) into genie's graph JSON
(models/graph.h): convolutions (modules, grouped, or F.conv2d with a module's weight), BatchNorm,
linear, the activations (ReLU, ReLU6, LeakyReLU, SiLU, Hardswish, Hardsigmoid, Sigmoid, GELU),
add, multiply (SE gating), torch.cat along channels, chunk/split, channel shuffle (torchvision's
channel_shuffle, nn.ChannelShuffle, or the view/transpose/view it is written as), max / average /
adaptive average pooling (ceil_mode, count_include_pad), mean over (2, 3), zero padding
(nn.ZeroPad2d, F.pad), flatten, dropout / stochastic depth (identity in eval mode). Each node is
named by its module path (the state_dict prefix of its parameters). Nodes traced inside a block
(BLOCK_KINDS below: torchvision's residual blocks, inverted residuals, MBConv / FusedMBConv, dense
layers and transitions, Inception modules, ShuffleNet units, or any module path given in `blocks`)
carry that block's path and kind, from which genie derives its reconstruction units. Anything else
(a custom op, dilation, divisor_override, …) is an error naming the fx node, so a file is never
written for a network genie would compute differently. Tensors of modules the eval-mode graph
never calls (GoogLeNet's auxiliary classifiers) are not written.

Python API:
    export(module, path, arch=None, input_shape=(3, 224, 224), mean=None, std=None,
           num_classes=None, blocks=None, graph=True)
CLI (torchvision models; PyTorch is a tool here, never a dependency of the engine):
    /usr/bin/python3 tools/export_pytorch.py resnet18 out.h5 [--state-dict W.pth | --seed 0]
        [--input-shape 3 224 224] [--mean ...] [--std ...] [--num-classes 1000]
"""
import argparse
import dis
import inspect
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
from torch.fx.passes.shape_prop import ShapeProp

# Block classes → unit kind: by "module.Class" first (torchvision reuses class names: ShuffleNetV2's
# InvertedResidual is a shuffle unit), then by class name (so torchvision's private classes and
# users' copies of them need no import).
BLOCK_KINDS = {
    "torchvision.models.shufflenetv2.InvertedResidual": "shuffle_unit",
    "BasicBlock": "basic_block",
    "Bottleneck": "bottleneck",
    "InvertedResidual": "inverted_residual",
    "ResBottleneckBlock": "regnet_block",
    "_InvertedResidual": "mnas_block",
    "MBConv": "mbconv",
    "FusedMBConv": "fused_mbconv",
    "_DenseLayer": "dense_layer",
    "_Transition": "dense_transition",
    "Inception": "inception",
}

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Elementwise activations: module class / function → genie op.
ACT_MODULES = [(nn.ReLU, "relu"), (nn.ReLU6, "relu6"), (nn.SiLU, "silu"),
               (nn.Hardswish, "hardswish"), (nn.Hardsigmoid, "hardsigmoid"),
               (nn.Sigmoid, "sigmoid")]
ACT_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.silu: "silu",
                 F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid",
                 F.sigmoid: "sigmoid"}
ACT_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}


class ExportError(RuntimeError):
    pass


class _UnpackingProxy(torch.fx.Proxy):
    """fx's Proxy.__iter__ finds an unpacking (`a, b = x.chunk(2, 1)`) by indexing the caller's
    instructions with f_lasti // 2, which Python 3.11's inline caches break; this looks the offset
    up instead."""

    def __iter__(self):
        frame = inspect.currentframe().f_back
        for inst in dis.get_instructions(frame.f_code):
            if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
                return (self[i] for i in range(inst.argval))
        return self.tracer.iter(self)


class _PathTracer(torch.fx.Tracer):
    """fx tracer that records, for every created node, the stack of module paths it was traced in.
    Functions named `channel_shuffle` in the modules' source files are recorded as calls (their
    `n, c, h, w = x.size()` cannot be traced)."""

    def __init__(self, shuffle_functions=()):
        super().__init__(autowrap_functions=tuple(shuffle_functions))
        # fx looks for autowrapped functions in the traced forward's globals and in these modules
        # (an fx internal: the modules whose blocks call channel_shuffle).
        for f in shuffle_functions:
            mod = sys.modules.get(f.__module__)
            if mod is not None and mod not in self._autowrap_search:
                self._autowrap_search.append(mod)
        self._stack = []

    def call_module(self, m, forward, args, kwargs):
        self._stack.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._stack.pop()

    def proxy(self, node):
        return _UnpackingProxy(node, self)

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["genie_stack"] = list(self._stack)
        return node


def _shuffle_functions(module):
    found = []
    for m in module.modules():
        f = getattr(sys.modules.get(type(m).__module__), "channel_shuffle", None)
        if callable(f) and f not in found:
            found.append(f)
    return found


def _is_shuffle_function(fn):
    return getattr(fn, "__name__", "") == "channel_shuffle"


def _pair(v, what, where):
    if isinstance(v, (tuple, list)):
        if len(v) != 2 or v[0] != v[1]:
            raise ExportError(f"{where}: expected a square {what}, got {v}")
        return int(v[0])
    return int(v)


def _is_global_pool_size(v):
    return v == 1 or tuple(v) == (1, 1) if isinstance(v, (int, tuple, list)) else False


def _arg(args, kwargs, i, key, default=None):
    return args[i] if len(args) > i else kwargs.get(key, default)


class _GraphBuilder:
    """Walks an fx graph (with shapes from ShapeProp) and emits genie nodes."""

    def __init__(self, module, blocks):
        self.blocks = dict(blocks or {})
        self.modules = dict(module.named_modules())
        self.params = dict(module.named_parameters())
        self.nodes = []
        self.index = {}    # fx node → genie index (-1 = input)
        self.values = {}   # fx node → a non-tensor value: ("shape",) / ("param", key) / ("split", [idx])
        self.pending = {}  # fx node → ("grouped" | "transposed", src index, groups): shuffle in flight
        self.output = None

    # ---- helpers ----
    def block_of(self, fx_node):
        for path in fx_node.meta.get("genie_stack", []):
            if path in self.blocks:
                return path, self.blocks[path]
            m = self.modules.get(path)
            if m is None:
                continue
            cls = type(m)
            kind = BLOCK_KINDS.get(f"{cls.__module__}.{cls.__name__}", BLOCK_KINDS.get(cls.__name__))
            if kind:
                return path, kind
        return "", ""

    def tensor(self, fx_node, arg):
        if not isinstance(arg, torch.fx.Node) or self.index.get(arg) is None:
            raise ExportError(f"fx node '{fx_node.name}' ({fx_node.op} {_target_name(fx_node)}): "
                              f"expected a tensor input, got {arg!r}")
        return self.index[arg]

    def shape(self, fx_node):
        meta = fx_node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def emit(self, fx_node, op, name, inputs, **fields):
        block, kind = self.block_of(fx_node)
        n = {"op": op, "name": name, "inputs": list(inputs)}
        n.update(fields)
        if block:
            n["block"] = block
            n["block_kind"] = kind
        self.nodes.append(n)
        self.index[fx_node] = len(self.nodes) - 1

    def alias(self, fx_node, arg):
        self.index[fx_node] = self.tensor(fx_node, arg)

    def unsupported(self, fx_node, why=""):
        raise ExportError(f"fx node '{fx_node.name}' ({fx_node.op} {_target_name(fx_node)}) is not "
                          f"supported by genie's graph{': ' + why if why else ''}")

    # ---- ops shared by modules and functions ----
    def conv(self, fx_node, x, name, w, has_bias, stride, padding, dilation, groups, where):
        if _pair(dilation, "dilation", where) != 1:
            raise ExportError(f"{where}: expected dilation 1, got {dilation}")
        if isinstance(padding, str):
            raise ExportError(f"{where}: expected numeric padding, got '{padding}'")
        k = _pair(tuple(w.shape[2:]), "kernel", where)
        self.emit(fx_node, "conv", name, [x], **{
            "in": int(w.shape[1]) * int(groups), "out": int(w.shape[0]), "kernel": k,
            "stride": _pair(stride, "stride", where), "pad": _pair(padding, "padding", where),
            "groups": int(groups), "bias": bool(has_bias)})

    def pool(self, fx_node, op, x, kernel, stride, padding, ceil_mode, where, name="", **extra):
        stride = stride if stride not in (None, [], ()) else kernel
        fields = {"kernel": _pair(kernel, "kernel", where), "stride": _pair(stride, "stride", where),
                  "pad": _pair(padding, "padding", where)}
        if ceil_mode:
            fields["ceil_mode"] = True
        fields.update(extra)
        self.emit(fx_node, op, name, [x], **fields)

    def adaptive_pool(self, fx_node, x_arg, size, where, name=""):
        x = self.tensor(fx_node, x_arg)
        if _is_global_pool_size(size):
            self.emit(fx_node, "avgpool", name, [x], keepdim=True)
            return
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2:
            raise ExportError(f"{where}: expected a 2-d output size, got {size}")
        in_shape = self.shape(x_arg)
        size = [int(in_shape[2 + i]) if v is None else int(v) for i, v in enumerate(size)]
        self.emit(fx_node, "adaptive_avgpool", name, [x], size=size)

    def mean(self, fx_node, x, dims, keepdim):
        if dims is None or sorted(int(d) % 4 for d in dims) != [2, 3]:
            self.unsupported(fx_node, "expected a mean over dims (2, 3)")
        self.emit(fx_node, "avgpool", "", [x], **({"keepdim": True} if keepdim else {}))

    def pad(self, fx_node, x, pads, mode, value, where, name=""):
        pads = [int(p) for p in pads]
        if len(pads) == 2:
            pads = pads + [0, 0]
        if len(pads) != 4 or mode != "constant" or float(value or 0.0) != 0.0 or min(pads) < 0:
            raise ExportError(f"{where}: expected zero padding with 4 values >= 0 (left, right, top, "
                              f"bottom), got {pads} mode {mode} value {value}")
        self.emit(fx_node, "pad", name, [x], pads=pads)

    def chunks(self, fx_node, x, sizes, dim):
        if int(dim) % 4 != 1:
            self.unsupported(fx_node, "expected a split along channels (dim 1)")
        parts, start = [], 0
        for c in sizes:
            self.nodes.append({"op": "slice", "name": "", "inputs": [x], "start": start,
                               "out": int(c)})
            block, kind = self.block_of(fx_node)
            if block:
                self.nodes[-1].update(block=block, block_kind=kind)
            parts.append(len(self.nodes) - 1)
            start += int(c)
        self.values[fx_node] = ("split", parts)
        self.index[fx_node] = None

    def flatten(self, fx_node, x, start, end=-1, name=""):
        if int(start) != 1 or int(end) != -1:
            self.unsupported(fx_node, "expected flatten from dim 1 to the end")
        self.emit(fx_node, "flatten", name, [x])

    def view(self, fx_node, x_arg):
        """view/reshape: x.view(N, -1) is a flatten; view to (N, g, C/g, H, W) and back after a
        transpose(1, 2) is a channel shuffle."""
        out = self.shape(fx_node)
        src = self.shape(x_arg)
        if x_arg in self.pending:
            state, i, g = self.pending[x_arg]
            if state == "transposed" and out is not None and len(out) == 4:
                self.emit(fx_node, "shuffle", "", [i], groups=g)
                return
            self.unsupported(fx_node, "expected the view back to (N, C, H, W) of a channel shuffle")
        x = self.tensor(fx_node, x_arg)
        if out is not None and src is not None and len(out) == 2 and out[0] == src[0]:
            self.emit(fx_node, "flatten", "", [x])
        elif out is not None and src is not None and len(src) == 4 and len(out) == 5 and \
                out[0] == src[0] and out[1] * out[2] == src[1] and tuple(out[3:]) == src[2:]:
            self.pending[fx_node] = ("grouped", x, int(out[1]))
            self.index[fx_node] = None
        else:
            self.unsupported(fx_node, f"expected x.view(N, -1) or a channel shuffle, got {src} → "
                                      f"{out}")

    def transpose(self, fx_node, x_arg, d0, d1):
        if x_arg in self.pending and self.pending[x_arg][0] == "grouped" and \
                sorted((int(d0), int(d1))) == [1, 2]:
            _, i, g = self.pending[x_arg]
            self.pending[fx_node] = ("transposed", i, g)
            self.index[fx_node] = None
            return
        self.unsupported(fx_node, "expected the transpose(1, 2) of a channel shuffle")

    def binary(self, fx_node, op, args, kwargs):
        if len(args) != 2 or kwargs:
            self.unsupported(fx_node, f"expected a {'+' if op == 'add' else '*'} b of two tensors")
        self.emit(fx_node, op, "", [self.tensor(fx_node, args[0]), self.tensor(fx_node, args[1])])

    # ---- fx node kinds ----
    def module_call(self, fx_node):
        tgt, args = fx_node.target, fx_node.args
        m = self.modules[tgt]
        where = f"module '{tgt}' ({type(m).__name__})"
        x = self.tensor(fx_node, args[0])
        for cls, op in ACT_MODULES:
            if isinstance(m, cls):
                self.emit(fx_node, op, tgt, [x])
                return
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise ExportError(f"{where}: expected zero padding, got {m.padding_mode}")
            self.conv(fx_node, x, tgt, m.weight, m.bias is not None, m.stride, m.padding,
                      m.dilation, m.groups, where)
        elif isinstance(m, nn.BatchNorm2d):
            if not m.track_running_stats:
                raise ExportError(f"{where}: expected running statistics (track_running_stats)")
            fields = {"out": m.num_features, "eps": float(m.eps)}
            if not m.affine:
                fields["affine"] = False
            self.emit(fx_node, "bn", tgt, [x], **fields)
        elif isinstance(m, nn.Linear):
            self.emit(fx_node, "linear", tgt, [x], **{"in": m.in_features, "out": m.out_features,
                                                      "bias": m.bias is not None})
        elif isinstance(m, nn.Hardtanh) and m.min_val == 0.0 and m.max_val == 6.0:
            self.emit(fx_node, "relu6", tgt, [x])
        elif isinstance(m, nn.LeakyReLU):
            self.emit(fx_node, "leaky_relu", tgt, [x], slope=float(m.negative_slope))
        elif isinstance(m, nn.GELU):
            if getattr(m, "approximate", "none") != "none":
                raise ExportError(f"{where}: expected the erf form (approximate='none')")
            self.emit(fx_node, "gelu", tgt, [x])
        elif isinstance(m, nn.MaxPool2d):
            if _pair(m.dilation, "dilation", where) != 1 or m.return_indices:
                raise ExportError(f"{where}: expected dilation 1 and no indices")
            self.pool(fx_node, "maxpool", x, m.kernel_size, m.stride, m.padding, m.ceil_mode, where,
                      tgt)
        elif isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise ExportError(f"{where}: expected no divisor_override")
            extra = {} if m.count_include_pad else {"count_include_pad": False}
            self.pool(fx_node, "avgpool2d", x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                      where, tgt, **extra)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive_pool(fx_node, args[0], m.output_size, where, tgt)
        elif isinstance(m, nn.Flatten):
            self.flatten(fx_node, x, m.start_dim, m.end_dim, tgt)
        elif isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)):
            self.pad(fx_node, x, m.padding, "constant", getattr(m, "value", 0.0), where, tgt)
        elif isinstance(m, nn.ChannelShuffle):
            self.emit(fx_node, "shuffle", tgt, [x], groups=int(m.groups))
        elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
            self.emit(fx_node, "identity", tgt, [x])
        else:
            self.unsupported(fx_node, f"no genie op for {type(m).__name__}")

    def shape_value(self, fx_node):
        self.values[fx_node] = ("shape",)
        self.index[fx_node] = None

    def function_call(self, fx_node):
        tgt, args, kwargs = fx_node.target, fx_node.args, fx_node.kwargs
        where = f"fx node '{fx_node.name}' ({_target_name(fx_node)})"
        x0 = args[0] if args else None
        if tgt in (operator.add, operator.iadd, torch.add, operator.mul, operator.imul, torch.mul):
            if not all(isinstance(a, torch.fx.Node) and self.index.get(a) is not None
                       for a in args):
                if all(a in self.values or not isinstance(a, torch.fx.Node) for a in args):
                    self.shape_value(fx_node)  # arithmetic on sizes
                    return
            op = "add" if tgt in (operator.add, operator.iadd, torch.add) else "mul"
            self.binary(fx_node, op, args, kwargs)
        elif tgt in ACT_FUNCTIONS:
            self.emit(fx_node, ACT_FUNCTIONS[tgt], "", [self.tensor(fx_node, x0)])
        elif tgt is F.hardtanh and _arg(args, kwargs, 1, "min_val", -1.0) == 0.0 and \
                _arg(args, kwargs, 2, "max_val", 1.0) == 6.0:
            self.emit(fx_node, "relu6", "", [self.tensor(fx_node, x0)])
        elif tgt is F.leaky_relu:
            self.emit(fx_node, "leaky_relu", "", [self.tensor(fx_node, x0)],
                      slope=float(_arg(args, kwargs, 1, "negative_slope", 0.01)))
        elif tgt is F.gelu:
            if kwargs.get("approximate", "none") != "none":
                self.unsupported(fx_node, "expected the erf form (approximate='none')")
            self.emit(fx_node, "gelu", "", [self.tensor(fx_node, x0)])
        elif tgt is torch.flatten:
            self.flatten(fx_node, self.tensor(fx_node, x0), _arg(args, kwargs, 1, "start_dim", 0),
                         _arg(args, kwargs, 2, "end_dim", -1))
        elif tgt is F.adaptive_avg_pool2d:
            self.adaptive_pool(fx_node, x0, _arg(args, kwargs, 1, "output_size"), where)
        elif tgt is F.avg_pool2d:
            if _arg(args, kwargs, 6, "divisor_override") is not None:
                self.unsupported(fx_node, "expected no divisor_override")
            extra = {} if _arg(args, kwargs, 5, "count_include_pad", True) else \
                {"count_include_pad": False}
            self.pool(fx_node, "avgpool2d", self.tensor(fx_node, x0),
                      _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                      _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "ceil_mode", False),
                      where, **extra)
        elif tgt is F.max_pool2d:
            if _arg(args, kwargs, 4, "dilation", 1) not in (1, (1, 1), [1, 1]) or \
                    _arg(args, kwargs, 6, "return_indices", False):
                self.unsupported(fx_node, "expected dilation 1 and no indices")
            self.pool(fx_node, "maxpool", self.tensor(fx_node, x0),
                      _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                      _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 5, "ceil_mode", False),
                      where)
        elif tgt in (F.dropout, F.dropout2d) or _target_name(fx_node) == "stochastic_depth":
            self.alias(fx_node, x0)  # eval mode: identity (torchvision.ops.stochastic_depth too)
        elif tgt is torch.mean:
            self.mean(fx_node, self.tensor(fx_node, x0), _arg(args, kwargs, 1, "dim"),
                      _arg(args, kwargs, 2, "keepdim", False))
        elif tgt is torch.cat:
            if int(_arg(args, kwargs, 1, "dim", 0)) % 4 != 1:
                self.unsupported(fx_node, "expected a concatenation along channels (dim 1)")
            self.emit(fx_node, "concat", "",
                      [self.tensor(fx_node, t) for t in _arg(args, kwargs, 0, "tensors")])
        elif tgt is torch.chunk:
            self.split_call(fx_node, x0, _arg(args, kwargs, 1, "chunks"),
                            _arg(args, kwargs, 2, "dim", 0), True)
        elif tgt is torch.split:
            self.split_call(fx_node, x0, _arg(args, kwargs, 1, "split_size_or_sections"),
                            _arg(args, kwargs, 2, "dim", 0), False)
        elif tgt is operator.getitem:
            self.getitem(fx_node, x0, args[1])
        elif tgt in (operator.floordiv, operator.truediv, operator.sub) and x0 in self.values:
            self.shape_value(fx_node)
        elif tgt is F.pad:
            self.pad(fx_node, self.tensor(fx_node, x0), _arg(args, kwargs, 1, "pad"),
                     _arg(args, kwargs, 2, "mode", "constant"), _arg(args, kwargs, 3, "value", 0.0),
                     where)
        elif tgt is F.conv2d:
            self.functional_conv(fx_node, args, kwargs, where)
        elif tgt is torch.transpose:
            self.transpose(fx_node, x0, args[1], args[2])
        elif _is_shuffle_function(tgt):
            self.emit(fx_node, "shuffle", "", [self.tensor(fx_node, x0)],
                      groups=int(_arg(args, kwargs, 1, "groups")))
        else:
            self.unsupported(fx_node)

    def method_call(self, fx_node):
        tgt, args, kwargs = fx_node.target, fx_node.args, fx_node.kwargs
        x = args[0]
        if tgt in ("size", "dim"):
            self.shape_value(fx_node)
        elif tgt == "mean":
            self.mean(fx_node, self.tensor(fx_node, x), _arg(args, kwargs, 1, "dim"),
                      _arg(args, kwargs, 2, "keepdim", False))
        elif tgt == "flatten":
            self.flatten(fx_node, self.tensor(fx_node, x), _arg(args, kwargs, 1, "start_dim", 0),
                         _arg(args, kwargs, 2, "end_dim", -1))
        elif tgt in ("view", "reshape"):
            self.view(fx_node, x)
        elif tgt == "contiguous":
            if x in self.pending:
                self.pending[fx_node] = self.pending[x]
                self.index[fx_node] = None
            else:
                self.alias(fx_node, x)
        elif tgt == "transpose":
            self.transpose(fx_node, x, args[1], args[2])
        elif tgt in ACT_METHODS:
            self.emit(fx_node, ACT_METHODS[tgt], "", [self.tensor(fx_node, x)])
        elif tgt in ("add", "add_"):
            self.binary(fx_node, "add", args, kwargs)
        elif tgt in ("mul", "mul_"):
            self.binary(fx_node, "mul", args, kwargs)
        elif tgt in ("chunk", "split"):
            n = args[1] if len(args) > 1 else kwargs.get("chunks", kwargs.get("split_size"))
            self.split_call(fx_node, x, n, _arg(args, kwargs, 2, "dim", 0), tgt == "chunk")
        else:
            self.unsupported(fx_node)

    def split_call(self, fx_node, x_arg, n, dim, is_chunk):
        c = int(self.shape(x_arg)[1])
        if is_chunk:
            step = -(-c // int(n))
            sizes = [min(step, c - s) for s in range(0, c, step)]
        elif isinstance(n, int):
            sizes = [min(int(n), c - s) for s in range(0, c, int(n))]
        else:
            sizes = [int(v) for v in n]
        self.chunks(fx_node, self.tensor(fx_node, x_arg), sizes, dim)

    def getitem(self, fx_node, container, key):
        v = self.values.get(container)
        if v is not None and v[0] == "split" and isinstance(key, int):
            self.index[fx_node] = v[1][key]
        elif v is not None and v[0] == "shape":
            self.shape_value(fx_node)
        else:
            self.unsupported(fx_node, "expected an item of a split or of a size")

    def functional_conv(self, fx_node, args, kwargs, where):
        w_arg, b_arg = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
        w = self.values.get(w_arg)
        if w is None or w[0] != "param" or not w[1].endswith(".weight"):
            self.unsupported(fx_node, "expected F.conv2d with a module's weight parameter")
        name = w[1][:-len(".weight")]
        if b_arg is not None:
            b = self.values.get(b_arg)
            if b is None or b[0] != "param" or b[1] != name + ".bias":
                self.unsupported(fx_node, f"expected the bias '{name}.bias'")
        self.conv(fx_node, self.tensor(fx_node, args[0]), name, self.params[w[1]],
                  b_arg is not None, _arg(args, kwargs, 3, "stride", 1),
                  _arg(args, kwargs, 4, "padding", 0), _arg(args, kwargs, 5, "dilation", 1),
                  _arg(args, kwargs, 6, "groups", 1), where)

    def run(self, fx_graph):
        seen_input = False
        for fx_node in fx_graph.nodes:
            op = fx_node.op
            if op == "placeholder":
                if seen_input:
                    self.unsupported(fx_node, "genie models take exactly one input tensor")
                seen_input = True
                self.index[fx_node] = -1
            elif op == "output":
                out = fx_node.args[0]
                if not isinstance(out, torch.fx.Node):
                    self.unsupported(fx_node, "expected a single output tensor")
                self.output = self.tensor(fx_node, out)
            elif op == "call_module":
                self.module_call(fx_node)
            elif op == "call_function":
                self.function_call(fx_node)
            elif op == "call_method":
                self.method_call(fx_node)
            elif op == "get_attr" and fx_node.target in self.params:
                self.values[fx_node] = ("param", fx_node.target)
                self.index[fx_node] = None
            else:
                self.unsupported(fx_node)
        if self.output is None:
            raise ExportError("traced graph has no output")


def _target_name(fx_node):
    t = fx_node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _finish(nodes, output):
    """Normalises the emitted nodes: a global pool read only by flattens drops its keepdim (the
    same (N, C) classifier input as before keepdim existed); a concatenation that starts a block
    and reads only tensors from before it (DenseNet's torch.cat(features, 1) at the top of each
    dense layer) is taken out of the block, so the block reads one tensor."""
    readers = {}
    for i, n in enumerate(nodes):
        for j in n["inputs"]:
            readers.setdefault(j, set()).add(i)
    for i, n in enumerate(nodes):
        r = readers.get(i, set())
        if n["op"] == "avgpool" and n.get("keepdim") and i != output and r and \
                all(nodes[k]["op"] == "flatten" for k in r):
            del n["keepdim"]
    for i, n in enumerate(nodes):
        block = n.get("block", "")
        if n["op"] == "concat" and block and (i == 0 or nodes[i - 1].get("block", "") != block):
            del n["block"], n["block_kind"]
    return nodes


def trace_graph(module, blocks=None, input_shape=(3, 224, 224)):
    """Returns genie's graph description (a dict) for `module` in eval mode; input_shape (C, H, W)
    resolves the shapes that splits and views need."""
    module = module.eval()
    tracer = _PathTracer(_shuffle_functions(module))
    fx_graph = tracer.trace(module)
    gm = torch.fx.GraphModule(module, fx_graph)
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    b = _GraphBuilder(module, blocks)
    b.run(fx_graph)
    return {"format": "genie-graph-1", "output": b.output, "nodes": _finish(b.nodes, b.output)}


def used_state_dict(module, desc):
    """The state_dict entries the graph reads (parameters and BN statistics of its nodes), and the
    keys left out (of modules the eval-mode trace never calls, e.g. GoogLeNet's auxiliary heads)."""
    names = {n["name"] for n in desc["nodes"] if n["op"] in ("conv", "bn", "linear")}
    used, dropped = {}, []
    for key, t in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.rsplit(".", 1)[0] in names:
            used[key] = t
        else:
            dropped.append(key)
    return used, dropped


def seeded_bn_statistics(module):
    """For tests and checks of networks without trained weights: every BatchNorm's statistics and
    affine parameters drawn away from PyTorch's 0/1 defaults from torch's current random state
    (running_mean ~ 0.2·N(0,1), running_var ~ 0.5 + U(0,1), weight ~ 0.5 + 0.5·U(0,1),
    bias ~ 0.1·N(0,1)). Returns the module in eval mode."""
    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(0.2 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(0.5 + torch.rand_like(mod.running_var))
                mod.weight.copy_(0.5 + 0.5 * torch.rand_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
    return module.eval()


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
    desc = trace_graph(module, blocks, input_shape) if graph else None
    if desc is not None:
        state, dropped = used_state_dict(module, desc)
        if dropped:
            print(f"export_pytorch: {len(dropped)} tensor(s) of modules the eval-mode graph never "
                  f"calls are not written (first: {dropped[0]})", file=sys.stderr)
    else:
        state = {k: t for k, t in module.state_dict().items()
                 if not k.endswith("num_batches_tracked")}
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(module(torch.zeros(1, *input_shape)).shape[1])
    tmp = f"{path}.tmp-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        for key, t in state.items():
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
