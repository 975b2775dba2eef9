// The CPU driver's loop: OpenMP over a flat index range, serial below a grain size so small
// tensors do not pay thread start-up. Every CPU elementwise kernel goes through here.
#pragma once
#include <cstdint>
#include <type_traits>

namespace genie::k {

constexpr int64_t kCpuGrain = 1 << 15;

// Each thread runs a private copy of `f`: when the body captures by value ([=]), the copy's
// members (pointers, functor constants) provably do not alias the output stores, so GCC keeps them
// in registers and vectorises selects such as leaky ReLU (shared by reference, they must be
// reloaded after every store and the loop stays scalar: ~30x slower on random signs). Needs
// -fno-trapping-math (root CMakeLists.txt) to if-convert the select.
template <class F>
inline void cpu_for(int64_t n, F&& f) {
#pragma omp parallel if (n > kCpuGrain)
  {
    const std::decay_t<F> body = f;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// outer · inner_work > kCpuGrain, without forming the product (which can exceed int64 for a
// corrupt size): for positive integers a·b > g exactly when a > g / b.
constexpr bool cpu_work_exceeds_grain(int64_t outer, int64_t inner_work) {
  return outer > 0 && inner_work > 0 && outer > kCpuGrain / inner_work;
}

// Parallel over `outer` independent items (channels, images); body(i) does a serial inner loop.
// (A private copy per thread, as in cpu_for.)
template <class F>
inline void cpu_for_outer(int64_t outer, int64_t inner_work, F&& f) {
#pragma omp parallel if (cpu_work_exceeds_grain(outer, inner_work) && outer > 1)
  {
    const std::decay_t<F> body = f;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < outer; ++i) body(i);
  }
}

}  // namespace genie::k
