// Math of the differentiable moment statistics (per-channel mean/var over N,H,W and per-(n,c)
// mean/std over H,W), written once for the CPU loops (kernels/stats_cpu.cpp) and the CUDA kernels
// (kernels/stats.cu). The forward statistics come from the shared Welford/two-pass reductions in
// kernels/reduce.h; only their backward and the std transform live here.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace genie::k {

// std of one group from its variance.
GENIE_HD float std_from_var(float var) { return sqrtf(var); }

// Backward of (mean, second) of one group of m elements, for one element x of the group:
//   dx = dmean / m + coef * (x - mean)
//   second = var: coef = dvar * 2 / D
//   second = std: coef = dstd / (D * std)   (0 when std == 0: the gradient of sqrt at 0 is
//                                            undefined; PyTorch gives NaN, we give 0)
// with D = m - 1 (unbiased) or m (biased). The mean's own dependence on x cancels in the
// variance term because sum(x - mean) = 0. dmean / dsecond may be null (that output unused).
struct MomentsBwdF {
  float mean, dmean_m, coef;
  GENIE_HD static MomentsBwdF make(float mean, float second, const float* dmean,
                                   const float* dsecond, int64_t g, double m, bool is_std,
                                   bool unbiased) {
    const double D = unbiased ? m - 1.0 : m;
    double coef = 0;
    if (dsecond) {
      if (!is_std)
        coef = 2.0 * double(dsecond[g]) / D;
      else if (second > 0.f)
        coef = double(dsecond[g]) / (D * double(second));
    }
    return MomentsBwdF{mean, dmean ? float(double(dmean[g]) / m) : 0.f, float(coef)};
  }
  GENIE_HD float operator()(float x) const { return dmean_m + coef * (x - mean); }
};

}  // namespace genie::k
