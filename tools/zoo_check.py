#!/usr/bin/python3
"""Issue 17's zoo check: every listed torchvision classification network, at its native input size
with deterministic non-trivial weights (torch.manual_seed(seed) init, then every BatchNorm's
running_mean ~ 0.2·N(0,1), running_var ~ 0.5 + U(0,1), weight ~ 0.5 + 0.5·U(0,1),
bias ~ 0.1·N(0,1)), goes through:

  1. tools/export_pytorch.py → model.h5
  2. genie_run info --model model.h5 --json           (its reconstruction units)
  3. genie_run eval --model model.h5 --eval imgs.h5 --logits out.h5, against PyTorch's logits of
     the same images: max |diff| / max |logit| must stay within 1e-4
  4. genie_run quantize W4A4 with tiny settings (Genie-D 2 images × 2 iterations, Genie-M 2
     iterations per unit) at --quant-size (default: the native size): every unit's loss finite

and prints one Markdown table row per network (also written to --out/zoo.md and zoo.json).

  /usr/bin/python3 tools/zoo_check.py --genie-run build/engine/genie_run --out bench/results/zoo
      [--models efficientnet_b0 ...] [--quant-size 64] [--skip-quantize]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import h5py
import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402

ZOO = {  # name → native input size (torchvision's evaluation transform)
    "efficientnet_b0": 224, "efficientnet_v2_s": 384, "mobilenet_v3_large": 224,
    "mobilenet_v3_small": 224, "regnet_y_400mf": 224, "resnext50_32x4d": 224,
    "wide_resnet50_2": 224, "shufflenet_v2_x1_0": 224, "densenet121": 224, "googlenet": 224,
    "mnasnet0_5": 224, "vgg11_bn": 224,
}


def det_model(name, seed):
    torch.manual_seed(seed)
    return export_pytorch.seeded_bn_statistics(getattr(torchvision.models, name)(num_classes=1000))


def run(cmd):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout, time.time() - t


def check(name, size, a, work):
    row = {"model": name, "input": size}
    m = det_model(name, a.seed)
    path = os.path.join(work, f"{name}.h5")
    export_pytorch.export(m, path, arch=name, input_shape=(3, size, size),
                          mean=export_pytorch.IMAGENET_MEAN, std=export_pytorch.IMAGENET_STD,
                          num_classes=1000)
    info, _ = run([a.genie_run, "info", "--model", path, "--json"])
    info = json.loads(info)
    units = info["units"]
    kinds = {}
    for u in units:
        kinds[u["kind"]] = kinds.get(u["kind"], 0) + 1
    row["units"] = len(units)
    row["unit_kinds"] = kinds
    row["params_m"] = round(sum(p.numel() for p in m.parameters()) / 1e6, 2)
    # Two N(0,1) images in normalized space.
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.images, 3, size, size, generator=g)
    with torch.no_grad():
        ref = m(x).numpy()
    imgs = os.path.join(work, f"{name}_imgs.h5")
    with h5py.File(imgs, "w") as f:
        f.create_dataset("images", data=x.numpy())
        f.create_dataset("labels", data=np.zeros(a.images, dtype=np.int32))
        f.attrs["normalized"] = 1
    logits = os.path.join(work, f"{name}_logits.h5")
    _, t_eval = run([a.genie_run, "eval", "--model", path, "--eval", imgs, "--logits", logits,
                     "--device", "cpu", "--threads", str(a.threads)])
    with h5py.File(logits, "r") as f:
        got = np.array(f["logits"])
    row["max_abs_logit"] = float(np.abs(ref).max())
    row["rel_err"] = float(np.abs(got - ref).max() / np.abs(ref).max())
    row["eval_s"] = round(t_eval, 1)
    row["logits_ok"] = row["rel_err"] <= 1e-4
    if not a.skip_quantize:
        qsize = a.quant_size or size
        qpath = path
        if qsize != size:
            qpath = os.path.join(work, f"{name}_{qsize}.h5")
            export_pytorch.export(m, qpath, arch=name, input_shape=(3, qsize, qsize),
                                  mean=export_pytorch.IMAGENET_MEAN,
                                  std=export_pytorch.IMAGENET_STD, num_classes=1000)
        out = os.path.join(work, f"{name}_q")
        _, t_q = run([a.genie_run, "quantize", "--model", qpath, "--out", out, "--wbits", "4",
                      "--abits", "4", "--samples", "2", "--batch", "2", "--distill-iters", "2",
                      "--recon-iters", "2", "--recon-batch", "2", "--device", "cpu",
                      "--threads", str(a.threads), "--quiet"])
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        losses = [u["loss_final"] for u in rep["units"]]
        row["quant_size"] = qsize
        row["quant_units"] = len(losses)
        row["quant_losses_finite"] = bool(all(np.isfinite(losses)))
        row["quant_s"] = round(t_q, 1)
    return row


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--genie-run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--models", nargs="+", default=list(ZOO))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quant-size", type=int, default=0)
    p.add_argument("--skip-quantize", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(a.out, exist_ok=True)
    rows = []
    hdr = ("| network | input | params (M) | units (kinds) | max abs logit | max diff / max logit "
           "| eval (s) | W4A4 tiny run: units, losses finite, size, time (s) |")
    lines = [hdr, "|" + "---|" * 8]
    print(hdr, flush=True)
    ok = True
    for name in a.models:
        with tempfile.TemporaryDirectory() as work:
            try:
                r = check(name, ZOO[name], a, work)
            except Exception as e:  # one network's failure is a row, not the end of the run
                r = {"model": name, "error": str(e)}
        rows.append(r)
        if "error" in r:
            ok = False
            line = f"| {name} | error: {r['error'][:200]} |"
        else:
            ok &= r["logits_ok"] and r.get("quant_losses_finite", True)
            kinds = ", ".join(f"{v} {k}" for k, v in sorted(r["unit_kinds"].items()))
            q = (f"{r['quant_units']}, {'yes' if r['quant_losses_finite'] else 'NO'}, "
                 f"{r['quant_size']}, {r['quant_s']}") if "quant_units" in r else "skipped"
            line = (f"| {name} | {r['input']} | {r['params_m']} | {r['units']} ({kinds}) | "
                    f"{r['max_abs_logit']:.4g} | {r['rel_err']:.2e}"
                    f"{'' if r['logits_ok'] else ' FAIL'} | {r['eval_s']} | {q} |")
        lines.append(line)
        print(line, flush=True)
    with open(os.path.join(a.out, "zoo.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "zoo.json"), "w") as f:
        json.dump(rows, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
