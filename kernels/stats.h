// Kernels for the differentiable moment statistics (autograd/ops_stats.cpp). The forward mean/var
// reductions are k::channel_mean_var / k::row_mean_var (kernels/reduce.h); math in
// kernels/stats_functors.h.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// Per-row mean and standard deviation of a (rows, len) array (per-(n,c) over H*W):
// mean[rows], std[rows] = sqrt(var) (unbiased: divide by len-1, else by len).
GENIE_DECLARE_KERNEL(row_mean_std,
                     (const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                      float* std, Stream s),
                     (x, rows, len, unbiased, mean, std, s))

// Backward of per-group moments of x viewed as (N, G, L): group g holds x[n, g, l] for all n, l
// (per-channel statistics: N, G = C, L = HW; per-row statistics: N = 1, G = rows, L = len).
// `second` is the forward var (is_std = false) or std (is_std = true) per group; dmean[G] and
// dsecond[G] are the upstream gradients (either may be null).  dx (+)= MomentsBwdF (see functors).
GENIE_DECLARE_KERNEL(moments_bwd,
                     (const float* x, int64_t N, int64_t G, int64_t L, const float* mean,
                      const float* second, const float* dmean, const float* dsecond, bool is_std,
                      bool unbiased, float* dx, bool accumulate, Stream s),
                     (x, N, G, L, mean, second, dmean, dsecond, is_std, unbiased, dx, accumulate,
                      s))

}  // namespace genie::k
