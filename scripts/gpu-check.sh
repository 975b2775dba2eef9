#!/usr/bin/env bash
# Run ON the GPU machine (the `device` tool), from the repository root: runs the GPU test cases,
# the CUDA benchmarks, the pipeline end to end and the PyTorch comparison from the bundle made here
# by scripts/prepare-gpu-bundle.sh, inside one time budget, and writes $OUT/gpu-check.json.
#
#   scripts/gpu-check.sh                         GPU cases, bench, end to end, compare, other cases
#   scripts/gpu-check.sh [doctest options...]    e.g. -tc='graph:*' -s: those cases instead of the
#                                                GPU cases, and no "other cases" step
#
# Setup: unpack build-gpu-bundle/genie-gpu.tar.xz into the checkout; make the absolute source path
# the binaries were built with (tests find goldens and genie_run through it) point at this
# checkout; expose the bundled Fashion-MNIST at its fixed path if the machine lacks it; find
# cuBLAS/cuDNN on the machine (CUDA toolkit, ldconfig, PyTorch's nvidia-* wheels).
# Then, in this order, each under the smaller of its own limit and what is left of the budget
# (a step with under 20 s left is skipped, with a note):
#   tests       the cases whose names mention GPU or CUDA, but the CUDA-graph ones
#               (GPU_CHECK_TEST_TIMEOUT, 200 s)
#   tests_graph the CUDA-graph cases, in a process of their own (GPU_CHECK_GRAPH_TIMEOUT, 120 s)
#   bench       genie_bench $GPU_CHECK_BENCH_ARGS (default --device cuda) but the iter_graph rows
#               (GPU_CHECK_BENCH_TIMEOUT, 150 s; GPU_CHECK_BENCH=0 skips it and the comparison)
#   bench_graph the iter_graph rows, in a process of their own, merged into the same document
#               (GPU_CHECK_BENCH_GRAPH_TIMEOUT, 90 s)
#   e2e         genie_run quantize --device cuda, demo's quick settings (GPU_CHECK_E2E_TIMEOUT,
#   e2e_graph   120 s each), eagerly and with --graph; GPU_CHECK_E2E=0 skips both
#   compare     bench/compare_pytorch.py on the benchmark's JSON (GPU_CHECK_COMPARE_TIMEOUT, 240 s)
#   paper       opt-in (GPU_CHECK_PAPER=1): bench/paper_scale.py --arch resnet18 --device cuda
#               --torch (GPU_CHECK_PAPER_TIMEOUT, 300 s)
#   tests_rest  every other case, with whatever is left (GPU_CHECK_REST=0 skips it)
# Environment: OUT (default ./gpu-check-out), GENIE_BUNDLE (default build-gpu-bundle),
# GPU_CHECK_BUDGET (s, default 480: one device call of at most 600 s, with room for a rerun in a
# 15-minute lease).
# Output: $OUT/gpu-check.json (device, bundle manifest, each step's exit code and seconds, test
# counts and failed cases, the benchmark's JSON, the genie/PyTorch ratios, the end-to-end
# accuracies and phase times), $OUT/tests.log, and $OUT/gpu-check-logs.tar.gz with everything else
# (the device tool returns at most 8 files).
# Exit status: 0 when every test that ran passed (no GPU case skipped), the benchmark and the eager
# end-to-end run exited cleanly, else 1.
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

# ---- 4. device, tests, benchmarks: in order of what a short lease must not miss ----
# One deadline for everything (GPU_CHECK_BUDGET s from here); each step runs under the smaller of
# its own limit and what is left, and a step with under 20 s left is skipped with a note.
BUDGET=${GPU_CHECK_BUDGET:-480}
T0=$SECONDS
STEPS="$OUT/.steps"
: >"$STEPS"
left() { echo $((BUDGET - (SECONDS - T0))); }
# limit DEFAULT: the step's timeout, or nothing (skip) when under 20 s remain.
limit() {
  local l
  l=$(left)
  [ "$l" -lt 20 ] && return 1
  [ "$1" -lt "$l" ] && echo "$1" || echo "$l"
}
# timed NAME LIMIT CMD...: runs CMD under LIMIT s, records "NAME rc seconds" in $STEPS.
timed() {
  local name=$1 lim=$2 t=$SECONDS rc
  shift 2
  timeout -k 10 "$lim" "$@"
  rc=$?
  echo "$name $rc $((SECONDS - t)) $lim" >>"$STEPS"
  [ "$rc" = 124 ] && note "$name timed out after $lim s"
  return $rc
}
skipped() { echo "$1 skipped 0 0" >>"$STEPS"; note "$1 skipped: under 20 s of the ${BUDGET} s budget left"; }
# step NAME DEFAULT_LIMIT LOG TAIL CMD...: CMD within the budget (stdout and stderr to LOG, its last
# TAIL lines echoed); STEP_RC = its exit status, or "skipped".
step() {
  local name=$1 def=$2 log=$3 n=$4 lim
  shift 4
  STEP_RC=skipped
  if ! lim=$(limit "$def"); then
    skipped "$name"
    return
  fi
  echo "gpu-check: $name: $* (limit $lim s)" >&2
  timed "$name" "$lim" "$@" >"$log" 2>&1
  STEP_RC=$?
  tail -"$n" "$log" >&2
}

