// Fused BatchNorm-statistics loss (Genie-D, GENIE.md §1.4). For x viewed as (N, C, HW) and per-
// channel targets mu[C], sigma[C]:
//
//   mean_c = Σ_{n,i} x[n,c,i] / n_c,   std_c = sqrt(Σ (x - mean_c)² / (n_c - 1)),   n_c = N·HW
//   loss   = weight · Σ_c ( (mean_c − mu_c)² + (std_c − sigma_c)² )
//
// Forward is one read of x (shifted sums, accumulated in double); backward is one read of x and
// one write of dx:
//
//   dx[n,c,i] (+)= dout · weight · ( 2 (mean_c − mu_c) / n_c + 2 (std_c − sigma_c) (x − mean_c) /
//   ((n_c − 1) std_c) )
//
// The two Genie terms are both this kernel:  L_bn of a BN input a (N,C,H,W): view (N, C, H·W),
// targets (running_mean, sqrt(running_var + 1e-6)), weight 1/C;  L_in of the image x (B,C,H,W):
// view (1, B·C, H·W), targets 0 and 1, weight 1/B.
//
// The math lives once in the functors below; kernels/bnstat_loss_cpu.cpp and kernels/bnstat_loss.cu
// are loops around them. Where std_c == 0 (a constant channel) the std term's gradient is taken as
// 0 (PyTorch would produce NaN there).
#pragma once
#include <cmath>

#include "kernels/common.h"
#include "kernels/dispatch.h"

namespace genie::k {

// Shifted running sums of one channel: s1 = Σ (x − K), s2 = Σ (x − K)², with K = the channel's
// first element. The shift keeps the one-pass variance free of catastrophic cancellation when
// |mean| ≫ std (double accumulators, so the residual error is far below float resolution).
// combine() is plain addition, so partial sums from threads/blocks merge in any fixed order.
struct BnStatAcc {
  double s1 = 0, s2 = 0, n = 0;
  GENIE_HD void push(float x, float shift) {
    const double d = double(x) - double(shift);
    s1 += d;
    s2 += d * d;
    n += 1;
  }
  GENIE_HD void combine(const BnStatAcc& o) {
    s1 += o.s1;
    s2 += o.s2;
    n += o.n;
  }
};

// Forward projection: statistics of one channel and its loss term (before `weight`).
struct BnStatLossFwdF {
  GENIE_HD void operator()(const BnStatAcc& a, float shift, float mu, float sigma, float& mean,
                           float& std_, double& term) const {
    const double m = a.s1 / a.n;
    const double var = a.n > 1 ? (a.s2 - a.s1 * m) / (a.n - 1) : 0.0;
    const double dm = double(shift) + m;
    const double sd = sqrt(var > 0 ? var : 0.0);
    mean = float(dm);
    std_ = float(sd);
    term = (dm - double(mu)) * (dm - double(mu)) + (sd - double(sigma)) * (sd - double(sigma));
  }
};

// Backward: per-channel coefficients, then dx = a + b · (x − mean) per element.
struct BnStatLossBwdF {
  float a, b, mean;
  // g = dout · weight (the upstream scalar times the loss weight); n = elements per channel.
  GENIE_HD static BnStatLossBwdF make(float g, float mean, float std_, float mu, float sigma,
                                      double n) {
    BnStatLossBwdF f;
    f.mean = mean;
    f.a = float(2.0 * double(g) * (double(mean) - double(mu)) / n);
    f.b = (std_ > 0.f && n > 1)
              ? float(2.0 * double(g) * (double(std_) - double(sigma)) / ((n - 1) * double(std_)))
              : 0.f;
    return f;
  }
  GENIE_HD float operator()(float x) const { return a + b * (x - mean); }
};

// loss[0] = weight · Σ_c (...);  mean[C], std[C] are saved for the backward pass.
// x (N, C, HW); mu, sigma (C). All pointers on the kernel's device.
GENIE_DECLARE_KERNEL(bnstat_loss_fwd,
                     (const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                      const float* sigma, float weight, float* mean, float* std_, float* loss,
                      Stream s),
                     (x, N, C, HW, mu, sigma, weight, mean, std_, loss, s))
// dx (N, C, HW) (+)= dout[0] · d loss / d x   (dout is a device scalar, so no host sync)
GENIE_DECLARE_KERNEL(bnstat_loss_bwd,
                     (const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                      const float* sigma, const float* mean, const float* std_, float weight,
                      const float* dout, float* dx, bool accumulate, Stream s),
                     (x, N, C, HW, mu, sigma, mean, std_, weight, dout, dx, accumulate, s))

}  // namespace genie::k
