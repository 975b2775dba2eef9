// Differentiable conv2d and linear: validate → kernel → backward closure (data, filter, bias
// gradients, each only when its tensor requires grad).
#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"
#include "kernels/spatial.h"

namespace genie::ops {

using detail::need_device;
using detail::need_f32_nd;

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t pad,
              int64_t groups) {
  const char* op = "conv2d";
  need_f32_nd(op, "input (N, C, H, W)", x, 4);
  need_f32_nd(op, "weight (K, C/groups, R, S)", w, 4);
  const Device dev = x.device();
  need_device(op, "weight", w, dev);
  GENIE_CHECK(stride >= 1 && pad >= 0 && groups >= 1, "[", op,
              "] expected stride >= 1, pad >= 0, groups >= 1, got stride ", stride, ", pad ", pad,
              ", groups ", groups);
  k::ConvShape cs;
  cs.N = x.dim(0);
  cs.C = x.dim(1);
  cs.H = x.dim(2);
  cs.W = x.dim(3);
  cs.K = w.dim(0);
  cs.R = w.dim(2);
  cs.S = w.dim(3);
  cs.stride = stride;
  cs.pad = pad;
  cs.groups = groups;
  GENIE_CHECK(cs.C % groups == 0 && cs.K % groups == 0, "[", op, "] expected input channels ", cs.C,
              " and output channels ", cs.K, " divisible by groups = ", groups, ", got input ",
              shape_str(x.shape()), " and weight ", shape_str(w.shape()));
  GENIE_CHECK(w.dim(1) == cs.C / groups, "[", op,
              "] expected weight (K, C/groups, R, S) with C/groups = ", cs.C / groups, ", got ",
              shape_str(w.shape()), " for input ", shape_str(x.shape()));
  GENIE_CHECK(cs.R >= 1 && cs.S >= 1 && cs.H + 2 * pad >= cs.R && cs.W + 2 * pad >= cs.S, "[", op,
              "] expected a kernel that fits the padded input, got input ", shape_str(x.shape()),
              ", weight ", shape_str(w.shape()), ", pad ", pad);
  detail::need_vec_or_none(op, "bias", bias, cs.K, dev);

  Tensor y = Tensor::empty({cs.N, cs.K, cs.P(), cs.Q()}, dev);  // (N, K, P, Q)
  if (y.numel() > 0 && x.numel() > 0)
    k::conv2d_fwd(dev, cs, x.data(), w.data(), detail::ptr_or_null(bias), y.data(), nullptr);
  if (needs_grad({&x, &w, &bias})) {
    // The data gradient needs w, the filter gradient x: keep each only when the other wants a
    // gradient (a frozen teacher's activations are not kept for its convolutions).
    Tensor xs = w.requires_grad() ? x : Tensor(), ws = x.requires_grad() ? w : Tensor();
    record(op, y,
           [xr = GradRef(x), wr = GradRef(w), br = GradRef(bias), xs, ws, cs](const Tensor& dy) {
             const Device d = dy.device();
             bool fresh;
             if (xr.requires_grad()) {
               Tensor& dx = grad_buffer(xr, &fresh);
               k::conv2d_bwd_data(d, cs, dy.data(), ws.data(), dx.data(), !fresh, nullptr);
             }
             if (wr.requires_grad()) {
               Tensor& dw = grad_buffer(wr, &fresh);
               k::conv2d_bwd_filter(d, cs, xs.data(), dy.data(), dw.data(), !fresh, nullptr);
             }
             if (br.requires_grad()) {
               Tensor& db = grad_buffer(br, &fresh);
               k::channel_sum(d, dy.data(), cs.N, cs.K, cs.P() * cs.Q(), db.data(), !fresh,
                              nullptr);
             }
           });
  }
  return y;
}

