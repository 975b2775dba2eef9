// Adam update (Kingma & Ba, PyTorch semantics incl. bias correction, eps outside the sqrt):
//   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) +
//   eps)
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  int64_t step = 1;  // 1-based step count after increment
  // Replayed steps (kernels/graph.h): when set, device memory holding {lr / (1 − β1^t),
  // sqrt(1 − β2^t)} — AdamF::make's per-step values, written by the host before each replay —
  // replaces lr and step, read when the kernel runs.
  const float* at = nullptr;
};

GENIE_DECLARE_KERNEL(adam_step,
                     (float* param, const float* grad, float* m, float* v, int64_t n,
                      const AdamHyper& h, Stream s),
                     (param, grad, m, v, n, h, s))

}  // namespace genie::k
