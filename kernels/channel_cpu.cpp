// CPU drivers for the channel kernels: OpenMP over (n, c) planes, a serial loop inside a plane.
// The index maps are in channel_functors.h (shared with the CUDA kernels).
#include "kernels/channel.h"
#include "kernels/channel_functors.h"
#include "kernels/cpu_loop.h"

namespace genie::k {

namespace {
// d[0..n) (+)= s[0..n)
inline void copy_plane(const float* s, float* d, int64_t n, bool acc) {
  if (acc)
    for (int64_t j = 0; j < n; ++j) d[j] += s[j];
  else
    for (int64_t j = 0; j < n; ++j) d[j] = s[j];
}
}  // namespace

void channel_copy_cpu(const float* src, int64_t src_C, int64_t src_off, float* dst, int64_t dst_C,
                      int64_t dst_off, int64_t N, int64_t count, int64_t inner, bool acc, Stream) {
  if (count <= 0 || inner <= 0) return;
  cpu_for_outer(N * count, inner, [=](int64_t i) {
    const int64_t n = i / count, c = i % count;
    copy_plane(src + (n * src_C + src_off + c) * inner, dst + (n * dst_C + dst_off + c) * inner,
               inner, acc);
  });
}

void channel_slice_bwd_cpu(const float* dy, int64_t N, int64_t C, int64_t inner, int64_t start,
                           int64_t count, float* dx, bool acc, Stream) {
  if (C <= 0 || inner <= 0) return;
  const ChannelBlockF f{start, count};
  cpu_for_outer(N * C, inner, [=](int64_t i) {
    const int64_t n = i / C, l = f.local(i % C);
    float* d = dx + i * inner;
    if (l >= 0)
      copy_plane(dy + (n * count + l) * inner, d, inner, acc);
    else if (!acc)
      for (int64_t j = 0; j < inner; ++j) d[j] = 0.f;
  });
}

void channel_shuffle_cpu(const float* x, int64_t N, int64_t C, int64_t inner, int64_t groups,
                         float* y, bool acc, Stream) {
  if (C <= 0 || inner <= 0) return;
  const ChannelShuffleF f{groups, C / groups};
  cpu_for_outer(N * C, inner, [=](int64_t i) {
    const int64_t n = i / C, o = i % C;
    copy_plane(x + (n * C + f.src(o)) * inner, y + i * inner, inner, acc);
  });
}

void bcast_mul_fwd_cpu(const float* x, const float* scale, int64_t P, int64_t inner, float* y,
                       Stream) {
  cpu_for_outer(P, inner, [=](int64_t p) {
    const float s = scale[p];
    const float* xp = x + p * inner;
    float* yp = y + p * inner;
    for (int64_t j = 0; j < inner; ++j) yp[j] = BcastMulF::fwd(xp[j], s);
  });
}

void bcast_mul_bwd_x_cpu(const float* dy, const float* scale, int64_t P, int64_t inner, float* dx,
                         bool acc, Stream) {
  cpu_for_outer(P, inner, [=](int64_t p) {
    const float s = scale[p];
    const float* gp = dy + p * inner;
    float* xp = dx + p * inner;
    for (int64_t j = 0; j < inner; ++j) {
      const float g = BcastMulF::grad_x(gp[j], s);
      xp[j] = acc ? xp[j] + g : g;
    }
  });
}

void bcast_mul_bwd_s_cpu(const float* dy, const float* x, int64_t P, int64_t inner, float* ds,
                         bool acc, Stream) {
  cpu_for_outer(P, inner, [=](int64_t p) {
    const float* gp = dy + p * inner;
    const float* xp = x + p * inner;
    double sum = 0;
    for (int64_t j = 0; j < inner; ++j) sum += BcastMulF::grad_s_term(gp[j], xp[j]);
    const float g = BcastMulF::grad_s(sum);
    ds[p] = acc ? ds[p] + g : g;
  });
}

}  // namespace genie::k
