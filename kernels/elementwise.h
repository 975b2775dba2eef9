// Elementwise kernels on flat float arrays. The math of each op lives once in kernels/functors.h
// and is instantiated by the CPU loop (elementwise_cpu.cpp) and the CUDA launch (elementwise.cu).
// `accumulate`: false overwrites the output, true adds to it (gradient accumulation).
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

enum class UnaryOp : uint8_t {
  Relu,
  Relu6,
  LeakyRelu,
  Tanh,
  Sigmoid,
  Scale,
  Square,
  Abs,
  AddScalar,
  Exp,
  Silu,
  Hardswish,
  Hardsigmoid,
  Gelu
};
const char* unary_name(UnaryOp op);

enum class BinaryOp : uint8_t { Add, Sub, Mul };

// y = f(x; alpha)
GENIE_DECLARE_KERNEL(unary_fwd,
                     (UnaryOp op, float alpha, const float* x, float* y, int64_t n, Stream s),
                     (op, alpha, x, y, n, s))
// dx (+)= f'(x, y) * dy ; x and y are the forward input/output (either may be used by the op)
GENIE_DECLARE_KERNEL(unary_bwd,
                     (UnaryOp op, float alpha, const float* x, const float* y, const float* dy,
                      float* dx, int64_t n, bool accumulate, Stream s),
                     (op, alpha, x, y, dy, dx, n, accumulate, s))
// Gated ops only (ReLU, ReLU6, leaky ReLU with slope >= 0; see gated_unary): y = f(x), and bit i
// of bits[i / 32] (n / 32 rounded up words) set where the gradient passes unscaled. The backward
// from those bits alone: dx (+)= bit ? dy : f.off(dy), equal bit for bit to unary_bwd from y.
GENIE_DECLARE_KERNEL(unary_fwd_gated,
                     (UnaryOp op, float alpha, const float* x, float* y, uint32_t* bits, int64_t n,
                      Stream s),
                     (op, alpha, x, y, bits, n, s))
GENIE_DECLARE_KERNEL(unary_bwd_gated,
                     (UnaryOp op, float alpha, const uint32_t* bits, const float* dy, float* dx,
                      int64_t n, bool accumulate, Stream s),
                     (op, alpha, bits, dy, dx, n, accumulate, s))
// Whether unary_fwd_gated / unary_bwd_gated handle (op, alpha).
bool gated_unary(UnaryOp op, float alpha);
// 32-bit words of a gate mask for n elements.
inline int64_t gate_words(int64_t n) { return n / 32 + (n % 32 != 0); }
// y = a op b
GENIE_DECLARE_KERNEL(binary_fwd,
                     (BinaryOp op, const float* a, const float* b, float* y, int64_t n, Stream s),
                     (op, a, b, y, n, s))
// y = alpha * x + beta * y
GENIE_DECLARE_KERNEL(axpby,
                     (float alpha, const float* x, float beta, float* y, int64_t n, Stream s),
                     (alpha, x, beta, y, n, s))
GENIE_DECLARE_KERNEL(fill, (float* y, float value, int64_t n, Stream s), (y, value, n, s))
// Row gather: y[i, :] = x[idx[i], :] for i < n, rows of `row` floats; idx on the same device, every
// entry a valid row of x (the caller's contract: the GPU kernel does not check).
GENIE_DECLARE_KERNEL(gather_rows,
                     (const float* x, const int32_t* idx, int64_t n, int64_t row, float* y,
                      Stream s),
                     (x, idx, n, row, y, s))
// y = mask ? a : b   (QDrop mixing; mask is 0/1 bytes)
GENIE_DECLARE_KERNEL(select_mask,
                     (const uint8_t* mask, const float* a, const float* b, float* y, int64_t n,
                      Stream s),
                     (mask, a, b, y, n, s))
// Per-channel affine on NCHW: y = x * scale[c] + shift[c]  (shift may be null)
GENIE_DECLARE_KERNEL(channel_affine,
                     (const float* x, const float* scale, const float* shift, float* y, int64_t N,
                      int64_t C, int64_t HW, Stream s),
                     (x, scale, shift, y, N, C, HW, s))
// float <-> bfloat16 (Bf16F in kernels/functors.h): y = bf16(x); y (+)= float(x).
GENIE_DECLARE_KERNEL(f32_to_bf16, (const float* x, uint16_t* y, int64_t n, Stream s), (x, y, n, s))
GENIE_DECLARE_KERNEL(bf16_to_f32,
                     (const uint16_t* x, float* y, int64_t n, bool accumulate, Stream s),
                     (x, y, n, accumulate, s))
// int8 <-> float conversions for masks / integer codes
GENIE_DECLARE_KERNEL(u8_to_f32, (const uint8_t* x, float* y, int64_t n, Stream s), (x, y, n, s))

}  // namespace genie::k
