#!/usr/bin/env bash
# Run ON the GPU machine (the `device` tool), from the repository root: runs the whole test suite
# and the CUDA benchmarks from the bundle made here by scripts/prepare-gpu-bundle.sh, and writes
# $OUT/gpu-check.json (device, test counts, failed cases, benchmark JSON) next to the logs.
#
#   scripts/gpu-check.sh [doctest options...]      e.g.  scripts/gpu-check.sh -tc='*[gpu]*'
#
# Steps: unpack build-gpu-bundle/genie-gpu.tar.xz into the checkout; make the absolute source path
# the binaries were built with (tests find goldens and genie_run through it) point at this
# checkout; expose the bundled Fashion-MNIST at its fixed path if the machine lacks it; find
# cuBLAS/cuDNN on the machine (CUDA toolkit, ldconfig, PyTorch's nvidia-* wheels); run.
# Environment: OUT (default ./gpu-check-out), GENIE_BUNDLE (default build-gpu-bundle),
# GPU_CHECK_TEST_TIMEOUT (s, default 420), GPU_CHECK_BENCH=0 (skip benchmarks),
# GPU_CHECK_BENCH_ARGS (default "--device cuda"), GPU_CHECK_BENCH_TIMEOUT (s, default 150),
# GPU_CHECK_COMPARE_TIMEOUT (s, default 300: bench/compare_pytorch.py on the benchmark's JSON),
# GPU_CHECK_E2E=0 (skip the end-to-end genie_run quantize --device cuda, run once eagerly and once
# with --graph), GPU_CHECK_E2E_TIMEOUT (s, 180 each).
# Exit status: 0 when every test passed (no GPU case skipped) and the benchmark ran clean, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
BUNDLE=${GENIE_BUNDLE:-build-gpu-bundle}
NOTES="$OUT/.notes"
: >"$NOTES"
note() { echo "gpu-check: $*" >&2; echo "$*" >>"$NOTES"; }

# ---- 1. the bundle ----
BUNDLE_BUILD=${BUILD:-build-gpu}
BUNDLE_SRC_DIR=$ROOT
BUNDLE_GLIBC_MIN=
BUNDLE_FMNIST=0
if [ -f "$BUNDLE/bundle.env" ]; then
  # shellcheck disable=SC1090
  . "$BUNDLE/bundle.env"
  if [ -f "$BUNDLE/genie-gpu.tar.xz" ]; then
    if ! tar -C "$ROOT" -xJf "$BUNDLE/genie-gpu.tar.xz" 2>/dev/null; then
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$BUNDLE/genie-gpu.tar.xz" "$ROOT" || { note "cannot unpack $BUNDLE/genie-gpu.tar.xz"; }
    fi
  fi
else
  note "no $BUNDLE/bundle.env: using an existing build in $BUNDLE_BUILD (carry build-gpu-bundle, see docs/GPU.md)"
fi
BUILD=$BUNDLE_BUILD
TESTS="$BUILD/tests/genie_tests"
BENCH="$BUILD/bench/genie_bench"

# glibc: the carried code needs at least the version of the machine it was built on.
GLIBC_HERE=$(ldd --version 2>/dev/null | head -1 | grep -o '[0-9]\+\.[0-9]\+$')
if [ -n "$BUNDLE_GLIBC_MIN" ] && [ -n "$GLIBC_HERE" ] &&
  [ "$(printf '%s\n%s\n' "$BUNDLE_GLIBC_MIN" "$GLIBC_HERE" | sort -V | head -1)" != "$BUNDLE_GLIBC_MIN" ]; then
  note "glibc $GLIBC_HERE here is older than the bundle needs ($BUNDLE_GLIBC_MIN)"
fi

