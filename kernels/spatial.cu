// CUDA drivers for the spatial kernels; the index math is kernels/spatial_functors.h, shared with
// spatial_cpu.cpp. Forward passes run one thread per output element, backward passes one thread
// per input element in the functors' gather form (no atomics; each gradient summed in the same
// order as on the CPU); average pools are window reductions in the same form (one thread per output
// forward, gather backward). Global average pooling uses the shared per-channel reduction.
// Max-pool backward is the exception: its signature carries no window geometry, so it scatters
// through the saved argmax — one thread per plane, in output order, exactly like the CPU loop
// (deterministic and bit-identical; parallel over planes only, acceptable for the one stem pool).
#include "kernels/cuda_reduce.h"
#include "kernels/spatial.h"
#include "kernels/spatial_functors.h"

namespace genie::k {
namespace {

using cuda::cuda_for;

// y[plane, oy, ox] = x[plane, f.src(oy, ox)] over an (NC, OH, OW) output.
template <class F>
struct GatherFwd {
  F f;
  const float* x;
  int64_t in_plane, OH, OW;
  float* y;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, OH * OW), r = i - plane * (OH * OW);
    const int64_t oy = cuda::div_fast(r, OW), ox = r - oy * OW;
    y[i] = x[plane * in_plane + f.src(oy, ox)];
  }
};

// dx[plane, iy, ix] (+)= f.grad(dy plane, iy, ix) over an (NC, H, W) input.
template <class F>
struct GatherBwd {
  F f;
  const float* dy;
  int64_t out_plane, H, W;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, H * W), r = i - plane * (H * W);
    const int64_t iy = cuda::div_fast(r, W), ix = r - iy * W;
    const float g = f.grad(dy + plane * out_plane, iy, ix);
    dx[i] = acc ? dx[i] + g : g;
  }
};

// y[plane, oy, ox] = f.fwd(x plane, oy, ox) over an (NC, OH, OW) output (window reductions).
template <class F>
struct WindowFwd {
  F f;
  const float* x;
  int64_t in_plane, OH, OW;
  float* y;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, OH * OW), r = i - plane * (OH * OW);
    const int64_t oy = cuda::div_fast(r, OW), ox = r - oy * OW;
    y[i] = f.fwd(x + plane * in_plane, oy, ox);
  }
};

struct GapSrc {
  const float* x;
  __device__ void operator()(cuda::SumAcc& a, int64_t, int64_t o) const { a.add(double(x[o])); }
};
struct GapFin {
  GapF f;
  float* y;
  __device__ void operator()(int64_t plane, const cuda::SumAcc& a) const { y[plane] = f.fwd(a.s); }
};
struct GapBwd {
  GapF f;
  const float* dy;
  int64_t HW;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = f.grad(dy[cuda::div_fast(i, HW)]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

struct MaxPoolFwd {
  MaxPoolF f;
  const float* x;
  int64_t OH, OW;
  float* y;
  int32_t* argmax;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, OH * OW), r = i - plane * (OH * OW);
    const int64_t oy = cuda::div_fast(r, OW), ox = r - oy * OW;
    y[i] = f.fwd(x + plane * f.H * f.W, oy, ox, argmax[i]);
  }
};

// One thread per plane: dx[argmax[o]] += dy[o] in output order (dx already zeroed or accumulating).
struct MaxPoolBwdPlane {
  const float* dy;
  const int32_t* argmax;
  int64_t HW, OHW;
  float* dx;
  __device__ void operator()(int64_t plane) const {
    float* xp = dx + plane * HW;
    const float* dp = dy + plane * OHW;
    const int32_t* ap = argmax + plane * OHW;
    for (int64_t o = 0; o < OHW; ++o) xp[ap[o]] += dp[o];
  }
};

