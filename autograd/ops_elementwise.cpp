// Differentiable elementwise ops, reshape and select. Pattern for every op in autograd/:
// validate → allocate output → call the device's kernel → record a backward closure that captures
// only what its gradient needs.
#include "autograd/ops.h"

namespace genie::ops {

using k::UnaryOp;

static Tensor unary(UnaryOp op, float alpha, const Tensor& x) {
  const char* name = k::unary_name(op);
  check_f32(name, x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const Device d = x.device();
  const int64_t n = x.numel();
  if (!needs_grad({&x})) {
    k::unary_fwd(d, op, alpha, x.data(), y.data(), n, nullptr);
    return y;
  }
  if (k::gated_unary(op, alpha)) {
    // ReLU, ReLU6, leaky ReLU (slope >= 0): the backward needs only where the gradient passes, one
    // bit per element written by the forward itself. Neither x nor y is kept (PyTorch keeps the
    // output, 32 times as much): each is freed when its last forward reader is done with it.
    Tensor bits = Tensor::empty({k::gate_words(n)}, d, DType::I32);
    k::unary_fwd_gated(d, op, alpha, x.data(), y.data(), bits.data_as<uint32_t>(), n, nullptr);
    record(name, y, [xr = GradRef(x), bits, op, alpha](const Tensor& dy) {
      if (!xr.requires_grad()) return;
      bool fresh;
      Tensor& dx = grad_buffer(xr, &fresh);
      k::unary_bwd_gated(xr.device(), op, alpha, bits.data_as<uint32_t>(), dy.data(), dx.data(),
                         dy.numel(), !fresh, nullptr);
    });
    return y;
  }
  k::unary_fwd(d, op, alpha, x.data(), y.data(), n, nullptr);
  // tanh/sigmoid/exp differentiate through the output, the others through the input.
  const bool uses_y = op == UnaryOp::Tanh || op == UnaryOp::Sigmoid || op == UnaryOp::Exp;
  const bool uses_x = !uses_y && op != UnaryOp::Scale && op != UnaryOp::AddScalar;
  Tensor xs = uses_x ? x.detach() : Tensor();
  Tensor ys = uses_y ? y.detach() : Tensor();
  record(name, y, [xr = GradRef(x), xs, ys, op, alpha](const Tensor& dy) {
    if (!xr.requires_grad()) return;
    bool fresh;
    Tensor& dx = grad_buffer(xr, &fresh);
    k::unary_bwd(xr.device(), op, alpha, xs.defined() ? xs.data() : nullptr,
                 ys.defined() ? ys.data() : nullptr, dy.data(), dx.data(), dy.numel(), !fresh,
                 nullptr);
  });
  return y;
}

Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, 0.f, x); }
Tensor relu6(const Tensor& x) { return unary(UnaryOp::Relu6, 0.f, x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary(UnaryOp::LeakyRelu, slope, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, 0.f, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, 0.f, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::Square, 0.f, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, 0.f, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, 0.f, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, 0.f, x); }
Tensor hardswish(const Tensor& x) { return unary(UnaryOp::Hardswish, 0.f, x); }
Tensor hardsigmoid(const Tensor& x) { return unary(UnaryOp::Hardsigmoid, 0.f, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::Gelu, 0.f, x); }
Tensor mul_scalar(const Tensor& x, float a) { return unary(UnaryOp::Scale, a, x); }
Tensor add_scalar(const Tensor& x, float a) { return unary(UnaryOp::AddScalar, a, x); }

static Tensor binary(k::BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_f32(name, a);
  check_f32(name, b);
  check_same_shape(name, a, b);
  check_same_device(name, a, b);
  Tensor y = Tensor::empty(a.shape(), a.device());
  k::binary_fwd(a.device(), op, a.data(), b.data(), y.data(), a.numel(), nullptr);
  if (needs_grad({&a, &b})) {
    const bool mul = op == k::BinaryOp::Mul;
    Tensor as = mul ? a.detach() : Tensor(), bs = mul ? b.detach() : Tensor();
    record(name, y, [a = GradRef(a), b = GradRef(b), as, bs, op, mul, name](const Tensor& dy) {
      const Device d = dy.device();
      const int64_t n = dy.numel();
      auto push = [&](const GradRef& t, float sign, const Tensor& other, bool pass_dy) {
        if (!t.requires_grad()) return;
        if (pass_dy) {  // d(a ± b)/da = 1: dy itself (adopted when ours alone, else added in)
          accumulate_grad(t, dy, name);
          return;
        }
        Tensor g = Tensor::empty(t.shape(), d);
        if (other.defined())
          k::binary_fwd(d, k::BinaryOp::Mul, dy.data(), other.data(), g.data(), n, nullptr);
        else
          k::axpby(d, sign, dy.data(), 0.f, g.data(), n, nullptr);
        accumulate_grad(t, g, name);
      };
      // b first: a may take dy itself, after which dy must not be read again.
      push(b, op == k::BinaryOp::Sub ? -1.f : 1.f, as, false);
      push(a, 1.f, bs, !mul);
    });
  }
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(k::BinaryOp::Add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(k::BinaryOp::Sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(k::BinaryOp::Mul, "mul", a, b); }

Tensor select(const Tensor& mask, const Tensor& a, const Tensor& b) {
  GENIE_CHECK(mask.dtype() == DType::U8, "[select] expected a u8 mask, got ", mask.describe());
  check_same_shape("select", mask, a);
  check_same_shape("select", a, b);
  check_same_device("select", mask, a);
  check_same_device("select", a, b);
  Tensor y = Tensor::empty(a.shape(), a.device());
  const Device d = a.device();
  k::select_mask(d, mask.data_as<uint8_t>(), a.data(), b.data(), y.data(), a.numel(), nullptr);
  if (needs_grad({&a, &b})) {
    record("select", y, [mask, a = GradRef(a), b = GradRef(b)](const Tensor& dy) {
      const Device d = dy.device();
      const int64_t n = dy.numel();
      Tensor zero = Tensor::zeros(dy.shape(), d);
      if (a.requires_grad()) {
        Tensor g = Tensor::empty(a.shape(), d);
        k::select_mask(d, mask.data_as<uint8_t>(), dy.data(), zero.data(), g.data(), n, nullptr);
        accumulate_grad(a, g, "select");
      }
      if (b.requires_grad()) {
        Tensor g = Tensor::empty(b.shape(), d);
        k::select_mask(d, mask.data_as<uint8_t>(), zero.data(), dy.data(), g.data(), n, nullptr);
        accumulate_grad(b, g, "select");
      }
    });
  }
  return y;
}

Tensor reshape(const Tensor& x, const Shape& s) {
  GENIE_CHECK(numel_of(s) == x.numel(), "[reshape] cannot reshape ", shape_str(x.shape()), " to ",
              shape_str(s));
  Tensor y = x.detach();
  y.impl()->shape = s;
  if (needs_grad({&x})) {
    record("reshape", y, [x = GradRef(x)](const Tensor& dy) {
      Tensor g = dy.detach();
      g.impl()->shape = x.shape();
      accumulate_grad(x, g, "reshape");
    });
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  GENIE_CHECK(x.ndim() >= 1, "[flatten] expected at least 1 dimension, got a scalar");
  return reshape(x, {x.dim(0), x.numel() / std::max<int64_t>(x.dim(0), 1)});
}

}  // namespace genie::ops
