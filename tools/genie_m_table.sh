#!/bin/bash
# Runs the Genie-M accuracy table of issue 5 with tools/genie_m, one configuration at a time
# (resnet20_fmnist, 256 calibration images, 2000 iterations per unit), skipping configurations
# whose result file exists, then prints the table (tools/genie_m_table.py).
#   tools/genie_m_table.sh BUILD_DIR OUT_DIR [config …]   config = CALIB:WxAy[:fold]
#   CALIB ∈ real | genie-d | noise; MODEL=path.h5 (default the bundled ResNet-20) for another
#   Fashion-MNIST network (e.g. tests/data/dw_fmnist.h5), ITERS (default 2000) per unit,
#   GENIE_M_ARGS extra tools/genie_m flags (e.g. "--device cuda --precision tf32").
set -euo pipefail
build=$1; out=$2; shift 2
mkdir -p "$out"
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  configs=(real:W4A4 real:W2A4 real:W2A2 genie-d:W4A4 genie-d:W2A4 genie-d:W2A2 noise:W4A4 noise:W2A4 noise:W2A2
           real:W4A4:fold real:W2A4:fold real:W2A2:fold genie-d:W4A4:fold genie-d:W2A4:fold genie-d:W2A2:fold
           noise:W4A4:fold noise:W2A4:fold noise:W2A2:fold)
fi
root=$(cd "$(dirname "$0")/.." && pwd)
model=${MODEL:-$root/models/data/resnet20_fmnist.h5}
iters=${ITERS:-2000}
for c in "${configs[@]}"; do
  IFS=: read -r calib bits fold <<< "$c"
  w=${bits#W}; w=${w%%A*}; a=${bits##*A}
  name="${calib}_${bits}${fold:+_fold}"
  [ -s "$out/$name.json" ] && continue
  src=$calib
  [ "$calib" = genie-d ] && src="genie-d:$out/genie_d_images.h5"
  echo "[table] $name" >&2
  OMP_WAIT_POLICY=passive "$build/tools/genie_m" --model "$model" --eval-fp \
    --wbits "$w" --abits "$a" --calib "$src" --n 256 --iters "$iters" --threads 2 \
    ${fold:+--fold-bn} ${GENIE_M_ARGS:-} --out "$out/$name.h5" > "$out/$name.json.tmp" 2> "$out/$name.log"
  mv "$out/$name.json.tmp" "$out/$name.json"
done
/usr/bin/python3 "$root/tools/genie_m_table.py" "$out"
