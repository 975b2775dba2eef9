#!/usr/bin/env bash
# The README's first command: installs the Debian packages genie needs (when any is missing; root
# or sudo), builds genie_run, and quantizes the bundled Fashion-MNIST ResNet-20 to W4A4 with Genie-D
# synthetic data (quick settings), printing FP32 vs quantized accuracy on the 10000 test images.
# Under 10 minutes on a 2-core CPU from a fresh checkout. Outputs: $OUT (default out/demo):
# quantized.h5, images.h5, contact_sheet.png, report.json.
#   GENIE_SKIP_APT=1   do not check/install packages     BUILD=dir   build directory (default build)
#   OUT=dir            output directory                  GENIE_CMAKE_ARGS   extra cmake arguments
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-out/demo}

# 1. Debian packages (scripts/debian-packages.txt), only those not installed yet.
scripts/ensure-packages.sh demo

# 2. Build genie_run only (the tests are scripts/test.sh's job). Without a GPU the CUDA backend
#    would only cost build time: it is built when nvidia-smi sees a device (or GENIE_CMAKE_ARGS says).
CUDA_ARG=""
if [ -z "${GENIE_CMAKE_ARGS:-}" ] && ! nvidia-smi -L >/dev/null 2>&1; then CUDA_ARG="-DGENIE_CUDA=OFF"; fi
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release $CUDA_ARG ${GENIE_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" --target genie_run -j "$(nproc)"

# OpenMP threads sleep at barriers instead of spinning: on a busy 2-core machine the default
# spin-wait made the same Genie-D run 1.7x slower in wall time and 2x in CPU time (measured while
# other jobs ran; an idle machine was not available to compare).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# 3. Quantize with quick settings (the paper's are 1024 images, 4000 + 20000 iterations):
#    128 Genie-D images (2 batches of 64, 100 iterations each), 200 reconstruction iterations per
#    unit; then both models on the 10000 test images. An interrupted demo resumes where it stopped.
ARGS=(--model models/data/resnet20_fmnist.h5 --out "$OUT" --wbits 4 --abits 4
      --samples 128 --batch 64 --distill-iters 100 --recon-iters 200 --recon-batch 32
      --eval fashion-mnist --device auto --seed 0)
if [ -f "$OUT/checkpoint/state.json" ]; then
  echo "[demo] resuming the interrupted run in $OUT"
  "$BUILD/engine/genie_run" quantize --resume "$OUT"
else
  "$BUILD/engine/genie_run" quantize "${ARGS[@]}"
fi
