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

// Max pooling, k x k window, stride, implicit -inf padding (PyTorch MaxPool2d; pad <= k/2 and the
// output size rule of pool_out_size, kernels/spatial.h, keep every window non-empty, also with
// ceil_mode, whose last window is clipped to the input). fwd() returns the window maximum of output
// (oy, ox) and its argmax (row-major index into the input plane). Ties: the first maximum in
// row-major order wins; NaN propagates (a NaN always replaces the current maximum), exactly as
// PyTorch's CPU kernel. Backward scatters dy to dx[argmax] (see maxpool_bwd).
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

// Average pooling (PyTorch AvgPool2d, divisor_override unset): output (oy, ox)'s window starts at
// (oy·stride - pad, ox·stride - pad), is clipped to the padded input [-pad, H + pad) (only the
// ceil_mode windows reach past it) and then to the input. The sum runs over the input part in
// row-major order, in float, divided by the padded-clipped size (count_include_pad) or the
// input-clipped size — PyTorch's CPU kernel, operation for operation. pad <= k/2 and
// pool_out_size keep every window non-empty.
struct AvgPoolF {
  int64_t H, W, k, stride, pad, OH, OW;
  bool count_include_pad;
  GENIE_HD float divisor(int64_t oy, int64_t ox) const {
    const int64_t h0 = oy * stride - pad, w0 = ox * stride - pad;
    const int64_t h1 = h0 + k < H + pad ? h0 + k : H + pad,
                  w1 = w0 + k < W + pad ? w0 + k : W + pad;
    if (count_include_pad) return float((h1 - h0) * (w1 - w0));
    const int64_t hc = (h1 < H ? h1 : H) - (h0 > 0 ? h0 : 0);
    const int64_t wc = (w1 < W ? w1 : W) - (w0 > 0 ? w0 : 0);
    return float(hc * wc);
  }
  GENIE_HD float fwd(const float* x, int64_t oy, int64_t ox) const {
    int64_t h0 = oy * stride - pad, w0 = ox * stride - pad;
    const int64_t h1 = h0 + k < H ? h0 + k : H, w1 = w0 + k < W ? w0 + k : W;
    h0 = h0 < 0 ? 0 : h0;
    w0 = w0 < 0 ? 0 : w0;
    float s = 0.f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += x[ih * W + iw];
    return s / divisor(oy, ox);
  }
  // The outputs along one axis whose window covers input i: o with o·stride - pad <= i <
  // o·stride - pad + k, i.e. o in [ceil((i + pad - k + 1) / stride), floor((i + pad) / stride)],
  // within [0, out). Returns [lo, hi) in *lo, *hi.
  GENIE_HD void readers(int64_t i, int64_t out, int64_t* lo, int64_t* hi) const {
    const int64_t a = i + pad - k + 1;
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    const int64_t b = (i + pad) / stride + 1;
    *hi = b < out ? b : out;
  }
  // dx[iy][ix] = sum of dy[o] / divisor(o) over the outputs o whose window holds (iy, ix), in
  // row-major order of o (the order PyTorch's backward scatters in).
  GENIE_HD float grad(const float* dy, int64_t iy, int64_t ix) const {
    int64_t y0, y1, x0, x1;
    readers(iy, OH, &y0, &y1);
    readers(ix, OW, &x0, &x1);
    float g = 0.f;
    for (int64_t oy = y0; oy < y1; ++oy)
      for (int64_t ox = x0; ox < x1; ++ox) g += dy[oy * OW + ox] / divisor(oy, ox);
    return g;
  }
};

// Adaptive average pooling (PyTorch AdaptiveAvgPool2d): output row i averages input rows
// [floor(i·H/OH), ceil((i+1)·H/OH)), columns alike. PyTorch's CPU kernel sums the bin in float,
// row-major, and divides by the bin height, then by its width; the same here.
struct AdaptiveAvgPoolF {
  int64_t H, W, OH, OW;
  GENIE_HD static int64_t start(int64_t o, int64_t out, int64_t in) { return (o * in) / out; }
  GENIE_HD static int64_t end(int64_t o, int64_t out, int64_t in) {
    return ((o + 1) * in + out - 1) / out;
  }
  GENIE_HD float fwd(const float* x, int64_t oy, int64_t ox) const {
    const int64_t h0 = start(oy, OH, H), h1 = end(oy, OH, H);
    const int64_t w0 = start(ox, OW, W), w1 = end(ox, OW, W);
    float s = 0.f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += x[ih * W + iw];
    return s / float(h1 - h0) / float(w1 - w0);
  }
  // Bins holding input i: start(o) <= i  <=>  o < ceil((i+1)·out/in); end(o) > i  <=>
  // o >= floor(i·out/in). The bins of the reverse map, [lo, hi).
  GENIE_HD static void readers(int64_t i, int64_t out, int64_t in, int64_t* lo, int64_t* hi) {
    *lo = (i * out) / in;
    const int64_t b = ((i + 1) * out + in - 1) / in;
    *hi = b < out ? b : out;
  }
  // dx[iy][ix] = sum of dy[o] / height(o) / width(o) over the bins o holding (iy, ix), row-major.
  GENIE_HD float grad(const float* dy, int64_t iy, int64_t ix) const {
    int64_t y0, y1, x0, x1;
    readers(iy, OH, H, &y0, &y1);
    readers(ix, OW, W, &x0, &x1);
    float g = 0.f;
    for (int64_t oy = y0; oy < y1; ++oy) {
      const float kh = float(end(oy, OH, H) - start(oy, OH, H));
      for (int64_t ox = x0; ox < x1; ++ox)
        g += dy[oy * OW + ox] / kh / float(end(ox, OW, W) - start(ox, OW, W));
    }
    return g;
  }
};

