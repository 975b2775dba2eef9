#!/usr/bin/env bash
# One GPU per MPI rank: runs "$@" with CUDA_VISIBLE_DEVICES set to this rank's GPU on its node —
# the local rank's entry of the node's GPU list (CUDA_VISIBLE_DEVICES as given to mpirun, or
# 0..N-1 from nvidia-smi). The local rank comes from Open MPI (OMPI_COMM_WORLD_LOCAL_RANK), Slurm
# (SLURM_LOCALID) or MPICH/PMI (MPI_LOCALRANKID, PMI_LOCAL_RANK).
#   mpirun -np 8 scripts/mpi-gpu-map.sh build/engine/genie_run quantize --device cuda …
set -euo pipefail
lr=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-${MPI_LOCALRANKID:-${PMI_LOCAL_RANK:-0}}}}
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=, read -r -a gpus <<<"$CUDA_VISIBLE_DEVICES"
elif command -v nvidia-smi >/dev/null; then
  mapfile -t gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader)
else
  gpus=(0)
fi
[ "${#gpus[@]}" -gt 0 ] || { echo "mpi-gpu-map: no GPU listed" >&2; exit 2; }
# More ranks than GPUs on a node: ranks share GPUs round-robin (genie then sums through the host).
export CUDA_VISIBLE_DEVICES=${gpus[$((lr % ${#gpus[@]}))]}
exec "$@"
