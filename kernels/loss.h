// Loss kernels. Scalar results are written to device memory (out[0]).
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// out[0] = mean((a - b)^2)
GENIE_DECLARE_KERNEL(mse_fwd, (const float* a, const float* b, int64_t n, float* out, Stream s),
                     (a, b, n, out, s))
// da (+)= dout[0] * 2 (a - b) / n   (dout is a device scalar)
GENIE_DECLARE_KERNEL(mse_bwd,
                     (const float* a, const float* b, int64_t n, const float* dout, float* da,
                      bool accumulate, Stream s),
                     (a, b, n, dout, da, accumulate, s))
// Mean cross-entropy over N rows of K logits with int32 labels; prob (N, K) = softmax saved.
GENIE_DECLARE_KERNEL(cross_entropy_fwd,
                     (const float* logits, const int32_t* labels, int64_t N, int64_t K, float* prob,
                      float* out, Stream s),
                     (logits, labels, N, K, prob, out, s))
// dlogits (+)= dout[0] * (prob - onehot) / N
GENIE_DECLARE_KERNEL(cross_entropy_bwd,
                     (const float* prob, const int32_t* labels, int64_t N, int64_t K,
                      const float* dout, float* dlogits, bool accumulate, Stream s),
                     (prob, labels, N, K, dout, dlogits, accumulate, s))

}  // namespace genie::k
