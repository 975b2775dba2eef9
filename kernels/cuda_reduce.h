// The CUDA drivers' per-channel reduction, the one pattern behind reduce.cu, bn.cu, spatial.cu
// (global average pool) and loss.cu. Data viewed as (N, C, HW) is reduced per channel c over N
// and HW (a flat reduction is C = 1; a per-row one is N = 1, C = rows, HW = len):
//   kernel 1: a (C, splits) grid; each thread folds its elements into an accumulator through
//             `src(acc, c, offset)` (offset = (n*C + c)*HW + i, so src may read several arrays),
//             cub::BlockReduce combines the block, thread 0 writes one partial;
//   kernel 2: one thread per channel folds that channel's partials in a fixed order and hands the
//             result to `fin(c, acc)`.
// The grid depends only on the shape, so results are deterministic from run to run.
// Accumulators are plain structs with a default state and GENIE_HD combine() (e.g. MeanVarAcc,
// BnGradSums from the functor headers). Only included by .cu files.
#pragma once
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"

namespace genie::cuda {

constexpr int kReduceThreads = 256;
// Elements per block before another split of a channel is worth a block of its own, and the
// total block budget (a few waves on a 132-SM GPU).
constexpr int64_t kReducePerBlock = int64_t(kReduceThreads) * 16;
constexpr int64_t kReduceMaxBlocks = 2048;

// Double sum, the accumulator of most reductions (float data, double accumulation as on the CPU).
struct SumAcc {
  double s = 0;
  GENIE_HD void add(double v) { s += v; }
  GENIE_HD void combine(const SumAcc& o) { s += o.s; }
};

template <class Acc>
struct CombineOp {
  __device__ Acc operator()(const Acc& a, const Acc& b) const {
    Acc r = a;
    r.combine(b);
    return r;
  }
};

// Block (c, s) folds elements [s*chunk, (s+1)*chunk) of channel c's N*HW elements.
template <class Acc, class Src>
__global__ void __launch_bounds__(kReduceThreads)
    channel_partials_kernel(Src src, int64_t N, int64_t C, int64_t HW, int64_t chunk,
                            Acc* __restrict__ part) {
  using BlockReduce = cub::BlockReduce<Acc, kReduceThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  const int64_t c = blockIdx.x, s = blockIdx.y;
  const int64_t L = N * HW;
  const int64_t lo = s * chunk, hi = lo + chunk < L ? lo + chunk : L;
  Acc acc;
  int64_t j = lo + threadIdx.x;
  if (j < hi) {
    // Walk (n, i) incrementally: one division up front instead of one per element.
    int64_t n = j / HW, i = j - n * HW;
    const int64_t dn = kReduceThreads / HW, di = kReduceThreads % HW;
    for (; j < hi; j += kReduceThreads) {
      src(acc, c, (n * C + c) * HW + i);
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

template <class Acc, class Fin>
struct ChannelFinalizeBody {
  const Acc* part;
  int64_t splits;
  Fin fin;
  __device__ void operator()(int64_t c) const {
    Acc acc;
    for (int64_t s = 0; s < splits; ++s) acc.combine(part[c * splits + s]);
    fin(c, acc);
  }
};

// Reduces every channel of (N, C, HW) on stream `st`; fin(c, acc) runs once per channel on the
// device (channels with no elements get the accumulator's default state). C == 0: nothing runs.
template <class Acc, class Src, class Fin>
void channel_reduce(const Src& src, int64_t N, int64_t C, int64_t HW, cudaStream_t st,
                    const Fin& fin) {
  if (C <= 0) return;
  GENIE_CHECK(C < (int64_t(1) << 31), "[reduce] expected fewer than 2^31 channels/rows, got ", C);
  const int64_t L = N > 0 && HW > 0 ? N * HW : 0;
  int64_t splits = (L + kReducePerBlock - 1) / kReducePerBlock;
  const int64_t max_splits = kReduceMaxBlocks / C > 1 ? kReduceMaxBlocks / C : 1;
  if (splits > max_splits) splits = max_splits;
  if (splits > 65535) splits = 65535;  // gridDim.y limit
  if (splits < 1) splits = 1;          // L == 0: one block per channel writes the identity
  const int64_t chunk = (L + splits - 1) / splits;
  Scratch part(size_t(C * splits) * sizeof(Acc));
  // HW is only a divisor inside the kernel; with L == 0 no element is read.
  channel_partials_kernel<Acc, Src><<<dim3(unsigned(C), unsigned(splits)), kReduceThreads, 0, st>>>(
      src, N, C, HW > 0 ? HW : 1, chunk, part.as<Acc>());
  GENIE_LAUNCH_CHECK();
  cuda_for(C, st, ChannelFinalizeBody<Acc, Fin>{part.as<Acc>(), splits, fin});
}

}  // namespace genie::cuda
