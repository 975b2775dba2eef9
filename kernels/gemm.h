// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, op = transpose if ta/tb.
// A is (M x K) after op, B is (K x N) after op, C is (M x N). CPU: OpenBLAS. CUDA: cuBLAS.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

GENIE_DECLARE_KERNEL(gemm,
                     (bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc, Stream s),
                     (ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, s))

}  // namespace genie::k
