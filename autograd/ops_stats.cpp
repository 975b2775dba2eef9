// Differentiable moment statistics: per-channel mean/var over (N, H, W) and per-(n, c) mean/std
// over (H, W). Each statistic is its own tape node (mean, second moment), so a loss that uses only
// one of them pays only for that one's backward.
#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/reduce.h"
#include "kernels/stats.h"

namespace genie::ops {

namespace {

// Records the backward of `out` (= mean when is_mean, else the second moment) for x viewed as
// (N, G, L).
void record_moment(const char* op, Tensor& out, bool is_mean, const Tensor& x, const Tensor& mean,
                   const Tensor& second, int64_t N, int64_t G, int64_t L, bool is_std,
                   bool unbiased) {
  record(op, out,
         [x, m = mean.detach(), s = second.detach(), is_mean, N, G, L, is_std,
          unbiased](const Tensor& dy) {
           if (!x.requires_grad()) return;
           bool fresh;
           Tensor& dx = grad_buffer(x, &fresh);
           k::moments_bwd(dy.device(), x.data(), N, G, L, m.data(), s.data(),
                          is_mean ? dy.data() : nullptr, is_mean ? nullptr : dy.data(), is_std,
                          unbiased, dx.data(), !fresh, nullptr);
         });
}

}  // namespace

std::pair<Tensor, Tensor> channel_mean_var(const Tensor& x, bool unbiased) {
  const char* op = "channel_mean_var";
  GENIE_CHECK(x.defined() && x.dtype() == DType::F32, "[", op, "] expected input f32, got ",
              x.describe());
  GENIE_CHECK(x.ndim() == 4 || x.ndim() == 2, "[", op,
              "] expected input (N, C, H, W) or (N, C), got ", shape_str(x.shape()));
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  GENIE_CHECK(N * HW > (unbiased ? 1 : 0), "[", op, "] expected more than ", unbiased ? 1 : 0,
              " values per channel", unbiased ? " (unbiased)" : "", ", got input ",
              shape_str(x.shape()));
  const Device dev = x.device();
  Tensor mean = Tensor::empty({C}, dev), var = Tensor::empty({C}, dev);
  k::channel_mean_var(dev, x.data(), N, C, HW, unbiased, mean.data(), var.data(), nullptr);
  if (needs_grad({&x})) {
    record_moment("channel_mean", mean, true, x, mean, var, N, C, HW, false, unbiased);
    record_moment("channel_var", var, false, x, mean, var, N, C, HW, false, unbiased);
  }
  return {mean, var};
}

std::pair<Tensor, Tensor> spatial_mean_std(const Tensor& x, bool unbiased) {
  const char* op = "spatial_mean_std";
  detail::need_f32_nd(op, "input (N, C, H, W)", x, 4);
  const int64_t rows = x.dim(0) * x.dim(1), len = x.dim(2) * x.dim(3);
  GENIE_CHECK(len > (unbiased ? 1 : 0), "[", op, "] expected more than ", unbiased ? 1 : 0,
              " values per plane", unbiased ? " (unbiased)" : "", ", got input ",
              shape_str(x.shape()));
  const Device dev = x.device();
  Tensor mean = Tensor::empty({x.dim(0), x.dim(1)}, dev),
         sd = Tensor::empty({x.dim(0), x.dim(1)}, dev);
  k::row_mean_std(dev, x.data(), rows, len, unbiased, mean.data(), sd.data(), nullptr);
  if (needs_grad({&x})) {
    record_moment("spatial_mean", mean, true, x, mean, sd, 1, rows, len, true, unbiased);
    record_moment("spatial_std", sd, false, x, mean, sd, 1, rows, len, true, unbiased);
  }
  return {mean, sd};
}

}  // namespace genie::ops
