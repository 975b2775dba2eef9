// CUDA drivers of the moment-statistics kernels; math in kernels/stats_functors.h (shared with
// stats_cpu.cpp). Forward: the shared row mean/variance reduction, then std per row. Backward:
// one functor per group built once, then one elementwise pass.
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/reduce.h"
#include "kernels/stats.h"
#include "kernels/stats_functors.h"

namespace genie::k {
namespace {

using cuda::cuda_for;

struct StdFromVar {
  float* v;
  __device__ void operator()(int64_t i) const { v[i] = std_from_var(v[i]); }
};

struct MomentsCoef {
  const float *mean, *second, *dmean, *dsecond;
  double m;
  bool is_std, unbiased;
  MomentsBwdF* coef;
  __device__ void operator()(int64_t g) const {
    coef[g] = MomentsBwdF::make(mean[g], second[g], dmean, dsecond, g, m, is_std, unbiased);
  }
};

struct MomentsApply {
  const float* x;
  const MomentsBwdF* coef;
  int64_t G, L;
  float* dx;
  bool acc;
  __device__ void operator()(int64_t i) const {
    const float g = coef[cuda::mod_fast(cuda::div_fast(i, L), G)](x[i]);
    dx[i] = acc ? dx[i] + g : g;
  }
};

}  // namespace

void row_mean_std_cuda(const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                       float* std, Stream s) {
  const cudaStream_t st = cuda::resolve(s);
  row_mean_var_cuda(x, rows, len, unbiased, mean, std, st);
  cuda_for(rows, st, StdFromVar{std});
}

void moments_bwd_cuda(const float* x, int64_t N, int64_t G, int64_t L, const float* mean,
                      const float* second, const float* dmean, const float* dsecond, bool is_std,
                      bool unbiased, float* dx, bool acc, Stream s) {
  if (G <= 0 || L <= 0) return;
  const cudaStream_t st = cuda::resolve(s);
  cuda::Scratch coef(size_t(G) * sizeof(MomentsBwdF));
  cuda_for(G, st,
           MomentsCoef{mean, second, dmean, dsecond, double(N * L), is_std, unbiased,
                       coef.as<MomentsBwdF>()});
  cuda_for(N * G * L, st, MomentsApply{x, coef.as<MomentsBwdF>(), G, L, dx, acc});
}

}  // namespace genie::k
