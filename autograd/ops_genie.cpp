// Genie-D loss ops: validation, the fused kernel's forward, and a backward node that keeps only the
// input and the per-channel statistics (the gradient is recomputed from them in one pass).
#include "autograd/ops_genie.h"

#include "kernels/bnstat_loss.h"
#include "kernels/swing.h"

namespace genie::ops {

namespace {
// x viewed as (N, C, HW); targets (C); loss = weight · Σ_c (...)
Tensor stat_loss(const char* name, const Tensor& x, int64_t N, int64_t C, int64_t HW,
                 const Tensor& mu, const Tensor& sigma, float weight) {
  const Device d = x.device();
  Tensor loss = Tensor::empty({}, d);
  Tensor mean = Tensor::empty({C}, d), sd = Tensor::empty({C}, d);
  k::bnstat_loss_fwd(d, x.data(), N, C, HW, mu.data(), sigma.data(), weight, mean.data(), sd.data(),
                     loss.data(), nullptr);
  if (needs_grad({&x})) {
    Tensor xs = x.detach();
    record(name, loss, [x, xs, N, C, HW, mu, sigma, mean, sd, weight, name](const Tensor& dl) {
      if (!x.requires_grad()) return;
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::bnstat_loss_bwd(dl.device(), xs.data(), N, C, HW, mu.data(), sigma.data(), mean.data(),
                         sd.data(), weight, dl.data(), dx.data(), !fresh, nullptr);
    });
  }
  return loss;
}
}  // namespace

Tensor bn_stat_loss(const Tensor& a, const Tensor& mu, const Tensor& sigma) {
  check_f32("bn_stat_loss", a);
  check_f32("bn_stat_loss", mu);
  check_f32("bn_stat_loss", sigma);
  GENIE_CHECK(a.ndim() == 4 || a.ndim() == 2,
              "[bn_stat_loss] expected an activation (N, C, H, W) or (N, C), got ",
              shape_str(a.shape()));
  const int64_t N = a.dim(0), C = a.dim(1), HW = a.ndim() == 4 ? a.dim(2) * a.dim(3) : 1;
  GENIE_CHECK(mu.shape() == Shape{C} && sigma.shape() == Shape{C},
              "[bn_stat_loss] expected targets of shape (", C, "), got mean ",
              shape_str(mu.shape()), " and std ", shape_str(sigma.shape()));
  GENIE_CHECK(N * HW >= 2,
              "[bn_stat_loss] expected at least 2 values per channel for an unbiased "
              "std, got ",
              shape_str(a.shape()));
  check_same_device("bn_stat_loss", a, mu);
  check_same_device("bn_stat_loss", a, sigma);
  return stat_loss("bn_stat_loss", a, N, C, HW, mu, sigma, 1.f / float(C));
}

Tensor input_stat_loss(const Tensor& x) {
  check_f32("input_stat_loss", x);
  check_ndim("input_stat_loss", x, 4, "images");
  const int64_t B = x.dim(0), rows = x.dim(0) * x.dim(1), HW = x.dim(2) * x.dim(3);
  GENIE_CHECK(HW >= 2,
              "[input_stat_loss] expected at least 2 pixels per image for an unbiased "
              "std, got ",
              shape_str(x.shape()));
  Tensor zeros = Tensor::zeros({rows}, x.device());
  Tensor ones = Tensor::full({rows}, 1.f, x.device());
  return stat_loss("input_stat_loss", x, 1, rows, HW, zeros, ones, 1.f / float(B));
}

Tensor swing_shift(const Tensor& x, int dy, int dx, const int32_t* at) {
  check_f32("swing_shift", x);
  check_ndim("swing_shift", x, 4);
  GENIE_CHECK(dy >= 0 && dy <= 2 && dx >= 0 && dx <= 2,
              "[swing_shift] expected offsets (dy, dx) in {0,1,2}, got (", dy, ", ", dx, ")");
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  GENIE_CHECK(H >= 2 && W >= 2,
              "[swing_shift] expected an input of at least 2x2 (reflect padding "
              "by 1), got ",
              shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.device());
  k::swing_shift_fwd(x.device(), x.data(), NC, H, W, dy, dx, at, y.data(), nullptr);
  if (needs_grad({&x})) {
    record("swing_shift", y, [x = GradRef(x), NC, H, W, dy, dx, at](const Tensor& g) {
      if (!x.requires_grad()) return;
      bool fresh;
      Tensor& gx = grad_buffer(x, &fresh);
      k::swing_shift_bwd(g.device(), g.data(), NC, H, W, dy, dx, at, gx.data(), !fresh, nullptr);
    });
  }
  return y;
}

}  // namespace genie::ops
