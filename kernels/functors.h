// The math of every elementwise op, written once as __host__ __device__ functors. The CPU loops
// (kernels/*_cpu.cpp) and the CUDA launches (kernels/*.cu) instantiate the same structs, so
// the two backends cannot drift apart. Keep these free of libm calls whose CPU/GPU results differ
// where exactness matters (rounding in the quantizers uses rintf, which is exact on both).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/common.h"
#include "kernels/elementwise.h"

namespace genie::k {

// ReLU, ReLU6 and leaky ReLU (slope >= 0) are gated: the gradient passes unscaled where gate()
// holds and is off(dy) elsewhere, and gate() of the output equals gate() of the input, so the
// backward needs one bit per element (kernels/elementwise.h: unary_fwd_gated / unary_bwd_gated).
struct ReluF {
  float a;
  // NaN propagates (as torch.relu): a ReLU must not turn a NaN into a harmless-looking 0.
  GENIE_HD float fwd(float x) const { return x <= 0.f ? 0.f : x; }
  GENIE_HD bool gate(float v) const { return v > 0.f; }
  GENIE_HD float off(float) const { return 0.f; }
  GENIE_HD float bwd(float x, float, float dy) const { return gate(x) ? dy : off(dy); }
};
struct Relu6F {
  float a;
  GENIE_HD float fwd(float x) const { return x < 0.f ? 0.f : (x > 6.f ? 6.f : x); }
  // PyTorch's hardtanh backward: gradient passes strictly inside (0, 6)
  GENIE_HD bool gate(float v) const { return v > 0.f && v < 6.f; }
  GENIE_HD float off(float) const { return 0.f; }
  GENIE_HD float bwd(float x, float, float dy) const { return gate(x) ? dy : off(dy); }
};
struct LeakyReluF {
  float a;  // negative slope
  GENIE_HD float fwd(float x) const { return x > 0.f ? x : a * x; }
  GENIE_HD bool gate(float v) const { return v > 0.f; }
  GENIE_HD float off(float dy) const { return a * dy; }
  GENIE_HD float bwd(float x, float, float dy) const { return gate(x) ? dy : off(dy); }
};
struct TanhF {
  float a;
  GENIE_HD float fwd(float x) const { return tanhf(x); }
  GENIE_HD float bwd(float, float y, float dy) const { return dy * (1.f - y * y); }
};
struct SigmoidF {
  float a;
  GENIE_HD float fwd(float x) const { return 1.f / (1.f + expf(-x)); }
  GENIE_HD float bwd(float, float y, float dy) const { return dy * y * (1.f - y); }
};
struct ScaleF {
  float a;
  GENIE_HD float fwd(float x) const { return a * x; }
  GENIE_HD float bwd(float, float, float dy) const { return a * dy; }
};
struct SquareF {
  float a;
  GENIE_HD float fwd(float x) const { return x * x; }
  GENIE_HD float bwd(float x, float, float dy) const { return 2.f * x * dy; }
};
struct AbsF {
  float a;
  GENIE_HD float fwd(float x) const { return fabsf(x); }
  GENIE_HD float bwd(float x, float, float dy) const {
    return x > 0.f ? dy : (x < 0.f ? -dy : 0.f);
  }
};
struct AddScalarF {
  float a;
  GENIE_HD float fwd(float x) const { return x + a; }
  GENIE_HD float bwd(float, float, float dy) const { return dy; }
};
struct ExpF {
  float a;
  GENIE_HD float fwd(float x) const { return expf(x); }
  GENIE_HD float bwd(float, float y, float dy) const { return dy * y; }
};

// SiLU, hardswish, hardsigmoid and GELU in PyTorch's scalar formulas (aten/src/ATen/native/cpu/
// Activation.cpp), forward and backward, so values and gradients round as PyTorch's do.
struct SiluF {
  float a;
  // x / (1 + exp(-x)), not x * sigmoid(x): PyTorch's form, one rounding fewer.
  GENIE_HD float fwd(float x) const { return x / (1.f + expf(-x)); }
  GENIE_HD float bwd(float x, float, float dy) const {
    const float s = 1.f / (1.f + expf(-x));
    return dy * s * (1.f + x * (1.f - s));
  }
};
// relu6(t) by comparisons, so a NaN propagates (fminf/fmaxf would turn it into 0 or 6).
GENIE_HD float relu6_nan(float t) { return t < 0.f ? 0.f : (t > 6.f ? 6.f : t); }
struct HardswishF {
  float a;
  GENIE_HD float fwd(float x) const { return x * relu6_nan(x + 3.f) / 6.f; }
  // PyTorch's hardswish_backward (derivatives.yaml, the scalar CPU loop, the CUDA kernel): 0 below
  // -3, dy (x/3 + 1/2) on [-3, 3], both ends included, dy above 3. (Torch 1.13's AVX loop gives dy
  // at exactly 3; the scalar definition is the one followed here.)
  GENIE_HD float bwd(float x, float, float dy) const {
    return x < -3.f ? 0.f : (x <= 3.f ? dy * (x / 3.f + 0.5f) : dy);
  }
};
struct HardsigmoidF {
  float a;
  GENIE_HD float fwd(float x) const { return relu6_nan(x + 3.f) / 6.f; }
  // PyTorch's hardsigmoid_backward: dy / 6 strictly inside (-3, 3), 0 at and beyond +-3.
  GENIE_HD float bwd(float x, float, float dy) const {
    return (x > -3.f && x < 3.f) ? dy * (1.f / 6.f) : 0.f;
  }
};
// GELU, erf form: x/2 (1 + erf(x/sqrt 2)); derivative Phi(x) + x phi(x).
struct GeluF {
  float a;
  static constexpr float kAlpha = float(0.70710678118654752440);  // 1/sqrt(2), M_SQRT1_2
  // M_2_SQRTPI * M_SQRT1_2 / 2 = 1/sqrt(2 pi), rounded once to float as in PyTorch.
  static constexpr float kBeta = float(1.12837916709551257390 * 0.70710678118654752440 * 0.5);
  GENIE_HD float fwd(float x) const { return x * 0.5f * (1.f + erff(x * kAlpha)); }
  GENIE_HD float bwd(float x, float, float dy) const {
    const float cdf = 0.5f * (1.f + erff(x * kAlpha));
    const float pdf = kBeta * expf(x * x * -0.5f);
    return dy * (cdf + x * pdf);
  }
};

// Calls body(functor) with the functor for `op`; used by both drivers.
template <class Body>
inline void visit_unary(UnaryOp op, float alpha, Body&& body) {
  switch (op) {
    case UnaryOp::Relu:
      body(ReluF{alpha});
      break;
    case UnaryOp::Relu6:
      body(Relu6F{alpha});
      break;
    case UnaryOp::LeakyRelu:
      body(LeakyReluF{alpha});
      break;
    case UnaryOp::Tanh:
      body(TanhF{alpha});
      break;
    case UnaryOp::Sigmoid:
      body(SigmoidF{alpha});
      break;
    case UnaryOp::Scale:
      body(ScaleF{alpha});
      break;
    case UnaryOp::Square:
      body(SquareF{alpha});
      break;
    case UnaryOp::Abs:
      body(AbsF{alpha});
      break;
    case UnaryOp::AddScalar:
      body(AddScalarF{alpha});
      break;
    case UnaryOp::Exp:
      body(ExpF{alpha});
      break;
    case UnaryOp::Silu:
      body(SiluF{alpha});
      break;
    case UnaryOp::Hardswish:
      body(HardswishF{alpha});
      break;
    case UnaryOp::Hardsigmoid:
      body(HardsigmoidF{alpha});
      break;
    case UnaryOp::Gelu:
      body(GeluF{alpha});
      break;
  }
}

// The gated subset of visit_unary (ReLU, ReLU6, leaky ReLU with slope >= 0); false for any other
// op (the caller reports it).
template <class Body>
inline bool visit_gated(UnaryOp op, float alpha, Body&& body) {
  switch (op) {
    case UnaryOp::Relu:
      body(ReluF{alpha});
      return true;
    case UnaryOp::Relu6:
      body(Relu6F{alpha});
      return true;
    case UnaryOp::LeakyRelu:
      if (!(alpha >= 0.f)) return false;  // a negative slope flips the sign: the output's gate
      body(LeakyReluF{alpha});            // is not the input's
      return true;
    default:
      return false;
  }
}

struct AddF {
  GENIE_HD float operator()(float a, float b) const { return a + b; }
};
struct SubF {
  GENIE_HD float operator()(float a, float b) const { return a - b; }
};
struct MulF {
  GENIE_HD float operator()(float a, float b) const { return a * b; }
};

template <class Body>
inline void visit_binary(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::Add:
      body(AddF{});
      break;
    case BinaryOp::Sub:
      body(SubF{});
      break;
    case BinaryOp::Mul:
      body(MulF{});
      break;
  }
}

