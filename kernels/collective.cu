// NCCL collectives of kernels/collective.h. Built into every CUDA build; the NCCL half only when
// CMake found libnccl (GENIE_WITH_NCCL), otherwise its entry points throw a clear error.
#include <algorithm>
#include <climits>
#include <cstring>

#include "kernels/collective.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"

#if defined(GENIE_WITH_NCCL) && GENIE_WITH_NCCL
#include <nccl.h>
#define GENIE_HAS_NCCL_ 1
#else
#define GENIE_HAS_NCCL_ 0
#endif

namespace genie::k {

std::string cuda_device_bus_id() {
  GENIE_CHECK(cuda_available(), "[cuda_device_bus_id] ", cuda_device_string());
  int dev = 0;
  GENIE_CUDA_CHECK(cudaGetDevice(&dev));
  // "dddd:bb:dd.f" is 12 characters plus the terminator; the runtime truncates to the buffer.
  char id[64] = {};
  GENIE_CUDA_CHECK(cudaDeviceGetPCIBusId(id, int(sizeof(id)), dev));
  return id;
}

#if GENIE_HAS_NCCL_

namespace {

// "unhandled system error (ncclResult 2): <NCCL's last message>": the code names the class of
// failure, the last-error text says what failed (a socket, a duplicate GPU, ...).
std::string nccl_status(ncclResult_t r, ncclComm_t comm) {
  std::string s = str(ncclGetErrorString(r), " (ncclResult ", int(r), ")");
  const char* last = ncclGetLastError(comm);
  if (last && *last) s += str(": ", last);
  return s;
}

}  // namespace

#define GENIE_NCCL_CHECK(comm, call)                                                        \
  do {                                                                                      \
    const ncclResult_t genie_r_ = (call);                                                   \
    if (genie_r_ != ncclSuccess)                                                            \
      ::genie::cuda::throw_call_error("nccl", #call, nccl_status(genie_r_, comm), __FILE__, \
                                      __LINE__);                                            \
  } while (0)

namespace {

// An open ncclGroupStart that is closed on every path: an exception between start and end must
// not leave this thread inside a group (every later NCCL call would be deferred). NCCL discards a
// group in which a call failed, so closing it on the error path launches nothing.
class NcclGroup {
 public:
  explicit NcclGroup(ncclComm_t comm) : comm_(comm) { GENIE_NCCL_CHECK(comm_, ncclGroupStart()); }
  ~NcclGroup() {
    if (open_) (void)ncclGroupEnd();
  }
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  void end() {
    open_ = false;
    GENIE_NCCL_CHECK(comm_, ncclGroupEnd());
  }

