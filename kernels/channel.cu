// CUDA drivers for the channel kernels: one thread per output element; the index maps are
// kernels/channel_functors.h, shared with channel_cpu.cpp. Copies are exact, so the two backends
// agree bit for bit; the per-plane gradient of broadcast multiplication is the shared per-channel
// double reduction (kernels/cuda_reduce.h), the CPU's plane sum in another order.
#include "kernels/channel.h"
#include "kernels/channel_functors.h"
#include "kernels/cuda_reduce.h"

namespace genie::k {
namespace {

using cuda::cuda_for;

// Element i of the (N, count, inner) block: dst (+)= src at the block's offsets.
struct CopyBody {
  const float* src;
  float* dst;
  int64_t src_C, src_off, dst_C, dst_off, count, inner;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, inner), j = i - plane * inner;
    const int64_t n = cuda::div_fast(plane, count), c = plane - n * count;
    const float v = src[(n * src_C + src_off + c) * inner + j];
    float& d = dst[(n * dst_C + dst_off + c) * inner + j];
    d = acc ? d + v : v;
  }
};

// Element i of dx (N, C, inner): the slice's gradient inside the block, 0 outside.
struct SliceBwdBody {
  ChannelBlockF f;
  const float* dy;
  float* dx;
  int64_t C, inner;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, inner), j = i - plane * inner;
    const int64_t n = cuda::div_fast(plane, C), l = f.local(plane - n * C);
    const float g = l >= 0 ? dy[(n * f.count + l) * inner + j] : 0.f;
    dx[i] = acc ? dx[i] + g : g;
  }
};

struct ShuffleBody {
  ChannelShuffleF f;
  const float* x;
  float* y;
  int64_t C, inner;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const int64_t plane = cuda::div_fast(i, inner), j = i - plane * inner;
    const int64_t n = cuda::div_fast(plane, C), o = plane - n * C;
    const float v = x[(n * C + f.src(o)) * inner + j];
    y[i] = acc ? y[i] + v : v;
  }
};

struct BcastMulFwdBody {
  const float *x, *scale;
  int64_t inner;
  float* y;
  __device__ void operator()(int64_t i) const {
    y[i] = BcastMulF::fwd(x[i], scale[cuda::div_fast(i, inner)]);
  }
};

struct BcastMulBwdXBody {
  const float *dy, *scale;
  int64_t inner;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = BcastMulF::grad_x(dy[i], scale[cuda::div_fast(i, inner)]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

struct BcastMulSSrc {
  const float *dy, *x;
  __device__ void operator()(cuda::SumAcc& a, int64_t, int64_t o) const {
    a.add(BcastMulF::grad_s_term(dy[o], x[o]));
  }
};
struct BcastMulSFin {
  float* ds;
  bool acc;
  __device__ void operator()(int64_t p, const cuda::SumAcc& a) const {
    const float g = BcastMulF::grad_s(a.s);
    ds[p] = acc ? ds[p] + g : g;
  }
};

}  // namespace

void channel_copy_cuda(const float* src, int64_t src_C, int64_t src_off, float* dst, int64_t dst_C,
                       int64_t dst_off, int64_t N, int64_t count, int64_t inner, bool acc,
                       Stream s) {
  if (count <= 0 || inner <= 0) return;
  cuda_for(N * count * inner, cuda::resolve(s),
           CopyBody{src, dst, src_C, src_off, dst_C, dst_off, count, inner, acc});
}

void channel_slice_bwd_cuda(const float* dy, int64_t N, int64_t C, int64_t inner, int64_t start,
                            int64_t count, float* dx, bool acc, Stream s) {
  if (C <= 0 || inner <= 0) return;
  cuda_for(N * C * inner, cuda::resolve(s),
           SliceBwdBody{ChannelBlockF{start, count}, dy, dx, C, inner, acc});
}

void channel_shuffle_cuda(const float* x, int64_t N, int64_t C, int64_t inner, int64_t groups,
                          float* y, bool acc, Stream s) {
  if (C <= 0 || inner <= 0) return;
  cuda_for(N * C * inner, cuda::resolve(s),
           ShuffleBody{ChannelShuffleF{groups, C / groups}, x, y, C, inner, acc});
}

void bcast_mul_fwd_cuda(const float* x, const float* scale, int64_t P, int64_t inner, float* y,
                        Stream s) {
  if (inner <= 0) return;
  cuda_for(P * inner, cuda::resolve(s), BcastMulFwdBody{x, scale, inner, y});
}

void bcast_mul_bwd_x_cuda(const float* dy, const float* scale, int64_t P, int64_t inner, float* dx,
                          bool acc, Stream s) {
  if (inner <= 0) return;
  cuda_for(P * inner, cuda::resolve(s), BcastMulBwdXBody{dy, scale, inner, dx, acc});
}

void bcast_mul_bwd_s_cuda(const float* dy, const float* x, int64_t P, int64_t inner, float* ds,
                          bool acc, Stream s) {
  // Per-plane double sums: channel_reduce with N = 1, C = P planes (an empty plane gives 0).
  cuda::channel_reduce<cuda::SumAcc>(BcastMulSSrc{dy, x}, 1, P, inner, cuda::resolve(s),
                                     BcastMulSFin{ds, acc});
}

}  // namespace genie::k
