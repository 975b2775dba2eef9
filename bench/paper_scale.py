#!/usr/bin/env python3
"""Paper-scale timing: a few iterations of every phase of a genie run, projected to the paper.

The paper's settings (GENIE.md): 1024 synthetic images in batches of 128, 4000 Genie-D iterations
per batch; 20000 Genie-M steps per reconstruction unit at batch 32. A whole run at those settings
takes an hour on one GPU, so this script runs genie_run itself (the real pipeline: loading,
cuDNN searches, captured steps, collection passes, writing) twice with few iterations, n1 and n2,
and fits every phase as fixed + per-iteration cost:

  * Genie-D: `genie_run distill`, one batch of 128 images; the batch's time at n1 and n2
    iterations gives the per-iteration cost (slope) and the batch's fixed cost (intercept).
    Projected: ceil(1024 / 128) batches x (fixed + slope x 4000).
  * Genie-M: `genie_run quantize --calib noise` (Genie-M's cost does not depend on what the images
    are); per unit, the optimisation time at n1 and n2 steps gives slope and fixed cost, and the
    unit's collection passes (which grow with the number of images) are scaled from the measured
    image count to 1024. Projected: sum over units of collection + fixed + slope x 20000.
  * load and write: as measured.

With --torch, the same Genie-D iteration and the Genie-M steps of every residual-block unit are
timed in PyTorch eager (bench/compare_pytorch.py's implementations), at PyTorch's defaults
(cudnn.benchmark on, TF32 as PyTorch allows it by default) and in strict FP32, and projected the
same way (PyTorch's Genie-M column covers the block units only; genie's has both sums).

Usage:
  python3 bench/paper_scale.py --arch resnet18 [--device cuda] [--precision tf32] [--graph]
      [--torch] [--genie build/engine/genie_run] [--out bench/results/MACHINE]
  python3 bench/paper_scale.py --model FILE.h5 ...      (a genie HDF5 model instead of --arch,
                                                         which writes genie's built-in architecture
                                                         with seeded random weights through
                                                         `genie_bench --save-model`)
  python3 bench/paper_scale.py --model models/data/resnet20_fmnist.h5 --tiny --check   (the test
                                                         suite: seconds on a CPU)
Writes OUT/paper-scale.json (and prints a table). Needs only the Python standard library unless
--torch is given (then torch and torchvision).
"""
import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = {"samples": 1024, "batch": 128, "distill_iters": 4000, "recon_iters": 20000,
         "recon_batch": 32}
BLOCK_KINDS = ("basic_block", "bottleneck", "inverted_residual")  # compare_pytorch.QUnit's


def fail(msg):
    print(f"paper_scale: {msg}", file=sys.stderr)
    sys.exit(1)


def run_genie(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)}\nexit {r.returncode}: {r.stderr.strip()[-2000:]}")


def report(out_dir):
    with open(os.path.join(out_dir, "report.json")) as f:
        return json.load(f)


def fit(t1, t2, n1, n2):
    """Per-iteration cost and fixed cost of a phase timed at n1 and n2 iterations."""
    slope = (t2 - t1) / (n2 - n1)
    return {"n": [n1, n2], "seconds": [t1, t2], "per_iter_s": slope, "fixed_s": t1 - slope * n1}


def common_flags(a):
    f = ["--device", a.device, "--precision", a.precision, "--seed", "0", "--quiet"]
    if a.threads:
        f += ["--threads", str(a.threads)]
    if a.graph:
        f += ["--graph"]
    return f