// float <-> bfloat16 (the upper 16 bits of a float): round to nearest, ties to even; NaN stays a
// (quiet) NaN, a value past the largest bfloat16 becomes an infinity. The operand conversion of
// the BF16 precision (kernels/conv.cu, gemm.cu), tested on the CPU.
struct Bf16F {
  GENIE_HD static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
  }
  GENIE_HD static float to_float(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};

// Adam, one element, in PyTorch's operation order (single-tensor path):
// denom = sqrt(v) / sqrt(bc2) + eps;  p -= (lr / bc1) * m / denom.  bc = 1 - beta^t.
struct AdamF {
  float beta1, beta2, eps, wd, step_size, sqrt_bc2;
  GENIE_HD void operator()(float& p, float g, float& m, float& v) const {
    if (wd != 0.f) g += wd * p;
    m = beta1 * m + (1.f - beta1) * g;
    v = beta2 * v + (1.f - beta2) * g * g;
    const float denom = sqrtf(v) / sqrt_bc2 + eps;
    p -= step_size * (m / denom);
  }
  static AdamF make(float lr, float b1, float b2, float eps, float wd, int64_t t) {
    const double bc1 = 1.0 - std::pow(double(b1), double(t));
    const double bc2 = 1.0 - std::pow(double(b2), double(t));
    return AdamF{b1, b2, eps, wd, float(lr / bc1), float(std::sqrt(bc2))};
  }
  // The per-step part {step_size, sqrt_bc2} (what make() derives from lr and t) from memory.
  GENIE_HD void set_schedule(const float* at) {
    step_size = at[0];
    sqrt_bc2 = at[1];
  }
};

