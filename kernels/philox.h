// Philox-4x32-10 counter-based RNG (Salmon et al., SC'11). Element i of a draw uses counter
// (offset + i/4) with key = seed, lane i%4, so CPU and CUDA produce the same numbers for the same
// (seed, offset) regardless of how the work is split. Normal draws use Box-Muller on lane pairs.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// uniform in [0, 1)  (24-bit mantissa: (u >> 8) * 2^-24)
GENIE_DECLARE_KERNEL(philox_uniform,
                     (uint64_t seed, uint64_t offset, float* y, int64_t n, Stream s),
                     (seed, offset, y, n, s))
// standard normal * stddev + mean
GENIE_DECLARE_KERNEL(philox_normal,
                     (uint64_t seed, uint64_t offset, float mean, float stddev, float* y, int64_t n,
                      Stream s),
                     (seed, offset, mean, stddev, y, n, s))
// mask[i] = uniform < p ? 1 : 0; with offset_at (device memory), the offset is *offset_at +
// offset, read when the kernel runs (replayed steps, kernels/graph.h)
GENIE_DECLARE_KERNEL(philox_bernoulli,
                     (uint64_t seed, uint64_t offset, const uint64_t* offset_at, float p,
                      uint8_t* mask, int64_t n, Stream s),
                     (seed, offset, offset_at, p, mask, n, s))

// Counters consumed by a draw of n elements (advance your offset by this).
inline uint64_t philox_counters(int64_t n) { return (uint64_t(n) + 3) / 4; }

}  // namespace genie::k
