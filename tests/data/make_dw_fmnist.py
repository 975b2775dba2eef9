#!/usr/bin/python3
"""Trains the depthwise test network of issue 16 on Fashion-MNIST and exports it for genie.

A small MobileNetV2-style CNN (inverted residual blocks: 1x1 expansion, 3x3 depthwise convolution,
ReLU6, 1x1 projection, residual adds), trained for a few epochs on the CPU. Then every depthwise
convolution's weights are scaled down by ALPHA, and the BatchNorm after it takes running_mean·ALPHA,
running_var·ALPHA² and eps·ALPHA², which leaves the network's function unchanged (exactly, in real
arithmetic): a network whose depthwise weights, and so their 8-bit steps (1e-6 … 1e-4), are far
smaller than Genie-M's absolute step learning rate 1e-4 — the case where learned steps used to
cross zero. Writes tests/data/dw_fmnist.h5 (genie's weight format, with the graph) and prints the
FP32 test accuracy of both networks (they must agree).

    /usr/bin/python3 tests/data/make_dw_fmnist.py [--epochs 3] [--out tests/data/dw_fmnist.h5]
Needs python3-torch, python3-h5py (Debian) and dataset-fashion-mnist.
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from export_pytorch import export  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
ALPHA = 0.01
MEAN, STD = 0.2860, 0.3530


def load(split):
    with gzip.open(f"{DATA}/{split}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DATA}/{split}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(x.astype(np.float32) / 255.0) - MEAN) / STD
    return x, torch.from_numpy(y.astype(np.int64))


def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):  # the class name marks the reconstruction unit for export
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1, 1), InvertedResidual(16, 24, 2, 4),
            InvertedResidual(24, 24, 1, 4), InvertedResidual(24, 32, 2, 4),
            InvertedResidual(32, 32, 1, 4))
        self.head = conv_bn(32, 64, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.head(self.blocks(self.stem(x)))), 1))


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        return sum(int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
                   for i in range(0, len(x), 1000)) / len(x)


def train(net, xtr, ytr, epochs, after_epoch):
    """Adam, one-cycle learning rate (peak 4e-3), batches of 128; after_epoch(epoch, last loss)."""
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * (len(xtr) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 4e-3, total_steps=steps)
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(len(xtr) // 128):
            idx = perm[i * 128:(i + 1) * 128]
            loss = nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        after_epoch(ep, loss.item())


def shrink_depthwise(net):
    """Depthwise weights ·ALPHA, the next BN's statistics and eps adjusted: same function."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Sequential) and len(m) >= 2 and isinstance(m[0], nn.Conv2d) \
                    and m[0].groups > 1:
                conv, bn = m[0], m[1]
                conv.weight.mul_(ALPHA)
                bn.running_mean.mul_(ALPHA)
                bn.running_var.mul_(ALPHA * ALPHA)
                bn.eps *= ALPHA * ALPHA


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "dw_fmnist.h5"))
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    net = Net()
    train(net, xtr, ytr, a.epochs, lambda ep, loss: print(
        f"epoch {ep + 1}: loss {loss:.4f} test top-1 {accuracy(net, xte, yte):.4f}", flush=True))
    before = accuracy(net, xte, yte)
    shrink_depthwise(net)
    after = accuracy(net, xte, yte)
    print(f"FP32 test top-1 {before:.4f}; with depthwise weights x{ALPHA}: {after:.4f}")
    dw = [m.weight.abs().max().item() for m in net.modules()
          if isinstance(m, nn.Conv2d) and m.groups > 1]
    print("largest |weight| per depthwise layer:", " ".join(f"{v:.2e}" for v in dw))
    export(net, a.out, arch="dw_fmnist", input_shape=(1, 28, 28), mean=[MEAN], std=[STD],
           num_classes=10, attrs={"dataset": "fashion-mnist",
                                  "note": f"depthwise weights scaled by {ALPHA} (issue 16)"})
    print("wrote", a.out)


if __name__ == "__main__":
    main()