// Nearest x2 upsampling followed by a 3x3 convolution with padding 1 (the Genie-D generator's
// "upsample -> conv" pairs) is four 2x2 convolutions of the low-resolution input, one per output
// parity (py, px) in {0,1}^2: along one axis, output row 2i+py reads upsampled rows
// 2i+py-1..2i+py+1, i.e. input rows i-1, i, i (py = 0) or i, i, i+1 (py = 1). So tap r of the 3-tap
// kernel lands on tap a = tap(py, r) of parity py's 2-tap kernel, applied to input rows i+py-1 and
// i+py. A 2x2 convolution with padding 1 of the (H, W) input gives (H+1, W+1) outputs; parity (py,
// px) uses outputs (i+py, j+px). 4/9 of the multiply-adds of the composed form, on a 4x smaller
// input. Parity index pi = 2 py + px; the stacked 2x2 filter has output channel pi*K + k.
struct ParityConvF {
  // Tap of parity p's 2-tap kernel that 3-tap r lands on: p = 0: 0,1,1; p = 1: 0,0,1.
  GENIE_HD static int tap(int p, int r) { return r > p ? 1 : 0; }
  // wp[pi*K + k][c][a][b] = sum of w[k][c][r][s] over tap(py, r) == a, tap(px, s) == b, in (r, s)
  // order; w33 points at the 3x3 block of (k, c).
  GENIE_HD static float weight(const float* w33, int pi, int a, int b) {
    const int py = pi >> 1, px = pi & 1;
    float v = 0.f;
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s)
        if (tap(py, r) == a && tap(px, s) == b) v += w33[r * 3 + s];
    return v;
  }
  // dw[k][c][r][s] = sum over pi of dwp[pi*K + k][c][tap(py, r)][tap(px, s)], pi ascending;
  // dwp22 points at the 2x2 block of (pi = 0, k, c), parity_stride = K*C*4.
  GENIE_HD static float weight_grad(const float* dwp22, int64_t parity_stride, int r, int s) {
    float g = 0.f;
    for (int pi = 0; pi < 4; ++pi)
      g += dwp22[pi * parity_stride + tap(pi >> 1, r) * 2 + tap(pi & 1, s)];
    return g;
  }
  // Output (n, k, Y, X), Y < 2H, X < 2W, reads the stacked convolution's output z (N, 4K, H+1, W+1)
  // at this flat index.
  GENIE_HD static int64_t z_index(int64_t K, int64_t H, int64_t W, int64_t n, int64_t k, int64_t Y,
                                  int64_t X) {
    const int64_t py = Y & 1, px = X & 1;
    const int64_t plane = (n * 4 + 2 * py + px) * K + k;
    return (plane * (H + 1) + (Y >> 1) + py) * (W + 1) + (X >> 1) + px;
  }
  // The adjoint: dz at (n, pi*K + k, zy, zx) is dy (N, K, 2H, 2W) at the one output that reads it,
  // 0 for the row/column of z that parity pi does not use.
  GENIE_HD static float z_grad(const float* dy, int64_t K, int64_t H, int64_t W, int64_t n,
                               int64_t pk, int64_t zy, int64_t zx) {
    const int64_t pi = pk / K, k = pk - pi * K, py = pi >> 1, px = pi & 1;
    const int64_t i = zy - py, j = zx - px;
    if (i < 0 || i >= H || j < 0 || j >= W) return 0.f;
    return dy[((n * K + k) * 2 * H + 2 * i + py) * (2 * W) + 2 * j + px];
  }
};

}  // namespace genie::k
