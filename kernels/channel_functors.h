// Index maps and per-element math of the channel kernels (kernels/channel.h), written once for the
// CPU loops (channel_cpu.cpp) and the CUDA kernels (channel.cu). Tensors are viewed as
// (N, C, inner); a "plane" is one (n, c) row of `inner` contiguous floats.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace genie::k {

// torchvision's channel_shuffle: view (N, g, C/g, inner), transpose(1, 2), flatten. Output
// channel o = j·g + i (i < g, j < C/g) reads input channel i·(C/g) + j. The inverse permutation is
// the same map with g and C/g swapped, so the backward pass is a shuffle with C/g groups.
struct ChannelShuffleF {
  int64_t groups, per_group;  // C = groups · per_group
  GENIE_HD int64_t src(int64_t o) const { return (o % groups) * per_group + o / groups; }
};

// A block of `count` channels starting at `start` in a C-channel tensor (slice, concat part).
struct ChannelBlockF {
  int64_t start, count;
  // The block channel that tensor channel c lies on, or -1 outside the block.
  GENIE_HD int64_t local(int64_t c) const {
    const int64_t l = c - start;
    return l >= 0 && l < count ? l : -1;
  }
};

// y = x · s with s broadcast over each plane (squeeze-and-excitation gating). The gradient to s
// sums dy · x over the plane: products of two floats are exact in double, and the sum runs in
// double (as global average pooling does), so the result is the correctly rounded plane sum in all
// but pathological cases and does not depend on the summation order in float.
struct BcastMulF {
  GENIE_HD static float fwd(float x, float s) { return x * s; }
  GENIE_HD static float grad_x(float dy, float s) { return dy * s; }
  GENIE_HD static double grad_s_term(float dy, float x) { return double(dy) * double(x); }
  GENIE_HD static float grad_s(double sum) { return float(sum); }
};

}  // namespace genie::k
