// Composed (unfused) forms of genie's fused Genie kernels — the baseline the fused kernels are
// measured against. Each is the sequence of elementary passes an eager framework executes for the
// same formula (PyTorch-reference operation order): one pass over memory per elementary op, every
// intermediate materialised in a fresh tensor, the backward as autograd would run it (saved
// intermediates, one pass per node, separate reductions). The passes are written once in
// bench/composed_impl.h and instantiated for the CPU (composed_cpu.cpp, OpenMP loops) and CUDA
// (composed.cu, one launch per pass); reductions use genie's own reduce kernels.
#pragma once
#include "autograd/tensor.h"

namespace genie::bench::composed {

// ---- AdaRound weight with learned step (GENIE.md §2.2); weight viewed as (K, M) ----
// soft: sig = σ(V); t = sig·1.2 − 0.1; h = clamp(t, 0, 1); b = (w_floor + h) + z[k];
//       d = clamp(b, 0, qmax) − z[k]; ŵ = d·s[k].      hard: h = [V ≥ 0].
struct WQuantSaved {
  Tensor sig, t, b, d;  // what autograd keeps for the backward
};
void wquant_fwd(Device dev, const Tensor& w_floor, const Tensor& v, const Tensor& step,
                const Tensor& zero, float qmax, bool hard, Tensor& w_hat, WQuantSaved& saved);
// dV (soft only; left undefined when hard) and dstep (K) from dŵ.
void wquant_bwd(Device dev, const Tensor& dw_hat, const WQuantSaved& saved, const Tensor& step,
                float qmax, bool hard, Tensor& dv, Tensor& dstep);

// ---- LSQ activation + QDrop (GENIE.md §2.3) ----
// t = x/s; r = round(clamp(t, qn, qp)); q = r·s; y = mask ? q : x.
struct AQuantSaved {
  Tensor t, r;
};
void aquant_fwd(Device dev, const Tensor& x, const Tensor& step, float qn, float qp,
                const Tensor& mask, Tensor& y, AQuantSaved& saved);
void aquant_bwd(Device dev, const Tensor& dy, const Tensor& x, const Tensor& step, float qn,
                float qp, const Tensor& mask, const AQuantSaved& saved, Tensor& dx, Tensor& dstep);

// ---- BN-statistics loss (GENIE.md §1.4) of x (N, C, HW): channel_mean_var + elementwise ----
// loss = weight·Σ_c ((mean_c − mu_c)² + (sqrt(var_c) − sigma_c)²), var unbiased.
struct BnStatSaved {
  Tensor mean, var, std_;
};
void bnstat_fwd(Device dev, const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, Tensor& loss, BnStatSaved& saved);
// dx from the scalar upstream gradient dout (a device scalar).
void bnstat_bwd(Device dev, const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, const Tensor& dout, const BnStatSaved& saved,
                Tensor& dx);

}  // namespace genie::bench::composed
