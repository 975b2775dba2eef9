// CUDA reductions. One pattern serves all of them: x viewed as (N, C, HW) is reduced per channel
// c over N and HW (a flat reduction is C = 1, a per-row one is N = 1). Kernel 1 runs a grid of
// (C, splits) blocks; each thread folds its elements into an accumulator (double sums, or
// MeanVarAcc from functors.h — the same Welford/Chan combine the header documents for both
// backends), cub::BlockReduce combines the block, and thread 0 writes one partial. Kernel 2 folds
// each channel's partials in a fixed order and writes the float result. The grid depends only on
// the shape, so results are deterministic run to run.
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/functors.h"
#include "kernels/reduce.h"

namespace genie::k {
namespace {

constexpr int kRThreads = 256;
// Elements per block before another split of the channel is worth a block of its own.
constexpr int64_t kPerBlock = int64_t(kRThreads) * 16;
constexpr int64_t kMaxBlocksTotal = 2048;

struct SumAcc {
  double s = 0;
  GENIE_HD void push(float x) { s += double(x); }
  GENIE_HD void combine(const SumAcc& o) { s += o.s; }
};

// Same comparison as the CPU driver (std::min/std::max): a NaN never replaces the running value.
struct MinMaxAcc {
  float mn = INFINITY, mx = -INFINITY;
  GENIE_HD void push(float x) {
    mn = x < mn ? x : mn;
    mx = mx < x ? x : mx;
  }
  GENIE_HD void combine(const MinMaxAcc& o) { push2(o.mn, o.mx); }
  GENIE_HD void push2(float a, float b) {
    mn = a < mn ? a : mn;
    mx = mx < b ? b : mx;
  }
};

// MeanVarAcc::push takes double; adapt so the kernel can push floats to any accumulator.
struct MeanVarPush : MeanVarAcc {
  GENIE_HD void push(float x) { MeanVarAcc::push(double(x)); }
  GENIE_HD void combine(const MeanVarPush& o) { MeanVarAcc::combine(o); }
};

template <class Acc>
struct CombineOp {
  __device__ Acc operator()(const Acc& a, const Acc& b) const {
    Acc r = a;
    r.combine(b);
    return r;
  }
};

// Kernel 1: block (c, s) folds elements [s*chunk, (s+1)*chunk) of channel c's N*HW elements.
template <class Acc>
__global__ void __launch_bounds__(kRThreads)
    channel_partials(const float* __restrict__ x, int64_t N, int64_t C, int64_t HW, int64_t chunk,
                     Acc* __restrict__ part) {
  using BlockReduce = cub::BlockReduce<Acc, kRThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  const int64_t c = blockIdx.x, s = blockIdx.y;
  const int64_t L = N * HW;
  const int64_t lo = s * chunk, hi = lo + chunk < L ? lo + chunk : L;
  Acc acc;
  int64_t j = lo + threadIdx.x;
  if (j < hi) {
    // Walk (n, i) incrementally: one division up front instead of one per element.
    int64_t n = j / HW, i = j - n * HW;
    const int64_t dn = kRThreads / HW, di = kRThreads % HW;
    for (; j < hi; j += kRThreads) {
      acc.push(x[(n * C + c) * HW + i]);
      i += di;
      n += dn;
      if (i >= HW) {
        i -= HW;
        ++n;
      }
    }
  }
  const Acc r = BlockReduce(tmp).Reduce(acc, CombineOp<Acc>{});
  if (threadIdx.x == 0) part[c * gridDim.y + s] = r;
}

// Kernel 2 (as a cuda_for body over channels): fold the partials in order, then project.
template <class Acc, class Fin>
struct FinalizeBody {
  const Acc* part;
  int64_t splits;
  Fin fin;
  __device__ void operator()(int64_t c) const {
    Acc acc;
    for (int64_t s = 0; s < splits; ++s) acc.combine(part[c * splits + s]);
    fin(c, acc);
  }
};

template <class Acc, class Fin>
void channel_reduce(const float* x, int64_t N, int64_t C, int64_t HW, Stream stream, Fin fin) {
  if (C <= 0) return;
  const cudaStream_t st = cuda::resolve(stream);
  const int64_t L = N * HW;
  int64_t splits = (L + kPerBlock - 1) / kPerBlock;
  const int64_t max_splits = kMaxBlocksTotal / C > 1 ? kMaxBlocksTotal / C : 1;
  if (splits > max_splits) splits = max_splits;
  if (splits > 65535) splits = 65535;  // gridDim.y limit
  if (splits < 1) splits = 1;          // L == 0: one block writes the identity
  const int64_t chunk = L > 0 ? (L + splits - 1) / splits : 0;
  GENIE_CHECK(C < (int64_t(1) << 31), "[reduce] expected fewer than 2^31 channels/rows, got ", C);
  cuda::Scratch part(size_t(C * splits) * sizeof(Acc));
  // HW == 0 would divide by zero inside the kernel; L == 0 then and no element is read.
  channel_partials<Acc><<<dim3(unsigned(C), unsigned(splits)), kRThreads, 0, st>>>(
      x, N, C, HW > 0 ? HW : 1, chunk, part.as<Acc>());
  GENIE_LAUNCH_CHECK();
  cuda::cuda_for(C, st, FinalizeBody<Acc, Fin>{part.as<Acc>(), splits, fin});
}

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
  __device__ void operator()(int64_t c, const MeanVarPush& a) const {
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
  channel_reduce<SumAcc>(x, 1, 1, n, s, SumFin{out});
}

void reduce_minmax_cuda(const float* x, int64_t n, float* out, Stream s) {
  channel_reduce<MinMaxAcc>(x, 1, 1, n, s, MinMaxFin{out});
}

void channel_mean_var_cuda(const float* x, int64_t N, int64_t C, int64_t HW, bool unbiased,
                           float* mean, float* var, Stream s) {
  channel_reduce<MeanVarPush>(x, N, C, HW, s, MeanVarFin{mean, var, unbiased});
}

void row_mean_var_cuda(const float* x, int64_t rows, int64_t len, bool unbiased, float* mean,
                       float* var, Stream s) {
  channel_reduce<MeanVarPush>(x, 1, rows, len, s, MeanVarFin{mean, var, unbiased});
}

void channel_sum_cuda(const float* x, int64_t N, int64_t C, int64_t HW, float* out, bool acc,
                      Stream s) {
  channel_reduce<SumAcc>(x, N, C, HW, s, ChannelSumFin{out, acc});
}

}  // namespace genie::k
