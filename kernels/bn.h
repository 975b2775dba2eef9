// Batch normalisation on NCHW (x viewed as (N, C, HW)). gamma/beta may be null (no affine).
// Training mode normalises with batch statistics and the BIASED variance (PyTorch semantics).
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// y = (x - mean) / sqrt(var + eps) * gamma + beta   (running statistics)
GENIE_DECLARE_KERNEL(bn_eval_fwd,
                     (const float* x, int64_t N, int64_t C, int64_t HW, const float* mean,
                      const float* var, const float* gamma, const float* beta, float eps, float* y,
                      Stream s),
                     (x, N, C, HW, mean, var, gamma, beta, eps, y, s))
// dx (+)= dy * gamma / sqrt(var+eps); dgamma (+)= sum dy * xhat; dbeta (+)= sum dy
// (dx, dgamma, dbeta may each be null = not needed)
GENIE_DECLARE_KERNEL(bn_eval_bwd,
                     (const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                      const float* mean, const float* var, const float* gamma, float eps, float* dx,
                      float* dgamma, float* dbeta, bool accumulate, Stream s),
                     (x, dy, N, C, HW, mean, var, gamma, eps, dx, dgamma, dbeta, accumulate, s))
// Batch statistics: saves mean[C] and invstd[C] = 1/sqrt(biased_var + eps) for backward.
GENIE_DECLARE_KERNEL(bn_train_fwd,
                     (const float* x, int64_t N, int64_t C, int64_t HW, const float* gamma,
                      const float* beta, float eps, float* y, float* save_mean, float* save_invstd,
                      Stream s),
                     (x, N, C, HW, gamma, beta, eps, y, save_mean, save_invstd, s))
// Full backward through the batch statistics.
GENIE_DECLARE_KERNEL(bn_train_bwd,
                     (const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                      const float* gamma, const float* save_mean, const float* save_invstd,
                      float* dx, float* dgamma, float* dbeta, bool accumulate, Stream s),
                     (x, dy, N, C, HW, gamma, save_mean, save_invstd, dx, dgamma, dbeta, accumulate,
                      s))

}  // namespace genie::k
