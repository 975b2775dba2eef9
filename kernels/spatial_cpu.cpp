// CPU drivers for the spatial kernels: OpenMP over (n, c) planes, serial loops inside a plane.
// The index math is in spatial_functors.h (shared with the CUDA kernels).
#include <cstring>

#include "kernels/cpu_loop.h"
#include "kernels/spatial.h"
#include "kernels/spatial_functors.h"

namespace genie::k {

namespace {
inline void store(float* p, float v, bool acc) { *p = acc ? *p + v : v; }
}  // namespace

void upsample2x_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, float* y, Stream) {
  const Upsample2xF f{H, W};
  const int64_t OH = 2 * H, OW = 2 * W;
  cpu_for_outer(NC, OH * OW, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) yp[oy * OW + ox] = xp[f.src(oy, ox)];
  });
}

void upsample2x_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, float* dx, bool acc,
                        Stream) {
  const Upsample2xF f{H, W};
  cpu_for_outer(NC, 4 * H * W, [&](int64_t i) {
    const float* dp = dy + i * 4 * H * W;
    float* xp = dx + i * H * W;
    for (int64_t iy = 0; iy < H; ++iy)
      for (int64_t ix = 0; ix < W; ++ix) store(xp + iy * W + ix, f.grad(dp, iy, ix), acc);
  });
}

void parity_weights_fwd_cpu(const float* w, int64_t K, int64_t C, float* wp, Stream) {
  for (int pi = 0; pi < 4; ++pi)
    for (int64_t kc = 0; kc < K * C; ++kc)
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          wp[(pi * K * C + kc) * 4 + a * 2 + b] = ParityConvF::weight(w + kc * 9, pi, a, b);
}

void parity_weights_bwd_cpu(const float* dwp, int64_t K, int64_t C, float* dw, bool acc, Stream) {
  for (int64_t kc = 0; kc < K * C; ++kc)
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s)
        store(dw + kc * 9 + r * 3 + s, ParityConvF::weight_grad(dwp + kc * 4, K * C * 4, r, s),
              acc);
}

void parity_interleave_fwd_cpu(const float* z, const float* bias, int64_t N, int64_t K, int64_t H,
                               int64_t W, float* y, Stream) {
  const int64_t OH = 2 * H, OW = 2 * W;
  cpu_for_outer(N * K, OH * OW, [&](int64_t nk) {
    const int64_t n = nk / K, k = nk % K;
    const float b = bias ? bias[k] : 0.f;
    float* yp = y + nk * OH * OW;
    for (int64_t Y = 0; Y < OH; ++Y)
      for (int64_t X = 0; X < OW; ++X)
        yp[Y * OW + X] = z[ParityConvF::z_index(K, H, W, n, k, Y, X)] + b;
  });
}

void parity_interleave_bwd_cpu(const float* dy, int64_t N, int64_t K, int64_t H, int64_t W,
                               float* dz, bool acc, Stream) {
  const int64_t ZH = H + 1, ZW = W + 1;
  cpu_for_outer(N * 4 * K, ZH * ZW, [&](int64_t plane) {
    const int64_t n = plane / (4 * K), pk = plane % (4 * K);
    float* zp = dz + plane * ZH * ZW;
    for (int64_t zy = 0; zy < ZH; ++zy)
      for (int64_t zx = 0; zx < ZW; ++zx)
        store(zp + zy * ZW + zx, ParityConvF::z_grad(dy, K, H, W, n, pk, zy, zx), acc);
  });
}

void reflect_pad_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t pad, float* y,
                         Stream) {
  const ReflectPadF f{H, W, pad};
  const int64_t OH = H + 2 * pad, OW = W + 2 * pad;
  cpu_for_outer(NC, OH * OW, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) yp[oy * OW + ox] = xp[f.src(oy, ox)];
  });
}

void reflect_pad_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t pad, float* dx,
                         bool acc, Stream) {
  const ReflectPadF f{H, W, pad};
  const int64_t OHW = (H + 2 * pad) * (W + 2 * pad);
  cpu_for_outer(NC, OHW, [&](int64_t i) {
    const float* dp = dy + i * OHW;
    float* xp = dx + i * H * W;
    for (int64_t iy = 0; iy < H; ++iy)
      for (int64_t ix = 0; ix < W; ++ix) store(xp + iy * W + ix, f.grad(dp, iy, ix), acc);
  });
}

void crop_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                  int64_t OH, int64_t OW, float* y, Stream) {
  const CropF f{W, oy, ox, OH, OW};
  cpu_for_outer(NC, OH * OW, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    for (int64_t r = 0; r < OH; ++r)
      for (int64_t c = 0; c < OW; ++c) yp[r * OW + c] = xp[f.src(r, c)];
  });
}

