// CPU GEMM driver: OpenBLAS cblas_sgemm (row-major), single-threaded inside; a large GEMM called
// from serial code is split into independent column or row blocks of C over OpenMP threads.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <mutex>

#include "kernels/cpu_blas.h"
#include "kernels/gemm.h"

extern "C" void openblas_set_num_threads(int);

namespace genie::k {

void blas_single_thread_once() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // BLAS may not touch C for K == 0; make the beta scaling explicit.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M),
              int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Stream) {
  blas_single_thread_once();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Below ~4 MFLOP the fork/join costs more than it saves.
  if (threads <= 1 || double(M) * double(N) * double(K) < double(1 << 21)) {
    sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the larger output dimension into one contiguous block per thread. Each block is an
  // independent GEMM over the full K (no partial sums are combined across threads).
  // Blocks are multiples of 16 to keep BLAS micro-kernels on full panels.
  const bool split_rows = M >= N;
  const int64_t dim = split_rows ? M : N;
  int64_t block = (dim + threads - 1) / threads;
  block = (block + 15) / 16 * 16;
  const int64_t nblocks = (dim + block - 1) / block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t o = b * block, len = std::min(block, dim - o);
    if (split_rows) {
      // Rows o..o+len of op(A): A is (M x K) row-major, or (K x M) when transposed.
      const float* Ab = ta ? A + o : A + o * lda;
      sgemm_serial(ta, tb, len, N, K, alpha, Ab, lda, B, ldb, beta, C + o * ldc, ldc);
    } else {
      // Columns o..o+len of op(B): B is (K x N), or (N x K) when transposed.
      const float* Bb = tb ? B + o * ldb : B + o;
      sgemm_serial(ta, tb, M, len, K, alpha, A, lda, Bb, ldb, beta, C + o, ldc);
    }
  }
}

}  // namespace genie::k
