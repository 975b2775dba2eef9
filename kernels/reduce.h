// Reductions. Results are written to memory on the same device as the input (no host sync);
// callers copy a scalar to the host when they need it. Mean/variance use a two-pass-stable
// (Welford-combine) formulation defined once in kernels/functors.h.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// out[0] = sum(x)
GENIE_DECLARE_KERNEL(reduce_sum, (const float* x, int64_t n, float* out, Stream s), (x, n, out, s))
// out[0] = min(x), out[1] = max(x)
GENIE_DECLARE_KERNEL(reduce_minmax, (const float* x, int64_t n, float* out, Stream s),
                     (x, n, out, s))
// Per-channel statistics of an (N, C, HW) tensor over N and HW: mean[C], var[C]
// (unbiased: divide by N*HW-1, else by N*HW).
GENIE_DECLARE_KERNEL(channel_mean_var,
                     (const float* x, int64_t N, int64_t C, int64_t HW, bool unbiased, float* mean,
                      float* var, Stream s),
                     (x, N, C, HW, unbiased, mean, var, s))
// Per-row statistics of a (rows, len) array: mean[rows], var[rows] (per-(n,c) over H*W).
GENIE_DECLARE_KERNEL(row_mean_var,
                     (const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                      float* var, Stream s),
                     (x, rows, len, unbiased, mean, var, s))
// out[c] (+)= sum over n, hw of x[n, c, hw]   (bias gradients)
GENIE_DECLARE_KERNEL(channel_sum,
                     (const float* x, int64_t N, int64_t C, int64_t HW, float* out, bool accumulate,
                      Stream s),
                     (x, N, C, HW, out, accumulate, s))

}  // namespace genie::k
