// Loss math, written once for the CPU loops (kernels/loss_cpu.cpp) and the CUDA kernels
// (kernels/loss.cu). Scalar losses are means; drivers sum the per-element (or per-row) terms in
// double and divide once.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace genie::k {

// MSE term of one element: (a - b)^2; the loss is sum / n.
struct SqDiffF {
  GENIE_HD double operator()(float a, float b) const {
    const double d = double(a) - double(b);
    return d * d;
  }
};

// MSE backward of one element: da = scale * (a - b) with scale = 2 * dout / n.
// (db = -da: drivers obtain it by swapping a and b.)
struct MseBwdF {
  float scale;
  GENIE_HD static MseBwdF make(float dout, int64_t n) { return MseBwdF{2.f * dout / float(n)}; }
  GENIE_HD float operator()(float a, float b) const { return scale * (a - b); }
};

// Softmax cross-entropy of ONE row of K logits z with integer label (0 <= label < K):
// writes prob[j] = softmax(z)[j] and returns -log softmax(z)[label] = log sum exp(z - max) -
// (z[label] - max). Max-shifted for stability; exponentials in float, their sum and log in double.
struct XentRowF {
  GENIE_HD static float row(const float* z, int32_t label, int64_t K, float* prob) {
    float mx = z[0];
    for (int64_t j = 1; j < K; ++j) mx = z[j] > mx ? z[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < K; ++j) {
      const float e = expf(z[j] - mx);
      prob[j] = e;
      s += double(e);
    }
    const float inv = float(1.0 / s);
    for (int64_t j = 0; j < K; ++j) prob[j] *= inv;
    return float(log(s) - double(z[label] - mx));
  }
};

// Cross-entropy backward of one logit: dz = scale * (prob - [j == label]), scale = dout / N.
struct XentBwdF {
  float scale;
  GENIE_HD static XentBwdF make(float dout, int64_t N) { return XentBwdF{dout / float(N)}; }
  GENIE_HD float operator()(float prob, bool is_label) const {
    return scale * (prob - (is_label ? 1.f : 0.f));
  }
};

}  // namespace genie::k