def time_genie(a, model, tmp):
    """genie_run at n1 and n2 iterations: Genie-D (one batch) and Genie-M (noise calibration)."""
    d_runs, m_runs = [], []
    for n in a.iters:
        out = os.path.join(tmp, f"distill-{n}")
        run_genie([a.genie, "distill", "--model", model, "--out", out, "--samples", str(a.batch),
                   "--batch", str(a.batch), "--distill-iters", str(n)] + common_flags(a))
        d_runs.append(report(out))
    for n in a.m_iters:
        out = os.path.join(tmp, f"quantize-{n}")
        run_genie([a.genie, "quantize", "--model", model, "--out", out, "--calib", "noise",
                   "--samples", str(a.m_samples), "--recon-iters", str(n), "--recon-batch",
                   str(a.recon_batch), "--wbits", str(a.wbits), "--abits", str(a.abits)]
                  + common_flags(a))
        m_runs.append(report(out))
    (n1, n2) = a.iters
    d = fit(d_runs[0]["distill"]["batches"][0]["time_s"], d_runs[1]["distill"]["batches"][0]["time_s"],
            n1, n2)
    (n1, n2) = a.m_iters
    batches = math.ceil(PAPER["samples"] / a.batch)
    d["projected_s"] = batches * (d["fixed_s"] + d["per_iter_s"] * PAPER["distill_iters"])
    units = []
    for u1, u2 in zip(m_runs[0]["units"], m_runs[1]["units"]):
        assert u1["name"] == u2["name"], "the two runs reconstruct the same units"
        u = fit(u1["optimize_s"], u2["optimize_s"], n1, n2)
        u["name"], u["kind"] = u1["name"], u1["kind"]
        u["collect_s"] = (u1["collect_s"] + u2["collect_s"]) / 2
        u["collect_projected_s"] = u["collect_s"] * PAPER["samples"] / a.m_samples
        u["projected_s"] = (u["collect_projected_s"] + u["fixed_s"]
                            + u["per_iter_s"] * PAPER["recon_iters"])
        units.append(u)
    t = m_runs[1]["timings_s"]
    other = {"load_s": t.get("load", 0.0), "write_model_s": t.get("write_model", 0.0),
             "write_synthetic_s": d_runs[1]["timings_s"].get("write_synthetic", 0.0)}
    m_total = sum(u["projected_s"] for u in units)
    blocks = sum(u["projected_s"] for u in units if u["kind"] in BLOCK_KINDS)
    total = d["projected_s"] + m_total + sum(other.values())
    return {"genie_d": d, "genie_m": {"units": units, "projected_s": m_total,
                                      "blocks_projected_s": blocks,
                                      "measured_images": a.m_samples},
            "other": other, "projected_total_s": total,
            "model": d_runs[1]["model"], "distill_batches": batches}


def torch_modes(dev):
    import torch
    if dev == "cpu":
        return {"defaults": {}}  # TF32 does not exist on the CPU: the defaults are FP32
    return {"defaults": {"cudnn.benchmark": True,
                         "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                         "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32},
            "fp32": {"cudnn.benchmark": True, "cudnn.allow_tf32": False,
                     "matmul.allow_tf32": False}}


def set_mode(mode):
    import torch
    if "cudnn.benchmark" in mode:
        torch.backends.cudnn.benchmark = mode["cudnn.benchmark"]
        torch.backends.cudnn.allow_tf32 = mode["cudnn.allow_tf32"]
        torch.backends.cuda.matmul.allow_tf32 = mode["matmul.allow_tf32"]


def unit_inputs(arch, info, names):
    """Input shape (C, H, W) of each named block of torchvision's `arch` at the model's size."""
    import torch
    import torchvision
    m = getattr(torchvision.models, arch)(weights=None, num_classes=info["num_classes"]).eval()
    shapes = {}

    def hook(name):
        def f(mod, inp, out):
            shapes.setdefault(name, tuple(inp[0].shape[1:]))  # returns None: output unchanged
        return f

    for n in names:
        m.get_submodule(n).register_forward_hook(hook(n))
    with torch.no_grad():
        m(torch.zeros([1] + list(info["input_shape"])))
    return shapes


