// Checked CUDA / cuDNN / cuBLAS calls for the .cu drivers (never included by CPU-only code).
// Every failing call throws genie::Error carrying the call's source text, the library's status
// string and file:line, e.g.
//   [cuda] cudaMalloc(&p, bytes) failed: out of memory (cudaErrorMemoryAllocation) at
//   kernels/device.cu:88
// GENIE_LAUNCH_CHECK() goes right after every <<<...>>> launch (launch-configuration errors are
// reported there; faults inside the kernel surface at the next synchronising call).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/common.h"

namespace genie::cuda {

[[noreturn]] void throw_call_error(const char* lib, const char* call, const std::string& status,
                                   const char* file, int line);
std::string cuda_status(cudaError_t e);       // "out of memory (cudaErrorMemoryAllocation)"
std::string cudnn_status(cudnnStatus_t s);    // cudnnGetErrorString + code
std::string cublas_status(cublasStatus_t s);  // cublasGetStatusName + cublasGetStatusString

}  // namespace genie::cuda

#define GENIE_CUDA_CHECK(call)                                                                   \
  do {                                                                                           \
    const cudaError_t genie_e_ = (call);                                                         \
    if (genie_e_ != cudaSuccess) {                                                               \
      (void)cudaGetLastError(); /* clear the (non-sticky) error so later calls are not blamed */ \
      ::genie::cuda::throw_call_error("cuda", #call, ::genie::cuda::cuda_status(genie_e_),       \
                                      __FILE__, __LINE__);                                       \
    }                                                                                            \
  } while (0)

#define GENIE_CUDNN_CHECK(call)                                                              \
  do {                                                                                       \
    const cudnnStatus_t genie_s_ = (call);                                                   \
    if (genie_s_ != CUDNN_STATUS_SUCCESS)                                                    \
      ::genie::cuda::throw_call_error("cudnn", #call, ::genie::cuda::cudnn_status(genie_s_), \
                                      __FILE__, __LINE__);                                   \
  } while (0)

#define GENIE_CUBLAS_CHECK(call)                                                               \
  do {                                                                                         \
    const cublasStatus_t genie_s_ = (call);                                                    \
    if (genie_s_ != CUBLAS_STATUS_SUCCESS)                                                     \
      ::genie::cuda::throw_call_error("cublas", #call, ::genie::cuda::cublas_status(genie_s_), \
                                      __FILE__, __LINE__);                                     \
  } while (0)

// After a kernel launch: cudaGetLastError() reports (and clears) bad launch configurations.
#define GENIE_LAUNCH_CHECK()                                                                     \
  do {                                                                                           \
    const cudaError_t genie_e_ = cudaGetLastError();                                             \
    if (genie_e_ != cudaSuccess)                                                                 \
      ::genie::cuda::throw_call_error("cuda", "kernel launch",                                   \
                                      ::genie::cuda::cuda_status(genie_e_), __FILE__, __LINE__); \
  } while (0)
