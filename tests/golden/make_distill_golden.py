#!/usr/bin/python3
"""Golden values for Genie-D (GENIE.md section 1), checked by tests/test_distill.cpp.

A PyTorch implementation of one distillation batch written from the spec (same structure as the
authors' reference loop): generator in training mode, teacher in eval mode with swing convolution
on every strided conv, L = L_bn + L_in, Adam on z (lr 0.1, ReduceLROnPlateau) and on G (lr 0.01,
x0.95 every 100 iterations).

The small teacher (1x8x8 input): conv1 3x3 1->4 -> bn1 -> relu -> conv2 3x3 stride 2 4->8 -> bn2
-> relu -> conv3 1x1 stride 2 8->8 -> bn3 -> relu -> global avg pool -> fc 8->3. Teacher weights,
generator weights and latents all come from one formula that the C++ test evaluates identically:

    value(t, i) = offset + scale * sin(0.731 * i + 1.37 * t + PHASE)   (double, then float32)

with t the tensor's ordinal in PARAMS below (teacher tensors, then generator tensors, then z) and i the flat element index. The swing offsets (dy, dx)
are drawn here with numpy and stored, then injected into the engine.

Conditioning. Adam's first step moves every parameter by lr * sign(g), so an element whose gradient
is at the level of float32 rounding noise moves by +-lr depending on summation order, and two
correct float32 implementations can drift apart by 1e-3 after a few steps on an unlucky instance
(PyTorch float32 against PyTorch float64 differs by up to 5 on some phases of the formula above).
The stored values are therefore the float64 trajectory (the exact answer), and the script checks
that this instance is well conditioned against *any* float32 summation order, not just PyTorch's:
three kinds of float32 run must stay within COND_TOL of it at every one of the 20 iterations —
PyTorch's own, one with the generator's upsample + 3x3 convolutions computed as four 2x2
convolutions (the engine's fused op, a different summation order; exact in float64: 2e-13), and
four runs with the generator weights and latents perturbed by 1e-7 relative noise (the size of a
rounding difference). The worst of these drifts is stored as the attribute float32_vs_float64;
the test holds the engine to twice that (at least 1e-4) at iteration 20, and to 2e-5 at iteration
1, before Adam has amplified anything. PHASE was chosen among 0.0, 0.1, ..., 3.1 as the best
conditioned (1.0, used before, drifts to 1.1e-4 with the fused generator convolutions; most phases
drift beyond 1e-4 with PyTorch's own summation order, several beyond 1e-2).

Usage: /usr/bin/python3 tests/golden/make_distill_golden.py   (writes tests/golden/distill_small.h5)
"""
import math
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

B, C_IN, R, LATENT, ITERS = 4, 1, 8, 256, 20
LR_Z, LR_G = 0.1, 0.01
PHASE = 0.3  # see Conditioning above; tests/test_distill.cpp reads it from the file

# (name, shape, offset, scale); the ordinal t is the position in this list.
TEACHER = [
    ("conv1.weight", (4, 1, 3, 3), 0.0, 1.0 / 3.0),
    ("bn1.weight", (4,), 1.0, 0.2),
    ("bn1.bias", (4,), 0.0, 0.1),
    ("bn1.running_mean", (4,), 0.0, 0.3),
    ("bn1.running_var", (4,), 0.6, 0.3),
    ("conv2.weight", (8, 4, 3, 3), 0.0, 1.0 / 6.0),
    ("bn2.weight", (8,), 1.0, 0.2),
    ("bn2.bias", (8,), 0.0, 0.1),
    ("bn2.running_mean", (8,), 0.0, 0.3),
    ("bn2.running_var", (8,), 0.6, 0.3),
    ("conv3.weight", (8, 8, 1, 1), 0.0, 1.0 / math.sqrt(8.0)),
    ("bn3.weight", (8,), 1.0, 0.2),
    ("bn3.bias", (8,), 0.0, 0.1),
    ("bn3.running_mean", (8,), 0.0, 0.3),
    ("bn3.running_var", (8,), 0.6, 0.3),
    ("fc.weight", (3, 8), 0.0, 0.3),
    ("fc.bias", (3,), 0.0, 0.1),
]
S4 = R // 4
GENERATOR = [
    ("l1.weight", (128 * S4 * S4, LATENT), 0.0, 1.0 / 16.0),
    ("l1.bias", (128 * S4 * S4,), 0.0, 1.0 / 16.0),
    ("bn0.weight", (128,), 1.0, 0.1),
    ("bn0.bias", (128,), 0.0, 0.1),
    ("conv1.weight", (64, 128, 3, 3), 0.0, 1.0 / math.sqrt(128 * 9)),
    ("conv1.bias", (64,), 0.0, 1.0 / math.sqrt(128 * 9)),
    ("bn1.weight", (64,), 1.0, 0.1),
    ("bn1.bias", (64,), 0.0, 0.1),
    ("conv2.weight", (C_IN, 64, 3, 3), 0.0, 1.0 / math.sqrt(64 * 9)),
    ("conv2.bias", (C_IN,), 0.0, 1.0 / math.sqrt(64 * 9)),
]
LATENTS = ("z", (B, LATENT), 0.0, 1.2)
PARAMS = TEACHER + GENERATOR + [LATENTS]


