// The CUDA driver's loop, the counterpart of kernels/cpu_loop.h: cuda_for(n, stream, body) runs
// body(i) for i in [0, n) with a grid-stride kernel. `body` is a small struct with a __device__
// operator()(int64_t) that applies a functor from functors.h — plain structs rather than
// extended __device__ lambdas, so no extra nvcc flags and no limits on where they are defined.
// Only included by .cu files.
#pragma once
#include <cstdint>

#include "kernels/cuda_check.h"

namespace genie::cuda {

constexpr int kThreads = 256;
// Grid-stride loops cap the grid: 4096 blocks of 256 threads is several waves on any current
// GPU (an H100 holds ~1000 such blocks at once), enough to hide latency on a memory-bound loop.
constexpr int64_t kMaxBlocks = 4096;

// i / d and i % d by 32-bit division when both fit: a 64-bit division is a long software sequence
// on the GPU, enough to make a memory-bound elementwise body compute-bound. Only in .cu files.
__device__ __forceinline__ int64_t div_fast(int64_t i, int64_t d) {
  return (i | d) < (int64_t(1) << 31) ? int64_t(uint32_t(i) / uint32_t(d)) : i / d;
}
__device__ __forceinline__ int64_t mod_fast(int64_t i, int64_t d) { return i - div_fast(i, d) * d; }

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < kMaxBlocks ? b : kMaxBlocks);
}

// 32-bit indices when they fit (cheaper address arithmetic); the unsigned stride cannot wrap
// because n < 2^31 and stride < 2^31.
template <class Body>
__global__ void for_each_kernel_u32(uint32_t n, Body body) {
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) body(int64_t(i));
}
template <class Body>
__global__ void for_each_kernel_i64(int64_t n, Body body) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) body(i);
}

// Never launches an empty grid (n <= 0 returns at once).
template <class Body>
void cuda_for(int64_t n, cudaStream_t s, const Body& body) {
  if (n <= 0) return;
  const unsigned blocks = blocks_for(n);
  if (n < (int64_t(1) << 31))
    for_each_kernel_u32<<<blocks, kThreads, 0, s>>>(uint32_t(n), body);
  else
    for_each_kernel_i64<<<blocks, kThreads, 0, s>>>(n, body);
  GENIE_LAUNCH_CHECK();
}

// Four elements per thread with 16-byte loads and stores: body.quad(q) handles elements 4q..4q+3,
// body(i) the n % 4 tail. For memory-bound bodies that read or write several arrays (the fused
// quantizers): a quarter of the load/store instructions and index arithmetic of cuda_for, and the
// same per-element math, so the results are identical. The caller says whether the quad path is
// valid (pointers 16-byte aligned, a per-row constant shared by the 4 elements, ...); otherwise,
// or for n >= 2^31, this is cuda_for.
template <class Body>
__global__ void for_each_quad_kernel(uint32_t nq, uint32_t tail, Body body) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
  for (uint32_t q = t; q < nq; q += stride) body.quad(q);
  if (t < tail) body(int64_t(nq) * 4 + t);
}
template <class Body>
void cuda_for_quads(int64_t n, cudaStream_t s, const Body& body, bool quads_ok) {
  if (n <= 0) return;
  if (!quads_ok || n >= (int64_t(1) << 31)) return cuda_for(n, s, body);
  const int64_t nq = n / 4;
  for_each_quad_kernel<<<blocks_for(nq > 0 ? nq : 1), kThreads, 0, s>>>(uint32_t(nq),
                                                                        uint32_t(n - 4 * nq), body);
  GENIE_LAUNCH_CHECK();
}
inline bool aligned_to(const void* p, uintptr_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

}  // namespace genie::cuda