DEVICE=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
[ -n "$DEVICE" ] || note "nvidia-smi found no GPU"

# 4a. The GPU cases (every case whose name mentions GPU or CUDA: that is where all GPU work of the
# suite lives; doctest filters ignore case), or the doctest options given on the command line.
# The CUDA-graph cases run in a process of their own, after the others: a fault inside a replayed
# graph can poison the CUDA context, and must not cost the results of the rest.
GPU_FILTER='*gpu*,*cuda*'
GRAPH_CASES='graph:*gpu*,*replayed CUDA*'
USER_OPTS=$#
test_rc=127
graph_rc=skipped
if [ -x "$TESTS" ]; then
  if [ $# -gt 0 ]; then set -- "$@"; else set -- "-tc=$GPU_FILTER" "-tce=$GRAPH_CASES"; fi
  step tests "${GPU_CHECK_TEST_TIMEOUT:-200}" "$OUT/tests.log" 4 "$TESTS" "$@"
  test_rc=$STEP_RC
  if [ "$USER_OPTS" = 0 ]; then
    step tests_graph "${GPU_CHECK_GRAPH_TIMEOUT:-120}" "$OUT/tests_graph.log" 4 \
      "$TESTS" "-tc=$GRAPH_CASES"
    graph_rc=$STEP_RC
  fi
fi

# 4b. genie_bench --device cuda (every case, or GPU_CHECK_BENCH_ARGS); the replayed-graph rows
# (iter_graph) in a second process, for the reason above, merged into the same document.
bench_rc=skipped
BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:---device cuda}
if [ "${GPU_CHECK_BENCH:-1}" = 1 ] && [ -x "$BENCH" ]; then
  # shellcheck disable=SC2086
  step bench "${GPU_CHECK_BENCH_TIMEOUT:-150}" "$OUT/bench.log" 0 \
    "$BENCH" $BENCH_ARGS --exclude iter_graph --json "$OUT/bench.json"
  bench_rc=$STEP_RC
  # shellcheck disable=SC2086
  step bench_graph "${GPU_CHECK_BENCH_GRAPH_TIMEOUT:-90}" "$OUT/bench_graph.log" 0 \
    "$BENCH" $BENCH_ARGS --filter iter_graph --json "$OUT/bench_graph.json"
  if [ "$STEP_RC" != skipped ]; then
    if [ -s "$OUT/bench_graph.json" ]; then
      python3 - "$OUT/bench.json" "$OUT/bench_graph.json" <<'PY' || note "cannot merge bench_graph.json"
import json, os, sys
main, extra = sys.argv[1:3]
doc = json.load(open(extra))
if os.path.exists(main) and os.path.getsize(main) > 0:  # else the graph rows alone
    d = json.load(open(main))
    d["results"] += doc["results"]
    doc = d
json.dump(doc, open(main, "w"), indent=1)
PY
    fi
    [ "$bench_rc" = 0 ] && [ "$STEP_RC" != 0 ] && bench_rc=$STEP_RC
  fi
fi

# 4c. The whole pipeline on the GPU: genie_run quantize (Genie-D + Genie-M, the demo's quick
# settings) of the bundled teacher with --device cuda, evaluated on Fashion-MNIST, once eagerly
# ($OUT/e2e) and once with --graph (captured Genie-D / Genie-M steps replayed as CUDA graphs,
# $OUT/e2e_graph: the same accuracy expected).
RUN="$BUILD/engine/genie_run"
e2e() {  # e2e NAME [extra flags]: prints the exit status
  local name=$1
  shift
  rm -rf "${OUT:?}/$name"
  step "$name" "${GPU_CHECK_E2E_TIMEOUT:-120}" "$OUT/$name.log" 4 "$RUN" quantize \
    --model models/data/resnet20_fmnist.h5 --out "$OUT/$name" --wbits 4 --abits 4 --samples 128 \
    --batch 64 --distill-iters 100 --recon-iters 200 --recon-batch 32 --eval fashion-mnist \
    --device cuda --seed 0 "$@"
  rm -f "$OUT/$name/images.h5" "$OUT/$name/quantized.h5"  # the report and the picture are kept
  echo "$STEP_RC"
}
e2e_rc=skipped
e2e_graph_rc=skipped
if [ "${GPU_CHECK_E2E:-1}" = 1 ] && [ -x "$RUN" ]; then
  e2e_rc=$(e2e e2e)
  e2e_graph_rc=$(e2e e2e_graph --graph)
