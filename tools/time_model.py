#!/usr/bin/env python3
"""Paper-settings time model of a genie run on 1, 8 and 64 GPUs (issue 19).

Measured inputs (H200, bench/results/gpu-h200/gpu-check.json, genie_bench on one GPU):
  * Genie-D ResNet-18 iteration at batch 128, 224x224 (genie_d/resnet18/B128/iter);
  * Genie-M unit steps at batch 32, 224x224: ResNet-18 layer2.0 (basic block) and ResNet-50
    layer1.0 (bottleneck).
Everything else is derived, and says how:
  * other units' step times: the measured unit's time x (unit forward FLOPs / measured unit's),
    FLOPs counted with torchvision's models and forward hooks (conv + linear multiply-adds);
  * Genie-D ResNet-50: the ResNet-18 time x the ratio of the two networks' conv FLOPs;
  * G GPUs: Genie-D batches round-robin (ceil(8 / G) rounds of 4000 iterations: no gain past 8
    GPUs, the BN loss is per batch); Genie-M steps in S = min(G, 32) shards of the batch of 32,
    compute per step between t/S (compute-bound) and t (launch-bound: a GPU at 4 images may be
    no faster than at 32), plus the gradient exchange of engine/comm.h: per rank ~2 n (G-1)/G
    floats per step (all-to-all of chunks + all-gather of the chunk sums), n = the unit's
    learned values (rounding logits = its weights, per-channel weight steps, activation steps),
    at an assumed bus bandwidth (NVLink within a node, InfiniBand across nodes) and latency.
Paper settings (GENIE.md): 1024 images in batches of 128 x 4000 Genie-D iterations; 20000
Genie-M steps per unit at batch 32.

Usage: /usr/bin/python3 tools/time_model.py [--gpu-json PATH] [--out DIR]
Writes DIR/time-model.json and DIR/time-model.md (default bench/results/mpi).
"""
import argparse
import json
import math
import os

import torch
import torchvision

DISTILL_IMAGES, DISTILL_BATCH, DISTILL_ITERS = 1024, 128, 4000
RECON_ITERS, RECON_BATCH = 20000, 32
GPUS = (1, 8, 64)
# Assumed links (not measured here): NCCL bus bandwidth and per-collective latency.
LINKS = {
    "nvlink": {"bytes_per_s": 300e9, "latency_s": 20e-6, "note": "within an 8-GPU node"},
    "infiniband": {"bytes_per_s": 40e9, "latency_s": 40e-6, "note": "across nodes (400 Gb/s)"},
}


def measured(path):
    j = json.load(open(path))
    out = {}

    def walk(o):
        if isinstance(o, dict):
            n = o.get("name")
            if isinstance(n, str) and "median_ms" in o:
                out[n] = o["median_ms"] / 1e3
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(j)
    return {
        "genie_d_resnet18_B128": out["genie_d/resnet18/B128/iter"],
        "genie_m_resnet18_layer2.0": out["genie_m/basic_block/resnet18.layer2.0_R224/iter"],
        "genie_m_resnet50_layer1.0": out["genie_m/bottleneck/resnet50.layer1.0_R224/iter"],
    }


