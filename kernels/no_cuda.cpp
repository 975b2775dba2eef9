// CPU-only builds: every CUDA entry point exists and throws a clear message (see dispatch.h).
#define GENIE_DEFINE_CUDA_STUBS 1
#include "kernels/collective.h"
#include "kernels/cuda_runtime.h"
#include "kernels/kernels_all.h"

namespace genie::cuda_rt {
bool built() { return false; }
bool available() { return false; }
void* alloc(size_t) { throw_no_cuda("cuda_alloc"); }
void free(void*, size_t) {}
void copy(void*, const void*, size_t, Copy) { throw_no_cuda("cuda_copy"); }
void zero(void*, size_t) { throw_no_cuda("cuda_memset"); }
Stream stream() { throw_no_cuda("cuda_stream"); }
void synchronize() {}
std::string device_string() { return "genie was built without CUDA"; }
CudaMemStats mem_stats() { return {}; }
void reset_peak() {}
void empty_cache() {}
void* pool_begin() { throw_no_cuda("cuda_graph"); }
void pool_end() {}
void pool_release(void*) {}
void capture_begin() { throw_no_cuda("cuda_graph"); }
void* capture_end(void**) { throw_no_cuda("cuda_graph"); }
void capture_abort() noexcept {}
void graph_launch(void*) { throw_no_cuda("cuda_graph"); }
size_t graph_nodes(void*) { return 0; }
void graph_destroy(void*, void*) noexcept {}
void* pinned_alloc(size_t) { throw_no_cuda("cuda_pinned"); }
void pinned_free(void*) noexcept {}
void* event_create() { throw_no_cuda("cuda_event"); }
void event_destroy(void*) noexcept {}
void event_sync(void*) {}
void upload_async(void*, const void*, size_t, void*) { throw_no_cuda("cuda_upload"); }
}  // namespace genie::cuda_rt

// NCCL needs CUDA: nothing to build a communicator on. ordered_sum_host is plain C++ and works.
namespace genie::k {
bool nccl_built() { return false; }
std::vector<uint8_t> nccl_unique_id() { throw_no_cuda("nccl_unique_id"); }
std::string cuda_device_bus_id() { throw_no_cuda("cuda_device_bus_id"); }
NcclComm::NcclComm(const std::vector<uint8_t>&, int, int) { throw_no_cuda("nccl"); }
NcclComm::~NcclComm() = default;
void NcclComm::all_reduce_ordered(const float*, const std::vector<int>&, int64_t, float*) {
  throw_no_cuda("all_reduce_ordered");
}
void NcclComm::broadcast(float*, int64_t, int) { throw_no_cuda("broadcast"); }
}  // namespace genie::k
