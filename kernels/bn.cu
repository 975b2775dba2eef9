// CUDA batch-norm drivers; the math is kernels/bn_functors.h, shared with bn_cpu.cpp. Each op is
// (optionally) a per-channel reduction (cuda::channel_reduce: batch mean/variance through
// channel_mean_var, gradient sums through BnGradSums), then a per-channel kernel that builds the
// channel's functor once, then one elementwise pass that applies it.
#include "kernels/bn.h"
#include "kernels/bn_functors.h"
#include "kernels/cuda_reduce.h"
#include "kernels/reduce.h"

namespace genie::k {
namespace {

using cuda::cuda_for;

// ---- per-channel coefficient kernels (bodies over c) ----
struct EvalFwdCoef {
  const float *mean, *var, *gamma, *beta;
  float eps;
  BnFwdF* coef;
  __device__ void operator()(int64_t c) const {
    coef[c] = BnFwdF::make(mean[c], bn_invstd(var[c], eps), gamma, beta, c);
  }
};

// Training forward: turns the biased variance (written into save_invstd by channel_mean_var)
// into invstd in place, and builds the channel's affine.
struct TrainFwdCoef {
  const float *mean, *gamma, *beta;
  float eps;
  float* invstd;
  BnFwdF* coef;
  __device__ void operator()(int64_t c) const {
    const float is = bn_invstd(invstd[c], eps);
    invstd[c] = is;
    coef[c] = BnFwdF::make(mean[c], is, gamma, beta, c);
  }
};

// ---- elementwise passes (bodies over flat NCHW index i; channel = (i / HW) % C) ----
struct FwdApply {
  const float* x;
  const BnFwdF* coef;
  int64_t C, HW;
  float* y;
  __device__ void operator()(int64_t i) const {
    y[i] = coef[cuda::mod_fast(cuda::div_fast(i, HW), C)](x[i]);
  }
};

struct EvalBwdCoef {
  const float *var, *gamma;
  float eps;
  BnEvalBwdF* coef;
  __device__ void operator()(int64_t c) const {
    coef[c] = BnEvalBwdF{bn_invstd(var[c], eps) * (gamma ? gamma[c] : 1.f)};
  }
};

struct EvalBwdApply {
  const float* dy;
  const BnEvalBwdF* coef;
  int64_t C, HW;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = coef[cuda::mod_fast(cuda::div_fast(i, HW), C)](dy[i]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

struct TrainBwdApply {
  const float *x, *dy;
  const BnTrainBwdF* coef;
  int64_t C, HW;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = coef[cuda::mod_fast(cuda::div_fast(i, HW), C)](x[i], dy[i]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

// ---- gradient sums ----
struct GradSrc {
  const float *x, *dy, *mean;
  __device__ void operator()(BnGradSums& g, int64_t c, int64_t o) const {
    g.push(x[o], dy[o], mean[c]);
  }
};

// dgamma / dbeta from the sums (bn_write_param_grads); the training backward also stores the
// channel's BnTrainBwdF for the dx pass.
struct GradFin {
  const float *mean, *invstd_in, *var, *gamma;  // invstd_in (training) or var (eval)
  float eps;
  double m;  // elements per channel
  float *dgamma, *dbeta;
  bool acc;
  BnTrainBwdF* coef;  // training only (may be null)
  __device__ void operator()(int64_t c, const BnGradSums& g) const {
    const float invstd = invstd_in ? invstd_in[c] : bn_invstd(var[c], eps);
    bn_write_param_grads(g, invstd, c, dgamma, dbeta, acc);
    if (coef) coef[c] = BnTrainBwdF::make(g, m, mean[c], invstd, gamma ? gamma[c] : 1.f);
  }
};

}  // namespace

void bn_eval_fwd_cuda(const float* x, int64_t N, int64_t C, int64_t HW, const float* mean,
                      const float* var, const float* gamma, const float* beta, float eps, float* y,
                      Stream s) {
  if (C <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  cuda::Scratch coef(size_t(C) * sizeof(BnFwdF));
  cuda_for(C, st, EvalFwdCoef{mean, var, gamma, beta, eps, coef.as<BnFwdF>()});
  cuda_for(N * C * HW, st, FwdApply{x, coef.as<BnFwdF>(), C, HW, y});
}

void bn_eval_bwd_cuda(const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                      const float* mean, const float* var, const float* gamma, float eps, float* dx,
                      float* dgamma, float* dbeta, bool acc, Stream s) {
  if (C <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  if (dgamma || dbeta)
    cuda::channel_reduce<BnGradSums>(
        GradSrc{x, dy, mean}, N, C, HW, st,
        GradFin{mean, nullptr, var, gamma, eps, double(N * HW), dgamma, dbeta, acc, nullptr});
  if (!dx) return;
  cuda::Scratch coef(size_t(C) * sizeof(BnEvalBwdF));
  cuda_for(C, st, EvalBwdCoef{var, gamma, eps, coef.as<BnEvalBwdF>()});
  cuda_for(N * C * HW, st, EvalBwdApply{dy, coef.as<BnEvalBwdF>(), C, HW, dx, acc});
}

void bn_train_fwd_cuda(const float* x, int64_t N, int64_t C, int64_t HW, const float* gamma,
                       const float* beta, float eps, float* y, float* save_mean, float* save_invstd,
                       Stream s) {
  if (C <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  // Biased batch variance from the shared reduction, then invstd in place (as the CPU driver).
  channel_mean_var_cuda(x, N, C, HW, /*unbiased=*/false, save_mean, save_invstd, st);
  cuda::Scratch coef(size_t(C) * sizeof(BnFwdF));
  cuda_for(C, st, TrainFwdCoef{save_mean, gamma, beta, eps, save_invstd, coef.as<BnFwdF>()});
  cuda_for(N * C * HW, st, FwdApply{x, coef.as<BnFwdF>(), C, HW, y});
}

void bn_train_bwd_cuda(const float* x, const float* dy, int64_t N, int64_t C, int64_t HW,
                       const float* gamma, const float* save_mean, const float* save_invstd,
                       float* dx, float* dgamma, float* dbeta, bool acc, Stream s) {
  if (C <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  cuda::Scratch coef(dx ? size_t(C) * sizeof(BnTrainBwdF) : 0);
  cuda::channel_reduce<BnGradSums>(
      GradSrc{x, dy, save_mean}, N, C, HW, st,
      GradFin{save_mean, save_invstd, nullptr, gamma, 0.f, double(N * HW), dgamma, dbeta, acc,
              coef.as<BnTrainBwdF>()});
  if (dx) cuda_for(N * C * HW, st, TrainBwdApply{x, dy, coef.as<BnTrainBwdF>(), C, HW, dx, acc});
}

}  // namespace genie::k