Tensor upsample2x_conv3x3(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const char* op = "upsample2x_conv3x3";
  need_f32_nd(op, "input (N, C, H, W)", x, 4);
  need_f32_nd(op, "weight (K, C, 3, 3)", w, 4);
  const Device dev = x.device();
  need_device(op, "weight", w, dev);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), K = w.dim(0);
  GENIE_CHECK(w.dim(1) == C && w.dim(2) == 3 && w.dim(3) == 3, "[", op,
              "] expected weight (K, C, 3, 3) with C = ", C, ", got ", shape_str(w.shape()),
              " for input ", shape_str(x.shape()));
  detail::need_vec_or_none(op, "bias", bias, K, dev);
  // The four parities' 2x2 convolutions as one: stacked filter wp (4K, C, 2, 2), padding 1,
  // output z (N, 4K, H+1, W+1). wp and z are temporaries (one tape node, nothing but x, w and
  // bias kept for the backward).
  k::ConvShape cs;
  cs.N = N;
  cs.C = C;
  cs.H = H;
  cs.W = W;
  cs.K = 4 * K;
  cs.R = cs.S = 2;
  cs.pad = 1;
  Tensor y = Tensor::empty({N, K, 2 * H, 2 * W}, dev);
  if (y.numel() == 0) return y;
  {
    Tensor wp = Tensor::empty({4 * K, C, 2, 2}, dev),
           z = Tensor::empty({N, 4 * K, H + 1, W + 1}, dev);
    k::parity_weights_fwd(dev, w.data(), K, C, wp.data(), nullptr);
    k::conv2d_fwd(dev, cs, x.data(), wp.data(), nullptr, z.data(), nullptr);
    k::parity_interleave_fwd(dev, z.data(), detail::ptr_or_null(bias), N, K, H, W, y.data(),
                             nullptr);
  }
  if (needs_grad({&x, &w, &bias})) {
    Tensor xs = w.requires_grad() ? x : Tensor(), ws = x.requires_grad() ? w : Tensor();
    record(op, y,
           [xr = GradRef(x), wr = GradRef(w), br = GradRef(bias), xs, ws, cs](const Tensor& dy) {
             const Device d = dy.device();
             const int64_t N = cs.N, C = cs.C, H = cs.H, W = cs.W, K = cs.K / 4;
             bool fresh;
             if (xr.requires_grad() || wr.requires_grad()) {
               Tensor dz = Tensor::empty({N, 4 * K, H + 1, W + 1}, d);
               k::parity_interleave_bwd(d, dy.data(), N, K, H, W, dz.data(), false, nullptr);
               if (xr.requires_grad()) {
                 Tensor wp = Tensor::empty({4 * K, C, 2, 2}, d);
                 k::parity_weights_fwd(d, ws.data(), K, C, wp.data(), nullptr);
                 Tensor& dx = grad_buffer(xr, &fresh);
                 k::conv2d_bwd_data(d, cs, dz.data(), wp.data(), dx.data(), !fresh, nullptr);
               }
               if (wr.requires_grad()) {
                 Tensor dwp = Tensor::empty({4 * K, C, 2, 2}, d);
                 k::conv2d_bwd_filter(d, cs, xs.data(), dz.data(), dwp.data(), false, nullptr);
                 Tensor& dw = grad_buffer(wr, &fresh);
                 k::parity_weights_bwd(d, dwp.data(), K, C, dw.data(), !fresh, nullptr);
               }
             }
             if (br.requires_grad()) {
               Tensor& db = grad_buffer(br, &fresh);
               k::channel_sum(d, dy.data(), N, K, 4 * H * W, db.data(), !fresh, nullptr);
             }
           });
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const char* op = "linear";
  need_f32_nd(op, "input (N, in)", x, 2);
  need_f32_nd(op, "weight (out, in)", w, 2);
  const Device dev = x.device();
  need_device(op, "weight", w, dev);
  const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
  GENIE_CHECK(w.dim(1) == in, "[", op, "] expected weight (out, in) with in = ", in, ", got ",
              shape_str(w.shape()), " for input ", shape_str(x.shape()));
  detail::need_vec_or_none(op, "bias", bias, out, dev);

  Tensor y = Tensor::empty({N, out}, dev);  // (N, out)
  // y = x w^T, then y += ones (N x 1) * bias (1 x out): a rank-1 GEMM broadcasts the bias with
  // the same kernel on every device.
  k::gemm(dev, false, true, N, out, in, 1.f, x.data(), in, w.data(), in, 0.f, y.data(), out,
          nullptr);
  if (bias.defined()) {
    Tensor ones = Tensor::full({N}, 1.f, dev);
    k::gemm(dev, false, false, N, out, 1, 1.f, ones.data(), 1, bias.data(), out, 1.f, y.data(), out,
            nullptr);
  }
  if (needs_grad({&x, &w, &bias})) {
    record(op, y, [x, w, bias, N, in, out](const Tensor& dy) {
      const Device d = dy.device();
      bool fresh;
      if (x.requires_grad()) {  // dx (N, in) = dy (N, out) * w (out, in)
        Tensor& dx = grad_buffer(x, &fresh);
        k::gemm(d, false, false, N, in, out, 1.f, dy.data(), out, w.data(), in, fresh ? 0.f : 1.f,
                dx.data(), in, nullptr);
      }
      if (w.requires_grad()) {  // dw (out, in) = dy^T (out, N) * x (N, in)
        Tensor& dw = grad_buffer(w, &fresh);
        k::gemm(d, true, false, out, in, N, 1.f, dy.data(), out, x.data(), in, fresh ? 0.f : 1.f,
                dw.data(), in, nullptr);
      }
      if (bias.defined() && bias.requires_grad()) {  // db (out) = column sums of dy
        Tensor& db = grad_buffer(bias, &fresh);
        k::channel_sum(d, dy.data(), N, out, 1, db.data(), !fresh, nullptr);
      }
    });
  }
  return y;
}

}  // namespace genie::ops
