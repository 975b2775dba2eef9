// Index mappings and per-element math of the spatial kernels, written once for the CPU loops
// (kernels/spatial_cpu.cpp) and the CUDA kernels (kernels/spatial.cu). Every functor works on one
// (H, W) plane of an NCHW tensor viewed as (NC, H, W); drivers add the plane offset and map the
// functor over output elements (forward) or input elements (backward "gather" form, so no
// atomics are needed and every gradient is summed in a fixed order on both backends).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace genie::k {

// Nearest-neighbour x2 upsampling of an (H, W) plane to (2H, 2W).
//   forward:  y[oy][ox] = x[oy/2][ox/2]
//   backward: dx[iy][ix] = (dy[2iy][2ix] + dy[2iy][2ix+1]) + (dy[2iy+1][2ix] + dy[2iy+1][2ix+1])
struct Upsample2xF {
  int64_t H, W;  // input plane
  GENIE_HD int64_t src(int64_t oy, int64_t ox) const { return (oy >> 1) * W + (ox >> 1); }
  GENIE_HD float grad(const float* dy, int64_t iy, int64_t ix) const {
    const int64_t OW = 2 * W;
    const float* r = dy + (2 * iy) * OW + 2 * ix;
    return (r[0] + r[1]) + (r[OW] + r[OW + 1]);
  }
};

// Reflection padding (PyTorch ReflectionPad2d: the edge pixel is not repeated), pad < H, pad < W:
// output (H + 2 pad, W + 2 pad). Along one axis of length n, output coordinate o reads input
// reflect(o - pad, n) with reflect(i) = -i for i < 0 and 2(n-1) - i for i >= n.
struct ReflectPadF {
  int64_t H, W, pad;
  GENIE_HD static int64_t reflect(int64_t i, int64_t n) {
    return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
  }
  GENIE_HD int64_t src(int64_t oy, int64_t ox) const {
    return reflect(oy - pad, H) * W + reflect(ox - pad, W);
  }
  // Output coordinates along one axis that read input coordinate i, in ascending order:
  // the mirror on the low side (1 <= i <= pad), the copy itself, the mirror on the high side
  // (n-1-pad <= i <= n-2). Returns how many (1 to 3) were written to out.
  GENIE_HD static int readers(int64_t i, int64_t n, int64_t pad, int64_t* out) {
    int m = 0;
    if (i >= 1 && i <= pad) out[m++] = pad - i;
    out[m++] = i + pad;
    if (i >= n - 1 - pad && i <= n - 2) out[m++] = 2 * (n - 1) - i + pad;
    return m;
  }
  // dx[iy][ix] = sum of dy over all (readers(iy) x readers(ix)), row-major order.
  GENIE_HD float grad(const float* dy, int64_t iy, int64_t ix) const {
    const int64_t OW = W + 2 * pad;
    int64_t ry[3], rx[3];
    const int ny = readers(iy, H, pad, ry), nx = readers(ix, W, pad, rx);
    float s = 0.f;
    for (int a = 0; a < ny; ++a)
      for (int b = 0; b < nx; ++b) s += dy[ry[a] * OW + rx[b]];
    return s;
  }
};

// Window crop y = x[oy0 : oy0+OH, ox0 : ox0+OW] of an (H, W) plane (window inside the plane).
struct CropF {
  int64_t W, oy0, ox0, OH, OW;
  GENIE_HD int64_t src(int64_t oy, int64_t ox) const { return (oy + oy0) * W + (ox + ox0); }
  // dx[iy][ix] = dy[iy-oy0][ix-ox0] inside the window, 0 outside.
  GENIE_HD float grad(const float* dy, int64_t iy, int64_t ix) const {
    const int64_t y = iy - oy0, x = ix - ox0;
    return (y >= 0 && y < OH && x >= 0 && x < OW) ? dy[y * OW + x] : 0.f;
  }
};

// Global average pooling of a plane of hw elements: y = sum / hw (sum in double by the driver);
// backward dx = dy / hw for every element.
struct GapF {
  double inv_hw;
  GENIE_HD float fwd(double sum) const { return float(sum * inv_hw); }
  GENIE_HD float grad(float dy) const { return float(double(dy) * inv_hw); }
};

// Max pooling, k x k window, stride, implicit -inf padding (PyTorch MaxPool2d, ceil_mode=False,
// pad <= k/2 so no window is empty). fwd() returns the window maximum of output (oy, ox) and its
// argmax (row-major index into the input plane). Ties: the first maximum in row-major order wins;
// NaN propagates (a NaN always replaces the current maximum), exactly as PyTorch's CPU kernel.
// Backward scatters dy to dx[argmax] (see maxpool_bwd).
struct MaxPoolF {
  int64_t H, W, k, stride, pad;
  GENIE_HD float fwd(const float* x, int64_t oy, int64_t ox, int32_t& arg) const {
    int64_t h0 = oy * stride - pad, w0 = ox * stride - pad;
    const int64_t h1 = h0 + k < H ? h0 + k : H, w1 = w0 + k < W ? w0 + k : W;
    h0 = h0 < 0 ? 0 : h0;
    w0 = w0 < 0 ? 0 : w0;
    float best = -INFINITY;
    int64_t bi = h0 * W + w0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) {
        const float v = x[ih * W + iw];
        if (v > best || v != v) {
          best = v;
          bi = ih * W + iw;
        }
      }
    arg = int32_t(bi);
    return best;
  }
};

}  // namespace genie::k