struct ParityWeightsFwd {
  const float* w;
  int64_t KC;
  float* wp;
  __device__ void operator()(int64_t i) const {  // i over (4, K*C, 2, 2)
    const int64_t pi = cuda::div_fast(i, KC * 4), r = i - pi * (KC * 4);
    const int64_t kc = r >> 2, ab = r & 3;
    wp[i] = ParityConvF::weight(w + kc * 9, int(pi), int(ab >> 1), int(ab & 1));
  }
};
struct ParityWeightsBwd {
  const float* dwp;
  int64_t KC;
  float* dw;
  bool acc;
  __device__ void operator()(int64_t i) const {  // i over (K*C, 3, 3)
    const int64_t kc = cuda::div_fast(i, int64_t(9)), rs = i - kc * 9;
    const float g = ParityConvF::weight_grad(dwp + kc * 4, KC * 4, int(rs / 3), int(rs % 3));
    dw[i] = acc ? dw[i] + g : g;
  }
};
struct ParityInterleaveFwd {
  const float* z;
  const float* bias;
  int64_t K, H, W;
  float* y;
  __device__ void operator()(int64_t i) const {  // i over (N, K, 2H, 2W)
    const int64_t OHW = 4 * H * W, nk = cuda::div_fast(i, OHW), r = i - nk * OHW;
    const int64_t n = cuda::div_fast(nk, K), k = nk - n * K;
    const int64_t Y = cuda::div_fast(r, 2 * W), X = r - Y * (2 * W);
    y[i] = z[ParityConvF::z_index(K, H, W, n, k, Y, X)] + (bias ? bias[k] : 0.f);
  }
};
struct ParityInterleaveBwd {
  const float* dy;
  int64_t K, H, W;
  float* dz;
  bool acc;
  __device__ void operator()(int64_t i) const {  // i over (N, 4K, H+1, W+1)
    const int64_t ZHW = (H + 1) * (W + 1), plane = cuda::div_fast(i, ZHW), r = i - plane * ZHW;
    const int64_t n = cuda::div_fast(plane, 4 * K), pk = plane - n * (4 * K);
    const int64_t zy = cuda::div_fast(r, W + 1), zx = r - zy * (W + 1);
    const float g = ParityConvF::z_grad(dy, K, H, W, n, pk, zy, zx);
    dz[i] = acc ? dz[i] + g : g;
  }
};

}  // namespace

void upsample2x_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, float* y, Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(NC * 4 * H * W, cuda::resolve(s),
           GatherFwd<Upsample2xF>{Upsample2xF{H, W}, x, H * W, 2 * H, 2 * W, y});
}

void upsample2x_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, float* dx, bool acc,
                         Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(NC * H * W, cuda::resolve(s),
           GatherBwd<Upsample2xF>{Upsample2xF{H, W}, dy, 4 * H * W, H, W, dx, acc});
}

void parity_weights_fwd_cuda(const float* w, int64_t K, int64_t C, float* wp, Stream s) {
  if (K * C <= 0) return;
  cuda_for(16 * K * C, cuda::resolve(s), ParityWeightsFwd{w, K * C, wp});
}

void parity_weights_bwd_cuda(const float* dwp, int64_t K, int64_t C, float* dw, bool acc,
                             Stream s) {
  if (K * C <= 0) return;
  cuda_for(9 * K * C, cuda::resolve(s), ParityWeightsBwd{dwp, K * C, dw, acc});
}

void parity_interleave_fwd_cuda(const float* z, const float* bias, int64_t N, int64_t K, int64_t H,
                                int64_t W, float* y, Stream s) {
  if (N * K * H * W <= 0) return;
  cuda_for(N * K * 4 * H * W, cuda::resolve(s), ParityInterleaveFwd{z, bias, K, H, W, y});
}

void parity_interleave_bwd_cuda(const float* dy, int64_t N, int64_t K, int64_t H, int64_t W,
                                float* dz, bool acc, Stream s) {
  if (N * K * H * W <= 0) return;
  cuda_for(N * 4 * K * (H + 1) * (W + 1), cuda::resolve(s),
           ParityInterleaveBwd{dy, K, H, W, dz, acc});
}

void reflect_pad_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t pad, float* y,
                          Stream s) {
  const int64_t OH = H + 2 * pad, OW = W + 2 * pad;
  if (OH <= 0 || OW <= 0) return;
  cuda_for(NC * OH * OW, cuda::resolve(s),
           GatherFwd<ReflectPadF>{ReflectPadF{H, W, pad}, x, H * W, OH, OW, y});
}

void reflect_pad_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t pad, float* dx,
                          bool acc, Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(NC * H * W, cuda::resolve(s),
           GatherBwd<ReflectPadF>{ReflectPadF{H, W, pad}, dy, (H + 2 * pad) * (W + 2 * pad), H, W,
                                  dx, acc});
}

