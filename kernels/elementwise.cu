// CUDA drivers for elementwise kernels, Philox draws and Adam: launches only; the math is the
// functors of kernels/functors.h, the same structs elementwise_cpu.cpp instantiates.
#include "kernels/adam.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/elementwise.h"
#include "kernels/functors.h"
#include "kernels/philox.h"

namespace genie::k {
namespace {

using cuda::cuda_for;

template <class F>
struct UnaryFwdBody {
  F f;
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = f.fwd(x[i]); }
};

template <class F>
struct UnaryBwdBody {
  F f;
  const float *x, *y, *dy;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = f.bwd(x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

// One element per thread; each warp's 32 gates become one word by a ballot (the block size is a
// multiple of 32 and every block-stride step starts at a multiple of 32, so a warp covers one
// aligned word; the loop bound is the same for the whole block, so every lane reaches the ballot).
static_assert(cuda::kThreads % 32 == 0, "unary_fwd_gated_kernel: whole warps per block");
template <class F>
__global__ void unary_fwd_gated_kernel(F f, const float* x, float* y, uint32_t* bits, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t base = int64_t(blockIdx.x) * blockDim.x; base < n; base += stride) {
    const int64_t i = base + threadIdx.x;
    bool gate = false;
    if (i < n) {
      const float v = f.fwd(x[i]);
      y[i] = v;
      gate = f.gate(v);
    }
    const unsigned word = __ballot_sync(0xffffffffu, gate);
    if ((threadIdx.x & 31) == 0 && i < n) bits[i >> 5] = word;
  }
}

template <class F>
struct UnaryBwdGatedBody {
  F f;
  const uint32_t* bits;
  const float* dy;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = f.bwd((bits[i >> 5] >> (i & 31)) & 1u ? 1.f : 0.f, 0.f, dy[i]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

struct ToBf16Body {
  const float* x;
  uint16_t* y;
  __device__ void operator()(int64_t i) const { y[i] = Bf16F::from_float(x[i]); }
};
struct FromBf16Body {
  const uint16_t* x;
  float* y;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float v = Bf16F::to_float(x[i]);
    y[i] = acc ? y[i] + v : v;
  }
};

template <class F>
struct BinaryBody {
  F f;
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = f(a[i], b[i]); }
};

struct AxpbyBody {
  float alpha;
  const float* x;
  float beta;
  float* y;
  // beta == 0 overwrites (never reads y, so uninitialised/NaN outputs are fine), as on the CPU.
  __device__ void operator()(int64_t i) const {
    y[i] = beta == 0.f ? alpha * x[i] : alpha * x[i] + beta * y[i];
  }
};

// y[i, j] = x[idx[i], j]; quad(q): 4 consecutive elements of one row (row % 4 == 0, aligned).
struct GatherRowsBody {
  const float* x;
  const int32_t* idx;
  int64_t row;
  float* y;
  __device__ void operator()(int64_t e) const {
    const int64_t i = cuda::div_fast(e, row), j = e - i * row;
    y[e] = x[int64_t(idx[i]) * row + j];
  }
  __device__ void quad(int64_t q) const {
    const int64_t e = 4 * q, i = cuda::div_fast(e, row), j = e - i * row;
    reinterpret_cast<float4*>(y)[q] =
        reinterpret_cast<const float4*>(x)[(int64_t(idx[i]) * row + j) / 4];
  }
};

struct FillBody {
  float* y;
  float v;
  __device__ void operator()(int64_t i) const { y[i] = v; }
};

struct SelectBody {
  const uint8_t* m;
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = m[i] ? a[i] : b[i]; }
};

struct ChannelAffineBody {
  const float *x, *scale, *shift;
  float* y;
  int64_t C, HW;
  __device__ void operator()(int64_t i) const {
    const int64_t c = cuda::mod_fast(cuda::div_fast(i, HW), C);
    y[i] = x[i] * scale[c] + (shift ? shift[c] : 0.f);
  }
};

struct U8ToF32Body {
  const uint8_t* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = float(x[i]); }
};

template <class F>
struct DrawBody {
  F f;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = f(i); }
};

struct BernoulliBody {
  PhiloxUniformF f;
  const uint64_t* offset_at;  // added to f.offset when set (replayed steps)
  float p;
  uint8_t* m;
  __device__ void operator()(int64_t i) const {
    const float u = offset_at ? PhiloxUniformF{f.seed, f.offset + *offset_at}(i) : f(i);
    m[i] = u < p ? 1 : 0;
  }
};

