// 2-D convolution, NCHW activations, KCRS weights (PyTorch layout), square stride/padding,
// dilation 1, groups (C and K divisible by groups; depthwise when groups == C).
// CPU: im2col + OpenBLAS GEMM per image (OpenMP over the batch), direct loops for depthwise.
// CUDA: cuDNN with algorithms chosen once per shape and cached.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

struct ConvShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // output channels, kernel height/width
  int64_t stride = 1, pad = 0, groups = 1;
  int64_t P() const { return (H + 2 * pad - R) / stride + 1; }  // output height
  int64_t Q() const { return (W + 2 * pad - S) / stride + 1; }  // output width
  bool operator==(const ConvShape& o) const {
    return N == o.N && C == o.C && H == o.H && W == o.W && K == o.K && R == o.R && S == o.S &&
           stride == o.stride && pad == o.pad && groups == o.groups;
  }
};

// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C/groups,R,S)) + bias (K) [bias may be null]
GENIE_DECLARE_KERNEL(conv2d_fwd,
                     (const ConvShape& cs, const float* x, const float* w, const float* bias,
                      float* y, Stream s),
                     (cs, x, w, bias, y, s))
// dx (+)= conv_transpose(dy, w)
GENIE_DECLARE_KERNEL(conv2d_bwd_data,
                     (const ConvShape& cs, const float* dy, const float* w, float* dx,
                      bool accumulate, Stream s),
                     (cs, dy, w, dx, accumulate, s))
// dw (+)= correlation of x with dy
GENIE_DECLARE_KERNEL(conv2d_bwd_filter,
                     (const ConvShape& cs, const float* x, const float* dy, float* dw,
                      bool accumulate, Stream s),
                     (cs, x, dy, dw, accumulate, s))

}  // namespace genie::k
