// Shared basics for every layer: the error types (kernels/error.h), shape formatting, the
// host/device qualifier macro.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/error.h"

#if defined(__CUDACC__)
#define GENIE_HD __host__ __device__ __forceinline__
#else
#define GENIE_HD inline
#endif

namespace genie {

std::string shape_str(const std::vector<int64_t>& shape);  // "(2, 3, 4)"

}  // namespace genie
