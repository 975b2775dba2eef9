#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc): builds the
# sanitizer tree (no CUDA, no benchmarks; the fuzzer genie_fuzz is built there too, see
# scripts/fuzz.sh), then runs the whole suite with leak detection, halting on the first report.
#   scripts/sanitize.sh [doctest options]      e.g. -tc='model_file*' to run some cases only
#   scripts/sanitize.sh --build-only           configure and build the tree only (scripts/fuzz.sh)
#   BUILD=dir   sanitizer build tree (default build-asan)
# A sanitizer report fails the run (non-zero exit) and names the file and line.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-asan}
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGENIE_CUDA=OFF \
  -DGENIE_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_C_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target genie_tests genie_run genie_fuzz
[ "${1:-}" = --build-only ] && exit 0
# Leaks are reported; the host block cache is off so that every block is a real allocation.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
export GENIE_HOST_CACHE=0 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
"$BUILD/tests/genie_tests" "$@"
echo "[sanitize] the suite passed under AddressSanitizer + UndefinedBehaviorSanitizer"
