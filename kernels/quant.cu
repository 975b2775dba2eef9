// CUDA driver of the fused quantizer kernels (kernels/quant.h); the math is the functors in
// kernels/quant_functors.h, shared with quant_cpu.cpp.
// Reductions are deterministic (no atomics): the weight step gradient is one block per output
// channel; the activation step gradient and the regulariser sum are per-chunk partials (one block
// per kQuantChunk elements, as the CPU driver chunks) finished by one block in a fixed order.
#include <algorithm>
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/quant.h"
#include "kernels/quant_functors.h"

namespace genie::k {

namespace {

constexpr int kThreads = 256;
using BlockSum = cub::BlockReduce<double, kThreads>;
using cuda::aligned_to;

// 16-byte loads/stores of 4 consecutive floats (or 4-byte ones of 4 codes) at quad q.
__device__ __forceinline__ float4 ld4(const float* p, int64_t q) {
  return reinterpret_cast<const float4*>(p)[q];
}
__device__ __forceinline__ void st4(float* p, int64_t q, float4 v) {
  reinterpret_cast<float4*>(p)[q] = v;
}
__device__ __forceinline__ uchar4 ld4(const uint8_t* p, int64_t q) {
  return reinterpret_cast<const uchar4*>(p)[q];
}
__device__ __forceinline__ void st4(uint8_t* p, int64_t q, uchar4 v) {
  reinterpret_cast<uchar4*>(p)[q] = v;
}
// dst (+)= g elementwise, in the scalar kernels' order (old + g).
__device__ __forceinline__ void store4(float* p, int64_t q, float4 g, bool acc) {
  if (acc) {
    const float4 o = ld4(p, q);
    g = make_float4(o.x + g.x, o.y + g.y, o.z + g.z, o.w + g.w);
  }
  st4(p, q, g);
}

struct WquantFwdBody {
  const float *w_floor, *v, *step, *zero;
  int64_t M;
  WeightQuantF f;
  float* w_hat;
  uint8_t* mask;
  __device__ void operator()(int64_t i) const {
    // 32-bit division where it fits: with i / M this kernel reached 60 % of copy bandwidth (H200).
    const int64_t k = cuda::div_fast(i, M);
    uint8_t m;
    w_hat[i] = f.fwd(w_floor[i], v[i], step[k], zero[k], m);
    if (mask) mask[i] = m;
  }
  // Elements 4q..4q+3, all in channel k (M % 4 == 0).
  __device__ void quad(int64_t q) const {
    const int64_t k = cuda::div_fast(4 * q, M);
    const float4 a = ld4(w_floor, q), b = ld4(v, q);
    const float s = step[k], z = zero[k];
    uchar4 m;
    float4 o;
    o.x = f.fwd(a.x, b.x, s, z, m.x);
    o.y = f.fwd(a.y, b.y, s, z, m.y);
    o.z = f.fwd(a.z, b.z, s, z, m.z);
    o.w = f.fwd(a.w, b.w, s, z, m.w);
    st4(w_hat, q, o);
    if (mask) st4(mask, q, m);
  }
};

// Block k: dv for channel k's elements and the channel's step gradient. kQuads: M % 4 == 0 and
// aligned arrays, 4 elements per thread and step (the step-gradient terms summed in element order
// within a thread, as the scalar loop sums its elements).
template <bool kQuads>
__global__ void wquant_bwd_kernel(const float* __restrict__ dw, const float* __restrict__ w_floor,
                                  const float* __restrict__ v, const float* __restrict__ step,
                                  const float* __restrict__ zero, const uint8_t* __restrict__ mask,
                                  int64_t M, WeightQuantF f, float* __restrict__ dv,
                                  float* __restrict__ dstep, bool acc) {
  __shared__ typename BlockSum::TempStorage tmp;
  const int64_t k = blockIdx.x;
  const float s = step[k], z = zero[k];
  double ds = 0;
  if (kQuads) {
    for (int64_t q = k * M / 4 + threadIdx.x; q < (k + 1) * M / 4; q += kThreads) {
      const float4 d = ld4(dw, q), a = ld4(w_floor, q), b = ld4(v, q);
      const uchar4 m = mask ? ld4(mask, q) : make_uchar4(0, 0, 0, 0);
      float4 g, t;
      f.bwd(d.x, a.x, b.x, s, z, m.x, g.x, t.x);
      f.bwd(d.y, a.y, b.y, s, z, m.y, g.y, t.y);
      f.bwd(d.z, a.z, b.z, s, z, m.z, g.z, t.z);
      f.bwd(d.w, a.w, b.w, s, z, m.w, g.w, t.w);
      ds += double(t.x);
      ds += double(t.y);
      ds += double(t.z);
      ds += double(t.w);
      if (dv) store4(dv, q, g, acc);
    }
  } else {
    for (int64_t m = k * M + threadIdx.x; m < (k + 1) * M; m += kThreads) {
      float g, t;
      f.bwd(dw[m], w_floor[m], v[m], s, z, mask ? mask[m] : uint8_t(0), g, t);
      ds += double(t);
      if (dv) dv[m] = acc ? dv[m] + g : g;
    }
  }
  const double total = BlockSum(tmp).Sum(ds);
  if (dstep && threadIdx.x == 0) dstep[k] = acc ? dstep[k] + float(total) : float(total);
}

struct AquantFwdBody {
  const float *x, *step;
  ActQuantF f;
  const uint8_t* qdrop;
  float* y;
  uint8_t* code;
  __device__ void operator()(int64_t i) const {
    uint8_t c;
    y[i] = f.fwd(x[i], step[0], qdrop ? qdrop[i] != 0 : true, c);
    if (code) code[i] = c;
  }
  __device__ void quad(int64_t q) const {
    const float4 a = ld4(x, q);
    const float s = step[0];
    const uchar4 d = qdrop ? ld4(qdrop, q) : make_uchar4(1, 1, 1, 1);
    uchar4 c;
    float4 o;
    o.x = f.fwd(a.x, s, d.x != 0, c.x);
    o.y = f.fwd(a.y, s, d.y != 0, c.y);
    o.z = f.fwd(a.z, s, d.z != 0, c.z);
    o.w = f.fwd(a.w, s, d.w != 0, c.w);
    st4(y, q, o);
    if (code) st4(code, q, c);
  }
};

// Block b covers chunk b: writes dx and the chunk's partial of dstep. kQuads (aligned arrays):
// the chunk's whole quads 4 elements per thread and step, then its tail (only the last chunk has
// one) element by element.
template <bool kQuads>
__global__ void aquant_bwd_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                  const float* __restrict__ step, const uint8_t* __restrict__ code,
                                  ActQuantF f, int64_t n, float* __restrict__ dx,
                                  double* __restrict__ partial, bool acc) {
  __shared__ typename BlockSum::TempStorage tmp;
  const float s = step[0];
  const int64_t b0 = int64_t(blockIdx.x) * kQuantChunk;
  const int64_t b1 = min(n, b0 + kQuantChunk);
  double ds = 0;
  int64_t rest = b0;  // first element not handled by the quad loop
  if (kQuads) {
    const int64_t q0 = b0 / 4, q1 = q0 + (b1 - b0) / 4;  // kQuantChunk % 4 == 0
    for (int64_t q = q0 + threadIdx.x; q < q1; q += kThreads) {
      const float4 g = ld4(dy, q);
      const uchar4 c = ld4(code, q);
      if (dx)
        store4(dx, q, make_float4(f.dx(g.x, c.x), f.dx(g.y, c.y), f.dx(g.z, c.z), f.dx(g.w, c.w)),
               acc);
      if (partial) {
        const float4 a = ld4(x, q);
        ds += double(f.ds_term(g.x, a.x, s, c.x));
        ds += double(f.ds_term(g.y, a.y, s, c.y));
        ds += double(f.ds_term(g.z, a.z, s, c.z));
        ds += double(f.ds_term(g.w, a.w, s, c.w));
      }
    }
    rest = q1 * 4;
  }
  for (int64_t i = rest + threadIdx.x; i < b1; i += kThreads) {
    if (dx) {
      const float g = f.dx(dy[i], code[i]);
      dx[i] = acc ? dx[i] + g : g;
    }
    if (partial) ds += double(f.ds_term(dy[i], x[i], s, code[i]));
  }
  if (partial) {
    const double total = BlockSum(tmp).Sum(ds);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
  }
}

// One block: out[0] (+)= Σ partial (fixed order per thread, then a fixed block tree).
__global__ void finish_sum_kernel(const double* __restrict__ partial, int64_t count,
                                  float* __restrict__ out, bool acc) {
  __shared__ typename BlockSum::TempStorage tmp;
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) s += partial[i];
  const double total = BlockSum(tmp).Sum(s);
  if (threadIdx.x == 0) out[0] = acc ? out[0] + float(total) : float(total);
}