struct AdamBody {
  AdamF f;
  const float* at;  // AdamHyper::at: the step size and bias correction from device memory
  float* p;
  const float* g;
  float *m, *v;
  __device__ void operator()(int64_t i) const {
    if (at) {
      AdamF fa = f;
      fa.set_schedule(at);
      fa(p[i], g[i], m[i], v[i]);
    } else {
      f(p[i], g[i], m[i], v[i]);
    }
  }
};

}  // namespace

void unary_fwd_cuda(UnaryOp op, float alpha, const float* x, float* y, int64_t n, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  visit_unary(op, alpha, [&](auto f) { cuda_for(n, st, UnaryFwdBody<decltype(f)>{f, x, y}); });
}

void unary_bwd_cuda(UnaryOp op, float alpha, const float* x, const float* y, const float* dy,
                    float* dx, int64_t n, bool acc, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  visit_unary(op, alpha, [&](auto f) {
    cuda_for(n, st, UnaryBwdBody<decltype(f)>{f, x, y, dy, dx, acc});
  });
}

void unary_fwd_gated_cuda(UnaryOp op, float alpha, const float* x, float* y, uint32_t* bits,
                          int64_t n, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  const bool ok = visit_gated(op, alpha, [&](auto f) {
    if (n <= 0) return;
    unary_fwd_gated_kernel<<<cuda::blocks_for(n), cuda::kThreads, 0, st>>>(f, x, y, bits, n);
    GENIE_LAUNCH_CHECK();
  });
  GENIE_CHECK(ok, "[unary_fwd_gated] ", unary_name(op), " is not a gated op");
}

void unary_bwd_gated_cuda(UnaryOp op, float alpha, const uint32_t* bits, const float* dy, float* dx,
                          int64_t n, bool acc, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  const bool ok = visit_gated(op, alpha, [&](auto f) {
    cuda_for(n, st, UnaryBwdGatedBody<decltype(f)>{f, bits, dy, dx, acc});
  });
  GENIE_CHECK(ok, "[unary_bwd_gated] ", unary_name(op), " is not a gated op");
}

void f32_to_bf16_cuda(const float* x, uint16_t* y, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), ToBf16Body{x, y});
}

void bf16_to_f32_cuda(const uint16_t* x, float* y, int64_t n, bool acc, Stream s) {
  cuda_for(n, cuda::resolve(s), FromBf16Body{x, y, acc});
}

void binary_fwd_cuda(BinaryOp op, const float* a, const float* b, float* y, int64_t n, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  visit_binary(op, [&](auto f) { cuda_for(n, st, BinaryBody<decltype(f)>{f, a, b, y}); });
}

void axpby_cuda(float alpha, const float* x, float beta, float* y, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), AxpbyBody{alpha, x, beta, y});
}

void fill_cuda(float* y, float v, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), FillBody{y, v});
}

void gather_rows_cuda(const float* x, const int32_t* idx, int64_t n, int64_t row, float* y,
                      Stream s) {
  const bool quads = row % 4 == 0 && cuda::aligned_to(x, 16) && cuda::aligned_to(y, 16);
  cuda::cuda_for_quads(n * row, cuda::resolve(s), GatherRowsBody{x, idx, row, y}, quads);
}

void select_mask_cuda(const uint8_t* m, const float* a, const float* b, float* y, int64_t n,
                      Stream s) {
  cuda_for(n, cuda::resolve(s), SelectBody{m, a, b, y});
}

void channel_affine_cuda(const float* x, const float* scale, const float* shift, float* y,
                         int64_t N, int64_t C, int64_t HW, Stream s) {
  if (C <= 0 || HW <= 0) return;
  cuda_for(N * C * HW, cuda::resolve(s), ChannelAffineBody{x, scale, shift, y, C, HW});
}

void u8_to_f32_cuda(const uint8_t* x, float* y, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), U8ToF32Body{x, y});
}

void philox_uniform_cuda(uint64_t seed, uint64_t offset, float* y, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), DrawBody<PhiloxUniformF>{PhiloxUniformF{seed, offset}, y});
}

void philox_normal_cuda(uint64_t seed, uint64_t offset, float mean, float std, float* y, int64_t n,
                        Stream s) {
  cuda_for(n, cuda::resolve(s), DrawBody<PhiloxNormalF>{PhiloxNormalF{seed, offset, mean, std}, y});
}

void philox_bernoulli_cuda(uint64_t seed, uint64_t offset, const uint64_t* offset_at, float p,
                           uint8_t* m, int64_t n, Stream s) {
  cuda_for(n, cuda::resolve(s), BernoulliBody{PhiloxUniformF{seed, offset}, offset_at, p, m});
}

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                    Stream s) {
  const AdamF f = AdamF::make(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step);
  cuda_for(n, cuda::resolve(s), AdamBody{f, h.at, p, g, m, v});
}

}  // namespace genie::k
