#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (tests/fuzz/genie_fuzz.cpp) in the sanitizer tree: model
# files, graph descriptions and config files, SECONDS each. A crash, a sanitizer report, a hang or
# an exception other than genie::Error fails the run; the input that caused it stays in
# $OUT/<target>/current.* (or finding-*).
#   scripts/fuzz.sh [SECONDS] [TARGET ...]   default 60 s each of model graph config
#   scripts/fuzz.sh 1800 model graph         the documented long run (30 minutes each)
#   BUILD=dir (default build-asan)   OUT=dir (default out/fuzz)   SEED=n (default: the time)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(model graph config)
BUILD=${BUILD:-build-asan}
OUT=${OUT:-out/fuzz}
SEED=${SEED:-$(date +%s)}
BUILD="$BUILD" scripts/sanitize.sh --build-only
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
# A file that hangs libhdf5 costs the probe 10 s (io/h5_probe.h), well inside the fuzzer's 60 s
# watchdog for one input.
export GENIE_HOST_CACHE=0 OMP_NUM_THREADS=1 GENIE_H5_PROBE_SECONDS=${GENIE_H5_PROBE_SECONDS:-10}
for t in "${TARGETS[@]}"; do
  "$BUILD/tests/fuzz/genie_fuzz" "$t" --seconds "$SECONDS_EACH" --seed "$SEED" --out "$OUT/$t"
done
echo "[fuzz] no crash, hang, sanitizer report or foreign exception (seed $SEED)"
