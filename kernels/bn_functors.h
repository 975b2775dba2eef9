// Batch-norm math, written once for the CPU loops (kernels/bn_cpu.cpp) and the CUDA kernels
// (kernels/bn.cu). Statistics are per channel c over the (N, HW) elements of that channel; all
// functors below act on ONE element given its channel's coefficients, so a driver may map them
// to any loop or thread layout. Formulas follow PyTorch's CPU batch norm (folded affine forward,
// "dot" form of the training backward) so results agree to float rounding.
#pragma once
#include <cmath>

#include "kernels/common.h"

namespace genie::k {

// invstd = 1 / sqrt(var + eps), evaluated in double (var is the biased batch variance in training,
// the running variance in eval mode).
GENIE_HD float bn_invstd(double var, float eps) { return float(1.0 / sqrt(var + double(eps))); }

// Forward, one element: y = x * scale + shift with scale = gamma * invstd and
// shift = beta - mean * scale (gamma = 1, beta = 0 without affine). Same in eval and training.
struct BnFwdF {
  float scale, shift;
  GENIE_HD static BnFwdF make(float mean, float invstd, const float* gamma, const float* beta,
                              int64_t c) {
    const float sc = invstd * (gamma ? gamma[c] : 1.f);
    return BnFwdF{sc, (beta ? beta[c] : 0.f) - mean * sc};
  }
  GENIE_HD float operator()(float x) const { return x * scale + shift; }
};

// Per-channel gradient sums over the channel's elements, accumulated in double:
//   sum_dy = sum dy            (= dbeta)
//   dot    = sum dy * (x - mean)   (dgamma = dot * invstd)
// push() one element; combine() merges partial sums (associative: CPU threads, CUDA blocks).
struct BnGradSums {
  double sum_dy = 0, dot = 0;
  GENIE_HD void push(float x, float dy, float mean) {
    sum_dy += double(dy);
    dot += double(dy) * (double(x) - double(mean));
  }
  GENIE_HD void combine(const BnGradSums& o) {
    sum_dy += o.sum_dy;
    dot += o.dot;
  }
};

// The parameter gradients of channel c from its sums: dgamma = dot · invstd, dbeta = sum_dy
// (written, or added when `acc`; either pointer may be null).
GENIE_HD void bn_write_param_grads(const BnGradSums& g, float invstd, int64_t c, float* dgamma,
                                   float* dbeta, bool acc) {
  if (dgamma) {
    const float v = float(g.dot * double(invstd));
    dgamma[c] = acc ? dgamma[c] + v : v;
  }
  if (dbeta) {
    const float v = float(g.sum_dy);
    dbeta[c] = acc ? dbeta[c] + v : v;
  }
}

// Eval-mode backward of one element (statistics are constants): dx = dy * gamma * invstd.
struct BnEvalBwdF {
  float scale;  // gamma * invstd
  GENIE_HD float operator()(float dy) const { return dy * scale; }
};

// Training-mode backward of one element, through the batch mean and biased variance
// (m = N*HW elements per channel):
//   dx = (dy - sum_dy/m - (x - mean) * dot * invstd^2 / m) * gamma * invstd
struct BnTrainBwdF {
  float mean, mean_dy, k, scale;
  GENIE_HD static BnTrainBwdF make(const BnGradSums& g, double m, float mean, float invstd,
                                   float gamma) {
    const double is = double(invstd);
    return BnTrainBwdF{mean, float(g.sum_dy / m), float(g.dot * is * is / m), invstd * gamma};
  }
  GENIE_HD float operator()(float x, float dy) const {
    return (dy - mean_dy - (x - mean) * k) * scale;
  }
};

}  // namespace genie::k
