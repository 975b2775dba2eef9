#!/usr/bin/python3
"""Goldens for tests/test_models*.cpp (run with Debian's /usr/bin/python3: torch, torchvision, h5py).

  /usr/bin/python3 tests/golden/make_model_goldens.py

Writes
  tests/golden/model_goldens.json   per architecture: input shape, num_classes, the state_dict keys
                                    and shapes, the logits, and the graph traced by
                                    tools/export_pytorch.py (compared with genie's builders)
  tests/data/vgg_small.h5           a small non-built-in VGG-style net with BN, a custom residual
                                    block and a leaky ReLU, exported by tools/export_pytorch.py
                                    (its logits are in model_goldens.json under "vgg_small")
  tests/golden/teacher_fmnist_logits.json   logits of models/data/resnet20_fmnist.h5 on the first 16
                                    Fashion-MNIST test images (PyTorch, eval mode)

Parameters and inputs are not committed: both sides generate them with det_values() below (an
integer hash, so C++ and numpy produce bit-identical float32 values).
"""
import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_pytorch  # noqa: E402
from quantized_to_pytorch import read_idx  # noqa: E402

M32 = 0xFFFFFFFF


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & M32
    return h


def det_uniform(key, n):
    """n values in [0, 1) from an integer hash of (key, index). Mirrors det_uniform in C++."""
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(fnv1a(key))) & np.uint64(M32)
    for _ in range(2):
        x ^= x >> np.uint64(16)
        x = (x * np.uint64(0x45D9F3B)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 4294967296.0


def det_values(key, shape):
    """Deterministic, non-trivial parameter values by state_dict key (mirrors C++ det_param)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = det_uniform(key, n)
    if key.endswith(".running_var"):
        v = 0.5 + u
    elif key.endswith(".running_mean"):
        v = 0.2 * (2.0 * u - 1.0)
    elif key.endswith(".bias"):
        v = 0.1 * (2.0 * u - 1.0)
    elif key.endswith(".weight") and len(shape) == 1:  # BatchNorm gamma
        v = 0.5 + 0.5 * u
    elif key == "input":
        v = 1.5 * (2.0 * u - 1.0)
    else:  # conv / linear weights: He-uniform scale
        fan_in = int(np.prod(shape[1:]))
        v = (2.0 * u - 1.0) * np.sqrt(6.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def det_state_dict(model):
    # In-place copies (state_dict tensors share storage with the module), which also sidesteps
    # MnasNet's versioned _load_from_state_dict.
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                t.copy_(torch.from_numpy(det_values(k, list(t.shape))))
    return model


# ---- CIFAR-style ResNet-20 (models/data/README.md) ----

class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet20(nn.Module):
    def __init__(self, in_ch=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        inp = 16
        for s, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(inp, planes, 2 if (s > 0 and b == 0) else 1))
                inp = planes
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- a small VGG-style network that genie does not know ----

class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(c)
        self.conv_b = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        return F.relu(x + y)


class SmallVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=True), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, eps=1e-3),
            nn.LeakyReLU(0.1), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.res = Residual(16)
        self.head = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.head(self.res(self.features(x))))


def regnet_x_600mf(num_classes):
    # The Genie paper's RegNetX-600MF (torchvision 0.14 has no builder for it).
    from torchvision.models.regnet import BlockParams, RegNet
    params = BlockParams.from_init_params(depth=16, w_0=48, w_a=36.97, w_m=2.24, group_width=24)
    return RegNet(params, num_classes=num_classes)


def run(model, input_shape):
    x = torch.from_numpy(det_values("input", list(input_shape)))
    with torch.no_grad():
        return model.eval()(x)


def entry(model, input_shape, num_classes, trace=True, blocks=None):
    logits = run(model, input_shape)
    keys = [[k, list(t.shape)] for k, t in model.state_dict().items()
            if not k.endswith("num_batches_tracked")]
    e = {"input_shape": list(input_shape), "num_classes": num_classes, "keys": keys,
         "logits": [float(v) for v in logits.flatten()],
         "max_abs_logit": float(logits.abs().max())}
    if trace:
        e["graph"] = export_pytorch.trace_graph(model, blocks, tuple(input_shape[1:]))
    return e


def main():
    torch.set_num_threads(2)
    out = {}
    nc = 16
    tv = torchvision.models
    builders = {
        "resnet18": lambda: tv.resnet18(num_classes=nc),
        "resnet50": lambda: tv.resnet50(num_classes=nc),
        "mobilenet_v2": lambda: tv.mobilenet_v2(num_classes=nc),
        "regnet_x_400mf": lambda: tv.regnet_x_400mf(num_classes=nc),
        "regnet_x_600mf": lambda: regnet_x_600mf(nc),
        "regnet_x_3_2gf": lambda: tv.regnet_x_3_2gf(num_classes=nc),
        "mnasnet1_0": lambda: tv.mnasnet1_0(num_classes=nc),
    }
    for name, make in builders.items():
        m = det_state_dict(make())
        out[name] = entry(m, (1, 3, 64, 64), nc)
        print(f"{name}: max |logit| {out[name]['max_abs_logit']:.4g}", flush=True)
    out["resnet20"] = entry(det_state_dict(ResNet20(1, 10)), (2, 1, 28, 28), 10)
    out["resnet20_c3"] = entry(det_state_dict(ResNet20(3, 7)), (2, 3, 32, 32), 7)
    for name in ("resnet20", "resnet20_c3"):
        print(f"{name}: max |logit| {out[name]['max_abs_logit']:.4g}")

    # Non-built-in network: seeded default init, then non-trivial BN statistics.
    torch.manual_seed(0)
    vgg = export_pytorch.seeded_bn_statistics(SmallVGG())
    os.makedirs(os.path.join(ROOT, "tests", "data"), exist_ok=True)
    export_pytorch.export(vgg, os.path.join(ROOT, "tests", "data", "vgg_small.h5"), arch="vgg_small",
                          input_shape=(3, 32, 32), mean=[0.5, 0.4, 0.3], std=[0.25, 0.2, 0.3],
                          num_classes=10, blocks={"res": "residual"})
    out["vgg_small"] = entry(vgg, (2, 3, 32, 32), 10, blocks={"res": "residual"})
    print(f"vgg_small: max |logit| {out['vgg_small']['max_abs_logit']:.4g}")

    with open(os.path.join(ROOT, "tests", "golden", "model_goldens.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))

    # The bundled teacher on real images: pins loading + forward on trained weights.
    teacher = ResNet20(1, 10)
    with h5py.File(os.path.join(ROOT, "models", "data", "resnet20_fmnist.h5"), "r") as f:
        sd = {k: torch.from_numpy(np.array(f[k])) for k in teacher.state_dict().keys()
              if not k.endswith("num_batches_tracked")}
        mean, std = float(f.attrs["input_mean"][0]), float(f.attrs["input_std"][0])
    teacher.load_state_dict(sd, strict=False)
    imgs = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")[:16]
    labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")[:16]
    x = (torch.from_numpy(imgs.astype(np.float32) / 255.0).unsqueeze(1) - mean) / std
    with torch.no_grad():
        logits = teacher.eval()(x)
    with open(os.path.join(ROOT, "tests", "golden", "teacher_fmnist_logits.json"), "w") as f:
        json.dump({"n": 16, "labels": [int(v) for v in labels],
                   "logits": [float(v) for v in logits.flatten()]}, f, separators=(",", ":"))
    print("teacher logits written")


if __name__ == "__main__":
    main()
