// CUDA driver of the fused BN-statistics loss (math in kernels/bnstat_loss.h, shared with the CPU).
// Forward: a (C, S) grid — S blocks per channel each reduce a slice of the channel's N·HW elements
// into a BnStatAcc with a CUB block reduction; one finalising block then combines the S partials of
// every channel in a fixed order and reduces the per-channel terms, so the result is deterministic
// (no atomics). Backward: one block per (n, c) plane, coefficients computed once per thread.
#include <algorithm>
#include <cub/block/block_reduce.cuh>

#include "kernels/bnstat_loss.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"

namespace genie::k {

namespace {

constexpr int kThreads = 256;

struct CombineAcc {
  __device__ BnStatAcc operator()(const BnStatAcc& a, const BnStatAcc& b) const {
    BnStatAcc r = a;
    r.combine(b);
    return r;
  }
};

// Block (c, s) reduces rows n ∈ [s·N/S, (s+1)·N/S) of channel c.
__global__ void bnstat_partial_kernel(const float* __restrict__ x, int64_t N, int64_t C, int64_t HW,
                                      int splits, BnStatAcc* __restrict__ partial) {
  using BlockReduce = cub::BlockReduce<BnStatAcc, kThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  const int64_t c = blockIdx.x, sp = blockIdx.y;
  const int64_t n0 = sp * N / splits, n1 = (sp + 1) * N / splits;
  const float shift = x[c * HW];
  BnStatAcc acc;
  const int64_t len = (n1 - n0) * HW;
  for (int64_t t = threadIdx.x; t < len; t += kThreads) {
    const int64_t n = n0 + t / HW, i = t - (t / HW) * HW;
    acc.push(x[(n * C + c) * HW + i], shift);
  }
  const BnStatAcc total = BlockReduce(tmp).Reduce(acc, CombineAcc{});
  if (threadIdx.x == 0) partial[c * splits + sp] = total;
}

// One block: channel c's partials combined in split order, then Σ_c term in a fixed tree.
__global__ void bnstat_finalize_kernel(const float* __restrict__ x, int64_t C, int64_t HW,
                                       int splits, const BnStatAcc* __restrict__ partial,
                                       const float* __restrict__ mu,
                                       const float* __restrict__ sigma, float weight,
                                       float* __restrict__ mean, float* __restrict__ std_,
                                       float* __restrict__ loss) {
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  double local = 0;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) {
    BnStatAcc acc;
    for (int s = 0; s < splits; ++s) acc.combine(partial[c * splits + s]);
    double term;
    BnStatLossFwdF{}(acc, x[c * HW], mu[c], sigma[c], mean[c], std_[c], term);
    local += term;
  }
  const double total = BlockReduce(tmp).Sum(local);
  if (threadIdx.x == 0) loss[0] = float(double(weight) * total);
}

__global__ void bnstat_bwd_kernel(const float* __restrict__ x, int64_t C, int64_t HW, double cnt,
                                  const float* __restrict__ mu, const float* __restrict__ sigma,
                                  const float* __restrict__ mean, const float* __restrict__ std_,
                                  float weight, const float* __restrict__ dout,
                                  float* __restrict__ dx, bool accumulate) {
  const int64_t plane = blockIdx.x, c = plane % C;
  const BnStatLossBwdF f =
      BnStatLossBwdF::make(dout[0] * weight, mean[c], std_[c], mu[c], sigma[c], cnt);
  const float* p = x + plane * HW;
  float* q = dx + plane * HW;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
    const float v = f(p[i]);
    q[i] = accumulate ? q[i] + v : v;
  }
}

}  // namespace

void bnstat_loss_fwd_cuda(const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                          const float* sigma, float weight, float* mean, float* std_, float* loss,
                          Stream s) {
  if (C == 0) {
    GENIE_CUDA_CHECK(cudaMemsetAsync(loss, 0, sizeof(float), cuda::resolve(s)));
    return;
  }
  // Enough blocks to fill the GPU (~4 per SM on 132 SMs), never more splits than rows.
  const int64_t want = std::max<int64_t>(1, 512 / C);
  const int splits = int(std::min<int64_t>(std::max<int64_t>(N, 1), want));
  // Stream-ordered scratch from the caching allocator (kernels/cuda_context.h).
  cuda::Scratch partial_buf(size_t(C) * size_t(splits) * sizeof(BnStatAcc));
  BnStatAcc* partial = partial_buf.as<BnStatAcc>();
  const cudaStream_t st = cuda::resolve(s);
  bnstat_partial_kernel<<<dim3(unsigned(C), unsigned(splits)), kThreads, 0, st>>>(x, N, C, HW,
                                                                                  splits, partial);
  GENIE_LAUNCH_CHECK();
  bnstat_finalize_kernel<<<1, kThreads, 0, st>>>(x, C, HW, splits, partial, mu, sigma, weight, mean,
                                                 std_, loss);
  GENIE_LAUNCH_CHECK();
}

void bnstat_loss_bwd_cuda(const float* x, int64_t N, int64_t C, int64_t HW, const float* mu,
                          const float* sigma, const float* mean, const float* std_, float weight,
                          const float* dout, float* dx, bool accumulate, Stream s) {
  const int64_t planes = N * C;
  if (planes == 0 || HW == 0) return;
  // A warp multiple that covers small planes (7×7) without idle warps, at most kThreads.
  const int threads = int(std::min<int64_t>(kThreads, (HW + 31) / 32 * 32));
  bnstat_bwd_kernel<<<unsigned(planes), threads, 0, cuda::resolve(s)>>>(
      x, C, HW, double(N * HW), mu, sigma, mean, std_, weight, dout, dx, accumulate);
  GENIE_LAUNCH_CHECK();
}

}  // namespace genie::k