void crop_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                   int64_t OH, int64_t OW, float* y, Stream s) {
  if (OH <= 0 || OW <= 0) return;
  cuda_for(NC * OH * OW, cuda::resolve(s),
           GatherFwd<CropF>{CropF{W, oy, ox, OH, OW}, x, H * W, OH, OW, y});
}

void crop_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t oy, int64_t ox,
                   int64_t OH, int64_t OW, float* dx, bool acc, Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(NC * H * W, cuda::resolve(s),
           GatherBwd<CropF>{CropF{W, oy, ox, OH, OW}, dy, OH * OW, H, W, dx, acc});
}

void gap_fwd_cuda(const float* x, int64_t NC, int64_t HW, float* y, Stream s) {
  // Per-plane double sums: channel_reduce with N = 1, C = NC planes.
  cuda::channel_reduce<cuda::SumAcc>(GapSrc{x}, 1, NC, HW, cuda::resolve(s),
                                     GapFin{GapF{1.0 / double(HW)}, y});
}

void gap_bwd_cuda(const float* dy, int64_t NC, int64_t HW, float* dx, bool acc, Stream s) {
  if (HW <= 0) return;
  cuda_for(NC * HW, cuda::resolve(s), GapBwd{GapF{1.0 / double(HW)}, dy, HW, dx, acc});
}

void maxpool_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, float* y, int32_t* argmax, Stream s) {
  maxpool_out_fwd_cuda(x, NC, H, W, k, stride, pad, pool_out_size(H, k, stride, pad, false),
                       pool_out_size(W, k, stride, pad, false), y, argmax, s);
}

void maxpool_out_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k,
                          int64_t stride, int64_t pad, int64_t OH, int64_t OW, float* y,
                          int32_t* argmax, Stream s) {
  if (OH <= 0 || OW <= 0) return;
  cuda_for(NC * OH * OW, cuda::resolve(s),
           MaxPoolFwd{MaxPoolF{H, W, k, stride, pad}, x, OH, OW, y, argmax});
}

void maxpool_bwd_cuda(const float* dy, const int32_t* argmax, int64_t NC, int64_t H, int64_t W,
                      int64_t OH, int64_t OW, float* dx, bool acc, Stream s) {
  if (NC <= 0 || H * W <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  if (!acc) GENIE_CUDA_CHECK(cudaMemsetAsync(dx, 0, size_t(NC * H * W) * sizeof(float), st));
  cuda_for(NC, st, MaxPoolBwdPlane{dy, argmax, H * W, OH * OW, dx});
}

void avgpool_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, int64_t OH, int64_t OW, bool cip, float* y, Stream s) {
  if (OH <= 0 || OW <= 0) return;
  cuda_for(NC * OH * OW, cuda::resolve(s),
           WindowFwd<AvgPoolF>{AvgPoolF{H, W, k, stride, pad, OH, OW, cip}, x, H * W, OH, OW, y});
}

void avgpool_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t stride,
                      int64_t pad, int64_t OH, int64_t OW, bool cip, float* dx, bool acc,
                      Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(
      NC * H * W, cuda::resolve(s),
      GatherBwd<AvgPoolF>{AvgPoolF{H, W, k, stride, pad, OH, OW, cip}, dy, OH * OW, H, W, dx, acc});
}

void adaptive_avgpool_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int64_t OH,
                               int64_t OW, float* y, Stream s) {
  if (OH <= 0 || OW <= 0) return;
  cuda_for(NC * OH * OW, cuda::resolve(s),
           WindowFwd<AdaptiveAvgPoolF>{AdaptiveAvgPoolF{H, W, OH, OW}, x, H * W, OH, OW, y});
}

void adaptive_avgpool_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int64_t OH,
                               int64_t OW, float* dx, bool acc, Stream s) {
  if (H <= 0 || W <= 0) return;
  cuda_for(NC * H * W, cuda::resolve(s),
           GatherBwd<AdaptiveAvgPoolF>{AdaptiveAvgPoolF{H, W, OH, OW}, dy, OH * OW, H, W, dx, acc});
}

}  // namespace genie::k
