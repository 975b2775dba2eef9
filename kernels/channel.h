// Channel rearrangements and per-channel broadcasting on tensors viewed as (N, C, inner): inner is
// H*W for NCHW activations, 1 for (N, C) features. Concatenation, slicing and the ShuffleNet
// channel shuffle are plane copies; broadcast multiplication scales each (n, c) plane by one value
// (squeeze-and-excitation gating). The index maps are kernels/channel_functors.h, shared by the CPU
// (channel_cpu.cpp) and CUDA (channel.cu) drivers.
// `accumulate`: false overwrites the output, true adds to it (gradient accumulation).
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// Block copy: dst[n, dst_off + c, :] (+)= src[n, src_off + c, :] for c < count, n < N; src is
// (N, src_C, inner), dst (N, dst_C, inner); channels of dst outside the block are not touched.
// (Concatenation forward and backward, slice forward.)
GENIE_DECLARE_KERNEL(channel_copy,
                     (const float* src, int64_t src_C, int64_t src_off, float* dst, int64_t dst_C,
                      int64_t dst_off, int64_t N, int64_t count, int64_t inner, bool accumulate,
                      Stream s),
                     (src, src_C, src_off, dst, dst_C, dst_off, N, count, inner, accumulate, s))
// Slice adjoint: dx (N, C, inner) (+)= dy (N, count, inner) placed at channel `start`, zeros in
// the other channels (written in overwrite mode, so dx may start uninitialised).
GENIE_DECLARE_KERNEL(channel_slice_bwd,
                     (const float* dy, int64_t N, int64_t C, int64_t inner, int64_t start,
                      int64_t count, float* dx, bool accumulate, Stream s),
                     (dy, N, C, inner, start, count, dx, accumulate, s))
// Channel shuffle (ChannelShuffleF): y[n, o, :] (+)= x[n, (o % groups)·(C/groups) + o/groups, :].
// groups divides C; the adjoint is the shuffle with C/groups groups.
GENIE_DECLARE_KERNEL(channel_shuffle,
                     (const float* x, int64_t N, int64_t C, int64_t inner, int64_t groups, float* y,
                      bool accumulate, Stream s),
                     (x, N, C, inner, groups, y, accumulate, s))
// Broadcast multiply (BcastMulF), x (P, inner) and s (P) for P = N·C planes: y = x · s[plane].
GENIE_DECLARE_KERNEL(bcast_mul_fwd,
                     (const float* x, const float* scale, int64_t P, int64_t inner, float* y,
                      Stream s),
                     (x, scale, P, inner, y, s))
// Gradient to the large operand: dx (P, inner) (+)= dy · s[plane].
GENIE_DECLARE_KERNEL(bcast_mul_bwd_x,
                     (const float* dy, const float* scale, int64_t P, int64_t inner, float* dx,
                      bool accumulate, Stream s),
                     (dy, scale, P, inner, dx, accumulate, s))
// Gradient to the per-plane operand: ds (P) (+)= sum over the plane of dy · x, in double (exact
// products; the CUDA driver's block reduction sums in another order, so the two agree to the last
// float bit except in the rare case where the double sums round to neighbouring floats).
GENIE_DECLARE_KERNEL(bcast_mul_bwd_s,
                     (const float* dy, const float* x, int64_t P, int64_t inner, float* ds,
                      bool accumulate, Stream s),
                     (dy, x, P, inner, ds, accumulate, s))

}  // namespace genie::k
