// Collectives over device buffers between processes, one GPU each, on NCCL (kernels/collective.cu;
// CPU-only builds and CUDA builds without libnccl get throwing stand-ins). The kernels layer knows
// nothing of MPI: the caller makes a unique id on one rank (nccl_unique_id), sends the bytes to the
// others by whatever means it has, and every rank builds an NcclComm from them.
//
// The sum across ranks is all_reduce_ordered, not ncclAllReduce: NCCL's reduction order depends on
// the algorithm, the topology and the rank count, so its result changes with the number of
// processes. all_reduce_ordered adds the shards in one fixed order (ordered_sum_at below, the same
// function on host and device), so N processes give bit for bit what one process summing all
// shards gives.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/common.h"

namespace genie::k {

// out[e] of the fixed-order sum of S rows of `stride` floats: acc = rows[0][e], then
// acc = acc + rows[s][e] for s = 1..S-1. Starting from row 0 rather than 0.f keeps a lone -0.f
// (-0 + +0 would be +0); a plain add has nothing to contract into an FMA, so host and device round
// identically. S >= 1.
GENIE_HD float ordered_sum_at(const float* rows, int64_t S, int64_t stride, int64_t e) {
  float acc = rows[e];
  for (int64_t s = 1; s < S; ++s) acc = acc + rows[s * stride + e];
  return acc;
}

// Host reference of all_reduce_ordered: shards (S, n) row-major -> out (n). S >= 1, n >= 0.
inline void ordered_sum_host(const float* shards, int64_t S, int64_t n, float* out) {
  GENIE_CHECK(S >= 1 && n >= 0,
              "[ordered_sum] expected S >= 1 shards of n >= 0 floats, got S = ", S, ", n = ", n);
  for (int64_t e = 0; e < n; ++e) out[e] = ordered_sum_at(shards, S, n, e);
}

// NCCL available in this build (CUDA on and libnccl found at configure time).
bool nccl_built();
// A fresh ncclUniqueId (ncclGetUniqueId) as its 128 bytes: made on one rank, sent to all others by
// the caller, passed to NcclComm on every rank.
std::vector<uint8_t> nccl_unique_id();
// The PCI bus id of this process's current CUDA device (cudaDeviceGetPCIBusId), e.g.
// "0000:3B:00.0": ranks on one host compare them to find two processes sharing a GPU.
std::string cuda_device_bus_id();

// One NCCL communicator over `size` processes, one GPU each (each process's current device), with
// all work on the engine stream (cuda_stream()). Every rank must make the same calls in the same
// order with the same n, counts and root, as for any NCCL collective; a rank that does not arrive
// leaves the others waiting. Not usable under stream capture (the calls synchronize).
class NcclComm {
 public:
  // ncclCommInitRank; blocks until all `size` ranks have called it. Throws genie::Error with the
  // NCCL message on failure.
  NcclComm(const std::vector<uint8_t>& unique_id, int rank, int size);
  ~NcclComm();  // ncclCommDestroy; never throws
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Fixed-order sum of shard vectors across ranks, on device buffers. counts[r] = how many shards
  // rank r holds (counts.size() == size, entries >= 0, at least one shard in all); shards are
  // numbered rank by rank, so rank r holds global shards counts[0] + … + counts[r-1] onward.
  // `local`: this rank's counts[rank] shards of n floats, row-major (counts[rank], n), device
  // memory (may be null when counts[rank] == 0). On return `out` (device, n floats, overlapping
  // nothing in `local`) holds on every rank exactly ordered_sum_host of all S shards in global
  // order. Synchronous with respect to the host.
  void all_reduce_ordered(const float* local, const std::vector<int>& counts, int64_t n,
                          float* out);
  // data (device, n floats) on every rank := data on rank `root` (ncclBroadcast), synchronous.
  void broadcast(float* data, int64_t n, int root);

 private:
  void* comm_ = nullptr;  // ncclComm_t
  int rank_ = 0, size_ = 1;
  bool broken_ = false;  // a call failed: the destructor aborts rather than waits for peers
};

}  // namespace genie::k
