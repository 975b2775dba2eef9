// CUDA GEMM driver: cuBLAS sgemm on row-major matrices. cuBLAS is column-major, and a row-major
// (M x N) matrix is the column-major (N x M) matrix of its transpose, so C = op(A) op(B) is
// computed as C^T = op(B)^T op(A)^T: swap the operands (and M with N), keep each op flag.
// Precision (kernels/device.h) of the calling thread: FP32 is cublasSgemm on a handle in
// CUBLAS_DEFAULT_MATH (set in device.cu): FP32 inputs multiplied in FP32, never TF32, so results
// match the CPU (OpenBLAS) path to float rounding. TF32 is cublasGemmEx with
// CUBLAS_COMPUTE_32F_FAST_TF32 on the same buffers; BF16 converts A and B to bfloat16 scratch
// copies and runs cublasGemmEx with FP32 compute into the FP32 C.
#include <climits>

#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/elementwise.h"
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
  const cublasHandle_t h = cuda::cublas(st);
  const Precision prec = current_precision();
  if (prec == Precision::FP32) {
    GENIE_CUBLAS_CHECK(cublasSgemm(h, opB, opA, int(N), int(M), int(K), &alpha, B, int(ldb), A,
                                   int(lda), &beta, C, int(ldc)));
  } else if (prec == Precision::TF32) {
    GENIE_CUBLAS_CHECK(cublasGemmEx(h, opB, opA, int(N), int(M), int(K), &alpha, B, CUDA_R_32F,
                                    int(ldb), A, CUDA_R_32F, int(lda), &beta, C, CUDA_R_32F,
                                    int(ldc), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
  } else {
    // A is stored (M x K) or, transposed, (K x M), row-major with leading dimension lda: its
    // buffer spans (rows - 1) * lda + cols floats; the same for B.
    auto span = [](int64_t rows, int64_t cols, int64_t ld) { return (rows - 1) * ld + cols; };
    const int64_t na = ta ? span(K, M, lda) : span(M, K, lda);
    const int64_t nb = tb ? span(N, K, ldb) : span(K, N, ldb);
    cuda::Scratch ab(size_t(na) * sizeof(uint16_t)), bb(size_t(nb) * sizeof(uint16_t));
    f32_to_bf16_cuda(A, ab.as<uint16_t>(), na, st);
    f32_to_bf16_cuda(B, bb.as<uint16_t>(), nb, st);
    GENIE_CUBLAS_CHECK(cublasGemmEx(h, opB, opA, int(N), int(M), int(K), &alpha, bb.get(),
                                    CUDA_R_16BF, int(ldb), ab.get(), CUDA_R_16BF, int(lda), &beta,
                                    C, CUDA_R_32F, int(ldc), CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace genie::k
