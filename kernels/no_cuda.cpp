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
}  // namespace genie::cuda_rt
