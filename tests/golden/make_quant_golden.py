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


# ---------------------------------------------------------------------------------------------
# One reconstruction step of a BasicBlock (GENIE.md §2.5), with fixed weights, quantizer states and
# QDrop masks. Model: conv1 (3->8) bn1 relu | layer1.0 BasicBlock 8->8 (identity shortcut) |
# layer2.0 BasicBlock 8->16 stride 2 (downsample) | avgpool | fc 16->10. Both blocks are checked.

import torch.nn.functional as F


def bn_params(c):
    return {"weight": 1 + 0.2 * torch.randn(c), "bias": 0.1 * torch.randn(c),
            "running_mean": 0.1 * torch.randn(c), "running_var": 0.5 + torch.rand(c)}


def bn_eval(x, p):
    return F.batch_norm(x, p["running_mean"], p["running_var"], p["weight"], p["bias"], False, 0.0, 1e-5)


def temp_decay(it, iters, warm=0.2, start=20.0, end=2.0):
    sd = warm * iters
    if it < sd:
        return start
    rel = (it - sd) / (iters - sd)
    return end + (start - end) * max(0.0, 1 - rel)


def make_block():
    params = {}
    params["conv1.weight"] = torch.randn(8, 3, 3, 3) * 0.3
    for k, v in bn_params(8).items():
        params["bn1." + k] = v
    blocks = {"layer1.0": (8, 8, 1), "layer2.0": (8, 16, 2)}
    for b, (cin, cout, st) in blocks.items():
        params[b + ".conv1.weight"] = torch.randn(cout, cin, 3, 3) * (2.0 / (9 * cin)) ** 0.5
        params[b + ".conv2.weight"] = torch.randn(cout, cout, 3, 3) * (2.0 / (9 * cout)) ** 0.5
        for k, v in bn_params(cout).items():
            params[b + ".bn1." + k] = v
            params[b + ".bn2." + k] = bn_params(cout)[k]
        if st != 1:
            params[b + ".downsample.0.weight"] = torch.randn(cout, cin, 1, 1) * (2.0 / cin) ** 0.5
            for k, v in bn_params(cout).items():
                params[b + ".downsample.1." + k] = v
    params["fc.weight"] = torch.randn(10, 16) * 0.25
    params["fc.bias"] = 0.1 * torch.randn(10)

    out = {("param." + k): v for k, v in params.items()}
    iters, it = 100, 60
    beta = temp_decay(it, iters)
    out["iters"] = torch.tensor([iters])
    out["it"] = torch.tensor([it])
    out["beta"] = torch.tensor([beta])
    N = 4
    for b, (cin, cout, st) in blocks.items():
        H = 8
        x = torch.relu(torch.randn(N, cin, H, H))
        xq = torch.relu(x + 0.05 * torch.randn(N, cin, H, H))
        Ho = H // st
        y = torch.relu(torch.randn(N, cout, Ho, Ho))
        mix = torch.rand(N, cin, H, H) < 0.5
        convs = ["conv1", "conv2"] + (["downsample.0"] if st != 1 else [])
        wstate = {}
        for c in convs:
            w = params[f"{b}.{c}.weight"]
            s0, z, wf, v0 = weight_init(w, 4)
            v = (v0 + 0.5 * torch.randn_like(v0)).requires_grad_()
            s = (s0.reshape(-1) * (1 + 0.05 * torch.randn(s0.numel()))).requires_grad_()
            wstate[c] = (wf, v, s, z)
            out[f"{b}.{c}.w_floor"], out[f"{b}.{c}.v"] = wf, v
            out[f"{b}.{c}.s"], out[f"{b}.{c}.z"] = s, z
        # activation quantizers: block input (shared by conv1 and the shortcut), conv2 input
        in_bits = 8 if b == "layer1.0" else 4  # layer1.0.conv1 is the second layer (A8)
        # steps small enough that some values clip: the step gradients then carry Qp terms and are not
        # dominated by the cancelling round(t) - t terms (keeps the float32 comparison meaningful)
        s_in = torch.tensor([0.01 if in_bits == 8 else 0.15], requires_grad=True)
        s_mid = torch.tensor([0.15], requires_grad=True)
        out[f"{b}.s_in"], out[f"{b}.s_mid"] = s_in, s_mid
        out[f"{b}.in_bits"] = torch.tensor([in_bits])
        q_in = (0, 2 ** in_bits - 1)
        q_mid = (0, 15)
        m_conv1 = torch.rand(N, cin, H, H) < 0.5
        m_short = torch.rand(N, cin, H, H) < 0.5
        m_conv2 = torch.rand(N, cout, Ho, Ho) < 0.5

        def wq(c):
            wf, v, s, z = wstate[c]
            return weight_fq(wf, v, s, z, 4, False)

        xm = torch.where(mix, xq, x)
        a = act_fq(xm, s_in, *q_in, m_conv1)
        h = F.conv2d(a, wq("conv1"), None, st, 1)
        h = torch.relu(bn_eval(h, {k: params[f"{b}.bn1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}))
        h = act_fq(h, s_mid, *q_mid, m_conv2)
        h = F.conv2d(h, wq("conv2"), None, 1, 1)
        h = bn_eval(h, {k: params[f"{b}.bn2.{k}"] for k in ("weight", "bias", "running_mean", "running_var")})
        if st != 1:
            # downsample conv reads the block input through the shared quantizer (its own mask)
            sc = act_fq(xm, s_in, *q_in, m_short)
            sc = F.conv2d(sc, wq("downsample.0"), None, st, 0)
            sc = bn_eval(sc, {k: params[f"{b}.downsample.1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")})
        else:
            sc = act_fq(xm, s_in, *q_in, m_short)
        o = torch.relu(h + sc)
        rec = (o - y).pow(2).sum(1).mean()
        reg = 0
        for c in convs:
            reg = reg + round_reg(wstate[c][1], beta)
        total = rec + 1.0 * reg
        total.backward()
        out[f"{b}.x"], out[f"{b}.xq"], out[f"{b}.y"] = x, xq, y
        out[f"{b}.mix"] = mix.to(torch.uint8)
        out[f"{b}.m_conv1"], out[f"{b}.m_short"] = m_conv1.to(torch.uint8), m_short.to(torch.uint8)
        out[f"{b}.m_conv2"] = m_conv2.to(torch.uint8)
        out[f"{b}.rec"], out[f"{b}.reg"], out[f"{b}.total"] = rec.reshape(1), reg.reshape(1), total.reshape(1)
        for c in convs:
            out[f"{b}.{c}.ds"] = wstate[c][2].grad
            out[f"{b}.{c}.dv"] = wstate[c][1].grad
        out[f"{b}.ds_in"], out[f"{b}.ds_mid"] = s_in.grad, s_mid.grad
    with h5py.File(os.path.join(HERE, "quant_block.h5"), "w") as f:
        for k, t in out.items():
            write(f, k, t)


if __name__ == "__main__":
    make_ops()
    make_block()
