#!/usr/bin/env python3
"""Genie-D and Genie-M iterations in PyTorch eager, side by side with genie, in ONE invocation.

Runs genie_bench (a subprocess) on the Genie-D / Genie-M iteration cases, then runs the same
computations in PyTorch eager written to the spec (/work/shared/spec/GENIE.md, sections 1 and 2.5)
with the same thread count, and prints a table of genie time, PyTorch time and the ratio
(PyTorch / genie: > 1 means genie is faster) per case, plus one JSON document (--json FILE, and
stdout with --print-json).

Every case is rebuilt from the "params" genie_bench records (architecture, weights, batch, image
size, unit, bits, beta), so both sides compute the same thing:
  Genie-D  fresh generator G and latents z; x = G(z); teacher in eval mode with swing convolution
           on every strided conv; L = sum_l (|mu^_l - mu_l|^2 + |sigma^_l - sigma_l|^2) / C_l
           + sum_{n,c} (m_nc^2 + (1 - s_nc)^2) / B; backward; Adam(z, 0.1) and Adam(G, 0.01);
           ReduceLROnPlateau on z's lr, StepLR(100, 0.95) on G's.
  Genie-M  a batch of 32 gathered from the cached X / X_q / Y (randperm, as the reference);
           x = where(rand < 0.5, X_q, X); unit forward with AdaRound + learned-step weights and
           LSQ + QDrop activations (one quantizer per tensor, applied per consumer); loss
           sum_channels (out - Y)^2 averaged over batch and positions + rounding loss (beta);
           backward; Adam(weight steps 1e-4, act steps 4e-5, cosine) and Adam(logits 1e-3).

Usage (from the repository root):
  /usr/bin/python3 bench/compare_pytorch.py --bench build/bench/genie_bench [--device cpu|cuda]
      [--threads N] [--filter SUBSTR[,SUBSTR]] [--quick] [--reps N] [--rounds N] [--conv]
      [--json OUT.json]
With --rounds N the two sides alternate N times. The table shows two ratios: each side's best
median ("torch/genie"), and the median over rounds of the ratio within a round ("per round": both
sides timed seconds apart, so a shared machine's changing load moves it least); a target is met
when both reach it.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- models

class BasicBlock20(nn.Module):
    """CIFAR-style BasicBlock (models/data/README.md), torchvision key names."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class ResNet20(nn.Module):
    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=False)
        cin = 16
        for li, (w, s) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock20(cin, w, s if b == 0 else 1))
                cin = w
            setattr(self, f"layer{li}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def build_model(p, model_path):
    arch, weights = p["arch"], p["weights"]
    if arch == "resnet20":
        m = ResNet20(p["channels"], p["classes"])
        try:
            import h5py
        except ImportError:  # timings do not depend on the values; say so in the row
            h5py = None
            p["pytorch_weights"] = "random (no h5py here)"
        if weights == "resnet20_fmnist" and h5py is not None:
            with h5py.File(model_path, "r") as f:
                sd = {k: torch.from_numpy(f[k][()]) for k in f.keys()}
            missing = m.load_state_dict(sd, strict=False)
            bad = [k for k in missing.missing_keys if not k.endswith("num_batches_tracked")]
            if bad or missing.unexpected_keys:
                raise RuntimeError(f"resnet20_fmnist.h5: missing {bad}, unexpected {missing.unexpected_keys}")
        else:
            randomize_bn(m, 20)
    else:
        import torchvision
        m = getattr(torchvision.models, arch)(weights=None, num_classes=p["classes"])
        randomize_bn(m, 18)
    m.eval()
    for q in m.parameters():
        q.requires_grad_(False)
    return m


# ----------------------------------------------------------------------------- timing

class Clock:
    def __init__(self, dev):
        self.dev = dev

    def time(self, fn, warmup, reps):
        for _ in range(warmup):
            fn()
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
            evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                   for _ in range(reps)]
            for a, b in evs:
                a.record()
                fn()
                b.record()
            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in evs]
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
        return out


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


