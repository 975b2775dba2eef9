#!/usr/bin/python3
"""Writes tests/golden/training_golden.txt for tests/test_training.cpp (run with Debian's
/usr/bin/python3, torch 1.13):

  loss <200 values>         cross-entropy at Adam steps 1..200 (loss of the forward pass before
                            the step's update) of the small conv net below, full batch, lr LR
  loss_sensitivity <200>    how chaotic that run is: the worst relative change of each step's
                            loss when every initial weight is perturbed by a relative 1e-6 (three
                            seeds) — the yardstick of the test's tolerances
  plateau_metric <values>   a metric sequence, and
  plateau_lr <values>       the lr after each ReduceLROnPlateau.step(metric)
  step_lr / exp_lr / cos_lr <values>   StepLR / ExponentialLR / CosineAnnealingLR lr per epoch

Weights and data come from integer formulas that C++ reproduces bit-exactly (see the test):
  param value  = (h / 2003 - 0.5) * 2 / sqrt(fan_in),  h = (i * 7919 + layer * 104729) % 2003
  image pixel  = ((n * 37 + y * 11 + x * 7 + (n % 10) * y * x) % 17) / 8 - 1
  label        = n % 10
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
# Adam's learning rate. 5e-4 keeps the 200-step run well-conditioned (a 1e-6 weight perturbation
# moves the loss at step 200 by 4e-5; at 1e-2, a memorisation run down to loss 0.007, by 1.2 %),
# so the test can hold the engine to tight tolerances whatever order its kernels sum in.
LR = 5e-4
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_golden.txt")


def init_param(shape, layer, fan_in):
    n = 1
    for d in shape:
        n *= d
    bound = 1.0 / math.sqrt(fan_in)
    vals = [(((i * 7919 + layer * 104729) % 2003) / 2003.0 - 0.5) * 2.0 * bound for i in range(n)]
    return torch.tensor(vals, dtype=torch.float32).reshape(shape)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            self.c1.weight.copy_(init_param((8, 1, 3, 3), 1, 9))
            self.c2.weight.copy_(init_param((16, 8, 3, 3), 2, 72))
            self.fc.weight.copy_(init_param((10, 16), 3, 16))
            self.fc.bias.copy_(init_param((10,), 4, 16))

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.relu(self.b2(self.c2(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def data():
    N = 64
    x = torch.zeros(N, 1, 8, 8)
    for n in range(N):
        for y in range(8):
            for xx in range(8):
                x[n, 0, y, xx] = ((n * 37 + y * 11 + xx * 7 + (n % 10) * y * xx) % 17) / 8.0 - 1.0
    return x, torch.tensor([n % 10 for n in range(N)])


def fmt(name, vals):
    return name + " " + " ".join("%.9g" % v for v in vals)


def train(device="cpu", perturb_seed=None):
    net = Net()
    if perturb_seed is not None:  # every initial weight times (1 + 1e-6 * N(0, 1))
        g = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + 1e-6 * torch.randn(p.shape, generator=g))
    net = net.to(device)
    x, y = data()
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    losses = []
    for step in range(200):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


if len(sys.argv) == 3 and sys.argv[1] == "--check-device":
    # How far PyTorch itself drifts from the committed CPU curve on another device (no TF32), the
    # yardstick for genie's CUDA training test: python3 make_training_golden.py --check-device cuda
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with open(OUT) as f:
        want = [float(v) for v in next(l for l in f if l.startswith("loss ")).split()[1:]]
    got = train(sys.argv[2])
    rel = [abs(g - w) / abs(w) for g, w in zip(got, want)]
    print("torch %s on %s vs the CPU golden: relative deviation at steps 1/50/200: %.3g / %.3g / %.3g;"
          " worst %.3g" % (torch.__version__, sys.argv[2], rel[0], rel[49], rel[199], max(rel)))
    sys.exit(0)

lines = []
losses = train()
lines.append(fmt("loss", losses))
sensitivity = [0.0] * len(losses)
for seed in (1, 2, 3):
    got = train(perturb_seed=seed)
    sensitivity = [max(s, abs(a - b) / abs(b)) for s, a, b in zip(sensitivity, got, losses)]
lines.append(fmt("loss_sensitivity", sensitivity))

# ReduceLROnPlateau (mode min, rel threshold 1e-4, factor 0.1, patience 3, min_lr 3e-4).
# Phases: improvements; a plateau (one reduction); improvements every third step (the bad-epoch
# counter resets, no reduction); a long plateau (reductions down to the min_lr clamp, then none);
# a worsening metric. Tiny decreases (1e-5, at most 2e-4 in total between real improvements, i.e.
# < 1e-4 relative to a best of ~5) stay well below the relative threshold and count as bad epochs;
# no metric lies near the threshold boundary, so float (C++) and double (Python) agree.
metric = []
m = 10.0
for i in range(60):
    if i < 8:
        m -= 0.5
    elif i < 14:
        m -= 1e-5
    elif i < 26:
        m -= 0.25 if i % 3 == 2 else 1e-5
    elif i < 46:
        m -= 1e-5
    else:
        m += 0.1
    metric.append(m)
p = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.SGD([p], lr=0.1)
sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=3,
                                                 threshold=1e-4, min_lr=3e-4)
plateau = []
for v in metric:
    sch.step(v)
    plateau.append(opt.param_groups[0]["lr"])
lines.append(fmt("plateau_metric", metric))
lines.append(fmt("plateau_lr", plateau))


def sched_values(make, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    o = torch.optim.SGD([p], lr=0.1)
    s = make(o)
    vals = []
    for _ in range(epochs):
        vals.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    return vals


lines.append(fmt("step_lr", sched_values(lambda o: torch.optim.lr_scheduler.StepLR(o, 100, 0.95), 1001)))
lines.append(fmt("exp_lr", sched_values(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.99), 300)))
lines.append(fmt("cos_lr", sched_values(
    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=250, eta_min=0.001), 251)))

with open(OUT, "w") as f:
    f.write("# genie training/schedule goldens: torch %s, tests/golden/make_training_golden.py\n"
            % torch.__version__)
    f.write("\n".join(lines) + "\n")
print("loss at 1, 50, 200:", losses[0], losses[49], losses[199])
print("sensitivity at 50, 200:", sensitivity[49], sensitivity[199])
print("plateau:", plateau)