def units_of(arch):
    """Reconstruction units as genie cuts them: conv1 alone, every block, fc alone; with each
    unit's forward multiply-adds (one image) and learned values."""
    net = getattr(torchvision.models, arch)(num_classes=1000).eval()
    macs = {}

    def hook(name):
        def f(mod, inp, out):
            if isinstance(mod, torch.nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
                macs[name] = macs.get(name, 0) + out.numel() * k
            else:
                macs[name] = macs.get(name, 0) + mod.in_features * mod.out_features
        return f

    names = []
    for n, m in net.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            parts = n.split(".")
            unit = ".".join(parts[:2]) if parts[0].startswith("layer") else parts[0]
            m.register_forward_hook(hook(unit))
            if unit not in names:
                names.append(unit)
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    units = []
    for u in names:
        mods = [m for n, m in net.named_modules()
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and
                (n == u or n.startswith(u + "."))]
        weights = sum(m.weight.numel() for m in mods)
        channels = sum(m.weight.shape[0] for m in mods)
        # logits (one per weight) + a step per output channel + one activation step per layer
        units.append({"name": u, "macs": macs[u], "learned": weights + channels + len(mods)})
    return units


def comm_s(n, g, link):
    if g == 1:
        return 0.0
    l = LINKS[link]
    return 2 * 4 * n * (g - 1) / g / l["bytes_per_s"] + 2 * l["latency_s"]


def model(arch, t_d, ref_unit, t_ref):
    units = units_of(arch)
    ref = next(u for u in units if u["name"] == ref_unit)
    rows = []
    for g in GPUS:
        rounds = math.ceil(DISTILL_IMAGES / DISTILL_BATCH / g)
        d = rounds * DISTILL_ITERS * t_d
        s = min(g, RECON_BATCH)
        link = "nvlink" if g <= 8 else "infiniband"
        m_fast = m_slow = 0.0
        vol = []
        for u in units:
            t = t_ref * u["macs"] / ref["macs"]
            c = comm_s(u["learned"] + 2, g, link)
            m_fast += RECON_ITERS * (t / s + c)
            m_slow += RECON_ITERS * (t + c)
            vol.append(2 * 4 * (u["learned"] + 2) * (g - 1) / g if g > 1 else 0)
        rows.append({
            "gpus": g, "link": link if g > 1 else "-",
            "genie_d_s": round(d), "genie_d_rounds": rounds,
            "genie_m_s_compute_bound": round(m_fast), "genie_m_s_launch_bound": round(m_slow),
            "total_min_best": round((d + m_fast) / 60, 1),
            "total_min_worst": round((d + m_slow) / 60, 1),
            "comm_bytes_per_step_per_rank_max": round(max(vol)),
            "comm_bytes_per_step_per_rank_mean": round(sum(vol) / len(vol)),
        })
    return {"arch": arch, "units": len(units),
            "learned_values": sum(u["learned"] for u in units),
            "largest_unit": max(units, key=lambda u: u["learned"])["name"],
            "largest_unit_learned": max(u["learned"] for u in units), "rows": rows}


def conv_macs(arch):
    return sum(u["macs"] for u in units_of(arch))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu-json", default="bench/results/gpu-h200/gpu-check.json")
    ap.add_argument("--out", default="bench/results/mpi")
    a = ap.parse_args()
    t = measured(a.gpu_json)
    r50_d = t["genie_d_resnet18_B128"] * conv_macs("resnet50") / conv_macs("resnet18")
    res = {
        "measured_s": t,
        "derived_s": {"genie_d_resnet50_B128 (FLOP ratio)": r50_d},
        "links_assumed": LINKS,
        "settings": {"distill": f"{DISTILL_IMAGES} images, batch {DISTILL_BATCH}, "
                                f"{DISTILL_ITERS} iterations",
                     "recon": f"{RECON_ITERS} steps per unit, batch {RECON_BATCH}"},
        "models": [model("resnet18", t["genie_d_resnet18_B128"], "layer2.0",
                         t["genie_m_resnet18_layer2.0"]),
                   model("resnet50", r50_d, "layer1.0", t["genie_m_resnet50_layer1.0"])],
    }
    os.makedirs(a.out, exist_ok=True)
    json.dump(res, open(os.path.join(a.out, "time-model.json"), "w"), indent=1)
    md = ["| model | GPUs | Genie-D | Genie-M (compute- … launch-bound) | total | "
          "exchange per Genie-M step and rank (largest unit / mean) |",
          "|---|---|---|---|---|---|"]
    for m in res["models"]:
        for r in m["rows"]:
            md.append(
                f"| {m['arch']} W4A4 | {r['gpus']} | {r['genie_d_s'] / 60:.0f} min "
                f"({r['genie_d_rounds']} round{'s' if r['genie_d_rounds'] > 1 else ''}) | "
                f"{r['genie_m_s_compute_bound'] / 60:.0f} … {r['genie_m_s_launch_bound'] / 60:.0f}"
                f" min | {r['total_min_best']:.0f} … {r['total_min_worst']:.0f} min | "
                + ("—" if r["gpus"] == 1 else
                   f"{r['comm_bytes_per_step_per_rank_max'] / 1e6:.1f} MB / "
                   f"{r['comm_bytes_per_step_per_rank_mean'] / 1e6:.1f} MB ({r['link']})")
                + " |")
    open(os.path.join(a.out, "time-model.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