# ----------------------------------------------------------------------------- Genie-D

class Generator(nn.Module):
    """GENIE.md §1.2; BatchNorms in training mode, running statistics never used (not tracked)."""

    def __init__(self, R, C):
        super().__init__()
        self.s = R // 4
        self.l1 = nn.Linear(256, 128 * self.s * self.s)
        self.bn0 = nn.BatchNorm2d(128, track_running_stats=False)
        self.conv1 = nn.Conv2d(128, 64, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(64, track_running_stats=False)
        self.conv2 = nn.Conv2d(64, C, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(C, affine=False, track_running_stats=False)

    def forward(self, z):
        x = self.bn0(self.l1(z).view(-1, 128, self.s, self.s))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.leaky_relu(self.bn1(self.conv1(x)), 0.2)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.bn2(torch.tanh(self.conv2(x)))


class SwingConv(nn.Module):
    """Reflect-pad by 1, crop an HxW window at a random offset in {0,1,2}^2, convolve."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        H, W = x.shape[2], x.shape[3]
        dy, dx = random.randint(0, 2), random.randint(0, 2)
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")[:, :, dy:dy + H, dx:dx + W]
        return self.conv(x)


def swingify(module):
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.stride != (1, 1):
            setattr(module, name, SwingConv(child))
        else:
            swingify(child)


def genie_d_case(p, dev, model_path, warmup, reps):
    teacher = build_model(p, model_path).to(dev)
    swingify(teacher)
    B, R, C = p["batch"], p["image"], p["channels"]
    losses = []
    targets = {}
    for m in teacher.modules():
        if isinstance(m, nn.BatchNorm2d):
            targets[m] = (m.running_mean.clone(), torch.sqrt(m.running_var + 1e-6))

            def hook(mod, inp, out):
                a = inp[0]
                mu, sigma = targets[mod]
                std, mean = torch.std_mean(a, dim=(0, 2, 3), unbiased=True)
                c = a.shape[1]
                losses.append(((mean - mu) ** 2).sum() / c + ((std - sigma) ** 2).sum() / c)
            m.register_forward_hook(hook)

    torch.manual_seed(0)
    G = Generator(R, C).to(dev).train()
    z = torch.randn(B, 256, device=dev, requires_grad=True)
    opt_z = torch.optim.Adam([z], lr=0.1)
    opt_g = torch.optim.Adam(G.parameters(), lr=0.01)
    sched_z = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_z, factor=0.1, patience=100,
                                                         threshold=1e-4, min_lr=1e-4)
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=100, gamma=0.95)
    hist = []

    def it():
        opt_z.zero_grad()
        opt_g.zero_grad()
        x = G(z)
        losses.clear()
        teacher(x)
        std, mean = torch.std_mean(x, dim=(2, 3), unbiased=True)
        l_in = (mean ** 2 + (1 - std) ** 2).sum() / B
        loss = sum(losses) + l_in
        loss.backward()
        opt_z.step()
        opt_g.step()
        lv = loss.item()
        sched_z.step(lv)
        sched_g.step()
        hist.append(lv)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ms = Clock(dev).time(it, warmup, reps)
    out = {"median_ms": median(ms), "min_ms": min(ms), "reps": len(ms),
           "loss_first": hist[0], "loss_last": hist[-1]}
    if dev.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def genie_d_parts_case(p, part, dev, model_path, warmup, reps):
    """The parts of one Genie-D iteration (genie_bench's genie_d_parts cases)."""
    teacher = build_model(p, model_path).to(dev)
    swingify(teacher)
    B, R, C = p["batch"], p["image"], p["channels"]
    losses = []
    for m in teacher.modules():
        if isinstance(m, nn.BatchNorm2d):
            sigma = torch.sqrt(m.running_var + 1e-6)

            def hook(mod, inp, out, sigma=sigma):
                a = inp[0]
                std, mean = torch.std_mean(a, dim=(0, 2, 3), unbiased=True)
                c = a.shape[1]
                losses.append(((mean - mod.running_mean) ** 2).sum() / c + ((std - sigma) ** 2).sum() / c)
            m.register_forward_hook(hook)

    def tloss(x):
        losses.clear()
        teacher(x)
        std, mean = torch.std_mean(x, dim=(2, 3), unbiased=True)
        return sum(losses) + (mean ** 2 + (1 - std) ** 2).sum() / B

    torch.manual_seed(0)
    G = Generator(R, C).to(dev).train()
    z = torch.randn(B, 256, device=dev, requires_grad=True)
    dx = torch.randn(B, C, R, R, device=dev)
    opt_z = torch.optim.Adam([z], lr=0.1)
    opt_g = torch.optim.Adam(G.parameters(), lr=0.01)
    xs = torch.randn(B, C, R, R, device=dev)
    xl = xs.clone().requires_grad_(True)

    def gen_fwd():
        G(z)

    def gen_fwd_bwd():
        opt_g.zero_grad()
        z.grad = None
        G(z).backward(dx)

    def teacher_fwd():
        with torch.no_grad():
            tloss(xs)

    def teacher_fwd_bwd():
        xl.grad = None
        tloss(xl).backward()

    G(z).backward(dx)

    def adam():
        opt_z.step()
        opt_g.step()

    def all_parts():  # one whole iteration without the loop's bookkeeping (schedules, swing draws)
        opt_z.zero_grad()
        opt_g.zero_grad()
        tloss(G(z)).backward()
        opt_z.step()
        opt_g.step()

    fn = {"gen_fwd": gen_fwd, "gen_fwd_bwd": gen_fwd_bwd, "teacher_fwd": teacher_fwd,
          "teacher_fwd_bwd": teacher_fwd_bwd, "adam": adam, "all": all_parts}[part]
    ms = Clock(dev).time(fn, warmup, reps)
    return {"median_ms": median(ms), "min_ms": min(ms), "reps": len(ms)}


# ----------------------------------------------------------------------------- Genie-M

def round_ste(x):
    return (x.round() - x).detach() + x


class WeightQuant(nn.Module):
    """AdaRound soft rounding with a learned per-output-channel step (GENIE.md §2.2).
    The initial grid is min/max per channel (the benchmark times iterations, not the clip search)."""

    def __init__(self, w, bits):
        super().__init__()
        self.qmax = 2 ** bits - 1
        K = w.shape[0]
        shape = (K,) + (1,) * (w.dim() - 1)
        wf = w.reshape(K, -1)
        mx, mn = wf.max(1)[0].clamp(min=0), wf.min(1)[0].clamp(max=0)
        delta = ((mx - mn) / self.qmax).clamp(min=1e-8).reshape(shape)
        zero = torch.round(-mn.reshape(shape) / delta)
        self.delta = nn.Parameter(delta.clone())
        self.register_buffer("zero", zero)
        self.register_buffer("w_floor", torch.floor(w / delta))
        rest = (w / delta) - self.w_floor  # h(alpha) = rest: alpha = -log(1.2 / (rest + 0.1) - 1)
        self.alpha = nn.Parameter(-torch.log(1.2 / (rest + 0.1) - 1))

    def h(self):
        return torch.clamp(torch.sigmoid(self.alpha) * 1.2 - 0.1, 0, 1)

    def forward(self):
        x_int = self.w_floor + self.h()
        x_quant = torch.clamp(x_int + self.zero, 0, self.qmax)
        return (x_quant - self.zero) * self.delta

    def round_loss(self, beta):
        return (1 - (torch.abs(self.h() - 0.5) * 2).pow(beta)).sum()


class ActQuant(nn.Module):
    """LSQ with QDrop (GENIE.md §2.3): each element keeps its FP value with probability 0.5."""

    def __init__(self, bits, x):
        super().__init__()
        signed = bool((x < 0).any())
        self.qn, self.qp = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        m = x.abs().max().item()
        self.step = nn.Parameter(torch.tensor(max(m, 1e-8) / (self.qp - self.qn), device=x.device))

    def forward(self, x):
        xq = round_ste(torch.clamp(x / self.step, self.qn, self.qp)) * self.step
        return torch.where(torch.rand_like(x) < 0.5, xq, x)


class QConv(nn.Module):
    def __init__(self, conv, bits):
        super().__init__()
        self.conv = conv
        self.wq = WeightQuant(conv.weight.detach(), bits)

    def forward(self, x):
        c = self.conv
        if isinstance(c, nn.Linear):
            return F.linear(x, self.wq(), c.bias)
        return F.conv2d(x, self.wq(), c.bias, c.stride, c.padding, c.dilation, c.groups)


class QUnit(nn.Module):
    """A quantized residual block. One activation quantizer per tensor (the block input's is shared
    by conv1, the downsample conv and the identity shortcut), applied by each consumer separately,
    so each draws its own QDrop mask — as the reference and genie's QModel do."""

    def __init__(self, block, kind, bits_w, bits_a, X):
        super().__init__()
        self.kind = kind
        self.block = block
        self.bits_a = bits_a
        convs = [(n, m) for n, m in block.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.q = nn.ModuleDict({n.replace(".", "_"): QConv(m, bits_w) for n, m in convs})
        with torch.no_grad():  # calibration pass: activation quantizers from this batch
            self.aq = nn.ModuleDict()
            self.calib = True
            self.forward(X)
            self.calib = False

    def act(self, name, x):
        if self.calib:
            if name not in self.aq:
                self.aq[name] = ActQuant(self.bits_a, x)
            return x
        return self.aq[name](x)

    def conv(self, name, x):
        return self.q[name.replace(".", "_")](x)

    def forward(self, x):
        b = self.block
        if self.kind in ("basic_block", "bottleneck"):
            out = b.relu(b.bn1(self.conv("conv1", self.act("in", x))))
            if self.kind == "basic_block":
                out = b.bn2(self.conv("conv2", self.act("a2", out)))
            else:
                out = b.relu(b.bn2(self.conv("conv2", self.act("a2", out))))
                out = b.bn3(self.conv("conv3", self.act("a3", out)))
            if b.downsample is None:
                idt = self.act("in", x)
            else:
                idt = b.downsample[1](self.conv("downsample.0", self.act("in", x)))
            return b.relu(out + idt)
        if self.kind == "inverted_residual":
            # torchvision: conv = [expand (Conv, BN, ReLU6)]?, dw (Conv, BN, ReLU6), Conv, BN
            layers = list(b.conv)
            names = [n for n, m in b.named_modules() if isinstance(m, nn.Conv2d)]  # "conv.0.0", …
            out = x
            for i, layer in enumerate(layers[:-2]):
                inp = self.act("in" if i == 0 else f"a{i}", out)
                out = layer[2](layer[1](self.conv(names[i], inp)))
            out = layers[-1](self.conv(names[-1], self.act("proj", out)))
            return out + self.act("in", x) if b.use_res_connect else out
        raise ValueError(f"unsupported unit kind {self.kind}")

    def round_loss(self, beta):
        return sum(m.wq.round_loss(beta) for m in self.q.values())


def genie_m_case(p, dev, model_path, warmup, reps):
    model = build_model(p, model_path).to(dev)
    block = model.get_submodule(p["unit"])
    B = p["batch"]
    shape = [int(s) for s in p["unit_input"].strip("()").split(",")]  # (cache, C, H, W)
    torch.manual_seed(0)
    # The cached unit data, on the device as in the reference (keep_gpu=True).
    X = torch.relu(torch.randn(shape, device=dev))
    Xq = torch.relu(X + 0.05 * torch.randn(shape, device=dev))
    with torch.no_grad():
        Y = block(X)
    qu = QUnit(block, p["kind"], p["wbits"], p["abits"], Xq[:B]).to(dev)
    w_steps = [m.wq.delta for m in qu.q.values()]
    a_steps = [m.step for m in qu.aq.values()]
    alphas = [m.wq.alpha for m in qu.q.values()]
    iters, beta = p["iters"], p["beta"]
    opt_w = torch.optim.Adam([{"params": w_steps, "lr": 1e-4}, {"params": a_steps, "lr": 4e-5}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, T_max=iters, eta_min=0)
    opt_v = torch.optim.Adam(alphas, lr=1e-3)
    N = X.shape[0]

    def it():
        idx = torch.randperm(N)[:B]
        x, xq, y = X[idx], Xq[idx], Y[idx]
        opt_w.zero_grad()
        opt_v.zero_grad()
        x = torch.where(torch.rand_like(x) < 0.5, xq, x)
        out = qu(x)
        rec = (out - y).abs().pow(2).sum(1).mean()
        loss = rec + qu.round_loss(beta)
        loss.backward()
        opt_w.step()
        opt_v.step()
        sched.step()

    ms = Clock(dev).time(it, warmup, reps)
    return {"median_ms": median(ms), "min_ms": min(ms), "reps": len(ms)}


# ----------------------------------------------------------------------------- convolutions

def conv_case(p, variant, dev, warmup, reps):
    """One convolution kernel as PyTorch runs it (forward, or one half of the backward)."""
    N, C, H, K, R = p["N"], p["C"], p["H"], p["K"], p["R"]
    st, pad, g = p["stride"], p["pad"], p["groups"]
    x = torch.randn(N, C, H, H, device=dev)
    w = torch.randn(K, C // g, R, R, device=dev) * 0.1
    y = F.conv2d(x, w, None, st, pad, 1, g)
    dy = torch.randn_like(y)
    if variant == "fwd":
        fn = lambda: F.conv2d(x, w, None, st, pad, 1, g)
    else:
        mask = [variant == "bwd_data", variant == "bwd_filter", False]
        fn = lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [st, st], [pad, pad], [1, 1],
                                                          False, [0, 0], g, mask)
    with torch.no_grad():
        ms = Clock(dev).time(fn, warmup, reps)
    return {"median_ms": median(ms), "min_ms": min(ms), "reps": len(ms)}


# ----------------------------------------------------------------------------- driver

def target_for(group, device):
    if device == "cpu" and "resnet20_fmnist" in group and (
            group.startswith("genie_d/") or group.startswith("genie_m/")):
        return 1.5
    if device == "cuda" and group.startswith("genie_d/resnet18"):
        return 3.0
    if device == "cuda" and group.startswith("genie_m/"):
        return 5.0
    return None


def run_genie(a, threads):
    filt = a.filter or ("genie_,conv/" if a.conv else "genie_")
    cmd = [a.bench, "--device", a.device, "--threads", str(threads), "--filter", filt]
    if a.quick:
        cmd.append("--quick")
    if a.reps:
        cmd += ["--reps", str(a.reps)]
    cmd += ["--model", a.model]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if not proc.stdout.strip():
        sys.exit(f"genie_bench produced no JSON (exit {proc.returncode})")
    if proc.returncode != 0:
        print(f"warning: genie_bench exited {proc.returncode} (a case failed its check)", file=sys.stderr)
    return json.loads(proc.stdout)


def selected_cases(gdoc, a):
    out = []
    for r in gdoc["results"]:
        g = r["group"]
        is_conv = g.startswith("conv/") and bool(a.conv or a.filter)
        if not (g.startswith("genie_d") or g.startswith("genie_m") or is_conv) or not r.get("ok"):
            continue
        if a.filter and not any(f and f in r["name"] for f in a.filter.split(",")):
            continue
        out.append((r, is_conv))
    return out


def run_torch_case(r, is_conv, dev, a):
    g, p = r["group"], r["params"]
    reps = r.get("reps", 5)
    warm = 3 if dev.type == "cuda" else (1 if reps <= 2 else 2)
    print(f"pytorch: {r['name']} ...", file=sys.stderr, flush=True)
    try:
        if is_conv:
            return conv_case(p, r["variant"], dev, 2, reps), None
        if g.startswith("genie_d_parts"):
            return genie_d_parts_case(p, r["variant"], dev, a.model, warm, reps), None
        if g.startswith("genie_d"):
            return genie_d_case(p, dev, a.model, warm, reps), None
        return genie_m_case(p, dev, a.model, warm, reps), None
    except Exception as e:  # report, keep going
        return None, f"{type(e).__name__}: {e}"


def loadavg():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "bench", "genie_bench"))
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"],
                    help="default: cpu, or the device of --genie-json's document")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for both (default: --genie-json's, else all cores)")
    ap.add_argument("--filter", default="", help="substring of case names (default: all iteration cases)")
    ap.add_argument("--conv", action="store_true", help="also compare the convolution cases")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate genie and PyTorch this many times; each side's best median counts "
                         "(robust to a shared machine's load changing between the two)")
    ap.add_argument("--model", default=os.path.join(REPO, "models", "data", "resnet20_fmnist.h5"))
    ap.add_argument("--tf32", action="store_true",
                    help="CUDA: let PyTorch use TF32 (its cuDNN default); by default both sides compute in FP32")
    ap.add_argument("--json", default="", help="write the combined JSON document here")
    ap.add_argument("--genie-json", default="", help="use this genie_bench JSON instead of running it")
    ap.add_argument("--print-json", action="store_true", help="also print the JSON document on stdout")
    a = ap.parse_args()

    load_start = loadavg()
    gdoc = None
    if a.genie_json:
        with open(a.genie_json) as f:
            gdoc = json.load(f)
        a.device = a.device or gdoc.get("device", "cpu")
        threads = a.threads or gdoc.get("threads") or os.cpu_count()
        if gdoc.get("device") != a.device or (a.device == "cpu" and gdoc.get("threads") != threads):
            print(f"warning: genie's document is for device {gdoc.get('device')} with "
                  f"{gdoc.get('threads')} threads", file=sys.stderr)
        a.rounds = 1
    else:
        a.device = a.device or "cpu"
        threads = a.threads or os.cpu_count()

    torch.set_num_threads(threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # genie computes in FP32 (no TF32 tensor cores); PyTorch's default lets cuDNN use TF32 for
        # convolutions. Same arithmetic unless --tf32 asks for PyTorch's default.
        torch.backends.cudnn.allow_tf32 = bool(a.tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    random.seed(0)

    # ---- rounds: genie (subprocess, same invocation), then PyTorch with the same threads ----
    genie_runs, torch_runs, loads = {}, {}, []
    for rnd in range(max(1, a.rounds)):
        if not a.genie_json:
            gdoc = run_genie(a, threads)
        done = {}  # one PyTorch run per round serves both genie variants (iter, iter_graph)
        for r, is_conv in selected_cases(gdoc, a):
            genie_runs.setdefault(r["name"], []).append(r)
            g = r["group"]
            key = g if g.startswith(("genie_m/", "genie_d/", "genie_d_scale/")) else r["name"]
            if key not in done:
                done[key] = run_torch_case(r, is_conv, dev, a)
            torch_runs.setdefault(r["name"], []).append(done[key])
        loads.append(loadavg())

    rows = []
    for r, is_conv in selected_cases(gdoc, a):
        gr = genie_runs.get(r["name"], [])
        tr = [pt for pt, err in torch_runs.get(r["name"], []) if pt]
        errs = [err for pt, err in torch_runs.get(r["name"], []) if err]
        g_ms = min(x["median_ms"] for x in gr) if gr else None
        t_ms = min(x["median_ms"] for x in tr) if tr else None
        # Each round times genie, then PyTorch, seconds apart: the ratio within a round is the
        # one least moved by a shared machine's load changing between rounds.
        per_round = [t["median_ms"] / g["median_ms"] for g, (t, _) in zip(gr, torch_runs.get(r["name"], []))
                     if t and g["median_ms"] > 0]
        row = {"case": r["name"], "genie_ms": g_ms, "genie_min_ms": min(x["min_ms"] for x in gr),
               "pytorch_ms": t_ms, "pytorch_min_ms": min(x["min_ms"] for x in tr) if tr else None,
               "speedup": (t_ms / g_ms) if t_ms and g_ms else None,
               "speedup_rounds": per_round,
               "speedup_round_median": median(per_round) if per_round else None,
               "target": target_for(r["group"], a.device), "params": r["params"],
               "genie_ms_rounds": [x["median_ms"] for x in gr],
               "pytorch_ms_rounds": [x["median_ms"] for x in tr]}
        if r.get("note"):
            row["note"] = r["note"]
        row["genie_check"] = r.get("check", "")
        if tr and "loss_first" in tr[-1]:  # sanity: same order of magnitude as genie's check line
            row["pytorch_loss"] = [tr[-1]["loss_first"], tr[-1]["loss_last"]]
        if tr and "peak_mem_mb" in tr[-1]:
            row["pytorch_peak_mem_mb"] = tr[-1]["peak_mem_mb"]
        if "peak_mem_mb" in r:
            row["genie_peak_mem_mb"] = r["peak_mem_mb"]
        if errs and not tr:
            row["pytorch_error"] = errs[-1]
        rows.append(row)

    # ---- table ----
    load = loadavg()
    print(f"\ndevice {a.device}, {threads} threads, torch {torch.__version__}, {max(1, a.rounds)} round(s), "
          f"load average {load_start:.2f} at start, {load:.2f} at the end", file=sys.stderr)
    # torch/genie: each side's best round; per round: the median of the same-round ratios. A
    # target counts as met only when both reach it.
    hdr = (f"{'case':<62} {'genie ms':>10} {'torch ms':>10} {'torch/genie':>12} {'per round':>10} "
           f"{'target':>7}")
    print(hdr, file=sys.stderr)
    for row in rows:
        sp, spr = row["speedup"], row["speedup_round_median"]
        tgt = row["target"]
        worst = min(sp, spr) if sp is not None and spr is not None else sp
        verdict = "" if tgt is None or worst is None else (" met" if worst >= tgt else " MISSED")
        print(f"{row['case']:<62} {row['genie_ms']:>10.2f} "
              f"{(row['pytorch_ms'] if row['pytorch_ms'] is not None else float('nan')):>10.2f} "
              f"{(f'{sp:.2f}x' if sp is not None else row.get('pytorch_error', '-')):>12} "
              f"{(f'{spr:.2f}x' if spr is not None else '-'):>10} "
              f"{(f'{tgt:.1f}x' if tgt else ''):>7}{verdict}", file=sys.stderr)
        if "genie_peak_mem_mb" in row and "pytorch_peak_mem_mb" in row:
            print(f"{'':<62} peak memory genie {row['genie_peak_mem_mb']:.0f} MB, "
                  f"torch {row['pytorch_peak_mem_mb']:.0f} MB", file=sys.stderr)
    doc = {"format": "genie-compare-1", "device": a.device, "threads": threads, "pytorch_tf32": bool(a.tf32),
           "torch": torch.__version__, "rounds": max(1, a.rounds),
           "load_average_1min": {"start": load_start, "after_rounds": loads},
           "rows": rows, "genie": gdoc}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if a.print_json:
        print(json.dumps(doc, indent=2))
    return 0 if not any("pytorch_error" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
