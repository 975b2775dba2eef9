#!/usr/bin/env bash
# Scaling of genie over MPI ranks (issue 19): the same work on 1 and 2 ranks (× 1 thread each),
# side by side in one run, for Genie-D (whole batches per rank) and Genie-M (each step's batch in
# shards, gradients summed in order). Every pair is also checked byte for byte (the files must be
# identical). Writes bench/results/mpi/scaling-<machine>.{json,md} (MACHINE, default cpu-2core).
#
# Usage: bench/mpi_scaling.sh [BUILD_DIR] [--device cpu|cuda] [--reps N]
#   Genie-D: ResNet-20 (bundled), 4 batches of 32 images × DITERS iterations (default 60).
#   Genie-M: the same teacher, W4A4, 128 calibration images, --recon-batch 32, --recon-shards 2,
#            RITERS iterations per unit (default 100), calibration from the Genie-D output file.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
DEVICE=cpu
REPS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    *) BUILD=$1; shift ;;
  esac
done
GENIE=$BUILD/engine/genie_run
MODEL=models/data/resnet20_fmnist.h5
MACHINE=${MACHINE:-cpu-2core}
DITERS=${DITERS:-60}
RITERS=${RITERS:-100}
OUTDIR=bench/results/mpi
CORES=$(nproc --all)  # (nproc alone follows OMP_NUM_THREADS)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$OUTDIR"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi

# run NAME RANKS ARGS… : wall seconds of one genie_run (1 rank: no mpirun).
run() {
  local name=$1 ranks=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  if [ "$ranks" = 1 ]; then "$GENIE" "$@" --out "$T/$name"; else "${MPIRUN[@]}" -np "$ranks" "$GENIE" "$@" --out "$T/$name"; fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

D=(distill --model "$MODEL" --samples 128 --batch 32 --distill-iters "$DITERS" --seed 1
  --threads 1 --device "$DEVICE" --quiet)
M=(quantize --model "$MODEL" --samples 128 --recon-batch 32 --recon-shards 2 --recon-iters "$RITERS"
  --wbits 4 --abits 4 --seed 1 --threads 1 --device "$DEVICE" --quiet)
rows=()
for rep in $(seq 1 "$REPS"); do
  for ranks in 1 2; do
    td=$(run "d${ranks}_$rep" "$ranks" "${D[@]}")
    tm=$(run "m${ranks}_$rep" "$ranks" "${M[@]}" --calib "$T/d1_1/images.h5")
    rec=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))
print(r['timings_s']['reconstruct'], sum(u['optimize_s'] for u in r['units']))" "$T/m${ranks}_$rep/report.json")
    read -r rs os <<<"$rec"
    rows+=("{\"rep\": $rep, \"ranks\": $ranks, \"distill_wall_s\": $td, \"quantize_wall_s\": $tm, \"reconstruct_s\": $rs, \"optimize_s\": $os}")
  done
  cmp "$T/d1_$rep/images.h5" "$T/d2_$rep/images.h5"
  cmp "$T/m1_$rep/quantized.h5" "$T/m2_$rep/quantized.h5"
done
python3 - "$OUTDIR" "$DEVICE" "$DITERS" "$RITERS" "$CORES" "$MACHINE" "${rows[@]}" <<'EOF'
import json, sys, statistics, datetime
out, device, diters, riters, cores, machine = sys.argv[1:7]
rows = [json.loads(r) for r in sys.argv[7:]]
def med(ranks, key):
    return statistics.median(r[key] for r in rows if r["ranks"] == ranks)
res = {
    "date": datetime.date.today().isoformat(), "device": device, "cores": int(cores),
    "threads_per_rank": 1, "identical_files": True,
    "genie_d": {"work": f"ResNet-20 (28x28), 4 batches x 32 images x {diters} iterations"},
    "genie_m": {"work": f"ResNet-20 W4A4, 11 units x {riters} steps, batch 32 in 2 shards"},
    "runs": rows,
}
res["genie_m_steps"] = {"work": res["genie_m"]["work"] + " (the optimization steps only)"}
for ph, key in (("genie_d", "distill_wall_s"), ("genie_m", "reconstruct_s"),
                ("genie_m_steps", "optimize_s")):
    t1, t2 = med(1, key), med(2, key)
    res[ph].update({"seconds_1_rank": round(t1, 2), "seconds_2_ranks": round(t2, 2),
                    "speedup": round(t1 / t2, 2), "efficiency": round(t1 / t2 / 2, 2)})
json.dump(res, open(f"{out}/scaling-{machine}.json", "w"), indent=1)
md = [f"# genie over MPI ranks ({device}, {cores} cores, 1 thread per rank, {res['date']})", "",
      "| phase | work | 1 rank (s) | 2 ranks (s) | speedup | efficiency |", "|---|---|---|---|---|---|"]
for ph in ("genie_d", "genie_m", "genie_m_steps"):
    r = res[ph]
    md.append(f"| {ph} | {r['work']} | {r['seconds_1_rank']} | {r['seconds_2_ranks']} | "
              f"{r['speedup']} | {r['efficiency']} |")
md += ["", "Files identical between 1 and 2 ranks (cmp): images.h5 and quantized.h5.",
       "Genie-D: wall time of `genie_run distill`; Genie-M: report.json's reconstruct time (each",
       "unit's collection of X, X_q, Y over the calibration set runs on every rank, not split) and",
       "the sum of its units' optimize_s (the sharded steps with their gradient exchange)."]
open(f"{out}/scaling-{machine}.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
