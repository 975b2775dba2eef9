// CPU drivers for the moment-statistics kernels: OpenMP over groups; math in stats_functors.h.
#include "kernels/cpu_loop.h"
#include "kernels/reduce.h"
#include "kernels/stats.h"
#include "kernels/stats_functors.h"

namespace genie::k {

void row_mean_std_cpu(const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                      float* std, Stream s) {
  row_mean_var_cpu(x, rows, len, unbiased, mean, std, s);
  for (int64_t i = 0; i < rows; ++i) std[i] = std_from_var(std[i]);
}

void moments_bwd_cpu(const float* x, int64_t N, int64_t G, int64_t L, const float* mean,
                     const float* second, const float* dmean, const float* dsecond, bool is_std,
                     bool unbiased, float* dx, bool acc, Stream) {
  const double m = double(N * L);
  cpu_for_outer(G, N * L, [&](int64_t g) {
    const MomentsBwdF f =
        MomentsBwdF::make(mean[g], second[g], dmean, dsecond, g, m, is_std, unbiased);
    for (int64_t n = 0; n < N; ++n) {
      const float* xp = x + (n * G + g) * L;
      float* dp = dx + (n * G + g) * L;
      if (acc)
        for (int64_t i = 0; i < L; ++i) dp[i] += f(xp[i]);
      else
        for (int64_t i = 0; i < L; ++i) dp[i] = f(xp[i]);
    }
  });
}

}  // namespace genie::k
