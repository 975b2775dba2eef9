// CPU driver of the swing shift (math in kernels/swing.h): OpenMP over planes; interior columns
// are a straight copy of a row segment, only the border columns go through the reflection.
#include "kernels/cpu_loop.h"
#include "kernels/swing.h"

namespace genie::k {

void swing_shift_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int dy, int dx,
                         float* y, Stream) {
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
                         float* dx, bool accumulate, Stream) {
  const SwingF f{H, W, sy - 1, sx - 1};
  cpu_for_outer(NC, H * W, [&](int64_t p) {
    const float* g = dy + p * H * W;
    float* out = dx + p * H * W;
    for (int64_t a = 0; a < H; ++a)
      for (int64_t b = 0; b < W; ++b) {
        const float v = f.bwd(g, a, b);
        out[a * W + b] = accumulate ? out[a * W + b] + v : v;
      }
  });
}

}  // namespace genie::k
