#!/usr/bin/env bash
# Run HERE (the development machine: CUDA toolkit + the Debian -dev packages) to make what the GPU
# machine needs to run genie's tests and benchmarks: that machine has nvcc, CMake, Ninja and
# PyTorch but no apt, no HDF5/OpenBLAS/PNG/JPEG/doctest and no internet, so we build here and carry
# the binaries plus every shared library they load that the GPU machine does not provide.
#
#   scripts/prepare-gpu-bundle.sh            # build into build-gpu (sm_90), pack build-gpu-bundle/
#   BUILD=build-cuda SKIP_BUILD=1 scripts/prepare-gpu-bundle.sh   # pack an existing CUDA build
#
# Output (git-ignored, carried by the device tool with carry: ["build-gpu-bundle"]):
#   build-gpu-bundle/genie-gpu.tar.xz  $BUILD/{tests/genie_tests,bench/genie_bench,engine/genie_run}
#                                      (stripped), $BUILD/gpu-lib/*.so* (OpenBLAS, HDF5 and its
#                                      curl/ssl/krb5 chain, libpng, libjpeg, libsz/libaec,
#                                      libgfortran, libgomp, libstdc++ ...), and optionally
#                                      $BUILD/datasets/fashion-mnist (the test suite reads it)
#   build-gpu-bundle/bundle.env        manifest read by scripts/gpu-check.sh
# Not carried: glibc (the GPU machine's is newer; the manifest records the oldest one that works)
# and the CUDA libraries (cuBLAS, cuDNN: hundreds of MB; the GPU machine has them in its CUDA
# toolkit and PyTorch's nvidia-* wheels, and gpu-check.sh finds them there). The CUDA runtime is
# linked statically.
#
# Environment: BUILD (build dir, default build-gpu), ARCHS (CUDA archs, default 90), SKIP_BUILD=1,
# JOBS (build parallelism, default nproc), FMNIST=0 (leave the dataset out), BUNDLE (output dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
BUILD=${BUILD:-build-gpu}
ARCHS=${ARCHS:-90}
BUNDLE=${BUNDLE:-build-gpu-bundle}
FMNIST_DIR=/usr/share/datasets/fashion-mnist
LIMIT_MB=64  # the device tool carries at most 64 MiB, working tree included

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -G Ninja -S . -B "$BUILD" -DGENIE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target genie_tests genie_bench genie_run
fi
grep -q '^GENIE_CUDA:BOOL=ON' "$BUILD/CMakeCache.txt" ||
  { echo "prepare-gpu-bundle: $BUILD is not a CUDA build (configure with -DGENIE_CUDA=ON)" >&2; exit 2; }

BINS=()
for b in tests/genie_tests bench/genie_bench engine/genie_run; do
  [ -x "$BUILD/$b" ] && BINS+=("$b")
done
[ -x "$BUILD/tests/genie_tests" ] || { echo "prepare-gpu-bundle: $BUILD/tests/genie_tests missing" >&2; exit 2; }

# Libraries that must come from the GPU machine itself: glibc (tied to its kernel/loader) and the
# NVIDIA driver/CUDA libraries (tied to its driver; too large to carry).
is_system_lib() {
  case "$1" in
    linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|\
    libutil.so*|libanl.so*|libnsl.so*) return 0 ;;
    libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libcudnn*.so*|libnvrtc*.so*|\
    libnvJitLink.so*|libnvidia-*.so*) return 0 ;;
  esac
  return 1
}

STAGE="$BUNDLE/stage"
rm -rf "$STAGE" "$BUNDLE/genie-gpu.tar.xz"
mkdir -p "$STAGE/$BUILD/gpu-lib"
LIBDIR="$STAGE/$BUILD/gpu-lib"