// Welford/Chan running statistics: combine is associative, so CPU (per-thread partials) and CUDA
// (block reductions) share the same numerics family.
struct MeanVarAcc {
  double n = 0, mean = 0, m2 = 0;
  GENIE_HD void push(double x) {
    n += 1;
    const double d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  GENIE_HD void combine(const MeanVarAcc& o) {
    if (o.n == 0) return;
    if (n == 0) {
      *this = o;
      return;
    }
    const double nn = n + o.n, d = o.mean - mean;
    mean += d * o.n / nn;
    m2 += o.m2 + d * d * n * o.n / nn;
    n = nn;
  }
  GENIE_HD double var(bool unbiased) const {
    return n > (unbiased ? 1 : 0) ? m2 / (unbiased ? n - 1 : n) : 0.0;
  }
};

// ---- Philox 4x32-10 ----
struct Philox4x32 {
  uint32_t c[4];
  GENIE_HD static void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t p = uint64_t(a) * uint64_t(b);
    hi = uint32_t(p >> 32);
    lo = uint32_t(p);
  }
  // counter = (ctr_lo, ctr_hi, 0, 0), key = seed
  GENIE_HD Philox4x32(uint64_t seed, uint64_t counter) {
    uint32_t x0 = uint32_t(counter), x1 = uint32_t(counter >> 32), x2 = 0, x3 = 0;
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      uint32_t hi0, lo0, hi1, lo1;
      mulhilo(0xD2511F53u, x0, hi0, lo0);
      mulhilo(0xCD9E8D57u, x2, hi1, lo1);
      const uint32_t y0 = hi1 ^ x1 ^ k0, y1 = lo1, y2 = hi0 ^ x3 ^ k1, y3 = lo0;
      x0 = y0;
      x1 = y1;
      x2 = y2;
      x3 = y3;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    c[0] = x0;
    c[1] = x1;
    c[2] = x2;
    c[3] = x3;
  }
};
GENIE_HD float philox_u01(uint32_t u) { return float(u >> 8) * (1.0f / 16777216.0f); }

// Element i of a uniform draw.
struct PhiloxUniformF {
  uint64_t seed, offset;
  GENIE_HD float operator()(int64_t i) const {
    Philox4x32 r(seed, offset + uint64_t(i) / 4);
    return philox_u01(r.c[i & 3]);
  }
};
// Element i of a normal draw: lanes (0,1) and (2,3) form Box-Muller pairs. Computed in double so
// that CPU and CUDA agree to the last float bit in practice (double log/sqrt/sincos are
// correctly rounded or within 1 ulp of double on both, far below float resolution).
struct PhiloxNormalF {
  uint64_t seed, offset;
  float mean, stddev;
  GENIE_HD float operator()(int64_t i) const {
    Philox4x32 r(seed, offset + uint64_t(i) / 4);
    const int lane = int(i & 3), pair = lane & 2;
    const double u1 = (double(r.c[pair]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
    const double u2 = double(r.c[pair + 1]) * (1.0 / 4294967296.0);      // [0, 1)
    const double rad = sqrt(-2.0 * log(u1));
    const double th = 6.283185307179586 * u2;
    const double z = (lane & 1) ? rad * sin(th) : rad * cos(th);
    return mean + stddev * float(z);
  }
};

}  // namespace genie::k
