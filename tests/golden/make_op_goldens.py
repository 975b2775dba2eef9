#!/usr/bin/python3
"""Writes tests/golden/op_goldens.txt: inputs, outputs and gradients of every genie op computed
by PyTorch (run with Debian's /usr/bin/python3, torch 1.13). Deterministic: fixed seeds, CPU,
float32, one thread.

Format (one tensor per line):  <name> <ndim> <dim0> ... <dimN-1> : <values, row-major, %.9g>
A case <c> stores its inputs (<c>.x, <c>.w, ...), the probe <c>.dy used for the backward pass
(gradients are of sum(y * dy)), the output <c>.y and the gradients <c>.dx, <c>.dw, ...
Integer data (labels) are stored as floats. Scalars have ndim 0.
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_goldens.txt")
lines = []


def put(name, t):
    t = t.detach().to(torch.float32).contiguous()
    dims = list(t.shape)
    vals = " ".join("%.9g" % v for v in t.reshape(-1).tolist())
    lines.append("%s %d %s : %s" % (name, len(dims), " ".join(str(d) for d in dims), vals))


def leaf(t):
    return t.clone().requires_grad_(True)


def run_case(case, fn, inputs, probe=None):
    """inputs: dict name -> tensor (leaves requiring grad unless the name starts with '_', which
    is stripped). fn(**inputs) -> output tensor. Stores inputs, probe, output and gradients."""
    leaves = {}
    for k, v in inputs.items():
        if k.startswith("_"):
            leaves[k[1:]] = v
            put("%s.%s" % (case, k[1:]), v)
        else:
            leaves[k] = leaf(v)
            put("%s.%s" % (case, k), v)
    y = fn(**leaves)
    dy = torch.randn(y.shape) if probe is None else probe
    put(case + ".dy", dy)
    put(case + ".y", y)
    (y * dy).sum().backward()
    for k, v in inputs.items():
        if not k.startswith("_"):
            put("%s.d%s" % (case, k), leaves[k].grad)


r = torch.randn

# ---- conv2d: (x shape, w shape, bias?, stride, pad, groups) ----
convs = {
    "conv_basic": ((2, 3, 7, 6), (4, 3, 3, 3), True, 1, 1, 1),
    "conv_stride2": ((2, 4, 9, 9), (6, 4, 3, 3), False, 2, 1, 1),
    "conv_groups": ((2, 4, 6, 6), (6, 2, 3, 3), True, 1, 0, 2),
    "conv_dw": ((2, 4, 5, 5), (4, 1, 3, 3), True, 1, 1, 4),
    "conv_dw_mult2_s2": ((2, 3, 7, 7), (6, 1, 3, 3), True, 2, 1, 3),
    "conv_1x1": ((2, 5, 4, 4), (3, 5, 1, 1), True, 1, 0, 1),
    "conv_1x1_s2": ((2, 4, 6, 6), (8, 4, 1, 1), False, 2, 0, 1),
    "conv_5x5_rect": ((1, 2, 8, 5), (3, 2, 5, 5), True, 1, 2, 1),
    "conv_1ch": ((3, 1, 8, 8), (8, 1, 3, 3), False, 1, 1, 1),
    "conv_s3_pad2": ((1, 2, 10, 11), (2, 2, 3, 3), True, 3, 2, 1),
}
for case, (xs, ws, has_b, s, p, g) in convs.items():
    inp = {"x": r(xs), "w": r(ws) * 0.3}
    if has_b:
        inp["b"] = r(ws[0])
        fn = lambda x, w, b, s=s, p=p, g=g: F.conv2d(x, w, b, stride=s, padding=p, groups=g)
    else:
        fn = lambda x, w, s=s, p=p, g=g: F.conv2d(x, w, None, stride=s, padding=p, groups=g)
    run_case(case, fn, inp)

# ---- linear ----
run_case("linear", lambda x, w, b: F.linear(x, w, b), {"x": r(5, 7), "w": r(3, 7), "b": r(3)})
run_case("linear_nobias", lambda x, w: F.linear(x, w), {"x": r(4, 6), "w": r(5, 6)})

# ---- batch norm ----
eps = 1e-5
bn_x = r(3, 4, 5, 5) * 2 + 0.5
run_case("bn_eval", lambda x, g, b, m, v: F.batch_norm(x, m, v, g, b, False, 0.1, eps),
         {"x": bn_x, "g": r(4), "b": r(4), "_m": r(4), "_v": torch.rand(4) + 0.5})
run_case("bn_eval_noaffine", lambda x, m, v: F.batch_norm(x, m, v, None, None, False, 0.1, eps),
         {"x": bn_x, "_m": r(4), "_v": torch.rand(4) + 0.5})
run_case("bn_train", lambda x, g, b: F.batch_norm(x, None, None, g, b, True, 0.1, eps),
         {"x": bn_x, "g": r(4), "b": r(4)})
run_case("bn_train_noaffine", lambda x: F.batch_norm(x, None, None, None, None, True, 0.1, eps),
         {"x": r(4, 3, 3, 3) * 3 - 1})
run_case("bn_train_2d", lambda x, g, b: F.batch_norm(x, None, None, g, b, True, 0.1, eps),
         {"x": r(8, 6), "g": r(6), "b": r(6)})

# ---- elementwise activations ----
ex = torch.linspace(-7.9, 7.9, 61)
ex = ex + 0.013  # keep off the kinks at 0 and 6
run_case("relu6", lambda x: F.relu6(x), {"x": ex})
run_case("leaky_relu", lambda x: F.leaky_relu(x, 0.1), {"x": ex})
run_case("tanh", lambda x: torch.tanh(x), {"x": ex})
run_case("sigmoid", lambda x: torch.sigmoid(x), {"x": ex})

# ---- spatial ----
run_case("upsample", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {"x": r(2, 3, 4, 5)})
run_case("reflect_pad2", lambda x: torch.nn.ReflectionPad2d(2)(x), {"x": r(2, 2, 5, 6)})
run_case("reflect_pad3_small", lambda x: torch.nn.ReflectionPad2d(3)(x), {"x": r(1, 2, 4, 4)})
run_case("crop", lambda x: x[:, :, 1:6, 2:6], {"x": r(2, 3, 8, 8)})
run_case("gap", lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), {"x": r(2, 3, 5, 7)})
# values on a coarse grid so that windows contain ties (first maximum wins)
run_case("maxpool3", lambda x: torch.nn.MaxPool2d(3, 2, 1)(x),
         {"x": torch.round(r(2, 3, 9, 8) * 2) / 2})
run_case("maxpool3_even", lambda x: torch.nn.MaxPool2d(3, 2, 1)(x), {"x": r(1, 2, 8, 8)})
run_case("maxpool2", lambda x: torch.nn.MaxPool2d(2, 2, 0)(x), {"x": r(1, 2, 7, 6)})

# ---- statistics ----
sx = r(3, 4, 5, 5) * 1.5 + 0.3
for ub in (True, False):
    tag = "unbiased" if ub else "biased"
    run_case("chan_mean_var_" + tag,
             lambda x, ub=ub: torch.stack([x.mean(dim=(0, 2, 3)),
                                                     x.var(dim=(0, 2, 3), unbiased=ub)]),
             {"x": sx})
    run_case("spatial_mean_std_" + tag,
             lambda x, ub=ub: torch.stack([x.mean(dim=(2, 3)), x.std(dim=(2, 3), unbiased=ub)]),
             {"x": r(2, 3, 4, 5) * 2 - 0.5})

# ---- losses (probe = a scalar upstream gradient) ----
run_case("mse", lambda a, b: F.mse_loss(a, b), {"a": r(3, 4, 5), "b": r(3, 4, 5)},
         probe=torch.tensor(0.7))
labels = torch.tensor([0, 4, 2, 2, 1, 3], dtype=torch.int64)
run_case("xent", lambda x, l: F.cross_entropy(x, l.long()),
         {"x": r(6, 5) * 3, "_l": labels.float()}, probe=torch.tensor(1.3))

# ---- issue 17: activations, broadcast mul, channel ops, pools, zero padding ----
# (last, so that the random draws of the cases above stay as they were)
# hard*: a grid over [-4.5, 4.5] in steps of 0.25 (exact in float) holds -3 and 3 themselves and
# their neighbours, where PyTorch's backward formulas choose a side.
hx = torch.arange(-18, 19, dtype=torch.float32) * 0.25
# One element at a time: torch 1.13's CPU hardswish backward disagrees with itself at x = 3 — the
# scalar loop (and the CUDA kernel, and the formula in derivatives.yaml) gives dy·1.5 (x <= 3),
# the AVX loop dy (x >= 3) — and which loop an element takes depends on its position. Single
# elements always take the scalar loop, the definition genie follows.
elementwise = lambda f: (lambda x: torch.stack([f(e) for e in x.unbind()]))
run_case("hardswish", elementwise(F.hardswish), {"x": hx})
run_case("hardsigmoid", elementwise(F.hardsigmoid), {"x": hx})
run_case("silu", lambda x: F.silu(x), {"x": ex})
run_case("gelu", lambda x: F.gelu(x), {"x": ex})
run_case("mul_bcast_gate_right", lambda a, b: a * b, {"a": r(2, 3, 4, 5), "b": r(2, 3, 1, 1)})
run_case("mul_bcast_gate_left", lambda a, b: a * b, {"a": r(2, 3, 1, 1), "b": r(2, 3, 4, 5)})
run_case("concat3", lambda a, b, c: torch.cat([a, b, c], 1),
         {"a": r(2, 1, 3, 4), "b": r(2, 3, 3, 4), "c": r(2, 2, 3, 4)})
run_case("concat2d", lambda a, b: torch.cat([a, b], 1), {"a": r(3, 2), "b": r(3, 5)})
run_case("slice", lambda x: x[:, 2:5], {"x": r(2, 6, 3, 4)})
# torchvision.models.shufflenetv2.channel_shuffle
def shuffle(x, g):
    n, c, h, w = x.shape
    return x.view(n, g, c // g, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
run_case("shuffle2", lambda x: shuffle(x, 2), {"x": r(2, 6, 3, 2)})
run_case("shuffle3", lambda x: shuffle(x, 3), {"x": r(2, 12, 2, 3)})
pools = {
    # name: (x shape, k, stride, pad)
    "8x8_k3s2p0": ((2, 2, 8, 8), 3, 2, 0),   # ceil adds a window clipped to the input
    "7x7_k3s2p0": ((2, 2, 7, 7), 3, 2, 0),   # ceil changes nothing
    "9x9_k3s1p1": ((1, 2, 9, 9), 3, 1, 1),   # GoogLeNet's branch pool
    "7x9_k2s2p0": ((1, 2, 7, 9), 2, 2, 0),   # odd sizes, ceil keeps the half windows
    "7x7_k3s2p1": ((2, 2, 7, 7), 3, 2, 1),
    "8x8_k3s2p1": ((2, 2, 8, 8), 3, 2, 1),   # ceil adds a window reaching into the right padding
    "6x6_k2s2p0": ((2, 3, 6, 6), 2, 2, 0),   # DenseNet transition
    "11x7_k3s3p1": ((1, 2, 11, 7), 3, 3, 1),  # rows: ceil's extra window would start in the
    "7x7_k2s2p1": ((1, 2, 7, 7), 2, 2, 1),   # padding, so the rule drops it again
}
for name, (xs, k, s_, p) in pools.items():
    for ceil in (False, True):
        tag = name + ("_ceil" if ceil else "")
        run_case("maxpool_" + tag,
                 lambda x, k=k, s_=s_, p=p, ceil=ceil: F.max_pool2d(x, k, s_, p, ceil_mode=ceil),
                 {"x": r(*xs)})
        for cip in (False, True):
            run_case("avgpool_%s%s" % (tag, "_cip" if cip else ""),
                     lambda x, k=k, s_=s_, p=p, ceil=ceil, cip=cip: F.avg_pool2d(
                         x, k, s_, p, ceil_mode=ceil, count_include_pad=cip),
                     {"x": r(*xs)})
run_case("adaptive_7x7_to_7x7", lambda x: F.adaptive_avg_pool2d(x, (7, 7)), {"x": r(1, 2, 7, 7)})
run_case("adaptive_10x13_to_3x4", lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
         {"x": r(2, 2, 10, 13)})
run_case("adaptive_4x5_to_6x7", lambda x: F.adaptive_avg_pool2d(x, (6, 7)), {"x": r(1, 2, 4, 5)})
run_case("adaptive_5x6_to_1x1", lambda x: F.adaptive_avg_pool2d(x, (1, 1)), {"x": r(2, 3, 5, 6)})
run_case("zero_pad_0101", lambda x: F.pad(x, (0, 1, 0, 1)), {"x": r(2, 2, 3, 4)})
run_case("zero_pad_1230", lambda x: F.pad(x, (1, 2, 3, 0)), {"x": r(1, 2, 4, 3)})

with open(OUT, "w") as f:
    f.write("# genie op goldens: torch %s, generated by tests/golden/make_op_goldens.py\n"
            % torch.__version__)
    f.write("\n".join(lines) + "\n")
print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(lines), "tensors", file=sys.stderr)
