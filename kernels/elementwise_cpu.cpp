// CPU drivers for elementwise kernels, Philox draws and Adam: loops only; the math is in
// functors.h.
#include <cmath>
#include <cstring>

#include "kernels/adam.h"
#include "kernels/cpu_loop.h"
#include "kernels/elementwise.h"
#include "kernels/functors.h"
#include "kernels/philox.h"

namespace genie::k {

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::Relu6:
      return "relu6";
    case UnaryOp::LeakyRelu:
      return "leaky_relu";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Scale:
      return "mul_scalar";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::Abs:
      return "abs";
    case UnaryOp::AddScalar:
      return "add_scalar";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Silu:
      return "silu";
    case UnaryOp::Hardswish:
      return "hardswish";
    case UnaryOp::Hardsigmoid:
      return "hardsigmoid";
    case UnaryOp::Gelu:
      return "gelu";
  }
  return "?";
}

void unary_fwd_cpu(UnaryOp op, float alpha, const float* x, float* y, int64_t n, Stream) {
  // [=] captures: see cpu_for (kernels/cpu_loop.h) — by value, the loop vectorises.
  visit_unary(op, alpha, [&](auto f) { cpu_for(n, [=](int64_t i) { y[i] = f.fwd(x[i]); }); });
}

void unary_bwd_cpu(UnaryOp op, float alpha, const float* x, const float* y, const float* dy,
                   float* dx, int64_t n, bool acc, Stream) {
  visit_unary(op, alpha, [&](auto f) {
    cpu_for(n, [=](int64_t i) {
      const float g = f.bwd(x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i]);
      dx[i] = acc ? dx[i] + g : g;
    });
  });
}

bool gated_unary(UnaryOp op, float alpha) {
  return visit_gated(op, alpha, [](auto) {});
}

void unary_fwd_gated_cpu(UnaryOp op, float alpha, const float* x, float* y, uint32_t* bits,
                         int64_t n, Stream) {
  const int64_t words = gate_words(n);
  const bool ok = visit_gated(op, alpha, [&](auto f) {
    cpu_for_outer(words, 32, [=](int64_t w) {
      const int64_t i0 = w * 32, m = n - i0 < 32 ? n - i0 : 32;
      uint32_t word = 0;
      for (int64_t j = 0; j < m; ++j) {
        const float v = f.fwd(x[i0 + j]);
        y[i0 + j] = v;
        word |= uint32_t(f.gate(v)) << j;
      }
      bits[w] = word;
    });
  });
  GENIE_CHECK(ok, "[unary_fwd_gated] ", unary_name(op), " is not a gated op");
}

void unary_bwd_gated_cpu(UnaryOp op, float alpha, const uint32_t* bits, const float* dy, float* dx,
                         int64_t n, bool acc, Stream) {
  const bool ok = visit_gated(op, alpha, [&](auto f) {
    cpu_for(n, [=](int64_t i) {
      const float g = f.bwd((bits[i >> 5] >> (i & 31)) & 1u ? 1.f : 0.f, 0.f, dy[i]);
      dx[i] = acc ? dx[i] + g : g;
    });
  });
  GENIE_CHECK(ok, "[unary_bwd_gated] ", unary_name(op), " is not a gated op");
}

void f32_to_bf16_cpu(const float* x, uint16_t* y, int64_t n, Stream) {
  cpu_for(n, [=](int64_t i) { y[i] = Bf16F::from_float(x[i]); });
}

void bf16_to_f32_cpu(const uint16_t* x, float* y, int64_t n, bool acc, Stream) {
  cpu_for(n, [=](int64_t i) {
    const float v = Bf16F::to_float(x[i]);
    y[i] = acc ? y[i] + v : v;
  });
}

void binary_fwd_cpu(BinaryOp op, const float* a, const float* b, float* y, int64_t n, Stream) {
  visit_binary(op, [&](auto f) { cpu_for(n, [=](int64_t i) { y[i] = f(a[i], b[i]); }); });
}

void axpby_cpu(float alpha, const float* x, float beta, float* y, int64_t n, Stream) {
  if (beta == 0.f)
    cpu_for(n, [=](int64_t i) { y[i] = alpha * x[i]; });
  else
    cpu_for(n, [=](int64_t i) { y[i] = alpha * x[i] + beta * y[i]; });
}

void fill_cpu(float* y, float v, int64_t n, Stream) {
  cpu_for(n, [=](int64_t i) { y[i] = v; });
}

void gather_rows_cpu(const float* x, const int32_t* idx, int64_t n, int64_t row, float* y, Stream) {
  cpu_for_outer(n, row, [=](int64_t i) {
    std::memcpy(y + i * row, x + int64_t(idx[i]) * row, size_t(row) * sizeof(float));
  });
}

void select_mask_cpu(const uint8_t* m, const float* a, const float* b, float* y, int64_t n,
                     Stream) {
  cpu_for(n, [=](int64_t i) { y[i] = m[i] ? a[i] : b[i]; });
}

void channel_affine_cpu(const float* x, const float* scale, const float* shift, float* y, int64_t N,
                        int64_t C, int64_t HW, Stream) {
  cpu_for_outer(N * C, HW, [&](int64_t nc) {
    const int64_t c = nc % C;
    const float a = scale[c], b = shift ? shift[c] : 0.f;
    const float* xp = x + nc * HW;
    float* yp = y + nc * HW;
    for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * a + b;
  });
}

void u8_to_f32_cpu(const uint8_t* x, float* y, int64_t n, Stream) {
  cpu_for(n, [=](int64_t i) { y[i] = float(x[i]); });
}

void philox_uniform_cpu(uint64_t seed, uint64_t offset, float* y, int64_t n, Stream) {
  const PhiloxUniformF f{seed, offset};
  cpu_for(n, [=](int64_t i) { y[i] = f(i); });
}

void philox_normal_cpu(uint64_t seed, uint64_t offset, float mean, float std, float* y, int64_t n,
                       Stream) {
  const PhiloxNormalF f{seed, offset, mean, std};
  cpu_for(n, [=](int64_t i) { y[i] = f(i); });
}

void philox_bernoulli_cpu(uint64_t seed, uint64_t offset, const uint64_t* offset_at, float p,
                          uint8_t* m, int64_t n, Stream) {
  const PhiloxUniformF f{seed, offset + (offset_at ? *offset_at : 0)};
  cpu_for(n, [=](int64_t i) { m[i] = f(i) < p ? 1 : 0; });
}

void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                   Stream) {
  AdamF f = AdamF::make(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step);
  if (h.at) f.set_schedule(h.at);
  cpu_for(n, [=](int64_t i) { f(p[i], g[i], m[i], v[i]); });
}

}  // namespace genie::k
