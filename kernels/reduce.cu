// CUDA reductions: each is one call of cuda::channel_reduce (kernels/cuda_reduce.h: a (C, splits)
// grid of cub::BlockReduce partials, folded per channel in a fixed order — deterministic). Sums
// accumulate in double like the CPU driver; mean/variance use MeanVarAcc from functors.h (the
// Welford/Chan accumulator the header shares between backends).
#include <cmath>

#include "kernels/cuda_reduce.h"
#include "kernels/functors.h"
#include "kernels/reduce.h"

namespace genie::k {
namespace {

using cuda::SumAcc;

// Same comparison as the CPU driver (std::min/std::max): a NaN never replaces the running value.
struct MinMaxAcc {
  float mn = INFINITY, mx = -INFINITY;
  GENIE_HD void combine(const MinMaxAcc& o) {
    mn = o.mn < mn ? o.mn : mn;
    mx = mx < o.mx ? o.mx : mx;
  }
};

struct SumSrc {
  const float* x;
  __device__ void operator()(SumAcc& a, int64_t, int64_t o) const { a.add(double(x[o])); }
};
struct MinMaxSrc {
  const float* x;
  __device__ void operator()(MinMaxAcc& a, int64_t, int64_t o) const {
    const float v = x[o];
    a.mn = v < a.mn ? v : a.mn;
    a.mx = a.mx < v ? v : a.mx;
  }
};
struct MeanVarSrc {
  const float* x;
  __device__ void operator()(MeanVarAcc& a, int64_t, int64_t o) const { a.push(double(x[o])); }
};

struct SumFin {
  float* out;
  __device__ void operator()(int64_t, const SumAcc& a) const { out[0] = float(a.s); }
};
struct MinMaxFin {
  float* out;
  __device__ void operator()(int64_t, const MinMaxAcc& a) const {
    out[0] = a.mn;
    out[1] = a.mx;
  }
};
struct MeanVarFin {
  float *mean, *var;
  bool unbiased;
  __device__ void operator()(int64_t c, const MeanVarAcc& a) const {
    mean[c] = float(a.mean);
    var[c] = float(a.var(unbiased));
  }
};
struct ChannelSumFin {
  float* out;
  bool acc;
  __device__ void operator()(int64_t c, const SumAcc& a) const {
    out[c] = acc ? out[c] + float(a.s) : float(a.s);
  }
};

}  // namespace

void reduce_sum_cuda(const float* x, int64_t n, float* out, Stream s) {
  cuda::channel_reduce<SumAcc>(SumSrc{x}, 1, 1, n, cuda::resolve(s), SumFin{out});
}

void reduce_minmax_cuda(const float* x, int64_t n, float* out, Stream s) {
  cuda::channel_reduce<MinMaxAcc>(MinMaxSrc{x}, 1, 1, n, cuda::resolve(s), MinMaxFin{out});
}

void channel_mean_var_cuda(const float* x, int64_t N, int64_t C, int64_t HW, bool unbiased,
                           float* mean, float* var, Stream s) {
  cuda::channel_reduce<MeanVarAcc>(MeanVarSrc{x}, N, C, HW, cuda::resolve(s),
                                   MeanVarFin{mean, var, unbiased});
}

void row_mean_var_cuda(const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                       float* var, Stream s) {
  channel_mean_var_cuda(x, 1, rows, len, unbiased, mean, var, s);
}

void channel_sum_cuda(const float* x, int64_t N, int64_t C, int64_t HW, float* out, bool acc,
                      Stream s) {
  cuda::channel_reduce<SumAcc>(SumSrc{x}, N, C, HW, cuda::resolve(s), ChannelSumFin{out, acc});
}

}  // namespace genie::k