def time_torch(a, g):
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import compare_pytorch as cp
    import torch
    dev = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    info = g["model"]
    C, R = info["input_shape"][0], info["input_shape"][1]
    p_d = {"arch": a.arch, "weights": "random", "channels": C, "image": R,
           "classes": info["num_classes"], "batch": a.batch}
    blocks = [u for u in g["genie_m"]["units"] if u["kind"] in BLOCK_KINDS]
    shapes = unit_inputs(a.arch, info, [u["name"] for u in blocks])
    out = {}
    for name, mode in torch_modes(a.device).items():
        set_mode(mode)
        d = cp.genie_d_case(p_d, dev, None, a.torch_warmup, a.torch_reps)
        res = {"settings": mode, "genie_d": {"per_iter_s": d["median_ms"] / 1e3,
                                            "peak_mem_mb": d.get("peak_mem_mb")}}
        res["genie_d"]["projected_s"] = (g["distill_batches"] * PAPER["distill_iters"]
                                         * res["genie_d"]["per_iter_s"])
        units = []
        for u in blocks:
            p_m = dict(p_d, unit=u["name"], kind=u["kind"], batch=a.recon_batch,
                       unit_input="(%d, %s)" % (a.torch_cache, ", ".join(map(str, shapes[u["name"]]))),
                       wbits=a.wbits, abits=a.abits, iters=PAPER["recon_iters"], beta=20.0)
            m = cp.genie_m_case(p_m, dev, None, a.torch_warmup, a.torch_reps)
            units.append({"name": u["name"], "per_iter_s": m["median_ms"] / 1e3,
                          "projected_s": m["median_ms"] / 1e3 * PAPER["recon_iters"]})
        res["genie_m_blocks"] = {"units": units,
                                 "projected_s": sum(u["projected_s"] for u in units)}
        out[name] = res
    return out


def table(doc):
    g = doc["genie"]
    mins = lambda s: f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s"
    lines = [f"paper-scale projection: {doc['model']} on {doc['device']} "
             f"({doc['precision']}{', graph' if doc['graph'] else ''}), measured at "
             f"{doc['iters'][0]} and {doc['iters'][1]} Genie-D iterations, "
             f"{doc['m_iters'][0]} and {doc['m_iters'][1]} Genie-M steps",
             f"  genie  Genie-D {g['genie_d']['per_iter_s'] * 1e3:.2f} ms/iter -> "
             f"{mins(g['genie_d']['projected_s'])}; Genie-M {mins(g['genie_m']['projected_s'])} "
             f"(blocks {mins(g['genie_m']['blocks_projected_s'])}); total "
             f"{mins(g['projected_total_s'])}"]
    for u in g["genie_m"]["units"]:
        lines.append(f"         {u['name']:<22} {u['kind']:<18} {u['per_iter_s'] * 1e3:8.3f} ms/step "
                     f"-> {mins(u['projected_s'])}")
    for name, t in doc.get("torch", {}).items():
        ratio_d = t["genie_d"]["per_iter_s"] / g["genie_d"]["per_iter_s"]
        ratio_m = (t["genie_m_blocks"]["projected_s"] / g["genie_m"]["blocks_projected_s"]
                   if g["genie_m"]["blocks_projected_s"] > 0 else float("nan"))
        lines.append(f"  torch ({name}) Genie-D {t['genie_d']['per_iter_s'] * 1e3:.2f} ms/iter -> "
                     f"{mins(t['genie_d']['projected_s'])} ({ratio_d:.2f}x genie's time); "
                     f"Genie-M blocks {mins(t['genie_m_blocks']['projected_s'])} "
                     f"({ratio_m:.2f}x)")
    return "\n".join(lines)