__global__ void round_reg_partial_kernel(const float* __restrict__ v, int64_t n, RoundRegF f,
                                         const float* beta_at, double* __restrict__ partial) {
  if (beta_at) f.beta = *beta_at;
  __shared__ typename BlockSum::TempStorage tmp;
  const int64_t b0 = int64_t(blockIdx.x) * kQuantChunk;
  const int64_t b1 = min(n, b0 + kQuantChunk);
  double s = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += kThreads) s += double(f.fwd(v[i]));
  const double total = BlockSum(tmp).Sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

struct QDropWordBody {  // one thread per 32-element word
  QDropWordF f;
  const uint64_t* offset_at;  // added to f.offset when set (replayed steps)
  uint8_t* mask;
  int64_t n;
  __device__ void operator()(int64_t w) const {
    const uint32_t bits = offset_at ? QDropWordF{f.seed, f.offset + *offset_at}(w) : f(w);
    const int64_t b = w * 32, e = min(n, b + 32);
    for (int64_t i = b; i < e; ++i) mask[i] = uint8_t((bits >> (i - b)) & 1u);
  }
};

struct RoundRegBwdBody {
  const float* v;
  RoundRegF f;
  const float* beta_at;  // replaces f.beta when set (replayed steps)
  const float* dout;
  float* dv;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float d = (beta_at ? RoundRegF{*beta_at} : f).bwd(v[i], dout[0]);
    dv[i] = acc ? dv[i] + d : d;
  }
};