def formula(t, shape, offset, scale):
    n = int(np.prod(shape))
    # math.sin (libm, double) rather than numpy's vectorised sin, to match the C++ std::sin.
    v = [offset + scale * math.sin(0.731 * i + 1.37 * t + PHASE) for i in range(n)]
    return torch.tensor(np.array(v, dtype=np.float64).astype(np.float32).reshape(shape))


_ALL = [(t, name, shape, off, sc) for t, (name, shape, off, sc) in enumerate(PARAMS)]
T_VALUES = {n: formula(t, sh, o, s) for t, n, sh, o, s in _ALL if t < len(TEACHER)}
G_VALUES = {n: formula(t, sh, o, s) for t, n, sh, o, s in _ALL
            if len(TEACHER) <= t < len(TEACHER) + len(GENERATOR)}
Z_VALUE = formula(len(PARAMS) - 1, LATENTS[1], LATENTS[2], LATENTS[3])


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 8, 1, 2, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    @staticmethod
    def swing(conv, x, off):
        dy, dx = off
        p = F.pad(x, [1, 1, 1, 1], mode="reflect")
        return conv(p[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]])

    def forward(self, x, offsets, bn_inputs):
        h = self.conv1(x)
        bn_inputs.append(h)
        h = F.relu(self.bn1(h))
        h = self.swing(self.conv2, h, offsets[0])
        bn_inputs.append(h)
        h = F.relu(self.bn2(h))
        h = self.swing(self.conv3, h, offsets[1])
        bn_inputs.append(h)
        h = F.relu(self.bn3(h))
        return self.fc(h.mean([2, 3]))


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(LATENT, 128 * S4 * S4)
        self.bn0 = nn.BatchNorm2d(128)
        self.conv1 = nn.Conv2d(128, 64, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, C_IN, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(C_IN, affine=False)

    def forward(self, z):
        h = self.l1(z).view(z.shape[0], 128, S4, S4)
        h = F.interpolate(self.bn0(h), scale_factor=2, mode="nearest")
        h = F.leaky_relu(self.bn1(self.conv1(h)), 0.2)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.bn2(torch.tanh(self.conv2(h)))


def upsample_conv_parity(x, conv):
    """conv(upsample_nearest2x(x)) for a 3x3, pad-1 conv, as four 2x2 convolutions of x (one per
    output parity), the way ops::upsample2x_conv3x3 computes it."""
    w, K = conv.weight, conv.weight.shape[0]
    taps = ([[0], [1, 2]], [[0, 1], [2]])  # parity p: 3-taps summed into 2-tap 0 and 1
    stacked = []
    for py in (0, 1):
        for px in (0, 1):
            rows = [w[:, :, taps[py][a]].sum(2) for a in (0, 1)]  # (K, C, 3) each
            stacked.append(torch.stack([torch.stack([r[:, :, taps[px][b]].sum(2) for b in (0, 1)], -1)
                                        for r in rows], -2))
    z = F.conv2d(x, torch.cat(stacked, 0), None, 1, 1)  # (N, 4K, H+1, W+1)
    H, W = x.shape[2], x.shape[3]
    y = torch.empty(x.shape[0], K, 2 * H, 2 * W, dtype=x.dtype)
    for py in (0, 1):
        for px in (0, 1):
            pi = 2 * py + px
            y[:, :, py::2, px::2] = z[:, pi * K:(pi + 1) * K, py:py + H, px:px + W]
    return y + conv.bias.view(1, -1, 1, 1)


class ParityGenerator(Generator):
    def forward(self, z):
        h = self.bn0(self.l1(z).view(z.shape[0], 128, S4, S4))
        h = F.leaky_relu(self.bn1(upsample_conv_parity(h, self.conv1)), 0.2)
        return self.bn2(torch.tanh(upsample_conv_parity(h, self.conv2)))


def l2_loss(a, b):  # ||a - b||^2 / b.size(0), as in the reference
    return (a - b).norm() ** 2 / b.size(0)


COND_TOL = 1e-4


def trajectory(dtype, offsets, gen_cls=None, perturb_seed=None):
    """One distillation batch of ITERS iterations; returns per-iteration losses, dL/dz, last x.
    gen_cls: the generator class (default Generator); perturb_seed: multiply the generator weights
    and latents by (1 + 1e-7 N(0,1)) first."""
    teacher = Teacher()
    teacher.load_state_dict({k: T_VALUES[k] for k in teacher.state_dict() if k in T_VALUES}, strict=False)
    teacher.eval().to(dtype)
    for p in teacher.parameters():
        p.requires_grad_(False)
    g_values, z_value = G_VALUES, Z_VALUE
    if perturb_seed is not None:
        rng = torch.Generator().manual_seed(perturb_seed)
        noisy = lambda v: v * (1 + 1e-7 * torch.randn(v.shape, generator=rng))
        g_values = {k: noisy(v) for k, v in G_VALUES.items()}
        z_value = noisy(Z_VALUE)
    gen = (gen_cls or Generator)()
    gen.load_state_dict({k: g_values[k] for k in gen.state_dict() if k in g_values}, strict=False)
    gen.train().to(dtype)
    z = z_value.clone().to(dtype).requires_grad_()

    bn_stats = [(teacher.state_dict()[f"bn{i}.running_mean"].clone(),
                 torch.sqrt(teacher.state_dict()[f"bn{i}.running_var"] + 1e-6)) for i in (1, 2, 3)]
    opt_z = torch.optim.Adam([z], lr=LR_Z)
    sched_z = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_z, min_lr=1e-4, patience=100)
    opt_g = torch.optim.Adam(gen.parameters(), lr=LR_G)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=0.95)

    losses, bn_losses, in_losses, zgrads = [], [], [], []
    for it in range(ITERS):
        opt_z.zero_grad()
        opt_g.zero_grad()
        x = gen(z)
        bn_inputs = []
        teacher(x, [tuple(o) for o in offsets[it]], bn_inputs)
        data_std, data_mean = torch.std_mean(x, [2, 3])
        l_in = (l2_loss(torch.zeros(1, C_IN, dtype=dtype), data_mean)
                + l2_loss(torch.ones(1, C_IN, dtype=dtype), data_std))
        l_bn = 0
        for (mu, sd), a in zip(bn_stats, bn_inputs):
            s, m = torch.std_mean(a, [0, 2, 3])
            l_bn = l_bn + l2_loss(mu, m) + l2_loss(sd, s)
        loss = l_bn + l_in
        loss.backward()
        losses.append(loss.item())
        bn_losses.append(float(l_bn))
        in_losses.append(float(l_in))
        zgrads.append(z.grad.detach().clone().double().numpy())
        opt_z.step()
        opt_g.step()
        sched_z.step(loss.item())
        if (it + 1) % 100 == 0:
            sched_g.step()
        last_x = x.detach().clone().double().numpy()
    return np.array(losses), np.array(bn_losses), np.array(in_losses), zgrads, last_x


