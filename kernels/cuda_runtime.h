// Internal: the CUDA half of kernels/device.h, implemented in device.cu (CUDA builds) or
// no_cuda.cpp (CPU-only builds, where available() is false and everything else throws).
#pragma once
#include <string>

#include "kernels/device.h"

namespace genie::cuda_rt {

enum class Copy { H2D, D2H, D2D };
bool built();
bool available();
void* alloc(size_t bytes);
void free(void* p, size_t bytes);
void copy(void* dst, const void* src, size_t bytes, Copy kind);
void zero(void* p, size_t bytes);
Stream stream();
void synchronize();
std::string device_string();
CudaMemStats mem_stats();
void reset_peak();
void empty_cache();

}  // namespace genie::cuda_rt
