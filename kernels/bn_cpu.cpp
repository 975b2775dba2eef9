// CPU batch-norm drivers: loops over channels (OpenMP) and elements; the math is in bn_functors.h.
// Each channel's reduction and its elementwise pass run in one thread, so a channel's data stays
// in cache between the two and per-channel sums have a fixed order (deterministic).
#include <vector>

#include "kernels/bn.h"
#include "kernels/bn_functors.h"
#include "kernels/cpu_loop.h"
#include "kernels/reduce.h"

namespace genie::k {

namespace {

// Applies BnFwdF with per-channel coefficients over all (n, c) planes.
void apply_fwd(const float* x, int64_t N, int64_t C, int64_t HW, const float* mean,
               const float* invstd, const float* gamma, const float* beta, float* y) {
  cpu_for_outer(N * C, HW, [&](int64_t nc) {
    const int64_t c = nc % C;
    const BnFwdF f = BnFwdF::make(mean[c], invstd[c], gamma, beta, c);
    const float* xp = x + nc * HW;
    float* yp = y + nc * HW;
    for (int64_t i = 0; i < HW; ++i) yp[i] = f(xp[i]);
  });
}

BnGradSums channel_grad_sums(const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                             int64_t c, float mean) {
  BnGradSums g;
  for (int64_t n = 0; n < N; ++n) {
    const float* xp = x + (n * C + c) * HW;
    const float* dp = dy + (n * C + c) * HW;
    // Per-plane float partials keep the inner loop vectorisable; planes combine in double.
    BnGradSums p;
    float s = 0.f, d = 0.f;
    for (int64_t i = 0; i < HW; ++i) {
      s += dp[i];
      d += dp[i] * (xp[i] - mean);
    }
    p.sum_dy = s;
    p.dot = d;
    g.combine(p);
  }
  return g;
}

}  // namespace

void bn_eval_fwd_cpu(const float* x, int64_t N, int64_t C, int64_t HW, const float* mean,
                     const float* var, const float* gamma, const float* beta, float eps, float* y,
                     Stream) {
  std::vector<float> invstd(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) invstd[size_t(c)] = bn_invstd(var[c], eps);
  apply_fwd(x, N, C, HW, mean, invstd.data(), gamma, beta, y);
}

void bn_eval_bwd_cpu(const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                     const float* mean, const float* var, const float* gamma, float eps, float* dx,
                     float* dgamma, float* dbeta, bool acc, Stream) {
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    const float invstd = bn_invstd(var[c], eps);
    if (dgamma || dbeta)
      bn_write_param_grads(channel_grad_sums(x, dy, N, C, HW, c, mean[c]), invstd, c, dgamma, dbeta,
                           acc);
    if (!dx) return;
    const BnEvalBwdF f{invstd * (gamma ? gamma[c] : 1.f)};
    for (int64_t n = 0; n < N; ++n) {
      const float* dp = dy + (n * C + c) * HW;
      float* op = dx + (n * C + c) * HW;
      if (acc)
        for (int64_t i = 0; i < HW; ++i) op[i] += f(dp[i]);
      else
        for (int64_t i = 0; i < HW; ++i) op[i] = f(dp[i]);
    }
  });
}

void bn_train_fwd_cpu(const float* x, int64_t N, int64_t C, int64_t HW, const float* gamma,
                      const float* beta, float eps, float* y, float* save_mean, float* save_invstd,
                      Stream s) {
  // Biased batch variance from the shared reduction; invstd in double (bn_invstd).
  channel_mean_var_cpu(x, N, C, HW, /*unbiased=*/false, save_mean, save_invstd, s);
  for (int64_t c = 0; c < C; ++c) save_invstd[c] = bn_invstd(save_invstd[c], eps);
  apply_fwd(x, N, C, HW, save_mean, save_invstd, gamma, beta, y);
}

void bn_train_bwd_cpu(const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                      const float* gamma, const float* save_mean, const float* save_invstd,
                      float* dx, float* dgamma, float* dbeta, bool acc, Stream) {
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    const BnGradSums g = channel_grad_sums(x, dy, N, C, HW, c, mean);
    bn_write_param_grads(g, invstd, c, dgamma, dbeta, acc);
    if (!dx) return;
    const BnTrainBwdF f =
        BnTrainBwdF::make(g, double(N * HW), mean, invstd, gamma ? gamma[c] : 1.f);
    for (int64_t n = 0; n < N; ++n) {
      const float* xp = x + (n * C + c) * HW;
      const float* dp = dy + (n * C + c) * HW;
      float* op = dx + (n * C + c) * HW;
      if (acc)
        for (int64_t i = 0; i < HW; ++i) op[i] += f(xp[i], dp[i]);
      else
        for (int64_t i = 0; i < HW; ++i) op[i] = f(xp[i], dp[i]);
    }
  });
}

}  // namespace genie::k
