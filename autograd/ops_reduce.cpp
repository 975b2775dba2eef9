// Differentiable reductions: sum, mean, per-channel and per-(n,c) statistics; min/max on the host.
#include <cmath>

#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace genie::ops {

Tensor sum(const Tensor& x) {
  check_f32("sum", x);
  Tensor y = Tensor::empty({}, x.device());
  k::reduce_sum(x.device(), x.data(), x.numel(), y.data(), nullptr);
  if (needs_grad({&x})) {
    record("sum", y, [x](const Tensor& dy) {
      // d sum / dx = 1 everywhere, scaled by the (device) upstream scalar.
      const float g = dy.item();
      accumulate_grad(x, Tensor::full(x.shape(), g, x.device()), "sum");
    });
  }
  return y;
}

Tensor mean(const Tensor& x) {
  GENIE_CHECK(x.numel() > 0, "[mean] expected a non-empty tensor, got ", shape_str(x.shape()));
  return mul_scalar(sum(x), 1.f / float(x.numel()));
}

std::pair<float, float> min_max(const Tensor& x) {
  check_f32("min_max", x);
  GENIE_CHECK(x.numel() > 0, "[min_max] expected a non-empty tensor");
  Tensor y = Tensor::empty({2}, x.device());
  k::reduce_minmax(x.device(), x.data(), x.numel(), y.data(), nullptr);
  auto v = y.to_vector();
  return {v[0], v[1]};
}

}  // namespace genie::ops