 private:
  ncclComm_t comm_;
  bool open_ = true;
};

// out[e] = ordered_sum_at(rows, S, stride, e): the one definition the host reference uses too.
struct OrderedSumBody {
  const float* rows;
  int64_t S, stride;
  float* out;
  __device__ void operator()(int64_t e) const { out[e] = ordered_sum_at(rows, S, stride, e); }
};

// `height` rows of `width` floats from src (row pitch spitch floats) to dst (pitch dpitch), on
// st. One 2D copy when the pitches fit the runtime's limit (cudaDevAttrMaxPitch, 2^31 - 1 bytes
// on current GPUs), else row by row.
void copy_rows(float* dst, int64_t dpitch, const float* src, int64_t spitch, int64_t width,
               int64_t height, cudaStream_t st) {
  if (width <= 0 || height <= 0) return;
  constexpr size_t F = sizeof(float);
  if (size_t(std::max(dpitch, spitch)) * F <= size_t(INT_MAX)) {
    GENIE_CUDA_CHECK(cudaMemcpy2DAsync(dst, size_t(dpitch) * F, src, size_t(spitch) * F,
                                       size_t(width) * F, size_t(height), cudaMemcpyDeviceToDevice,
                                       st));
    return;
  }
  for (int64_t r = 0; r < height; ++r)
    GENIE_CUDA_CHECK(cudaMemcpyAsync(dst + r * dpitch, src + r * spitch, size_t(width) * F,
                                     cudaMemcpyDeviceToDevice, st));
}

}  // namespace

bool nccl_built() { return true; }

std::vector<uint8_t> nccl_unique_id() {
  ncclUniqueId id;
  GENIE_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
  std::vector<uint8_t> bytes(sizeof(id.internal));
  std::memcpy(bytes.data(), id.internal, bytes.size());
  return bytes;
}

NcclComm::NcclComm(const std::vector<uint8_t>& unique_id, int rank, int size)
    : rank_(rank), size_(size) {
  GENIE_CHECK(size >= 1 && rank >= 0 && rank < size,
              "[nccl] expected 0 <= rank < size, got rank = ", rank, ", size = ", size);
  GENIE_CHECK(unique_id.size() == size_t(NCCL_UNIQUE_ID_BYTES), "[nccl] expected a unique id of ",
              NCCL_UNIQUE_ID_BYTES, " bytes, got ", unique_id.size());
  // NCCL binds the communicator to the current device: probe and select it (and create the engine
  // stream) first, so the communicator and the engine's work are on the same GPU.
  (void)cuda::resolve(nullptr);
  ncclUniqueId id;
  std::memcpy(id.internal, unique_id.data(), sizeof(id.internal));
  ncclComm_t comm = nullptr;
  GENIE_NCCL_CHECK(nullptr, ncclCommInitRank(&comm, size, id, rank));
  comm_ = comm;
}

NcclComm::~NcclComm() {
  if (!comm_) return;
  // After a failed call, peers may never complete the operation it was part of, and
  // ncclCommDestroy would wait for it; abort instead.
  auto comm = static_cast<ncclComm_t>(comm_);
  (void)(broken_ ? ncclCommAbort(comm) : ncclCommDestroy(comm));
}

void NcclComm::all_reduce_ordered(const float* local, const std::vector<int>& counts, int64_t n,
                                  float* out) {
  GENIE_CHECK(n >= 0, "[all_reduce_ordered] expected n >= 0, got ", n);
  GENIE_CHECK(counts.size() == size_t(size_), "[all_reduce_ordered] expected counts for ", size_,
              " ranks, got ", counts.size());
  std::vector<int64_t> first(size_ + 1, 0);  // first[r] = global index of rank r's first shard
  for (int r = 0; r < size_; ++r) {
    GENIE_CHECK(counts[r] >= 0, "[all_reduce_ordered] expected shard counts >= 0, got counts[", r,
                "] = ", counts[r]);
    first[r + 1] = first[r] + counts[r];
  }
  const int64_t S = first[size_], mine = counts[rank_];
  GENIE_CHECK(S >= 1, "[all_reduce_ordered] expected at least one shard across ranks, got none");
  if (n == 0) return;  // the same on every rank (same n everywhere), so no rank waits
  GENIE_CHECK(local || mine == 0, "[all_reduce_ordered] expected local shards, got null");
  GENIE_CHECK(out, "[all_reduce_ordered] expected an output buffer, got null");
  const auto comm = static_cast<ncclComm_t>(comm_);
  const cudaStream_t st = cuda::resolve(nullptr);
  constexpr size_t F = sizeof(float);

  // Chunk j = elements [begin(j), begin(j + 1)) is summed by rank j: c = ceil(n / size) elements,
  // the last chunks shorter or empty. With one shard per rank, each rank sends and receives about
  // (size-1)/size·n floats in step 1 and again in step 3: what a ring all-reduce moves.
  const int64_t c = (n + size_ - 1) / size_;
  auto begin = [&](int64_t j) { return std::min(j * c, n); };
  auto len = [&](int64_t j) { return begin(j + 1) - begin(j); };
  const int64_t my_len = len(rank_);

  try {
    // Step 1 (all-to-all): rows (S, my_len), row g = the chunk-rank_ slice of global shard g. Rank
    // r's rows arrive as one contiguous block of counts[r]·my_len floats; each rank sends peer j
    // its shards' chunk-j slices packed the same way (straight from `local` when it holds one
    // shard: the slice is contiguous then).
    cuda::Scratch rows(size_t(S * my_len) * F);
    float* rows_f = rows.as<float>();
    if (mine > 0)
      copy_rows(rows_f + first[rank_] * my_len, my_len, local + begin(rank_), n, my_len, mine, st);
    const bool pack = mine > 1 && size_ > 1;
    cuda::Scratch packed(pack ? size_t(mine * n) * F : 0);  // block j at mine·begin(j)
    float* packed_f = packed.as<float>();
    if (pack)
      for (int j = 0; j < size_; ++j)
        if (j != rank_)
          copy_rows(packed_f + mine * begin(j), len(j), local + begin(j), n, len(j), mine, st);
    if (size_ > 1) {
      // Sender and receiver compute each pair's count from the same counts and n, so both skip
      // an empty transfer (or neither does).
      NcclGroup group(comm);
      for (int j = 0; j < size_; ++j) {
        if (j == rank_) continue;
        const int64_t send = mine * len(j), recv = int64_t(counts[j]) * my_len;
        if (send > 0) {
          const float* src = pack ? packed_f + mine * begin(j) : local + begin(j);
          GENIE_NCCL_CHECK(comm, ncclSend(src, size_t(send), ncclFloat, j, comm, st));
        }
        if (recv > 0)
          GENIE_NCCL_CHECK(
              comm, ncclRecv(rows_f + first[j] * my_len, size_t(recv), ncclFloat, j, comm, st));
      }
      group.end();
    }

    // Step 2: this rank's chunk, summed in global shard order, straight into its slot of the
    // gather buffer (the output itself when the chunks tile it exactly). The padding of a short
    // chunk is zeroed so that the gather moves defined bytes.
    const bool direct = c * size_ == n;
    cuda::Scratch gathered(direct ? 0 : size_t(c * size_) * F);
    float* gather_f = direct ? out : gathered.as<float>();
    float* chunk = gather_f + rank_ * c;
    cuda::cuda_for(my_len, st, OrderedSumBody{rows_f, S, my_len, chunk});
    if (my_len < c)
      GENIE_CUDA_CHECK(cudaMemsetAsync(chunk + my_len, 0, size_t(c - my_len) * F, st));

    // Step 3: in-place all-gather (send buffer = own slot of the receive buffer); the first n
    // floats of the (size, c) result are the n sums in element order.
    GENIE_NCCL_CHECK(comm, ncclAllGather(chunk, gather_f, size_t(c), ncclFloat, comm, st));
    if (!direct)
      GENIE_CUDA_CHECK(cudaMemcpyAsync(out, gather_f, size_t(n) * F, cudaMemcpyDeviceToDevice, st));
    GENIE_CUDA_CHECK(cudaStreamSynchronize(st));
  } catch (...) {
    broken_ = true;
    throw;
  }
}

void NcclComm::broadcast(float* data, int64_t n, int root) {
  GENIE_CHECK(n >= 0, "[broadcast] expected n >= 0, got ", n);
  GENIE_CHECK(root >= 0 && root < size_, "[broadcast] expected 0 <= root < ", size_, ", got ",
              root);
  if (n == 0) return;
  GENIE_CHECK(data, "[broadcast] expected a buffer, got null");
  const auto comm = static_cast<ncclComm_t>(comm_);
  const cudaStream_t st = cuda::resolve(nullptr);
  try {
    GENIE_NCCL_CHECK(comm, ncclBroadcast(data, data, size_t(n), ncclFloat, root, comm, st));
    GENIE_CUDA_CHECK(cudaStreamSynchronize(st));
  } catch (...) {
    broken_ = true;
    throw;
  }
}

#else  // !GENIE_HAS_NCCL_

namespace {
[[noreturn]] void throw_no_nccl(const char* what) {
  throw Error(str("[", what,
                  "] genie was built without NCCL (libnccl was not found next to the CUDA "
                  "toolkit when configuring)"));
}
}  // namespace

bool nccl_built() { return false; }
std::vector<uint8_t> nccl_unique_id() { throw_no_nccl("nccl_unique_id"); }
NcclComm::NcclComm(const std::vector<uint8_t>&, int, int) { throw_no_nccl("nccl"); }
NcclComm::~NcclComm() = default;
void NcclComm::all_reduce_ordered(const float*, const std::vector<int>&, int64_t, float*) {
  throw_no_nccl("all_reduce_ordered");
}
void NcclComm::broadcast(float*, int64_t, int) { throw_no_nccl("broadcast"); }

#endif  // GENIE_HAS_NCCL_

}  // namespace genie::k
