#!/usr/bin/python3
"""Trains the two Fashion-MNIST networks of issue 17 on the CPU and exports them for genie.

  se_fmnist       EfficientNet / MobileNetV3-style, built from torchvision's own blocks: a
                  Conv-BN-Hardswish stem, a Fused-MBConv, MBConv blocks with squeeze-and-excitation
                  (SiLU, sigmoid gate) and a MobileNetV3 inverted residual (Hardswish, hardsigmoid
                  gate), a 1x1 head with Hardswish, global pooling, linear.
  concat_fmnist   DenseNet / ShuffleNet-style: a Conv-BN-ReLU stem, a torchvision dense block
                  (torch.cat of every earlier feature map) and transition (avg pool 2x2), then
                  torchvision ShuffleNetV2 units (chunk, concatenation, channel shuffle; stride 2 and
                  1), a max pool with ceil_mode, a 1x1 head, global pooling, linear.

Writes tests/data/{se,concat}_fmnist.h5 (genie's weight format, with the graph) and prints each
network's FP32 test accuracy.

    /usr/bin/python3 tests/data/make_zoo_fmnist.py [--epochs 3] [--only se|concat]
Needs python3-torch, python3-torchvision, python3-h5py (Debian) and dataset-fashion-mnist.
"""
import argparse
import functools
import os
import sys

import torch
import torch.nn as nn
from torchvision.models import densenet, efficientnet, mobilenetv3, shufflenetv2
from torchvision.ops.misc import Conv2dNormActivation

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from export_pytorch import export  # noqa: E402
from make_dw_fmnist import MEAN, STD, accuracy, load, train  # noqa: E402

BN = functools.partial(nn.BatchNorm2d, eps=1e-3)


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        mb = efficientnet.MBConvConfig
        self.stem = Conv2dNormActivation(1, 16, 3, norm_layer=BN, activation_layer=nn.Hardswish)
        self.blocks = nn.Sequential(
            efficientnet.FusedMBConv(efficientnet.FusedMBConvConfig(2, 3, 1, 16, 16, 1), 0.0, BN),
            efficientnet.MBConv(mb(4, 3, 2, 16, 24, 1), 0.0, BN),
            efficientnet.MBConv(mb(4, 3, 1, 24, 24, 1), 0.0, BN),
            mobilenetv3.InvertedResidual(
                mobilenetv3.InvertedResidualConfig(24, 5, 96, 40, True, "HS", 2, 1, 1.0), BN),
            efficientnet.MBConv(mb(4, 3, 1, 40, 40, 1), 0.0, BN))
        self.head = Conv2dNormActivation(40, 96, 1, norm_layer=BN, activation_layer=nn.Hardswish)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(96, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.head(self.blocks(self.stem(x)))), 1))


class ConcatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dNormActivation(1, 24, 3)
        self.dense = densenet._DenseBlock(3, 24, bn_size=2, growth_rate=12, drop_rate=0.0)
        self.transition = densenet._Transition(24 + 3 * 12, 48)
        self.shuffle = nn.Sequential(shufflenetv2.InvertedResidual(48, 96, 2),
                                     shufflenetv2.InvertedResidual(96, 96, 1),
                                     shufflenetv2.InvertedResidual(96, 96, 1))
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.head = Conv2dNormActivation(96, 128, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.shuffle(self.transition(self.dense(self.stem(x))))
        return self.fc(torch.flatten(self.pool(self.head(self.pool1(x))), 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--only", choices=["se", "concat"])
    a = p.parse_args()
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    for name, cls in (("se", SENet), ("concat", ConcatNet)):
        if a.only and a.only != name:
            continue
        torch.manual_seed(0)
        net = cls()
        train(net, xtr, ytr, a.epochs,
              lambda ep, loss: print(f"epoch {ep + 1}: loss {loss:.3f}", flush=True))
        acc = accuracy(net, xte, yte)
        path = os.path.join(HERE, f"{name}_fmnist.h5")
        export(net.eval(), path, arch=f"{name}_fmnist", input_shape=(1, 28, 28), mean=[MEAN],
               std=[STD], num_classes=10,
               attrs={"dataset": "fashion-mnist", "fp32_top1": acc})
        print(f"{name}_fmnist: FP32 test top-1 {100 * acc:.2f} %, "
              f"{sum(q.numel() for q in net.parameters())} parameters → {path}", flush=True)


if __name__ == "__main__":
    main()
