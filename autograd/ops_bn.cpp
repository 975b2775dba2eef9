// Differentiable batch normalisation, eval mode (running statistics are constants) and training
// mode (batch statistics, biased variance, gradient through the statistics). x is (N, C, H, W) or
// (N, C); gamma/beta are optional (both undefined = no affine).
#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/bn.h"

namespace genie::ops {

using detail::need_vec_or_none;
using detail::ptr_or_null;

namespace {

struct BnDims {
  int64_t N, C, HW;
};

BnDims bn_dims(const char* op, const Tensor& x) {
  GENIE_CHECK(x.defined(), "[", op, "] expected a defined input, got an undefined tensor");
  GENIE_CHECK(x.dtype() == DType::F32, "[", op, "] expected input f32, got ", x.describe());
  GENIE_CHECK(x.ndim() == 4 || x.ndim() == 2, "[", op,
              "] expected input (N, C, H, W) or (N, C), got ", shape_str(x.shape()));
  const int64_t hw = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  return BnDims{x.dim(0), x.dim(1), hw};
}

// Backward shared by both modes: dx into x's gradient buffer (overwrite when fresh); parameter
// gradients into zeroed C-sized buffers (the kernel's accumulate flag then is harmless for them)
// that are accumulated into gamma/beta.
template <class Kernel>
void bn_backward(const GradRef& x, const Tensor& gamma, const Tensor& beta, int64_t C,
                 const char* op, Kernel&& kernel) {
  const Device d = x.device();
  const bool want_dg = gamma.defined() && gamma.requires_grad();
  const bool want_db = beta.defined() && beta.requires_grad();
  Tensor dg = want_dg ? Tensor::zeros({C}, d) : Tensor();
  Tensor db = want_db ? Tensor::zeros({C}, d) : Tensor();
  float* dx = nullptr;
  bool acc = false;
  if (x.requires_grad()) {
    bool fresh;
    dx = grad_buffer(x, &fresh).data();
    acc = !fresh;
  } else if (!want_dg && !want_db) {
    return;
  }
  if (!dx) acc = true;  // only parameter gradients, into zeroed buffers
  kernel(dx, want_dg ? dg.data() : nullptr, want_db ? db.data() : nullptr, acc);
  if (want_dg) accumulate_grad(gamma, dg, op);
  if (want_db) accumulate_grad(beta, db, op);
}

}  // namespace

Tensor batch_norm_eval(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
                       const Tensor& beta, float eps) {
  const char* op = "batch_norm_eval";
  const BnDims s = bn_dims(op, x);
  const Device dev = x.device();
  GENIE_CHECK(mean.defined() && var.defined(), "[", op,
              "] expected running mean and var, got an undefined tensor");
  need_vec_or_none(op, "running mean", mean, s.C, dev);
  need_vec_or_none(op, "running var", var, s.C, dev);
  need_vec_or_none(op, "gamma", gamma, s.C, dev);
  need_vec_or_none(op, "beta", beta, s.C, dev);
  GENIE_CHECK(eps >= 0.f, "[", op, "] expected eps >= 0, got ", eps);

  Tensor y = Tensor::empty(x.shape(), dev);
  k::bn_eval_fwd(dev, x.data(), s.N, s.C, s.HW, mean.data(), var.data(), ptr_or_null(gamma),
                 ptr_or_null(beta), eps, y.data(), nullptr);
  if (needs_grad({&x, &gamma, &beta})) {
    // x's values only feed the affine parameters' gradients (a frozen teacher keeps none).
    const bool params =
        (gamma.defined() && gamma.requires_grad()) || (beta.defined() && beta.requires_grad());
    Tensor xs = params ? x : Tensor();
    record(op, y, [xr = GradRef(x), xs, mean, var, gamma, beta, eps, s, op](const Tensor& dy) {
      bn_backward(xr, gamma, beta, s.C, op, [&](float* dx, float* dg, float* db, bool acc) {
        k::bn_eval_bwd(dy.device(), ptr_or_null(xs), dy.data(), s.N, s.C, s.HW, mean.data(),
                       var.data(), ptr_or_null(gamma), eps, dx, dg, db, acc, nullptr);
      });
    });
  }
  return y;
}

Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  const char* op = "batch_norm_train";
  const BnDims s = bn_dims(op, x);
  const Device dev = x.device();
  need_vec_or_none(op, "gamma", gamma, s.C, dev);
  need_vec_or_none(op, "beta", beta, s.C, dev);
  GENIE_CHECK(s.N * s.HW > 1, "[", op,
              "] expected more than 1 value per channel in training mode, got input ",
              shape_str(x.shape()));
  GENIE_CHECK(eps >= 0.f, "[", op, "] expected eps >= 0, got ", eps);

  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor save_mean = Tensor::empty({s.C}, dev), save_invstd = Tensor::empty({s.C}, dev);
  k::bn_train_fwd(dev, x.data(), s.N, s.C, s.HW, ptr_or_null(gamma), ptr_or_null(beta), eps,
                  y.data(), save_mean.data(), save_invstd.data(), nullptr);
  if (needs_grad({&x, &gamma, &beta})) {
    record(op, y, [x, gamma, beta, save_mean, save_invstd, s, op](const Tensor& dy) {
      bn_backward(GradRef(x), gamma, beta, s.C, op, [&](float* dx, float* dg, float* db, bool acc) {
        k::bn_train_bwd(dy.device(), x.data(), dy.data(), s.N, s.C, s.HW, ptr_or_null(gamma),
                        save_mean.data(), save_invstd.data(), dx, dg, db, acc, nullptr);
      });
    });
  }
  return y;
}

}  // namespace genie::ops
