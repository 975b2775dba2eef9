#!/usr/bin/env bash
# Installs the Debian packages genie needs when any is missing, builds genie (with CUDA when the
# toolkit is present), runs the whole CPU test suite, then builds the embed example against the
# installed package. GPU cases are skipped, and counted, without a GPU. In CI (CI=true) or with
# GENIE_HARDENING=1 it then runs the suite under sanitizers and fuzzes the input parsers.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages (scripts/debian-packages.txt) that are missing: installed first (root or sudo;
# nothing happens when all are present; GENIE_SKIP_APT=1 skips the check).
scripts/ensure-packages.sh test
# No function in engine/ longer than 100 lines (scripts/function-lengths.py, Python 3 only).
if command -v python3 >/dev/null; then
  python3 scripts/function-lengths.py --self-test
  python3 scripts/function-lengths.py engine --max 100 --top 3
else
  echo "[test] python3 not found: engine/ function lengths not checked"
fi
BUILD=${BUILD:-build}
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${GENIE_CMAKE_ARGS:-}
cmake --build "$BUILD" -j "$(nproc)"
"$BUILD/tests/genie_tests"
# Several processes (issue 19): mpirun -np 2/3 against one process, byte for byte, with a rank
# killed and the run resumed on other rank counts (scripts/mpi-test.sh; about a minute).
if grep -Eiq '^GENIE_MPI:BOOL=(ON|TRUE|YES|1)$' "$BUILD/CMakeCache.txt" && command -v mpirun >/dev/null; then
  scripts/mpi-test.sh "$BUILD"
else
  echo "[test] genie built without MPI or no mpirun: the multi-process checks are skipped"
fi
# The paper-scale timing script (bench/paper_scale.py, issue 20) with tiny counts: genie_run twice
# per phase on the bundled teacher, the projection checked for consistency (seconds).
if command -v python3 >/dev/null; then
  python3 bench/paper_scale.py --model models/data/resnet20_fmnist.h5 --tiny --check \
    --genie "$BUILD/engine/genie_run" --out "$BUILD/paper-scale"
else
  echo "[test] python3 not found: bench/paper_scale.py not run"
fi
# The library as a consumer sees it: install into $BUILD/install, then configure, build and run
# examples/embed against that installed package (a tiny W4A4 quantization of the bundled teacher).
PREFIX="$(cd "$BUILD" && pwd)/install"
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
cmake -G Ninja -S examples/embed -B "$BUILD/embed" -DCMAKE_PREFIX_PATH="$PREFIX"
cmake --build "$BUILD/embed"
rm -rf "$BUILD/embed/out"
"$BUILD/embed/genie_embed" "$PREFIX/share/genie/resnet20_fmnist.h5" "$BUILD/embed/out" 300
# Hardening (in CI, or with GENIE_HARDENING=1): the suite again under AddressSanitizer + UBSan
# (scripts/sanitize.sh; the 10,000-image evaluation cases — the bundled teacher's, issue 17's two
# networks' and the depthwise network's W8A8, minutes under the sanitizers — and the export cases
# that quantize a model per storage form are left to the run above; the writer's byte-level case
# and the bad-input case, which exports a W3A3 model, run under both), then a short fuzzing run of every parser of untrusted input
# (scripts/fuzz.sh; GENIE_FUZZ_SECONDS each, default 20; the documented long run is 1800).
if [ "${CI:-}" = true ] || [ -n "${GENIE_HARDENING:-}" ]; then
  scripts/sanitize.sh -tce='evaluate: resnet20_fmnist.h5 reaches*,evaluate: the issue-17*,steps: depthwise*,genie_run export: W*,genie_run export: --symmetric*,genie_run export: a depthwise*,export: the zoo*'
  scripts/fuzz.sh "${GENIE_FUZZ_SECONDS:-20}"
fi