void crop_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                  int64_t OH, int64_t OW, float* dx, bool acc, Stream) {
  const CropF f{W, oy, ox, OH, OW};
  cpu_for_outer(NC, H * W, [&](int64_t i) {
    const float* dp = dy + i * OH * OW;
    float* xp = dx + i * H * W;
    for (int64_t iy = 0; iy < H; ++iy)
      for (int64_t ix = 0; ix < W; ++ix) store(xp + iy * W + ix, f.grad(dp, iy, ix), acc);
  });
}

void gap_fwd_cpu(const float* x, int64_t NC, int64_t HW, float* y, Stream) {
  const GapF f{1.0 / double(HW)};
  cpu_for_outer(NC, HW, [&](int64_t i) {
    const float* xp = x + i * HW;
    double s = 0;
    for (int64_t j = 0; j < HW; ++j) s += xp[j];
    y[i] = f.fwd(s);
  });
}

void gap_bwd_cpu(const float* dy, int64_t NC, int64_t HW, float* dx, bool acc, Stream) {
  const GapF f{1.0 / double(HW)};
  cpu_for_outer(NC, HW, [&](int64_t i) {
    const float g = f.grad(dy[i]);
    float* xp = dx + i * HW;
    for (int64_t j = 0; j < HW; ++j) store(xp + j, g, acc);
  });
}

void maxpool_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                     int64_t pad, float* y, int32_t* argmax, Stream s) {
  maxpool_out_fwd_cpu(x, NC, H, W, k, stride, pad, pool_out_size(H, k, stride, pad, false),
                      pool_out_size(W, k, stride, pad, false), y, argmax, s);
}

void maxpool_out_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k,
                         int64_t stride, int64_t pad, int64_t OH, int64_t OW, float* y,
                         int32_t* argmax, Stream) {
  const MaxPoolF f{H, W, k, stride, pad};
  cpu_for_outer(NC, OH * OW * k * k, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    int32_t* ap = argmax + i * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) yp[oy * OW + ox] = f.fwd(xp, oy, ox, ap[oy * OW + ox]);
  });
}

void maxpool_bwd_cpu(const float* dy, const int32_t* argmax, int64_t NC, int64_t H, int64_t W,
                     int64_t OH, int64_t OW, float* dx, bool acc, Stream) {
  // Scatter within a plane, serially in output order (overlapping windows may share an argmax).
  cpu_for_outer(NC, H * W + OH * OW, [&](int64_t i) {
    float* xp = dx + i * H * W;
    if (!acc) std::memset(xp, 0, size_t(H * W) * sizeof(float));
    const float* dp = dy + i * OH * OW;
    const int32_t* ap = argmax + i * OH * OW;
    for (int64_t o = 0; o < OH * OW; ++o) xp[ap[o]] += dp[o];
  });
}

void avgpool_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                     int64_t pad, int64_t OH, int64_t OW, bool cip, float* y, Stream) {
  const AvgPoolF f{H, W, k, stride, pad, OH, OW, cip};
  cpu_for_outer(NC, OH * OW * k * k, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) yp[oy * OW + ox] = f.fwd(xp, oy, ox);
  });
}

void avgpool_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                     int64_t pad, int64_t OH, int64_t OW, bool cip, float* dx, bool acc, Stream) {
  const AvgPoolF f{H, W, k, stride, pad, OH, OW, cip};
  cpu_for_outer(NC, H * W * k * k, [&](int64_t i) {
    const float* dp = dy + i * OH * OW;
    float* xp = dx + i * H * W;
    for (int64_t iy = 0; iy < H; ++iy)
      for (int64_t ix = 0; ix < W; ++ix) store(xp + iy * W + ix, f.grad(dp, iy, ix), acc);
  });
}

void adaptive_avgpool_fwd_cpu(const float* x, int64_t NC, int64_t H, int64_t W, int64_t OH,
                              int64_t OW, float* y, Stream) {
  const AdaptiveAvgPoolF f{H, W, OH, OW};
  cpu_for_outer(NC, H * W + OH * OW, [&](int64_t i) {
    const float* xp = x + i * H * W;
    float* yp = y + i * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) yp[oy * OW + ox] = f.fwd(xp, oy, ox);
  });
}

void adaptive_avgpool_bwd_cpu(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t OH,
                              int64_t OW, float* dx, bool acc, Stream) {
  const AdaptiveAvgPoolF f{H, W, OH, OW};
  cpu_for_outer(NC, H * W + OH * OW, [&](int64_t i) {
    const float* dp = dy + i * OH * OW;
    float* xp = dx + i * H * W;
    for (int64_t iy = 0; iy < H; ++iy)
      for (int64_t ix = 0; ix < W; ++ix) store(xp + iy * W + ix, f.grad(dp, iy, ix), acc);
  });
}

}  // namespace genie::k
