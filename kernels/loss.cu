// CUDA loss drivers; the math is kernels/loss_functors.h, shared with loss_cpu.cpp. Scalar losses
// are double sums through the shared reduction (kernels/cuda_reduce.h), divided once on the
// device. The upstream gradient `dout` is a device scalar, read inside the kernels (no host sync).
#include "kernels/cuda_reduce.h"
#include "kernels/loss.h"
#include "kernels/loss_functors.h"

namespace genie::k {
namespace {

using cuda::cuda_for;
using cuda::SumAcc;

struct SqDiffSrc {
  const float *a, *b;
  __device__ void operator()(SumAcc& acc, int64_t, int64_t o) const {
    acc.add(SqDiffF{}(a[o], b[o]));
  }
};
// out[0] = sum / count
struct MeanFin {
  float* out;
  double count;
  __device__ void operator()(int64_t, const SumAcc& acc) const { out[0] = float(acc.s / count); }
};

struct MseBwd {
  const float *a, *b, *dout;
  int64_t n;
  float* da;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = MseBwdF::make(dout[0], n)(a[i], b[i]);
    da[i] = acc ? da[i] + g : g;
  }
};

// One thread per row: softmax into prob, the row's loss into row_loss.
struct XentRows {
  const float* logits;
  const int32_t* labels;
  int64_t K;
  float *prob, *row_loss;
  __device__ void operator()(int64_t r) const {
    row_loss[r] = XentRowF::row(logits + r * K, labels[r], K, prob + r * K);
  }
};
struct RowLossSrc {
  const float* row_loss;
  __device__ void operator()(SumAcc& acc, int64_t, int64_t o) const {
    acc.add(double(row_loss[o]));
  }
};

struct XentBwd {
  const float* prob;
  const int32_t* labels;
  int64_t N, K;
  const float* dout;
  float* dlogits;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const int64_t r = cuda::div_fast(i, K), j = i - r * K;
    const float g = XentBwdF::make(dout[0], N)(prob[i], j == labels[r]);
    dlogits[i] = acc ? dlogits[i] + g : g;
  }
};

}  // namespace

void mse_fwd_cuda(const float* a, const float* b, int64_t n, float* out, Stream s) {
  cuda::channel_reduce<SumAcc>(SqDiffSrc{a, b}, 1, 1, n, cuda::resolve(s), MeanFin{out, double(n)});
}

void mse_bwd_cuda(const float* a, const float* b, int64_t n, const float* dout, float* da, bool acc,
                  Stream s) {
  cuda_for(n, cuda::resolve(s), MseBwd{a, b, dout, n, da, acc});
}

void cross_entropy_fwd_cuda(const float* logits, const int32_t* labels, int64_t N, int64_t K,
                            float* prob, float* out, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  cuda::Scratch row_loss(size_t(N > 0 ? N : 0) * sizeof(float));
  if (K > 0) cuda_for(N, st, XentRows{logits, labels, K, prob, row_loss.as<float>()});
  // Row losses summed in double, divided by N (as cross_entropy_fwd_cpu).
  cuda::channel_reduce<SumAcc>(RowLossSrc{row_loss.as<float>()}, 1, 1, N, st,
                               MeanFin{out, double(N)});
}

void cross_entropy_bwd_cuda(const float* prob, const int32_t* labels, int64_t N, int64_t K,
                            const float* dout, float* dlogits, bool acc, Stream s) {
  cuda_for(N * K, cuda::resolve(s), XentBwd{prob, labels, N, K, dout, dlogits, acc});
}

}  // namespace genie::k
