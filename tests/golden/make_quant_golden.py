#!/usr/bin/python3
"""PyTorch goldens for Genie-M's quantizers (GENIE.md §2.2-2.3) and one BasicBlock reconstruction
step (§2.5). Writes tests/golden/quant_ops.h5 and tests/golden/quant_block.h5.

Everything here is written from the spec in plain PyTorch (float32) with autograd deriving the
gradients, so the engine's hand-derived surrogate gradients are checked against an independent
derivation. Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/golden/make_quant_golden.py
"""
import os

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1234)


def round_ste(x):
    # straight-through round, as the reference implementations write it
    return (x.round() - x).detach() + x


def rect_sigmoid(v):
    return torch.clamp(torch.sigmoid(v) * 1.2 - 0.1, 0, 1)


def weight_fq(w_floor, v, s, z, bits, hard):
    qmax = 2 ** bits - 1
    shp = (-1,) + (1,) * (w_floor.dim() - 1)
    h = (v >= 0).float() if hard else rect_sigmoid(v)
    q = torch.clamp(w_floor + h + z.view(shp), 0, qmax)
    return (q - z.view(shp)) * s.view(shp)


def act_fq(x, s, qn, qp, mask=None):
    xq = round_ste(torch.clamp(x / s, qn, qp)) * s
    return xq if mask is None else torch.where(mask, xq, x)


def round_reg(v, beta):
    return (1 - ((rect_sigmoid(v) - 0.5).abs() * 2).pow(beta)).sum()


def lp_err(x, xq):
    return (x - xq).abs().pow(2.4).mean()


def grid_q(x, new_max, new_min, bits):
    delta = (new_max - new_min) / (2 ** bits - 1)
    zp = (-new_min / delta).round()
    xi = torch.round(x / delta)
    xq = torch.clamp(xi + zp, 0, 2 ** bits - 1)
    return (xq - zp) * delta, delta, zp


def search_channel(x, bits):
    """§2.2: per-channel clip search; first (largest r) on ties."""
    x_max, x_min = x.max(), x.min()
    best, delta, zp = 1e10, None, None
    for i in range(100):
        r = 1.0 - i * 0.01
        xq, d, z = grid_q(x, x_max * r, x_min * r, bits)
        score = lp_err(x, xq)
        if score < best:
            best, delta, zp = score, d, z
    return delta, zp


def search_act(a, bits):
    """§2.3: signed if any negative value; grid [-r m, r m] or [0, r m]."""
    signed = bool((a < 0).any())
    m = a.abs().max()
    best, delta = 1e10, None
    for i in range(100):
        r = 1.0 - i * 0.01
        new_max = m * r
        new_min = -new_max if signed else torch.zeros_like(new_max)
        xq, d, _ = grid_q(a, new_max, new_min, bits)
        score = lp_err(a, xq)
        if score < best:
            best, delta = score, d
    return signed, delta


def weight_init(w, bits):
    K = w.shape[0]
    deltas, zps = [], []
    for k in range(K):
        d, z = search_channel(w[k].reshape(-1), bits)
        deltas.append(d)
        zps.append(z)
    s = torch.stack(deltas)
    z = torch.stack(zps)
    shp = (-1,) + (1,) * (w.dim() - 1)
    w_floor = torch.floor(w / s.view(shp))
    frac = w / s.view(shp) - w_floor
    v = -torch.log(1.2 / (frac + 0.1) - 1)
    return s, z, w_floor, v


def write(f, name, t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    f.create_dataset(name, data=t)


def make_ops():
    out = {}
    # ---- weight quantizer: search, init, soft/hard forward, gradients ----
    bits = 4
    w = torch.randn(6, 4, 3, 3) * 0.2
    w[2] = w[2].abs()  # a channel without negative weights (z outside the usual range)
    s0, z, w_floor, v0 = weight_init(w, bits)
    out["wq.w"], out["wq.s_init"], out["wq.zero"] = w, s0, z
    out["wq.w_floor"], out["wq.v_init"] = w_floor, v0
    # learned state away from the init
    v = (v0 + 0.7 * torch.randn_like(v0)).requires_grad_()
    s = (s0 * (1 + 0.1 * torch.randn_like(s0))).requires_grad_()
    dy = torch.randn_like(w)
    soft = weight_fq(w_floor, v, s, z, bits, False)
    soft.backward(dy)
    hard = weight_fq(w_floor, v.detach(), s.detach(), z, bits, True)
    out.update({"wq.v": v, "wq.s": s, "wq.dy": dy, "wq.soft": soft, "wq.hard": hard,
                "wq.dv": v.grad, "wq.ds": s.grad})
    # ---- activation quantizer: signed + unsigned searches, LSQ forward/backward with QDrop ----
    a = torch.randn(32, 5, 6, 6) * 1.5
    signed, d_signed = search_act(a, 4)
    assert signed
    a_pos = torch.relu(torch.randn(32, 5, 6, 6))
    unsigned, d_unsigned = search_act(a_pos, 3)
    assert not unsigned
    out["aq.search_x"], out["aq.search_step_s4"] = a, d_signed.reshape(1)
    out["aq.search_xpos"], out["aq.search_step_u3"] = a_pos, d_unsigned.reshape(1)
    x = (torch.randn(4, 3, 5, 5) * 2).requires_grad_()
    with torch.no_grad():
        x[0, 0, 0, :4] = torch.tensor([-2.0, 1.75, 2.0, 0.125])  # exact boundaries / ties (s=0.25)
    sa = torch.tensor([0.25], requires_grad=True)
    mask = torch.rand(4, 3, 5, 5) < 0.5
    dya = torch.randn(4, 3, 5, 5)
    ya = act_fq(x, sa, -8, 7, mask)
    ya.backward(dya)
    out.update({"aq.x": x, "aq.s": sa, "aq.mask": mask.to(torch.uint8), "aq.dy": dya,
                "aq.y": ya, "aq.dx": x.grad, "aq.ds": sa.grad})
    # unsigned, no mask
    xu = (torch.randn(2, 3, 4, 4) * 2).requires_grad_()
    su = torch.tensor([0.37], requires_grad=True)
    dyu = torch.randn(2, 3, 4, 4)
    yu = act_fq(xu, su, 0, 15)
    yu.backward(dyu)
    out.update({"aqu.x": xu, "aqu.s": su, "aqu.dy": dyu, "aqu.y": yu, "aqu.dx": xu.grad,
                "aqu.ds": su.grad})
    # ---- rounding regulariser ----
    vr = (torch.randn(200) * 3).requires_grad_()
    for beta in (20.0, 7.3, 2.0):
        vr.grad = None
        r = round_reg(vr, beta)
        r.backward()
        out[f"reg.out_{beta}"] = r.reshape(1)
        out[f"reg.dv_{beta}"] = vr.grad.clone()
    out["reg.v"] = vr
    with h5py.File(os.path.join(HERE, "quant_ops.h5"), "w") as f:
        for k, t in out.items():
            write(f, k, t)


if __name__ == "__main__":
    make_ops()