# ---- 2. paths compiled into the binaries ----
if [ "$BUNDLE_SRC_DIR" != "$ROOT" ]; then
  if [ ! -e "$BUNDLE_SRC_DIR" ]; then
    mkdir -p "$(dirname "$BUNDLE_SRC_DIR")" && ln -s "$ROOT" "$BUNDLE_SRC_DIR" ||
      note "cannot link $BUNDLE_SRC_DIR -> $ROOT: tests reading goldens will fail"
  elif [ "$(cd "$BUNDLE_SRC_DIR" && pwd -P)" != "$ROOT" ]; then
    note "$BUNDLE_SRC_DIR exists and is not this checkout: tests read goldens from there"
  fi
fi
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -e "$FMNIST" ]; then
  if [ -d "$ROOT/$BUILD/datasets/fashion-mnist" ]; then
    mkdir -p "$(dirname "$FMNIST")" && ln -s "$ROOT/$BUILD/datasets/fashion-mnist" "$FMNIST" ||
      note "cannot link $FMNIST: Fashion-MNIST tests will fail"
  else
    note "no Fashion-MNIST at $FMNIST and none in the bundle: its tests will fail"
  fi
fi

# ---- 3. shared libraries: the bundle's, then cuBLAS/cuDNN from this machine ----
LDP="$ROOT/$BUILD/gpu-lib"
add_dir() { case ":$LDP:" in *":$1:"*) ;; *) LDP="$LDP:$1" ;; esac; }
SITE_DIRS=$(python3 -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  found=
  for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/lib \
    /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    if [ -e "$d/$lib" ]; then found=$d; break; fi
  done
  if [ -z "$found" ]; then
    p=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [ -n "$p" ] && found=$(dirname "$p")
  fi
  if [ -z "$found" ]; then
    for s in $SITE_DIRS /opt/torch/.venv/lib/python3*/site-packages; do
      [ -d "$s/nvidia" ] || continue
      f=$(find "$s/nvidia" -name "$lib" 2>/dev/null | head -1)
      if [ -n "$f" ]; then found=$(dirname "$f"); break; fi
    done
  fi
  if [ -n "$found" ]; then add_dir "$found"; else note "$lib not found on this machine"; fi
done
export LD_LIBRARY_PATH="$LDP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ ! -x "$TESTS" ]; then
  note "$TESTS missing (run scripts/prepare-gpu-bundle.sh here and carry build-gpu-bundle)"
else
  missing=$(ldd "$TESTS" 2>&1 | awk '/not found/{print $1}' | tr '\n' ' ')
  [ -z "$missing" ] || note "unresolved libraries: $missing"
fi

# ---- 4. device, tests, benchmarks ----
DEVICE=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
[ -n "$DEVICE" ] || note "nvidia-smi found no GPU"

test_rc=127
if [ -x "$TESTS" ]; then
  echo "gpu-check: running $TESTS $*" >&2
  timeout -k 10 "${GPU_CHECK_TEST_TIMEOUT:-420}" "$TESTS" "$@" >"$OUT/tests.log" 2>&1
  test_rc=$?
  [ "$test_rc" = 124 ] && note "test suite timed out after ${GPU_CHECK_TEST_TIMEOUT:-420} s"
  tail -5 "$OUT/tests.log" >&2
fi

bench_rc=skipped
if [ "${GPU_CHECK_BENCH:-1}" = 1 ] && [ -x "$BENCH" ]; then
  echo "gpu-check: running $BENCH ${GPU_CHECK_BENCH_ARGS:---device cuda}" >&2
  # shellcheck disable=SC2086
  timeout -k 10 "${GPU_CHECK_BENCH_TIMEOUT:-150}" "$BENCH" ${GPU_CHECK_BENCH_ARGS:---device cuda} \
    --json "$OUT/bench.json" >/dev/null 2>"$OUT/bench.log"
  bench_rc=$?
  [ "$bench_rc" = 124 ] && note "benchmark timed out after ${GPU_CHECK_BENCH_TIMEOUT:-150} s"
fi

# The whole pipeline on the GPU: genie_run quantize (Genie-D + Genie-M, the demo's quick settings)
# of the bundled teacher with --device cuda, evaluated on Fashion-MNIST: $OUT/e2e/report.json + e2e.log.
e2e_rc=skipped
RUN="$BUILD/engine/genie_run"
if [ "${GPU_CHECK_E2E:-1}" = 1 ] && [ -x "$RUN" ]; then
  echo "gpu-check: running genie_run quantize --device cuda (quick settings)" >&2
  rm -rf "$OUT/e2e"
  timeout -k 10 "${GPU_CHECK_E2E_TIMEOUT:-180}" "$RUN" quantize \
    --model models/data/resnet20_fmnist.h5 --out "$OUT/e2e" --wbits 4 --abits 4 --samples 128 \
    --batch 64 --distill-iters 100 --recon-iters 200 --recon-batch 32 --eval fashion-mnist \
    --device cuda --seed 0 >"$OUT/e2e.log" 2>&1
  e2e_rc=$?
  [ "$e2e_rc" = 124 ] && note "genie_run end-to-end timed out after ${GPU_CHECK_E2E_TIMEOUT:-180} s"
  tail -8 "$OUT/e2e.log" >&2
  rm -f "$OUT/e2e/images.h5" "$OUT/e2e/quantized.h5"  # only the report and the picture come back
  # The same run with --graph (captured Genie-D / Genie-M steps replayed as CUDA graphs): same
  # accuracy expected, $OUT/e2e_graph/report.json + e2e_graph.log.
  echo "gpu-check: running genie_run quantize --device cuda --graph (quick settings)" >&2
  rm -rf "$OUT/e2e_graph"
  timeout -k 10 "${GPU_CHECK_E2E_TIMEOUT:-180}" "$RUN" quantize \
    --model models/data/resnet20_fmnist.h5 --out "$OUT/e2e_graph" --wbits 4 --abits 4 --samples 128 \
    --batch 64 --distill-iters 100 --recon-iters 200 --recon-batch 32 --eval fashion-mnist \
    --device cuda --seed 0 --graph >"$OUT/e2e_graph.log" 2>&1
  e2e_graph_rc=$?
  tail -4 "$OUT/e2e_graph.log" >&2
  rm -f "$OUT/e2e_graph/images.h5" "$OUT/e2e_graph/quantized.h5" "$OUT/e2e_graph/contact_sheet.png"
  export GPU_CHECK_E2E_GRAPH_RC=$e2e_graph_rc
fi
export GPU_CHECK_E2E_RC=$e2e_rc

# genie vs PyTorch eager on the same Genie-D / Genie-M iterations (bench/compare_pytorch.py, with
# this machine's torch), from the genie_bench document just written: $OUT/compare.json + .log.
compare_rc=skipped
if [ "${GPU_CHECK_BENCH:-1}" = 1 ] && [ -s "$OUT/bench.json" ] && python3 -c 'import torch' 2>/dev/null; then
  echo "gpu-check: running bench/compare_pytorch.py --device cuda" >&2
  timeout -k 10 "${GPU_CHECK_COMPARE_TIMEOUT:-300}" python3 bench/compare_pytorch.py --device cuda \
    --genie-json "$OUT/bench.json" --json "$OUT/compare.json" >/dev/null 2>"$OUT/compare.log"
  compare_rc=$?
  [ "$compare_rc" = 124 ] && note "PyTorch comparison timed out after ${GPU_CHECK_COMPARE_TIMEOUT:-300} s"
  tail -15 "$OUT/compare.log" >&2
fi
export GPU_CHECK_COMPARE_RC=$compare_rc

# ---- 5. summary ----
python3 - "$OUT" "$test_rc" "$bench_rc" "$DEVICE" "$LD_LIBRARY_PATH" "$BUNDLE/bundle.env" \
  "${GLIBC_HERE:-}" <<'PY'
import json, os, re, sys
out, test_rc, bench_rc, device, ldp, env_path, glibc = sys.argv[1:8]
def read(p):
    try:
        with open(p, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
log = read(os.path.join(out, "tests.log"))
s = {"device": device or None, "glibc": glibc or None, "ld_library_path": ldp.split(":"),
     "bundle": {}, "tests": {"exit_code": int(test_rc)}, "notes": read(os.path.join(out, ".notes")).splitlines()}
for line in read(env_path).splitlines():
    if "=" in line and not line.startswith("#"):
        k, v = line.split("=", 1)
        s["bundle"][k] = v.strip('"')
m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped", log)
if m:
    t = s["tests"]
    t["cases"], t["passed"], t["failed"], t["filtered_out"] = map(int, m.groups())
m = re.search(r"assertions:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed", log)
if m:
    s["tests"]["assertions"], s["tests"]["assertions_passed"], s["tests"]["assertions_failed"] = map(int, m.groups())
m = re.search(r"CUDA built: (\w+); GPU available: (\w+); GPU cases skipped: (\d+)", log)
if m:
    s["tests"]["cuda_built"] = m.group(1) == "yes"
    s["tests"]["gpu_available"] = m.group(2) == "yes"
    s["tests"]["gpu_cases_skipped"] = int(m.group(3))
failed = []
for block in log.split("=" * 79):
    if "ERROR" in block or "FATAL" in block:
        m = re.search(r"TEST CASE:\s+(.*)", block)
        if m and m.group(1).strip() not in failed:
            failed.append(m.group(1).strip())
s["tests"]["failed_cases"] = failed[:100]
s["benchmark"] = {"exit_code": bench_rc if bench_rc == "skipped" else int(bench_rc)}
bj = read(os.path.join(out, "bench.json"))
if bj:
    try:
        s["benchmark"]["result"] = json.loads(bj)
    except ValueError as e:
        s["benchmark"]["parse_error"] = str(e)
cj = read(os.path.join(out, "compare.json"))
s["compare"] = {"exit_code": os.environ.get("GPU_CHECK_COMPARE_RC", "skipped")}
if cj:
    try:
        s["compare"]["rows"] = json.loads(cj).get("rows", [])
    except ValueError as e:
        s["compare"]["parse_error"] = str(e)
def e2e_run(rc_env, folder):
    res = {"exit_code": os.environ.get(rc_env, "skipped")}
    rj = read(os.path.join(out, folder, "report.json"))
    if rj:
        try:
            r = json.loads(rj)
            res.update({k: r.get(k) for k in ("fp32_top1", "quant_top1", "timings_s")})
        except ValueError as e:
            res["parse_error"] = str(e)
    return res
e2e = s["e2e"] = e2e_run("GPU_CHECK_E2E_RC", "e2e")
e2g = s["e2e_graph"] = e2e_run("GPU_CHECK_E2E_GRAPH_RC", "e2e_graph")  # informational (--graph is opt-in)
s["ok"] = (e2e["exit_code"] in ("skipped", "0") and int(test_rc) == 0 and s["tests"].get("failed", 1) == 0 and
           bench_rc in ("skipped", "0") and not s["tests"].get("gpu_cases_skipped"))
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(s, f, indent=1)
t = s["tests"]
print(f"gpu-check: device {device or 'none'}; tests {t.get('passed', '?')}/{t.get('cases', '?')} passed, "
      f"{t.get('failed', '?')} failed, GPU cases skipped {t.get('gpu_cases_skipped', '?')}; "
      f"benchmark {s['benchmark']['exit_code']}; end-to-end {e2e['exit_code']} "
      f"(FP32 {e2e.get('fp32_top1')}, W4A4 {e2e.get('quant_top1')}); with --graph {e2g['exit_code']} "
      f"(W4A4 {e2g.get('quant_top1')}); ok={s['ok']}", file=sys.stderr)
sys.exit(0 if s["ok"] else 1)
PY
rc=$?
rm -f "$NOTES"
exit $rc