def check(doc):
    """The suite's assertions: both phases ran and were timed (every unit of the model, each run
    taking time), and the projection is finite and is the sum of its parts."""
    g = doc["genie"]
    assert g["genie_m"]["units"], "no Genie-M unit was timed"
    assert len(g["genie_m"]["units"]) == doc["units_expected"], "a unit is missing"
    parts = [g["genie_d"]["projected_s"], g["genie_m"]["projected_s"]] + list(g["other"].values())
    for v in parts + [g["projected_total_s"]]:
        assert math.isfinite(v), f"non-finite projection {v}"
    assert abs(sum(parts) - g["projected_total_s"]) <= 1e-9 * max(1.0, g["projected_total_s"])
    assert abs(sum(u["projected_s"] for u in g["genie_m"]["units"]) - g["genie_m"]["projected_s"]) \
        <= 1e-9 * max(1.0, g["genie_m"]["projected_s"])
    for ph in [g["genie_d"]] + g["genie_m"]["units"]:
        assert all(t > 0 for t in ph["seconds"]), f"a phase took no time: {ph}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="torchvision architecture, exported with seeded random weights")
    src.add_argument("--model", help="a genie HDF5 model file")
    ap.add_argument("--genie", default=os.path.join(REPO, "build", "engine", "genie_run"))
    ap.add_argument("--bench", default="",
                    help="genie_bench, which writes --arch's model (default: beside genie_run)")
    ap.add_argument("--image", type=int, default=224, help="--arch's input size (default 224)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--graph", action="store_true", help="genie_run --graph (captured steps)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, nargs=2, default=[20, 60],
                    help="the two iteration counts of every phase (default 20 60)")
    ap.add_argument("--m-iters", type=int, nargs=2, default=None,
                    help="Genie-M's two step counts, when other than --iters")
    ap.add_argument("--batch", type=int, default=PAPER["batch"], help="Genie-D batch (paper: 128)")
    ap.add_argument("--recon-batch", type=int, default=PAPER["recon_batch"])
    ap.add_argument("--m-samples", type=int, default=PAPER["samples"],
                    help="images of the Genie-M timing runs (collection scaled to 1024)")
    ap.add_argument("--wbits", type=int, default=4)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--torch", action="store_true", help="also time PyTorch eager (needs --arch)")
    ap.add_argument("--torch-warmup", type=int, default=3)
    ap.add_argument("--torch-reps", type=int, default=10)
    ap.add_argument("--torch-cache", type=int, default=256,
                    help="cached unit inputs of PyTorch's Genie-M steps (batches are drawn from it)")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny counts (iterations 2 and 4, batch 16, 32 images): a smoke run")
    ap.add_argument("--check", action="store_true", help="assert the document's consistency")
    ap.add_argument("--machine", default="", help="recorded machine name")
    ap.add_argument("--out", default="", help="write OUT/paper-scale.json")
    ap.add_argument("--keep", action="store_true", help="keep the runs' output folders")
    a = ap.parse_args()
    if a.tiny:
        a.iters, a.m_iters, a.batch, a.m_samples, a.recon_batch = [2, 4], [2, 4], 16, 32, 16
    a.m_iters = a.m_iters or a.iters
    for name, v in (("--iters", a.iters), ("--m-iters", a.m_iters)):
        if v[0] < 1 or v[1] <= v[0]:
            ap.error(f"{name} expects n1 >= 1 and n2 > n1")
    if a.torch and not a.arch:
        ap.error("--torch needs --arch (a torchvision architecture)")
    if not os.access(a.genie, os.X_OK):
        ap.error(f"--genie {a.genie}: not an executable (build genie_run first)")
    tmp = tempfile.mkdtemp(prefix="paper-scale-")
    try:
        model = a.model
        if a.arch:
            model = os.path.join(tmp, f"{a.arch}.h5")
            bench = a.bench or os.path.join(os.path.dirname(os.path.dirname(a.genie)), "bench",
                                            "genie_bench")
            r = subprocess.run([bench, "--save-model", a.arch, str(a.image), model],
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"{bench} --save-model {a.arch}: {r.stderr.strip()}")
        info = subprocess.run([a.genie, "info", "--model", model, "--json"], capture_output=True,
                              text=True)
        if info.returncode != 0:
            fail(f"genie_run info --model {model}: {info.stderr.strip()}")
        started = time.time()
        g = time_genie(a, model, tmp)
        doc = {"what": "paper-scale projection (bench/paper_scale.py)",
               "model": a.arch or os.path.basename(a.model), "device": a.device,
               "precision": a.precision, "graph": a.graph, "iters": a.iters,
               "m_iters": a.m_iters,
               "paper": PAPER, "measured_batch": a.batch, "machine": a.machine or platform.node(),
               "threads": a.threads, "units_expected": len(json.loads(info.stdout)["units"]),
               "genie": g}
        if a.torch:
            import torch
            doc["torch"] = time_torch(a, g)
            doc["torch_version"] = torch.__version__
        doc["script_seconds"] = time.time() - started
        print(table(doc))
        if a.check:
            check(doc)
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            path = os.path.join(a.out, "paper-scale.json")
            with open(path + ".tmp", "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            os.replace(path + ".tmp", path)
            print(f"wrote {path}")
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
