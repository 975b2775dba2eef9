// CPU driver of the fused BN-statistics loss (math in kernels/bnstat_loss.h). OpenMP over channels;
// each channel is reduced serially in a fixed order, so results are bit-identical run to run and
// independent of the thread count.
#include <vector>

#include "kernels/bnstat_loss.h"
#include "kernels/cpu_loop.h"

namespace genie::k {

namespace {
// Σ (x − shift) and Σ (x − shift)² of one contiguous run, four independent lanes so the compiler
// can keep several double FMA chains in flight (a single chain is latency-bound).
inline void accumulate_run(const float* p, int64_t len, float shift, BnStatAcc& acc) {
  double a1[4] = {0, 0, 0, 0}, a2[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= len; i += 4)
    for (int l = 0; l < 4; ++l) {
      const double d = double(p[i + l]) - double(shift);
      a1[l] += d;
      a2[l] += d * d;
    }
  for (; i < len; ++i) {
    const double d = double(p[i]) - double(shift);
    a1[0] += d;
    a2[0] += d * d;
  }
  BnStatAcc part;
  part.s1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
  part.s2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
  part.n = double(len);
  acc.combine(part);
}
}  // namespace

void bnstat_loss_fwd_cpu(const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                         const float* sigma, float weight, float* mean, float* std_, float* loss,
                         Stream) {
  std::vector<double> term(size_t(C), 0.0);
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    const float shift = x[c * HW];
    BnStatAcc acc;
    for (int64_t n = 0; n < N; ++n) accumulate_run(x + (n * C + c) * HW, HW, shift, acc);
    BnStatLossFwdF{}(acc, shift, mu[c], sigma[c], mean[c], std_[c], term[size_t(c)]);
  });
  double total = 0;
  for (double t : term) total += t;
  loss[0] = float(double(weight) * total);
}

void bnstat_loss_bwd_cpu(const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                         const float* sigma, const float* mean, const float* std_, float weight,
                         const float* dout, float* dx, bool accumulate, Stream) {
  const float g = dout[0] * weight;
  const double cnt = double(N * HW);
  cpu_for_outer(C, N * HW, [&](int64_t c) {
    const BnStatLossBwdF f = BnStatLossBwdF::make(g, mean[c], std_[c], mu[c], sigma[c], cnt);
    for (int64_t n = 0; n < N; ++n) {
      const float* p = x + (n * C + c) * HW;
      float* q = dx + (n * C + c) * HW;
      if (accumulate)
        for (int64_t i = 0; i < HW; ++i) q[i] += f(p[i]);
      else
        for (int64_t i = 0; i < HW; ++i) q[i] = f(p[i]);
    }
  });
}

}  // namespace genie::k
