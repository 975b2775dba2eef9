// Swing shift (Genie-D's swing convolution input, GENIE.md §1.3) fused into one gather: for x
// viewed as (NC, H, W) planes and an offset (dy, dx) ∈ {0,1,2}²,
//
//   y[p, i, j] = reflect_pad(x, 1)[p, i + dy, j + dx] = x[p, r(i + dy − 1, H), r(j + dx − 1, W)]
//
// with r the reflection r(−1) = 1, r(n) = n − 2 (PyTorch ReflectionPad2d). Equal to
// crop(reflect_pad(x, 1), dy, dx, H, W) without materialising the padded tensor. The backward is
// a gather too: dx[p, a, b] sums dy over the (at most 2×2) output positions that read (a, b), so
// both drivers write every element once, deterministically, with no zero-fill or atomics.
#pragma once
#include "kernels/common.h"
#include "kernels/dispatch.h"

namespace genie::k {

struct SwingF {
  int64_t H, W;
  int oy, ox;  // dy − 1, dx − 1 ∈ {−1, 0, 1}
  GENIE_HD static int64_t reflect(int64_t i, int64_t n) {
    return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
  }
  // Output indices i ∈ [0, n) with r(i + o, n) == a; returns how many (0..2), written to out.
  GENIE_HD static int sources(int64_t a, int64_t n, int o, int64_t out[2]) {
    int k = 0;
    const int64_t direct = a - o;  // i + o == a
    if (direct >= 0 && direct < n) out[k++] = direct;
    if (a > 0) {  // i + o == −a reflects onto a
      const int64_t i = -a - o;
      if (i >= 0 && i < n) out[k++] = i;
    }
    if (a < n - 1) {  // i + o == 2(n − 1) − a reflects onto a
      const int64_t i = 2 * (n - 1) - a - o;
      if (i >= 0 && i < n && k < 2) out[k++] = i;
    }
    return k;
  }
  // y at (i, j) of one plane
  GENIE_HD float fwd(const float* x, int64_t i, int64_t j) const {
    return x[reflect(i + oy, H) * W + reflect(j + ox, W)];
  }
  // dx at (a, b) of one plane
  GENIE_HD float bwd(const float* dy, int64_t a, int64_t b) const {
    int64_t ri[2], cj[2];
    const int nr = sources(a, H, oy, ri), nc = sources(b, W, ox, cj);
    float s = 0.f;
    for (int u = 0; u < nr; ++u)
      for (int v = 0; v < nc; ++v) s += dy[ri[u] * W + cj[v]];
    return s;
  }
};

// y (NC, H, W) = swing shift of x (NC, H, W) by (dy, dx) ∈ {0,1,2}²; requires H, W >= 2. With
// `at` (device memory {dy, dx}, read when the kernel runs: replayed steps, kernels/graph.h) the
// offsets come from there instead.
GENIE_DECLARE_KERNEL(swing_shift_fwd,
                     (const float* x, int64_t NC, int64_t H, int64_t W, int dy, int dx,
                      const int32_t* at, float* y, Stream s),
                     (x, NC, H, W, dy, dx, at, y, s))
// dx (NC, H, W) (+)= adjoint of the shift applied to dy (offsets (sy, sx) or from `at`)
GENIE_DECLARE_KERNEL(swing_shift_bwd,
                     (const float* dy, int64_t NC, int64_t H, int64_t W, int sy, int sx,
                      const int32_t* at, float* dx, bool accumulate, Stream s),
                     (dy, NC, H, W, sy, sx, at, dx, accumulate, s))

}  // namespace genie::k
