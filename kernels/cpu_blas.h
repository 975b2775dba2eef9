// CPU-only helpers around OpenBLAS shared by the GEMM and convolution drivers (not a kernel header:
// nothing here has a CUDA counterpart). BLAS always runs single-threaded; parallelism comes from
// our own OpenMP loops (over images in convolution, over row/column blocks in large GEMMs).
#pragma once
#include <cstdint>

namespace genie::k {

// Calls openblas_set_num_threads(1) exactly once per process (std::call_once); every driver that
// calls BLAS goes through here first. Cheap after the first call.
void blas_single_thread_once();

// Serial row-major SGEMM (no OpenMP split): C = alpha op(A) op(B) + beta C. Safe to call from
// inside an OpenMP region. K == 0 scales C by beta.
void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace genie::k
