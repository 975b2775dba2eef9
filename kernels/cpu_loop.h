// The CPU driver's loop: OpenMP over a flat index range, serial below a grain size so small
// tensors do not pay thread start-up. Every CPU elementwise kernel goes through here.
#pragma once
#include <cstdint>

namespace genie::k {

constexpr int64_t kCpuGrain = 1 << 15;

template <class F>
inline void cpu_for(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n > kCpuGrain)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Parallel over `outer` independent items (channels, images); body(i) does a serial inner loop.
template <class F>
inline void cpu_for_outer(int64_t outer, int64_t inner_work, F&& f) {
#pragma omp parallel for schedule(static) if (outer * inner_work > kCpuGrain && outer > 1)
  for (int64_t i = 0; i < outer; ++i) f(i);
}

}  // namespace genie::k
