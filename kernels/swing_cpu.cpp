// CPU driver of the swing shift (math in kernels/swing.h): OpenMP over planes; interior columns
// are a straight copy of a row segment, only the border columns go through the reflection.
#include <algorithm>

#include "kernels/cpu_loop.h"
#include "kernels/swing.h"

namespace genie::k {

void swing_shift_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int dy, int dx,
                         const int32_t* at, float* y, Stream) {
  if (at) dy = at[0], dx = at[1];
  const SwingF f{H, W, dy - 1, dx - 1};
  cpu_for_outer(NC, H * W, [&](int64_t p) {
    const float* xp = x + p * H * W;
    float* yp = y + p * H * W;
    for (int64_t i = 0; i < H; ++i) {
      const float* row = xp + SwingF::reflect(i + f.oy, H) * W;
      float* out = yp + i * W;
      for (int64_t j = 0; j < W; ++j) out[j] = row[SwingF::reflect(j + f.ox, W)];
    }
  });
}

void swing_shift_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, int sy, int sx,
                         const int32_t* at, float* dx, bool accumulate, Stream) {
  if (at) sy = at[0], sx = at[1];
  const SwingF f{H, W, sy - 1, sx - 1};
  cpu_for_outer(NC, H * W, [&](int64_t p) {
    const float* __restrict__ g = dy + p * H * W;
    float* __restrict__ out = dx + p * H * W;
    for (int64_t a = 0; a < H; ++a) {
      // Away from the two border rows/columns on each side, f.bwd has exactly one source,
      // (a − oy, b − ox): the same sum 0 + dy[...] as a plain row segment copy.
      const bool inner_row = a >= 2 && a <= H - 3;
      const int64_t b0 = inner_row ? std::min<int64_t>(2, W) : W;
      const int64_t b1 = inner_row ? std::max<int64_t>(b0, W - 2) : W;
      float* o = out + a * W;
      for (int64_t b = 0; b < b0; ++b) {
        const float v = f.bwd(g, a, b);
        o[b] = accumulate ? o[b] + v : v;
      }
      const float* src = g + (a - f.oy) * W - f.ox;
      if (accumulate)
        for (int64_t b = b0; b < b1; ++b) o[b] += 0.f + src[b];
      else
        for (int64_t b = b0; b < b1; ++b) o[b] = 0.f + src[b];
      for (int64_t b = b1; b < W; ++b) {
        const float v = f.bwd(g, a, b);
        o[b] = accumulate ? o[b] + v : v;
      }
    }
  });
}

}  // namespace genie::k
