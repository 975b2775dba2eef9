// Central device dispatch: `fn(Device, args..., Stream)` forwards to fn_cpu / fn_cuda.
// GENIE_DECLARE_KERNEL(fn, (params), (args)) declares fn_cpu and fn_cuda with the same parameter
// list plus an inline dispatcher fn(Device, params). Without the CUDA backend, kernels/no_cuda.cpp
// defines GENIE_DEFINE_CUDA_STUBS before including every kernel header, which turns each
// declaration of fn_cuda into a definition that throws a clear "built without CUDA" error — so
// every CUDA entry point exists in every build, with no list to keep in sync by hand.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/device.h"

namespace genie {
[[noreturn]] void throw_no_cuda(const char* what);
namespace k {
// Kernel calls through the dispatchers so far (both devices; relaxed counter). A launch count for
// the benchmarks: on the GPU each call is at least one kernel launch or cuDNN/cuBLAS call, so
// calls per iteration show how launch-bound a step is from any machine.
inline std::atomic<uint64_t>& dispatch_count() {
  static std::atomic<uint64_t> n{0};
  return n;
}
// While a CPU StepGraph captures (kernels/graph.h), CPU kernel calls are appended here as
// closures over their arguments instead of running; null otherwise.
inline std::vector<std::function<void()>>*& cpu_recorder() {
  static std::vector<std::function<void()>>* r = nullptr;
  return r;
}
}  // namespace k
}  // namespace genie

#define GENIE_UNPAREN(...) __VA_ARGS__
#define GENIE_DISPATCH(dev, fn, ...)                                                  \
  (::genie::k::dispatch_count().fetch_add(1, std::memory_order_relaxed),              \
   (dev) == ::genie::Device::CPU                                                      \
       ? (::genie::k::cpu_recorder()                                                  \
              ? ::genie::k::cpu_recorder()->push_back([=] { fn##_cpu(__VA_ARGS__); }) \
              : fn##_cpu(__VA_ARGS__))                                                \
       : fn##_cuda(__VA_ARGS__))

#ifdef GENIE_DEFINE_CUDA_STUBS
#define GENIE_CUDA_DECL_(fn, PARAMS) \
  void fn##_cuda PARAMS { ::genie::throw_no_cuda(#fn); }
#else
#define GENIE_CUDA_DECL_(fn, PARAMS) void fn##_cuda PARAMS;
#endif

#define GENIE_DECLARE_KERNEL(fn, PARAMS, ARGS)                 \
  void fn##_cpu PARAMS;                                        \
  GENIE_CUDA_DECL_(fn, PARAMS)                                 \
  inline void fn(::genie::Device dev_, GENIE_UNPAREN PARAMS) { \
    GENIE_DISPATCH(dev_, fn, GENIE_UNPAREN ARGS);              \
  }
