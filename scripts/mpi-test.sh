#!/usr/bin/env bash
# The multi-process checks of issue 19, on the CPU (run by scripts/test.sh when genie was built
# with MPI and mpirun exists): `mpirun -np N genie_run …` gives the same bytes as one process.
#   1. distill on 2 and 3 ranks == distill in one process (images.h5, byte for byte);
#   2. a short quantize on 2 ranks (--recon-shards defaults to 2) == one process with
#      --recon-shards 2 (quantized.h5 and images.h5); on 2 ranks with --recon-shards 1 == the plain
#      one-process run;
#   3. that quantize on 2 ranks with rank 1 killed (SIGKILL) during Genie-D, resumed on 3 ranks,
#      rank 2 killed during Genie-M, resumed in one process: the same quantized.h5 again;
#   4. a bad flag under mpirun: every rank stops, exit code 2, the message printed.
# Usage: scripts/mpi-test.sh [BUILD_DIR]   (default build; GENIE_MPI_TEST_DIR: scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
GENIE=$BUILD/engine/genie_run
MODEL=models/data/resnet20_fmnist.h5
T=${GENIE_MPI_TEST_DIR:-$(mktemp -d)}
mkdir -p "$T"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
MPIRUN=(mpirun --oversubscribe)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi
# One process per rank on this machine; OpenMPI's own chatter about slots stays quiet.
MPIRUN+=(--bind-to none --mca btl ^openib)

fail() { echo "[mpi-test] FAIL: $*" >&2; exit 1; }
same() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; echo "[mpi-test] identical: $1 == $2"; }

# Waits until state.json's "$2" reaches $3, then kills the rank $4 process of the mpirun with
# pid $1 (found by its OMPI_COMM_WORLD_RANK). Fails when the run ends first.
kill_rank_when() {
  local mpid=$1 key=$2 value=$3 rank=$4 state=$5/checkpoint/state.json
  for _ in $(seq 1 6000); do
    kill -0 "$mpid" 2>/dev/null || fail "the run ended before rank $rank could be killed"
    if [ -f "$state" ]; then
      local n
      n=$(sed -n "s/.*\"$key\": \([0-9]*\).*/\1/p" "$state" | head -1)
      if [ -n "$n" ] && [ "$n" -ge "$value" ]; then
        for p in $(pgrep -f "$GENIE" || true); do
          if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
            kill -9 "$p"
            echo "[mpi-test] killed rank $rank (pid $p) at $key = $n"
            return 0
          fi
        done
      fi
    fi
    sleep 0.02
  done
  fail "timed out waiting for $key >= $value"
}

D=(--model "$MODEL" --samples 8 --batch 2 --distill-iters 6 --seed 5 --threads 1 --quiet)
"$GENIE" distill "${D[@]}" --out "$T/d1"
"${MPIRUN[@]}" -np 2 "$GENIE" distill "${D[@]}" --out "$T/d2"
"${MPIRUN[@]}" -np 3 "$GENIE" distill "${D[@]}" --out "$T/d3"
same "$T/d1/images.h5" "$T/d2/images.h5"
same "$T/d1/images.h5" "$T/d3/images.h5"

Q=(--model "$MODEL" --samples 16 --batch 2 --distill-iters 40 --recon-iters 40 --recon-batch 8
  --wbits 4 --abits 4 --seed 5 --threads 1 --quiet)
"$GENIE" quantize "${Q[@]}" --recon-shards 2 --out "$T/q1"
"${MPIRUN[@]}" -np 2 "$GENIE" quantize "${Q[@]}" --out "$T/q2"
same "$T/q1/images.h5" "$T/q2/images.h5"
same "$T/q1/quantized.h5" "$T/q2/quantized.h5"

# One shard on 2 ranks (rank 1 idle in Genie-M) is the plain one-process run, byte for byte.
"$GENIE" quantize "${Q[@]}" --out "$T/q0"
"${MPIRUN[@]}" -np 2 "$GENIE" quantize "${Q[@]}" --recon-shards 1 --out "$T/q0m"
same "$T/q0/quantized.h5" "$T/q0m/quantized.h5"

# Killed and resumed with other rank counts.
"${MPIRUN[@]}" -np 2 "$GENIE" quantize "${Q[@]}" --out "$T/qk" >"$T/qk.log" 2>&1 &
mpid=$!
kill_rank_when "$mpid" batches_done 2 1 "$T/qk"
wait "$mpid" && fail "mpirun exited 0 after a rank was killed"
[ ! -f "$T/qk/quantized.h5" ] || fail "a killed run left quantized.h5"
"${MPIRUN[@]}" -np 3 "$GENIE" quantize --resume "$T/qk" --threads 1 --quiet >"$T/qk2.log" 2>&1 &
mpid=$!
kill_rank_when "$mpid" units_done 2 2 "$T/qk"
wait "$mpid" && fail "mpirun exited 0 after a rank was killed"
"$GENIE" quantize --resume "$T/qk" --threads 1 --quiet
same "$T/q1/quantized.h5" "$T/qk/quantized.h5"

# Bad input: all ranks stop with exit code 2 and the message.
set +e
"${MPIRUN[@]}" -np 2 "$GENIE" quantize "${Q[@]}" --recon-shards 99 --out "$T/bad" >"$T/bad.log" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || { cat "$T/bad.log"; fail "bad flag under mpirun: exit $rc, expected 2"; }
grep -q "recon-shards 99: expected at most 8 shards" "$T/bad.log" || fail "no message in $T/bad.log"
[ ! -e "$T/bad" ] || fail "a refused run created its output folder"
# An error on one rank only (rank 1 is given a model file that does not exist): all stop, exit 2,
# and rank 0 has written nothing.
set +e
"${MPIRUN[@]}" -np 2 bash -c 'm=$1; shift; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && m=/nonexistent.h5
  exec "$@" --model "$m"' _ "$MODEL" "$GENIE" quantize "${Q[@]:2}" --out "$T/bad1" >"$T/bad1.log" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || { cat "$T/bad1.log"; fail "an error on rank 1: exit $rc, expected 2"; }
grep -q "\[rank 1\] --model /nonexistent.h5" "$T/bad1.log" || fail "no message in $T/bad1.log"
[ ! -e "$T/bad1" ] || fail "rank 0 wrote $T/bad1 although rank 1 refused its input"
echo "[mpi-test] all passed ($T)"
[ -n "${GENIE_MPI_TEST_DIR:-}" ] || rm -rf "$T"
