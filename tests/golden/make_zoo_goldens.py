#!/usr/bin/python3
"""Goldens for the torchvision-zoo coverage tests (tests/test_zoo.cpp; issue 17). Run with Debian's
/usr/bin/python3 (torch, torchvision, h5py):

  /usr/bin/python3 tests/golden/make_zoo_goldens.py

Writes tests/golden/zoo_goldens.json: per network, the input shape, num_classes, the state_dict
keys and shapes the graph reads, the graph traced by tools/export_pytorch.py, and the logits of a
deterministic input. Parameters and inputs are generated on both sides by det_values()
(make_model_goldens.py), so no weights are committed. The networks: a fast subset of the
torchvision classification zoo at 64x64 (the full list at native sizes is checked by
tools/zoo_check.py) and `zoo_ops`, a small network written to exercise every traced form the zoo
uses and a few it does not (F.conv2d with a module's weight after F.pad — TensorFlow "SAME" ports —,
nn.ZeroPad2d, the view/transpose/view channel shuffle, chunk and split, GELU, average pooling with
ceil_mode and count_include_pad=False, adaptive average pooling to (3, 2), x.mean((2, 3),
keepdim=True) gating).
"""
import json
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)
import export_pytorch  # noqa: E402
from make_model_goldens import det_state_dict, det_values  # noqa: E402

# The fast subset: every new op and block kind, small at 64x64.
ZOO_FAST = ["efficientnet_b0", "mobilenet_v3_small", "shufflenet_v2_x1_0", "densenet121",
            "googlenet", "regnet_y_400mf", "mnasnet0_5"]


class SamePadConv(nn.Conv2d):
    """A Conv2dStaticSamePadding-style module: TensorFlow "SAME" padding (asymmetric for even
    sizes) by F.pad, then F.conv2d with the module's own weight."""

    def __init__(self, cin, cout, k, stride, image_size, groups=1):
        super().__init__(cin, cout, k, stride, padding=0, groups=groups, bias=True)
        pad = max((-(-image_size // stride) - 1) * stride + k - image_size, 0)
        self.pads = (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)

    def forward(self, x):
        x = F.pad(x, self.pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def shuffle_inline(x, g):
    n = x.size(0)
    c, h, w = x.size(1), x.size(2), x.size(3)
    x = x.view(n, g, c // g, h, w)
    x = x.transpose(1, 2).contiguous()
    return x.view(n, -1, h, w)


class Gate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


class OpsBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_a = nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 4, bias=False)
        self.bn_a = nn.BatchNorm2d(c // 2)
        self.gate = Gate(c // 2)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        b = self.gate(F.gelu(self.bn_a(self.conv_a(b))))
        return shuffle_inline(torch.cat([a, b], 1), 2)


class ZooOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = SamePadConv(3, 12, 3, 2, 32)
        self.bn0 = nn.BatchNorm2d(12)
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))
        self.block = OpsBlock(12)
        self.conv1 = nn.Conv2d(12, 18, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(18)
        self.pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.adapt = nn.AdaptiveAvgPool2d((3, 2))
        self.fc = nn.Linear(18 * 3 * 2, 10)

    def forward(self, x):
        x = F.hardswish(self.bn0(self.stem(x)))
        x = F.max_pool2d(self.block(self.pad(x)), 3, 2, ceil_mode=True)
        x1, x2, x3 = torch.split(F.silu(self.bn1(self.conv1(x))), [6, 6, 6], dim=1)
        x = self.adapt(self.pool(torch.cat([x3, x1, x2], 1)))
        return self.fc(torch.flatten(x, 1))


def entry(model, input_shape, num_classes, blocks=None):
    desc = export_pytorch.trace_graph(model, blocks, tuple(input_shape[1:]))
    state, _ = export_pytorch.used_state_dict(model, desc)
    x = torch.from_numpy(det_values("input", list(input_shape)))
    with torch.no_grad():
        logits = model.eval()(x)
    return {"input_shape": list(input_shape), "num_classes": num_classes,
            "keys": [[k, list(t.shape)] for k, t in state.items()],
            "logits": [float(v) for v in logits.flatten()],
            "max_abs_logit": float(logits.abs().max()), "graph": desc}


def main():
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    out = {}
    for name in ZOO_FAST:
        m = det_state_dict(getattr(torchvision.models, name)(num_classes=16))
        out[name] = entry(m, (1, 3, 64, 64), 16)
        print(f"{name}: {len(out[name]['graph']['nodes'])} nodes, max |logit| "
              f"{out[name]['max_abs_logit']:.4g}", flush=True)
    ops = det_state_dict(ZooOps())
    out["zoo_ops"] = entry(ops, (2, 3, 32, 32), 10, blocks={"block": "ops_block"})
    print(f"zoo_ops: max |logit| {out['zoo_ops']['max_abs_logit']:.4g}")
    with open(os.path.join(HERE, "zoo_goldens.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