// Block (r, c): score of candidate c on row r.
__global__ void clip_search_kernel(const float* __restrict__ x, int64_t cols, int64_t ncand,
                                   const float* __restrict__ delta, const float* __restrict__ zero,
                                   float qmax, double* __restrict__ score) {
  __shared__ typename BlockSum::TempStorage tmp;
  const int64_t rc = blockIdx.x, r = rc / ncand;
  const float d = delta[rc], z = zero[rc];
  const float* p = x + r * cols;
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads)
    s += double(ClipErrF::err(p[j], d, z, qmax));
  const double total = BlockSum(tmp).Sum(s);
  if (threadIdx.x == 0) score[rc] = total;
}

static_assert(kQuantChunk % 4 == 0, "aquant_bwd_kernel<true> splits chunks into whole quads");
int64_t chunks_of(int64_t n) { return (n + kQuantChunk - 1) / kQuantChunk; }

}  // namespace

void wquant_fwd_cuda(const float* w_floor, const float* v, const float* step, const float* zero,
                     int64_t K, int64_t M, float qmax, bool hard, float* w_hat, uint8_t* mask,
                     Stream s) {
  const bool quads = M % 4 == 0 && aligned_to(w_floor, 16) && aligned_to(v, 16) &&
                     aligned_to(w_hat, 16) && aligned_to(mask, 4);
  cuda::cuda_for_quads(
      K * M, cuda::resolve(s),
      WquantFwdBody{w_floor, v, step, zero, M, WeightQuantF{qmax, hard}, w_hat, mask}, quads);
}

