// Differentiable fake-quant ops (weight AdaRound + learned step, activation LSQ + QDrop, the
// rounding regulariser): validate, call the fused forward kernel, record the fused backward.
#include "autograd/ops_quant.h"

#include "kernels/quant.h"
#include "kernels/quant_functors.h"

namespace genie::ops {

Tensor fake_quant_weight(const Tensor& w_floor, const Tensor& v, const Tensor& step,
                         const Tensor& zero, int bits, bool hard) {
  const char* op = "fake_quant_weight";
  for (const Tensor* t : {&w_floor, &v, &step, &zero}) check_f32(op, *t);
  check_same_shape(op, w_floor, v);
  check_same_device(op, w_floor, v);
  check_same_device(op, w_floor, step);
  check_same_device(op, w_floor, zero);
  GENIE_CHECK(w_floor.ndim() >= 1, "[", op,
              "] expected a weight with an output-channel dimension, "
              "got ",
              shape_str(w_floor.shape()));
  const int64_t K = w_floor.dim(0), M = K ? w_floor.numel() / K : 0;
  GENIE_CHECK(step.numel() == K && zero.numel() == K, "[", op, "] expected ", K,
              " per-channel steps and zero points, got ", step.numel(), " and ", zero.numel());
  k::check_bits(op, bits);
  const float qmax = k::grid_max(bits);
  const Device d = w_floor.device();
  Tensor w_hat = Tensor::empty(w_floor.shape(), d);
  const bool grad = needs_grad({&v, &step});
  Tensor mask = grad ? Tensor::empty(w_floor.shape(), d, DType::U8) : Tensor();
  k::wquant_fwd(d, w_floor.data(), v.data(), step.data(), zero.data(), K, M, qmax, hard,
                w_hat.data(), grad ? mask.data_as<uint8_t>() : nullptr, nullptr);
  if (grad) {
    Tensor wf = w_floor.detach(), vs = v.detach(), ss = step.detach(), zs = zero.detach();
    record(op, w_hat, [wf, vs, ss, zs, mask, v, step, K, M, qmax, hard](const Tensor& dy) {
      const bool want_v = v.requires_grad() && !hard, want_s = step.requires_grad();
      if (!want_v && !want_s) return;
      bool fresh_v = true, fresh_s = true;
      float* dv = want_v ? grad_buffer(v, &fresh_v).data() : nullptr;
      float* ds = want_s ? grad_buffer(step, &fresh_s).data() : nullptr;
      const Device d = dy.device();
      if (want_v && want_s && fresh_v != fresh_s) {
        // One kernel writes both; make the accumulate flag agree by zeroing the fresh one.
        if (fresh_v) grad_buffer(v, &fresh_v).zero_();
        if (fresh_s) grad_buffer(step, &fresh_s).zero_();
        fresh_v = fresh_s = false;
      }
      const bool acc = want_v ? !fresh_v : !fresh_s;
      k::wquant_bwd(d, dy.data(), wf.data(), vs.data(), ss.data(), zs.data(),
                    mask.data_as<uint8_t>(), K, M, qmax, hard, dv, ds, acc, nullptr);
    });
  }
  return w_hat;
}

Tensor fake_quant_act(const Tensor& x, const Tensor& step, float qn, float qp,
                      const Tensor& qdrop_mask) {
  const char* op = "fake_quant_act";
  check_f32(op, x);
  check_f32(op, step);
  check_same_device(op, x, step);
  GENIE_CHECK(step.numel() == 1, "[", op, "] expected a 1-element step, got ",
              shape_str(step.shape()));
  GENIE_CHECK(qn < qp, "[", op, "] expected qn < qp, got [", qn, ", ", qp, "]");
  if (qdrop_mask.defined()) {
    GENIE_CHECK(qdrop_mask.dtype() == DType::U8, "[", op, "] expected a u8 QDrop mask, got ",
                qdrop_mask.describe());
    check_same_shape(op, x, qdrop_mask);
    check_same_device(op, x, qdrop_mask);
  }
  const Device d = x.device();
  const int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape(), d);
  const bool grad = needs_grad({&x, &step});
  Tensor code = grad ? Tensor::empty(x.shape(), d, DType::U8) : Tensor();
  k::aquant_fwd(d, x.data(), step.data(), qn, qp,
                qdrop_mask.defined() ? qdrop_mask.data_as<uint8_t>() : nullptr, n, y.data(),
                grad ? code.data_as<uint8_t>() : nullptr, nullptr);
  if (grad) {
    Tensor xs = x.detach(), ss = step.detach();
    record(op, y, [x, step, xs, ss, code, qn, qp, n](const Tensor& dy) {
      const bool want_x = x.requires_grad(), want_s = step.requires_grad();
      if (!want_x && !want_s) return;
      bool fresh_x = true, fresh_s = true;
      float* dx = want_x ? grad_buffer(x, &fresh_x).data() : nullptr;
      float* ds = want_s ? grad_buffer(step, &fresh_s).data() : nullptr;
      if (want_x && want_s && fresh_x != fresh_s) {
        if (fresh_x) grad_buffer(x, &fresh_x).zero_();
        if (fresh_s) grad_buffer(step, &fresh_s).zero_();
        fresh_x = fresh_s = false;
      }
      const bool acc = want_x ? !fresh_x : !fresh_s;
      k::aquant_bwd(dy.device(), dy.data(), xs.data(), ss.data(), code.data_as<uint8_t>(), qn, qp,
                    n, dx, ds, acc, nullptr);
    });
  }
  return y;
}

Tensor qdrop_mask(const Shape& s, Generator& g, Device d) {
  Tensor m = Tensor::empty(s, d, DType::U8);
  k::qdrop_mask(d, g.seed, g.offset, g.offset_at, m.data_as<uint8_t>(), m.numel(), nullptr);
  g.offset += k::qdrop_counters(m.numel());
  return m;
}

Tensor rounding_reg(const Tensor& v, float beta, const float* beta_at) {
  check_f32("rounding_reg", v);
  const Device d = v.device();
  Tensor out = Tensor::empty({}, d);
  k::round_reg_fwd(d, v.data(), v.numel(), beta, beta_at, out.data(), nullptr);
  if (needs_grad({&v})) {
    Tensor vs = v.detach();
    record("rounding_reg", out, [v, vs, beta, beta_at](const Tensor& dout) {
      bool fresh;
      Tensor& g = grad_buffer(v, &fresh);
      k::round_reg_bwd(dout.device(), vs.data(), vs.numel(), beta, beta_at, dout.data(), g.data(),
                       !fresh, nullptr);
    });
  }
  return out;
}

}  // namespace genie::ops
