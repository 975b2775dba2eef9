// MPI ranks and genie's collectives (engine/comm.h). MPI is only touched under GENIE_MPI; the
// device exchange is kernels/collective.h's NCCL communicator.
#include "engine/comm.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>

#include "kernels/collective.h"
#include "kernels/error.h"

#ifdef GENIE_MPI
// The C API only: no MPI C++ bindings (deprecated, and a library of their own to link).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace genie::engine {

namespace {

bool g_we_initialised = false;

#ifdef GENIE_MPI
bool mpi_live() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(str("[mpi] ", call, " failed: ", std::string(msg, size_t(len))));
}

int as_count(int64_t n, const char* what) {
  GENIE_CHECK(n >= 0 && n <= INT_MAX, "[mpi] ", what, " of ", n,
              " elements is beyond one MPI message (2^31 - 1)");
  return int(n);
}
#endif

[[maybe_unused]] bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

bool Comm::built() {
#ifdef GENIE_MPI
  return true;
#else
  return false;
#endif
}

void Comm::init(int* argc, char*** argv) {
#ifdef GENIE_MPI
  if (!launched_by_mpi() || mpi_live()) return;
  int provided = 0;
  // Only the main thread calls MPI (OpenMP threads never do).
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_we_initialised = true;
#else
  (void)argc;
  (void)argv;
#endif
}

void Comm::finalize() {
  if (!g_we_initialised) return;
  world().nccl_.reset();
#ifdef GENIE_MPI
  if (mpi_live()) MPI_Finalize();
#endif
  g_we_initialised = false;
}

Comm& Comm::world() {
  static Comm w;
  static const bool ranked = [] {
#ifdef GENIE_MPI
    if (mpi_live()) {
      MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
      MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
    }
#endif
    return true;
  }();
  (void)ranked;
  return w;
}

const Comm& Comm::single() {
  static const Comm one;
  return one;
}

Comm::~Comm() = default;

