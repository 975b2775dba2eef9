// CPU reductions: per-thread partials in double, combined in a fixed order (deterministic for a
// given thread count). Mean/variance use MeanVarAcc (functors.h), shared with the CUDA driver.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu_loop.h"
#include "kernels/functors.h"
#include "kernels/reduce.h"

namespace genie::k {

void reduce_sum_cpu(const float* x, int64_t n, float* out, Stream) {
  // Fixed chunking (independent of thread count) so results are bit-identical across runs.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(size_t(std::max<int64_t>(chunks, 1)), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    const int64_t e = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < e; ++i) s += x[i];
    part[size_t(c)] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  out[0] = float(s);
}

void reduce_minmax_cpu(const float* x, int64_t n, float* out, Stream) {
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
#pragma omp parallel for reduction(min : mn) reduction(max : mx) if (n > kCpuGrain)
  for (int64_t i = 0; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  out[0] = mn;
  out[1] = mx;
}

void channel_mean_var_cpu(const float* x, int64_t N, int64_t C, int64_t HW, bool unbiased,
                          float* mean, float* var, Stream) {
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    // Two-pass in double per channel: exact enough to match PyTorch to float precision.
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) s += p[i];
    }
    const double cnt = double(N * HW), m = s / cnt;
    double ss = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        const double d = p[i] - m;
        ss += d * d;
      }
    }
    mean[c] = float(m);
    var[c] = float(ss / (unbiased ? std::max(cnt - 1, 1.0) : cnt));
  });
}

void row_mean_var_cpu(const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                      float* var, Stream s) {
  channel_mean_var_cpu(x, 1, rows, len, unbiased, mean, var, s);
}

void channel_sum_cpu(const float* x, int64_t N, int64_t C, int64_t HW, float* out, bool acc,
                     Stream) {
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) s += p[i];
    }
    out[c] = acc ? out[c] + float(s) : float(s);
  });
}

}  // namespace genie::k