void wquant_bwd_cuda(const float* dw_hat, const float* w_floor, const float* v, const float* step,
                     const float* zero, const uint8_t* mask, int64_t K, int64_t M, float qmax,
                     bool hard, float* dv, float* dstep, bool acc, Stream s) {
  if (K == 0 || (!dv && !dstep)) return;
  const bool quads = M % 4 == 0 && aligned_to(dw_hat, 16) && aligned_to(w_floor, 16) &&
                     aligned_to(v, 16) && aligned_to(dv, 16) && aligned_to(mask, 4);
  auto kernel = quads ? wquant_bwd_kernel<true> : wquant_bwd_kernel<false>;
  kernel<<<unsigned(K), kThreads, 0, cuda::resolve(s)>>>(dw_hat, w_floor, v, step, zero, mask, M,
                                                         WeightQuantF{qmax, hard}, dv, dstep, acc);
  GENIE_LAUNCH_CHECK();
}

void aquant_fwd_cuda(const float* x, const float* step, float qn, float qp, const uint8_t* qdrop,
                     int64_t n, float* y, uint8_t* code, Stream s) {
  const bool quads =
      aligned_to(x, 16) && aligned_to(y, 16) && aligned_to(qdrop, 4) && aligned_to(code, 4);
  cuda::cuda_for_quads(n, cuda::resolve(s),
                       AquantFwdBody{x, step, ActQuantF{qn, qp}, qdrop, y, code}, quads);
}

void aquant_bwd_cuda(const float* dy, const float* x, const float* step, const uint8_t* code,
                     float qn, float qp, int64_t n, float* dx, float* dstep, bool acc, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  const int64_t chunks = chunks_of(n);
  if (chunks == 0) {
    if (dstep && !acc) GENIE_CUDA_CHECK(cudaMemsetAsync(dstep, 0, sizeof(float), st));
    return;
  }
  cuda::Scratch part(dstep ? size_t(chunks) * sizeof(double) : 0);
  const bool quads =
      aligned_to(dy, 16) && aligned_to(x, 16) && aligned_to(dx, 16) && aligned_to(code, 4);
  auto kernel = quads ? aquant_bwd_kernel<true> : aquant_bwd_kernel<false>;
  kernel<<<unsigned(chunks), kThreads, 0, st>>>(dy, x, step, code, ActQuantF{qn, qp}, n, dx,
                                                dstep ? part.as<double>() : nullptr, acc);
  GENIE_LAUNCH_CHECK();
  if (dstep) {
    finish_sum_kernel<<<1, kThreads, 0, st>>>(part.as<double>(), chunks, dstep, acc);
    GENIE_LAUNCH_CHECK();
  }
}

void qdrop_mask_cuda(uint64_t seed, uint64_t offset, const uint64_t* offset_at, uint8_t* mask,
                     int64_t n, Stream s) {
  cuda::cuda_for((n + 31) / 32, cuda::resolve(s),
                 QDropWordBody{QDropWordF{seed, offset}, offset_at, mask, n});
}

void round_reg_fwd_cuda(const float* v, int64_t n, float beta, const float* beta_at, float* out,
                        Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  const int64_t chunks = chunks_of(n);
  if (chunks == 0) {
    GENIE_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), st));
    return;
  }
  cuda::Scratch part(size_t(chunks) * sizeof(double));
  round_reg_partial_kernel<<<unsigned(chunks), kThreads, 0, st>>>(v, n, RoundRegF{beta}, beta_at,
                                                                  part.as<double>());
  GENIE_LAUNCH_CHECK();
  finish_sum_kernel<<<1, kThreads, 0, st>>>(part.as<double>(), chunks, out, false);
  GENIE_LAUNCH_CHECK();
}

void round_reg_bwd_cuda(const float* v, int64_t n, float beta, const float* beta_at,
                        const float* dout, float* dv, bool acc, Stream s) {
  cuda::cuda_for(n, cuda::resolve(s), RoundRegBwdBody{v, RoundRegF{beta}, beta_at, dout, dv, acc});
}

void clip_search_scores_cuda(const float* x, int64_t rows, int64_t cols, int64_t ncand,
                             const float* delta, const float* zero, float qmax, double* score,
                             Stream s) {
  if (rows * ncand == 0) return;
  clip_search_kernel<<<unsigned(rows * ncand), kThreads, 0, cuda::resolve(s)>>>(
      x, cols, ncand, delta, zero, qmax, score);
  GENIE_LAUNCH_CHECK();
}

}  // namespace genie::k
