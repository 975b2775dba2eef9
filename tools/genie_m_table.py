#!/usr/bin/python3
"""Prints the Genie-M accuracy table (markdown) from the JSON lines tools/genie_m_table.sh wrote."""
import glob
import json
import os
import sys

out = sys.argv[1]
rows = {}
for p in sorted(glob.glob(os.path.join(out, "*.json"))):
    r = json.load(open(p))
    calib = r["calib"]
    calib = "genie-d" if calib.startswith("genie-d") else calib
    rows[(calib, f"W{r['wbits']}A{r['abits']}", r["fold_bn"])] = r
print("| calibration | bits | BN | top-1 % | FP32 % | reloaded | units kept initial | reconstruct s "
      "| eval s | distill/calib s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for calib in ("real", "genie-d", "noise"):
    for bits in ("W8A8", "W6A6", "W4A8", "W4A4", "W2A4", "W2A2"):
        for fold in (False, True):
            r = rows.get((calib, bits, fold))
            if not r:
                continue
            ph = r["phases"]
            fp = f"{100 * r['fp32_top1']:.2f}" if "fp32_top1" in r else "-"
            kept = sum(1 for u in r["units"] if u.get("kept_initial"))
            print(f"| {calib} | {bits} | {'folded' if fold else 'separate'} | {100 * r['quant_top1']:.2f} | "
                  f"{fp} | {'exact' if r.get('reload_exact') else 'DIFFERS'} | {kept}/{len(r['units'])} | "
                  f"{ph['reconstruct_s']:.0f} | "
                  f"{ph['eval_quant_s']:.0f} | {ph['calib_s']:.0f} |")
