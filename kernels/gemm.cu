// CUDA GEMM driver: cuBLAS sgemm on row-major matrices. cuBLAS is column-major, and a row-major
// (M x N) matrix is the column-major (N x M) matrix of its transpose, so C = op(A) op(B) is
// computed as C^T = op(B)^T op(A)^T: swap the operands (and M with N), keep each op flag.
// The handle runs in CUBLAS_DEFAULT_MATH (set in device.cu): FP32 inputs are multiplied in FP32,
// never TF32, so results match the CPU (OpenBLAS) path to float rounding.
#include <climits>

#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/gemm.h"

namespace genie::k {
namespace {

// K == 0: C = beta * C (beta == 0 writes zeros without reading C), as the CPU driver does.
struct ScaleCBody {
  float* C;
  int64_t N, ldc;
  float beta;
  __device__ void operator()(int64_t idx) const {
    const int64_t i = idx / N, j = idx - i * N;
    float& c = C[i * ldc + j];
    c = beta == 0.f ? 0.f : beta * c;
  }
};

}  // namespace

void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
               Stream s) {
  if (M <= 0 || N <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  if (K <= 0) {
    cuda::cuda_for(M * N, st, ScaleCBody{C, N, ldc, beta});
    return;
  }
  for (int64_t v : {M, N, K, lda, ldb, ldc})
    GENIE_CHECK(v <= INT_MAX, "[gemm] expected dimensions and leading dimensions below 2^31, got ",
                "M=", M, " N=", N, " K=", K, " lda=", lda, " ldb=", ldb, " ldc=", ldc);
  const cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  GENIE_CUBLAS_CHECK(cublasSgemm(cuda::cublas(st), opB, opA, int(N), int(M), int(K), &alpha, B,
                                 int(ldb), A, int(lda), &beta, C, int(ldc)));
}

}  // namespace genie::k