fi
export GPU_CHECK_E2E_RC=$e2e_rc GPU_CHECK_E2E_GRAPH_RC=$e2e_graph_rc

# 4d. genie vs PyTorch eager on the same Genie-D / Genie-M iterations (bench/compare_pytorch.py,
# with this machine's torch), from the genie_bench document just written.
compare_rc=skipped
if [ "${GPU_CHECK_BENCH:-1}" = 1 ] && [ -s "$OUT/bench.json" ] && python3 -c 'import torch' 2>/dev/null; then
  step compare "${GPU_CHECK_COMPARE_TIMEOUT:-240}" "$OUT/compare.log" 15 python3 \
    bench/compare_pytorch.py --device cuda --genie-json "$OUT/bench.json" --json "$OUT/compare.json"
  compare_rc=$STEP_RC
fi
export GPU_CHECK_COMPARE_RC=$compare_rc

# 4d'. Opt-in (GPU_CHECK_PAPER=1, issue 20): the paper-settings projection of a whole run
# (bench/paper_scale.py: genie_run twice per phase, PyTorch eager at its defaults and in FP32) for
# GPU_CHECK_PAPER_ARCH (default resnet18) at GPU_CHECK_PAPER_PRECISION (default fp32), into
# $OUT/paper/paper-scale.json (GPU_CHECK_PAPER_TIMEOUT, 300 s).
paper_rc=skipped
if [ "${GPU_CHECK_PAPER:-0}" = 1 ] && python3 -c 'import torch, torchvision' 2>/dev/null; then
  step paper "${GPU_CHECK_PAPER_TIMEOUT:-300}" "$OUT/paper.log" 20 python3 bench/paper_scale.py \
    --arch "${GPU_CHECK_PAPER_ARCH:-resnet18}" --device cuda \
    --precision "${GPU_CHECK_PAPER_PRECISION:-fp32}" --torch --genie "$BUILD/engine/genie_run" \
    --machine gpu-check --out "$OUT/paper"
  paper_rc=$STEP_RC
fi
export GPU_CHECK_PAPER_RC=$paper_rc

# 4e. With what is left, the rest of the suite (CPU cases: CI runs them too, but this machine's
# processor and BLAS differ from CI's). Only when no doctest options were given.
rest_rc=skipped
if [ -x "$TESTS" ] && [ "$USER_OPTS" = 0 ] && [ "${GPU_CHECK_REST:-1}" = 1 ]; then
  step tests_rest "${GPU_CHECK_REST_TIMEOUT:-600}" "$OUT/tests_rest.log" 3 \
    "$TESTS" "-tce=$GPU_FILTER,$GRAPH_CASES"
  rest_rc=$STEP_RC
fi

# ---- 5. summary ----
python3 - "$OUT" "$test_rc" "$bench_rc" "$DEVICE" "$LD_LIBRARY_PATH" "$BUNDLE/bundle.env" \
  "${GLIBC_HERE:-}" "$rest_rc" "$BUDGET" "$graph_rc" <<'PY'
