// Differentiable fake-quantization ops of Genie-M (GENIE.md §2.2–2.3), on top of the fused
// kernels in kernels/quant.h. Each op's backward is the quantizer's one fused backward kernel.
#pragma once
#include "autograd/ops.h"

namespace genie::ops {

// AdaRound weight with a learned per-output-channel step (GENIE.md §2.2):
//   Ŵ = step[k]·(clamp(w_floor + h(v) + zero[k], 0, 2^bits − 1) − zero[k])
// h = rectified sigmoid (soft) or [v ≥ 0] (hard). w_floor and v: the weight's shape, dim 0 = K;
// step, zero: (K). Differentiable w.r.t. v (soft only) and step; w_floor and zero are constants.
Tensor fake_quant_weight(const Tensor& w_floor, const Tensor& v, const Tensor& step,
                         const Tensor& zero, int bits, bool hard);

// LSQ activation (GENIE.md §2.3): â = step·round(clamp(x/step, qn, qp)) with straight-through
// gradients; step is a 1-element tensor. With `qdrop_mask` (u8, x's shape), elements where the
// mask is 0 pass through unquantized (QDrop: out = mask ? â : x). Differentiable w.r.t. x, step.
Tensor fake_quant_act(const Tensor& x, const Tensor& step, float qn, float qp,
                      const Tensor& qdrop_mask = Tensor());

// QDrop mask (u8 of shape s): independent fair coin flips, 1 = quantize / take X_q. Uses one
// Philox bit per element (kernels/quant.h); advances the generator.
Tensor qdrop_mask(const Shape& s, Generator& g, Device d = Device::CPU);

// AdaRound's rounding regulariser Σ 1 − |2h(v) − 1|^β (a scalar), differentiable w.r.t. v.
// beta_at: β from device memory instead, read when the kernels run (replayed steps,
// kernels/graph.h); `beta` is then only the value recorded for reports.
Tensor rounding_reg(const Tensor& v, float beta, const float* beta_at = nullptr);

}  // namespace genie::ops