# ldd gives the transitive closure of each binary's dependencies.
for b in "${BINS[@]}"; do
  mkdir -p "$STAGE/$BUILD/$(dirname "$b")"
  strip --strip-unneeded -o "$STAGE/$BUILD/$b" "$BUILD/$b"
  ldd "$BUILD/$b" | awk '/=> \//{print $1, $3}' | while read -r soname path; do
    is_system_lib "$soname" && continue
    [ -e "$LIBDIR/$soname" ] || cp -L "$path" "$LIBDIR/$soname"
  done
done
chmod u+w "$LIBDIR"/*
strip --strip-unneeded "$LIBDIR"/* 2>/dev/null || true

# Self-containment: with the bundle's library directory and the CUDA toolkit on LD_LIBRARY_PATH
# (searched before the system directories), every dependency of every carried file must resolve
# into the bundle, or be glibc / a CUDA library; anything found only in this machine's system
# directories would be missing on the GPU machine.
CUDA_LIBDIRS=/usr/local/cuda/lib64:/usr/local/cuda/lib:/usr/local/cuda/targets/x86_64-linux/lib
bad=0
for f in "$STAGE/$BUILD"/*/genie_* "$LIBDIR"/*; do
  [ -f "$f" ] || continue
  while read -r soname path; do
    is_system_lib "$soname" && continue
    case "$path" in
      "$LIBDIR"/*) ;;
      *) echo "prepare-gpu-bundle: $(basename "$f") needs $soname from $path (not in the bundle)" >&2
         bad=1 ;;
    esac
  done < <(LD_LIBRARY_PATH="$LIBDIR:$CUDA_LIBDIRS" ldd "$f" | awk '/=>/{print $1, $3}')
done
[ "$bad" = 0 ] || { echo "prepare-gpu-bundle: bundle is not self-contained" >&2; exit 1; }

# Oldest glibc the carried code accepts (the GPU machine's must be at least this).
GLIBC_MIN=$(for f in "$STAGE/$BUILD"/*/genie_* "$LIBDIR"/*; do objdump -T "$f" 2>/dev/null; done |
  grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)

with_fmnist=0
if [ "${FMNIST:-1}" = 1 ] && [ -d "$FMNIST_DIR" ]; then
  mkdir -p "$STAGE/$BUILD/datasets"
  cp -rL "$FMNIST_DIR" "$STAGE/$BUILD/datasets/fashion-mnist"
  with_fmnist=1
fi

nlibs=$(ls "$LIBDIR" | wc -l)
tar -C "$STAGE" -cf - . | xz -T0 -6 >"$BUNDLE/genie-gpu.tar.xz"
rm -rf "$STAGE"

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo 1 || echo 0)
cat >"$BUNDLE/bundle.env" <<EOF
# Written by scripts/prepare-gpu-bundle.sh; read by scripts/gpu-check.sh.
BUNDLE_BUILD=$BUILD
BUNDLE_SRC_DIR=$ROOT
BUNDLE_ARCHS="$(grep -oh 'arch=compute_[0-9]*' "$BUILD/build.ninja" | sort -u | sed 's/arch=compute_//' | paste -sd';')"
BUNDLE_COMMIT=$commit
BUNDLE_DIRTY=$dirty
BUNDLE_CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
BUNDLE_GLIBC_MIN=$GLIBC_MIN
BUNDLE_BINS="${BINS[*]}"
BUNDLE_FMNIST=$with_fmnist
EOF

size_kb=$(du -k "$BUNDLE/genie-gpu.tar.xz" | cut -f1)
tree_kb=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "prepare-gpu-bundle: $BUNDLE/genie-gpu.tar.xz $((size_kb / 1024)) MiB (+ tracked tree ~$((tree_kb / 1024)) MiB;" \
  "limit $LIMIT_MB MiB); binaries: ${BINS[*]}; $nlibs libraries; glibc >= $GLIBC_MIN"
if [ $(((size_kb + tree_kb) / 1024)) -ge $((LIMIT_MB - 4)) ]; then
  echo "prepare-gpu-bundle: WARNING: close to the device tool's $LIMIT_MB MiB limit (try FMNIST=0)" >&2
fi
