// Differentiable Genie-D ops: the loss terms (GENIE.md §1.4), both backed by the fused
// BN-statistics kernel (kernels/bnstat_loss.h: one pass over the activation for the value, one for
// the gradient), and the swing shift of §1.3 (kernels/swing.h).
#pragma once
#include "autograd/ops.h"

namespace genie::ops {

// L_bn term of one BatchNorm layer: a (N,C,H,W) [or (N,C)], per-channel mean μ̂ and UNBIASED std σ̂
// over (N,H,W); targets mu, sigma (C):  Σ_c ((μ̂_c − mu_c)² + (σ̂_c − sigma_c)²) / C.  Scalar;
// differentiable w.r.t. a (mu and sigma are constants: the teacher's running statistics).
Tensor bn_stat_loss(const Tensor& a, const Tensor& mu, const Tensor& sigma);

// L_in of images x (B,C,H,W): per image and channel mean m and UNBIASED std s over (H,W):
// Σ_{n,c} (m_nc² + (1 − s_nc)²) / B.  Scalar; differentiable w.r.t. x.
Tensor input_stat_loss(const Tensor& x);

// Swing shift of x (N,C,H,W) by (dy, dx) ∈ {0,1,2}²: crop(reflect_pad(x, 1), dy, dx, H, W) in one
// pass (kernels/swing.h), the input of Genie-D's swing convolution. Differentiable; H, W >= 2.
// at: the offsets {dy, dx} from device memory instead, read when the kernels run (replayed steps,
// kernels/graph.h); dy, dx are then only checked.
Tensor swing_shift(const Tensor& x, int dy, int dx, const int32_t* at = nullptr);

}  // namespace genie::ops
