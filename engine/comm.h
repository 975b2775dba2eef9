// The processes of a run (MPI ranks) and the few collectives genie needs: Genie-D's batches are
// spread over the ranks and their images gathered; Genie-M's steps sum the gradients of
// calibration shards across ranks in a fixed order (GENIE.md §2.5 is unchanged: the same sum, cut
// into shards). Without MPI — a build with -DGENIE_MPI=OFF, or a process not started by an MPI
// launcher — there is one rank and every collective is a local no-op or copy.
//
// The fixed order is what makes results independent of the rank count: a sum over S shards is
// always ((s_0 + s_1) + s_2) + … (kernels/collective.h, ordered_sum_host), whichever rank computed
// which shard. On the host it runs as an all-to-all of chunks (rank j sums chunk j of every shard
// in order) and an all-gather of the chunk sums — per rank about 2·n floats sent when each holds
// one shard, like a ring all-reduce. With one GPU per rank the same exchange runs over NCCL on the
// device buffers (kernels/collective.h); ranks sharing a GPU (or on the CPU) stage through the
// host.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/device.h"

namespace genie::k {
class NcclComm;
}

namespace genie::engine {

class Comm {
 public:
  // genie_run's start: initialises MPI when the process was started by an MPI launcher (mpirun,
  // srun: OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE in the environment) and genie was
  // built with MPI; otherwise nothing. Library users who call MPI_Init themselves need not call it.
  static void init(int* argc, char*** argv);
  // genie_run's end: MPI_Finalize when init() initialised MPI.
  static void finalize();
  // The world: MPI_COMM_WORLD when MPI is initialised (by init() or by the caller), else one rank.
  static Comm& world();
  // One rank, no MPI: what a library caller without a world of its own gets.
  static const Comm& single();
  // Whether this build has MPI (-DGENIE_MPI).
  static bool built();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }

  void barrier() const;
  // Bytes from rank `root` to every rank (`data` holds `bytes` bytes on every rank).
  void broadcast(void* data, size_t bytes, int root = 0) const;
  void broadcast(std::string& s, int root = 0) const;
  // Every rank's string, in rank order, on every rank.
  std::vector<std::string> allgather(const std::string& mine) const;
  // The shards [first, first + count) of `total` that rank `r` holds when `total` shards are
  // spread over the ranks in contiguous blocks (the first total % size ranks hold one more).
  int shard_first(int r, int total) const;
  int shard_count(int r, int total) const;
  // Fixed-order sum of `total` shard vectors of n floats across ranks: `local` holds this rank's
  // shard_count(rank, total) vectors (row-major, on device d); on return out[0..n) (on d) holds on
  // every rank ((s_0 + s_1) + …) + s_{total−1}, the same bits for any number of ranks. CUDA buffers
  // go over NCCL when every rank has a GPU of its own (enable_nccl), else through the host.
  void ordered_sum(const float* local, int total, int64_t n, float* out, Device d) const;
  // Sets up NCCL for ordered_sum on CUDA buffers when every rank has its own GPU (the PCI bus ids
  // of the ranks' current devices differ on each host) and NCCL is built; returns whether it is
  // used. Collective: every rank calls it.
  bool enable_nccl();
  bool nccl() const { return static_cast<bool>(nccl_); }
  // Ends every rank of the world (MPI_Abort) after this rank's error was printed.
  [[noreturn]] void abort(int code) const;

  ~Comm();

 private:
  Comm() = default;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<k::NcclComm> nccl_;
};

// "[rank r] " when the world has several ranks, else "": a prefix for messages that any rank
// prints.
std::string rank_prefix();

}  // namespace genie::engine