def main():
    torch.manual_seed(0)
    rng = np.random.RandomState(2023)
    offsets = rng.randint(0, 3, size=(ITERS, 2, 2)).astype(np.int32)  # (iter, layer, [dy, dx])
    losses, bn_losses, in_losses, zgrads, last_x = trajectory(torch.float64, offsets)

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    def drift(run):  # worst relative difference of a float32 run from the float64 trajectory
        l32, _, _, z32, x32 = run
        return max(max(rel(z32[i], zgrads[i]) for i in range(ITERS)), rel(x32, last_x),
                   rel(l32, losses))
    drifts = {"pytorch": drift(trajectory(torch.float32, offsets)),
              "parity_conv": drift(trajectory(torch.float32, offsets, ParityGenerator))}
    for seed in range(4):
        drifts[f"perturbed_{seed}"] = drift(trajectory(torch.float32, offsets, perturb_seed=seed))
    cond = max(drifts.values())
    print("float32 vs float64: " + ", ".join(f"{k} {v:.2e}" for k, v in drifts.items()))
    assert cond < COND_TOL, f"ill-conditioned instance: float32 vs float64 differ by {cond:.2e}"

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distill_small.h5")
    with h5py.File(out, "w") as f:
        f.attrs["description"] = ("Genie-D golden (make_distill_golden.py): B=4, 1x8x8, 20 iterations, "
                                  "float64 trajectory; offsets[it, layer] = (dy, dx); zgrad_<k> = dL/dz "
                                  "at iteration k (1-based)")
        f.attrs["iters"] = ITERS
        f.attrs["batch"] = B
        f.attrs["float32_vs_float64"] = cond
        f.attrs["phase"] = PHASE
        f.create_dataset("offsets", data=offsets)
        f.create_dataset("loss", data=np.array(losses, dtype=np.float32))
        f.create_dataset("bn_loss", data=np.array(bn_losses, dtype=np.float32))
        f.create_dataset("input_loss", data=np.array(in_losses, dtype=np.float32))
        f.create_dataset("zgrad_1", data=zgrads[0].astype(np.float32))
        f.create_dataset("zgrad_20", data=zgrads[ITERS - 1].astype(np.float32))
        f.create_dataset("images_20", data=last_x.astype(np.float32))
    print(f"wrote {out}: loss[1]={losses[0]:.6f} loss[20]={losses[-1]:.6f}; "
          f"PyTorch float32 vs float64: {cond:.2e}")


if __name__ == "__main__":
    main()
