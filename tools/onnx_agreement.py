#!/usr/bin/env python3
"""Measures how closely ONNX Runtime reproduces genie on exported quantized models.

For each quantized.h5: `genie_run export` (ONNX QDQ, opset 21), `genie_run eval --logits`, and
tools/onnx_run.py --logits in three ONNX Runtime configurations, compared image by image:
  ort       ORT's defaults (all graph optimizations; float biases rounded to int32)
  exact     ORT's defaults but WeightBiasQuantization off (float biases as genie has them)
  narrow    the --act-storage narrow export (int4/uint4 activation pairs) at level basic
Prints a Markdown table and writes one JSON record per model to --json.

    tools/onnx_agreement.py --genie build/engine/genie_run --eval fashion-mnist \\
        --json bench/results/onnx/agreement.json out/*/quantized.h5

Run it with a Python that has onnx, onnxruntime, numpy and h5py (e.g. .venv-onnx/bin/python).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"onnx_agreement: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def logits(path):
    with h5py.File(path, "r") as f:
        return np.asarray(f["logits"]), np.asarray(f["predictions"]), np.asarray(f["labels"])


def compare(ref, other):
    (gl, gp, y), (ol, op, _) = ref, other
    top = float(np.abs(gl).max())
    return {"top1": float((op == y).mean()),
            "delta_pp": 100 * float((op == y).mean() - (gp == y).mean()),
            "same_predictions": float((op == gp).mean()),
            "logits_within_1e-5": float((np.abs(ol - gl).max(1) <= 1e-5 * top).mean())}


def measure(model, a, tmp):
    name = os.path.basename(os.path.dirname(os.path.abspath(model))) + "/" + os.path.basename(model)
    onnx_path, narrow = os.path.join(tmp, "m.onnx"), os.path.join(tmp, "n.onnx")
    exp = json.loads(run([a.genie, "export", "--model", model, "--out", onnx_path]))
    run([a.genie, "export", "--model", model, "--out", narrow, "--act-storage", "narrow"])
    ev = json.loads(run([a.genie, "eval", "--model", model, "--eval", a.eval, "--logits",
                         os.path.join(tmp, "g.h5")] + (["--limit", str(a.limit)] if a.limit else [])))
    ref = logits(os.path.join(tmp, "g.h5"))
    rec = {"model": name, "bits": ev.get("bits"), "genie_top1": ev["top1"], "images": ev["n"],
           "opset": exp["opset"], "weight_types": exp["weight_types"]}
    configs = {"ort": (onnx_path, []),
               "exact": (onnx_path, ["--disable-optimizer", "WeightBiasQuantization"]),
               "narrow": (narrow, ["--level", "basic", "--disable-optimizer",
                                   "WeightBiasQuantization"])}
    for key, (path, extra) in configs.items():
        out = os.path.join(tmp, key + ".h5")
        r = json.loads(run([sys.executable, os.path.join(HERE, "onnx_run.py"), path, "--eval",
                            a.eval, "--logits", out, "--json"] + extra +
                           (["--limit", str(a.limit)] if a.limit else [])))
        rec[key] = compare(ref, logits(out))
        rec["onnxruntime"] = r["onnxruntime"]
    return rec


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="quantized.h5 files")
    p.add_argument("--genie", default=os.path.join(HERE, "..", "build", "engine", "genie_run"))
    p.add_argument("--eval", default="fashion-mnist")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", help="write the records here")
    a = p.parse_args()
    recs = []
    for m in a.models:
        with tempfile.TemporaryDirectory() as tmp:
            recs.append(measure(m, a, tmp))
        print(json.dumps(recs[-1]), file=sys.stderr)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(recs, f, indent=1)
        os.replace(a.json + ".tmp", a.json)
    print("| model | bits | genie top-1 | ORT top-1 (Δ pp) | same predictions | exact: top-1, same "
          "| narrow: top-1, same |")
    print("|---|---|---|---|---|---|---|")
    for r in recs:
        o, e, n = r["ort"], r["exact"], r["narrow"]
        print(f"| {r['model']} | {r['bits']} | {100 * r['genie_top1']:.2f} | "
              f"{100 * o['top1']:.2f} ({o['delta_pp']:+.2f}) | {100 * o['same_predictions']:.2f} % | "
              f"{100 * e['top1']:.2f}, {100 * e['same_predictions']:.2f} % | "
              f"{100 * n['top1']:.2f}, {100 * n['same_predictions']:.2f} % |")


if __name__ == "__main__":
    main()