void Comm::barrier() const {
#ifdef GENIE_MPI
  if (size_ > 1) mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void Comm::broadcast(void* data, size_t bytes, int root) const {
#ifdef GENIE_MPI
  if (size_ <= 1) return;
  // In pieces of at most 1 GiB: MPI counts are int.
  auto* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += size_t(1) << 30) {
    const int n = int(std::min(bytes - off, size_t(1) << 30));
    mpi_check(MPI_Bcast(p + off, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
#else
  (void)data;
  (void)bytes;
  (void)root;
#endif
}

void Comm::broadcast(std::string& s, int root) const {
  if (size_ <= 1) return;
  uint64_t n = s.size();
  broadcast(&n, sizeof n, root);
  s.resize(size_t(n));
  broadcast(s.data(), s.size(), root);
}

std::vector<std::string> Comm::allgather(const std::string& mine) const {
  if (size_ <= 1) return {mine};
  std::vector<std::string> all(static_cast<size_t>(size_));
#ifdef GENIE_MPI
  const int len = as_count(int64_t(mine.size()), "an all-gather");
  std::vector<int> lens(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
  mpi_check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD),
            "MPI_Allgather");
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[size_t(r)] = as_count(total, "an all-gather");
    total += lens[size_t(r)];
  }
  as_count(total, "an all-gather");
  std::string buf(size_t(total), '\0');
  mpi_check(MPI_Allgatherv(mine.data(), len, MPI_BYTE, buf.data(), lens.data(), displs.data(),
                           MPI_BYTE, MPI_COMM_WORLD),
            "MPI_Allgatherv");
  for (int r = 0; r < size_; ++r)
    all[size_t(r)] = buf.substr(size_t(displs[size_t(r)]), size_t(lens[size_t(r)]));
#endif
  return all;
}

int Comm::shard_first(int r, int total) const {
  const int base = total / size_, extra = total % size_;
  return r * base + std::min(r, extra);
}

int Comm::shard_count(int r, int total) const {
  return total / size_ + (r < total % size_ ? 1 : 0);
}

void Comm::ordered_sum(const float* local, int total, int64_t n, float* out, Device d) const {
  GENIE_CHECK(total >= 1 && n >= 0, "[comm] expected at least one shard and n >= 0, got ", total,
              " shards of ", n);
  const int mine = shard_count(rank_, total);
  if (d == Device::CUDA && nccl_) {
    std::vector<int> counts(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) counts[size_t(r)] = shard_count(r, total);
    nccl_->all_reduce_ordered(local, counts, n, out);
    return;
  }
  // Host staging (CPU buffers, or ranks sharing a GPU).
  std::vector<float> staged_in, staged_out;
  const float* in = local;
  float* res = out;
  if (d != Device::CPU) {
    staged_in.resize(size_t(mine * n));
    copy_bytes(staged_in.data(), Device::CPU, local, d, staged_in.size() * sizeof(float));
    staged_out.resize(size_t(n));
    in = staged_in.data();
    res = staged_out.data();
  }
  if (size_ == 1) {
    k::ordered_sum_host(in, total, n, res);
  } else {
#ifdef GENIE_MPI
    // Chunk j of every shard goes to rank j, which sums the `total` rows in shard order (rank
    // order is shard order); then every rank gathers the chunk sums.
    const int64_t c = (n + size_ - 1) / size_;
    auto len = [&](int j) { return std::clamp<int64_t>(n - int64_t(j) * c, 0, c); };
    as_count(int64_t(total) * c, "a Genie-M gradient exchange");
    std::vector<float> send(size_t(int64_t(mine) * n)), recv(size_t(int64_t(total) * len(rank_)));
    std::vector<int> scount(static_cast<size_t>(size_)), sdisp(static_cast<size_t>(size_)),
        rcount(static_cast<size_t>(size_)), rdisp(static_cast<size_t>(size_));
    int64_t so = 0, ro = 0;
    for (int j = 0; j < size_; ++j) {
      scount[size_t(j)] = int(mine * len(j));
      sdisp[size_t(j)] = int(so);
      for (int s = 0; s < mine; ++s)
        std::memcpy(send.data() + so + s * len(j), in + s * n + j * c,
                    size_t(len(j)) * sizeof(float));
      so += mine * len(j);
      rcount[size_t(j)] = int(shard_count(j, total) * len(rank_));
      rdisp[size_t(j)] = int(ro);
      ro += rcount[size_t(j)];
    }
    mpi_check(MPI_Alltoallv(send.data(), scount.data(), sdisp.data(), MPI_FLOAT, recv.data(),
                            rcount.data(), rdisp.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "MPI_Alltoallv");
    std::vector<float> chunk(size_t(len(rank_)));
    k::ordered_sum_host(recv.data(), total, len(rank_), chunk.data());
    for (int j = 0; j < size_; ++j) {
      rcount[size_t(j)] = int(len(j));
      rdisp[size_t(j)] = int(int64_t(j) * c);
    }
    mpi_check(MPI_Allgatherv(chunk.data(), int(len(rank_)), MPI_FLOAT, res, rcount.data(),
                             rdisp.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "MPI_Allgatherv");
#endif
  }
  if (d != Device::CPU) copy_bytes(out, d, res, Device::CPU, size_t(n) * sizeof(float));
}

bool Comm::enable_nccl() {
  if (nccl_) return true;
  if (size_ <= 1 || !k::nccl_built() || !cuda_available()) return false;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const auto ids = allgather(std::string(host) + "|" + k::cuda_device_bus_id());
  if (std::set<std::string>(ids.begin(), ids.end()).size() != ids.size()) return false;
  std::vector<uint8_t> id;
  if (root()) id = k::nccl_unique_id();
  uint64_t n = id.size();
  broadcast(&n, sizeof n);
  id.resize(size_t(n));
  broadcast(id.data(), id.size());
  nccl_ = std::make_unique<k::NcclComm>(id, rank_, size_);
  return true;
}

void Comm::abort(int code) const {
#ifdef GENIE_MPI
  if (size_ > 1 && mpi_live()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

std::string rank_prefix() {
  const Comm& w = Comm::world();
  return w.size() > 1 ? str("[rank ", w.rank(), "] ") : std::string();
}

}  // namespace genie::engine