import json, os, re, sys
out, test_rc, bench_rc, device, ldp, env_path, glibc, rest_rc, budget, graph_rc = sys.argv[1:11]
def read(p):
    try:
        with open(p, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
def rc(v):
    return v if v in ("skipped", "") else int(v)
def suite(log, exit_code):
    t = {"exit_code": rc(exit_code)}
    m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped", log)
    if m:
        t["cases"], t["passed"], t["failed"], t["filtered_out"] = map(int, m.groups())
    m = re.search(r"assertions:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed", log)
    if m:
        t["assertions"], t["assertions_passed"], t["assertions_failed"] = map(int, m.groups())
    m = re.search(r"CUDA built: (\w+); GPU available: (\w+); GPU cases skipped: (\d+)", log)
    if m:
        t["cuda_built"] = m.group(1) == "yes"
        t["gpu_available"] = m.group(2) == "yes"
        t["gpu_cases_skipped"] = int(m.group(3))
    failed = []
    for block in log.split("=" * 79):
        if "ERROR" in block or "FATAL" in block:
            m = re.search(r"TEST CASE:\s+(.*)", block)
            if m and m.group(1).strip() not in failed:
                failed.append(m.group(1).strip())
    t["failed_cases"] = failed[:100]
    return t
s = {"device": device or None, "glibc": glibc or None, "ld_library_path": ldp.split(":"),
     "bundle": {}, "budget_s": int(budget), "steps": {},
     "notes": read(os.path.join(out, ".notes")).splitlines()}
for line in read(os.path.join(out, ".steps")).splitlines():
    name, code, secs, lim = line.split()
    s["steps"][name] = {"exit_code": rc(code), "seconds": int(secs), "limit_s": int(lim)}
for line in read(env_path).splitlines():
    if "=" in line and not line.startswith("#"):
        k, v = line.split("=", 1)
        s["bundle"][k] = v.strip('"')
s["tests"] = suite(read(os.path.join(out, "tests.log")), test_rc)
s["tests_graph"] = suite(read(os.path.join(out, "tests_graph.log")), graph_rc) if graph_rc != "skipped" \
    else {"exit_code": "skipped"}
s["tests_rest"] = suite(read(os.path.join(out, "tests_rest.log")), rest_rc) if rest_rc != "skipped" \
    else {"exit_code": "skipped"}
s["benchmark"] = {"exit_code": rc(bench_rc)}
bj = read(os.path.join(out, "bench.json"))
if bj:
    try:
        s["benchmark"]["result"] = json.loads(bj)
    except ValueError as e:
        s["benchmark"]["parse_error"] = str(e)
cj = read(os.path.join(out, "compare.json"))
s["compare"] = {"exit_code": rc(os.environ.get("GPU_CHECK_COMPARE_RC", "skipped"))}
if cj:
    try:
        s["compare"]["rows"] = json.loads(cj).get("rows", [])
    except ValueError as e:
        s["compare"]["parse_error"] = str(e)
def e2e_run(rc_env, folder):
    res = {"exit_code": rc(os.environ.get(rc_env, "skipped"))}
    rj = read(os.path.join(out, folder, "report.json"))
    if rj:
        try:
            r = json.loads(rj)
            res.update({k: r.get(k) for k in ("fp32_top1", "quant_top1", "timings_s")})
        except ValueError as e:
            res["parse_error"] = str(e)
    return res
s["paper"] = {"exit_code": rc(os.environ.get("GPU_CHECK_PAPER_RC", "skipped"))}
pj = read(os.path.join(out, "paper", "paper-scale.json"))
if pj:
    try:
        s["paper"]["result"] = json.loads(pj)
    except ValueError as e:
        s["paper"]["parse_error"] = str(e)
e2e = s["e2e"] = e2e_run("GPU_CHECK_E2E_RC", "e2e")
e2g = s["e2e_graph"] = e2e_run("GPU_CHECK_E2E_GRAPH_RC", "e2e_graph")  # informational (--graph is opt-in)
t, tg, r = s["tests"], s["tests_graph"], s["tests_rest"]
s["ok"] = (t["exit_code"] == 0 and t.get("failed", 1) == 0 and not t.get("gpu_cases_skipped") and
           tg["exit_code"] in ("skipped", 0) and not tg.get("gpu_cases_skipped") and
           e2e["exit_code"] in ("skipped", 0) and bench_rc in ("skipped", "0") and
           r["exit_code"] in ("skipped", 0))
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(s, f, indent=1)
print(f"gpu-check: device {device or 'none'}; GPU tests {t.get('passed', '?')}/{t.get('cases', '?')} passed, "
      f"{t.get('failed', '?')} failed, GPU cases skipped {t.get('gpu_cases_skipped', '?')}; "
      f"graph tests {tg.get('passed', '?')}/{tg.get('cases', '?')} ({tg['exit_code']}); "
      f"other tests {r.get('passed', '?')}/{r.get('cases', '?')} ({r['exit_code']}); "
      f"benchmark {s['benchmark']['exit_code']}; end-to-end {e2e['exit_code']} "
      f"(FP32 {e2e.get('fp32_top1')}, W4A4 {e2e.get('quant_top1')}); with --graph {e2g['exit_code']} "
      f"(W4A4 {e2g.get('quant_top1')}); {sum(v['seconds'] for v in s['steps'].values())} s; ok={s['ok']}",
      file=sys.stderr)
sys.exit(0 if s["ok"] else 1)
PY
rc=$?
# The device tool returns at most 8 files from $OUT: keep gpu-check.json (everything parsed) and
# the GPU cases' log beside it, and pack the rest (logs, reports, the contact sheet) in one archive.
(
  cd "$OUT" && rm -f .notes .steps &&
    extra=$(ls -A | grep -vx -e gpu-check.json -e tests.log -e gpu-check-logs.tar.gz) &&
    [ -n "$extra" ] && tar -czf gpu-check-logs.tar.gz $extra && rm -rf $extra
) || true
exit $rc
