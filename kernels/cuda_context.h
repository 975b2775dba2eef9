// CUDA-side context shared by the .cu drivers (never included by CPU-only code): the engine
// stream, lazily created cuBLAS/cuDNN handles bound to it, and stream-ordered scratch memory
// from the caching allocator. Implemented in kernels/device.cu.
//
// Stream model: every engine kernel, copy and library call is queued on ONE non-blocking stream
// (Stream == nullptr means that stream). The caching allocator relies on this: a block freed on
// the host may be handed out again at once, because any later use of it is queued behind the
// work that used it before. Work queued on another stream must synchronise before freeing.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

#include "kernels/device.h"

namespace genie::cuda {

// The stream a kernel runs on: `s` when given, else the engine stream (created on first use).
// Throws a clear genie::Error when no usable device is present.
cudaStream_t resolve(Stream s);

// Library handles for the current device, created on first use and destroyed at exit; each call
// re-binds the handle to `s` (cheap), so library work is ordered with our kernels.
cublasHandle_t cublas(cudaStream_t s);
cudnnHandle_t cudnn(cudaStream_t s);

// Temporary device memory for one kernel call (partials, cuDNN workspace). Freed back to the
// caching allocator when it goes out of scope — safe under the one-stream model above.
class Scratch {
 public:
  explicit Scratch(size_t bytes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace genie::cuda
