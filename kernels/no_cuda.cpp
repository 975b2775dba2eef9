// CPU-only builds: every CUDA entry point exists and throws a clear message (see dispatch.h).
#define GENIE_DEFINE_CUDA_STUBS 1
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
