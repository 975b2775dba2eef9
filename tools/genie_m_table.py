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
print("| calibration | bits | BN | top-1 % | reloaded | reconstruct s | eval s | distill/calib s |")
print("|---|---|---|---|---|---|---|---|")
for calib in ("real", "genie-d", "noise"):
    for bits in ("W4A4", "W2A4", "W2A2"):
        for fold in (False, True):
            r = rows.get((calib, bits, fold))
            if not r:
                continue
            ph = r["phases"]
            print(f"| {calib} | {bits} | {'folded' if fold else 'separate'} | {100 * r['quant_top1']:.2f} | "
                  f"{'exact' if r.get('reload_exact') else 'DIFFERS'} | {ph['reconstruct_s']:.0f} | "
                  f"{ph['eval_quant_s']:.0f} | {ph['calib_s']:.0f} |")
