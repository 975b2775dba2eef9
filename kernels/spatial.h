// Spatial rearrangements and pooling on NCHW (x viewed as (NC, H, W) planes).
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// Nearest-neighbour x2 upsampling: y (NC, 2H, 2W)
GENIE_DECLARE_KERNEL(upsample2x_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, float* y, Stream s),
                     (x, NC, H, W, y, s))
GENIE_DECLARE_KERNEL(upsample2x_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, float* dx, bool accumulate,
                      Stream s),
                     (dy, NC, H, W, dx, accumulate, s))
// Nearest x2 upsampling + 3x3 convolution (pad 1) as four 2x2 convolutions (ParityConvF):
// the stacked filter wp (4K, C, 2, 2) from w (K, C, 3, 3), and its adjoint (dw (+)= ...);
GENIE_DECLARE_KERNEL(parity_weights_fwd,
                     (const float* w, int64_t K, int64_t C, float* wp, Stream s), (w, K, C, wp, s))
GENIE_DECLARE_KERNEL(parity_weights_bwd,
                     (const float* dwp, int64_t K, int64_t C, float* dw, bool accumulate, Stream s),
                     (dwp, K, C, dw, accumulate, s))
// y (N, K, 2H, 2W) = the parities of z (N, 4K, H+1, W+1) interleaved, plus bias (K) when given;
// the adjoint dz (N, 4K, H+1, W+1) (+)= ... (zeros where no output reads z).
GENIE_DECLARE_KERNEL(parity_interleave_fwd,
                     (const float* z, const float* bias, int64_t N, int64_t K, int64_t H, int64_t W,
                      float* y, Stream s),
                     (z, bias, N, K, H, W, y, s))
GENIE_DECLARE_KERNEL(parity_interleave_bwd,
                     (const float* dy, int64_t N, int64_t K, int64_t H, int64_t W, float* dz,
                      bool accumulate, Stream s),
                     (dy, N, K, H, W, dz, accumulate, s))
// Reflect padding (PyTorch ReflectionPad2d, pad < H and pad < W): y (NC, H+2p, W+2p)
GENIE_DECLARE_KERNEL(reflect_pad_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t pad, float* y,
                      Stream s),
                     (x, NC, H, W, pad, y, s))
GENIE_DECLARE_KERNEL(reflect_pad_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, int64_t pad, float* dx,
                      bool accumulate, Stream s),
                     (dy, NC, H, W, pad, dx, accumulate, s))
// Window crop: y (NC, OH, OW) = x[:, oy:oy+OH, ox:ox+OW]
GENIE_DECLARE_KERNEL(crop_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                      int64_t OH, int64_t OW, float* y, Stream s),
                     (x, NC, H, W, oy, ox, OH, OW, y, s))
GENIE_DECLARE_KERNEL(crop_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                      int64_t OH, int64_t OW, float* dx, bool accumulate, Stream s),
                     (dy, NC, H, W, oy, ox, OH, OW, dx, accumulate, s))
// Global average pool: y (NC) = mean over H*W
GENIE_DECLARE_KERNEL(gap_fwd, (const float* x, int64_t NC, int64_t HW, float* y, Stream s),
                     (x, NC, HW, y, s))
GENIE_DECLARE_KERNEL(gap_bwd,
                     (const float* dy, int64_t NC, int64_t HW, float* dx, bool accumulate,
                      Stream s),
                     (dy, NC, HW, dx, accumulate, s))
// Output length of a k-window pooling along an axis of length `in` (PyTorch's
// pooling_output_shape, dilation 1, in + 2 pad >= k): floor((in + 2 pad - k) / stride) + 1, or
// with ceil_mode the ceiling, less one when that last window would start in the right padding
// (at or beyond in + pad), so every window starts inside the input or its left padding.
inline int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t out = (in + 2 * pad - k + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Max pool k x k, stride, padding (implicit -inf padding, PyTorch semantics); argmax (int32,
// index into the input plane) saved for backward. Output (NC, OH, OW) with the floor size rule;
// maxpool_out_fwd takes the output size from the caller (pool_out_size, ceil_mode), windows
// clipped to the input.
GENIE_DECLARE_KERNEL(maxpool_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, float* y, int32_t* argmax, Stream s),
                     (x, NC, H, W, k, stride, pad, y, argmax, s))
GENIE_DECLARE_KERNEL(maxpool_out_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, int64_t OH, int64_t OW, float* y, int32_t* argmax, Stream s),
                     (x, NC, H, W, k, stride, pad, OH, OW, y, argmax, s))
GENIE_DECLARE_KERNEL(maxpool_bwd,
                     (const float* dy, const int32_t* argmax, int64_t NC, int64_t H, int64_t W,
                      int64_t OH, int64_t OW, float* dx, bool accumulate, Stream s),
                     (dy, argmax, NC, H, W, OH, OW, dx, accumulate, s))
// Average pool k x k (AvgPoolF: PyTorch AvgPool2d, pad <= k/2, output (NC, OH, OW) from
// pool_out_size): the window sum over the input divided by its size clipped to the padded input
// (count_include_pad) or to the input. Backward in gather form.
GENIE_DECLARE_KERNEL(avgpool_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, int64_t OH, int64_t OW, bool count_include_pad, float* y,
                      Stream s),
                     (x, NC, H, W, k, stride, pad, OH, OW, count_include_pad, y, s))
GENIE_DECLARE_KERNEL(avgpool_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, int64_t OH, int64_t OW, bool count_include_pad, float* dx,
                      bool accumulate, Stream s),
                     (dy, NC, H, W, k, stride, pad, OH, OW, count_include_pad, dx, accumulate, s))
// Adaptive average pool (AdaptiveAvgPoolF: PyTorch AdaptiveAvgPool2d) of (NC, H, W) to
// (NC, OH, OW); backward in gather form.
GENIE_DECLARE_KERNEL(adaptive_avgpool_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                      float* y, Stream s),
                     (x, NC, H, W, OH, OW, y, s))
GENIE_DECLARE_KERNEL(adaptive_avgpool_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                      float* dx, bool accumulate, Stream s),
                     (dy, NC, H, W, OH, OW, dx, accumulate, s))

}  // namespace genie::k
