// The passes of bench/composed.h, written once as templates over an executor `E` that runs a
// functor f(i) for i in [0, n) as ONE pass (E::run: an OpenMP loop on the CPU, one kernel launch
// on CUDA). Included by composed_cpu.cpp and composed.cu only.
#pragma once
#include <cmath>

#include "bench/composed.h"
#include "kernels/common.h"
#include "kernels/reduce.h"
#include "kernels/stats.h"

namespace genie::bench::composed {

// CUDA entry points (composed.cu; throwing stand-ins in CPU-only builds).
namespace cuda_entry {
void wquant_fwd(const Tensor& w_floor, const Tensor& v, const Tensor& step, const Tensor& zero,
                float qmax, bool hard, Tensor& w_hat, WQuantSaved& saved);
void wquant_bwd(const Tensor& dw_hat, const WQuantSaved& saved, const Tensor& step, float qmax,
                bool hard, Tensor& dv, Tensor& dstep);
void aquant_fwd(const Tensor& x, const Tensor& step, float qn, float qp, const Tensor& mask,
                Tensor& y, AQuantSaved& saved);
void aquant_bwd(const Tensor& dy, const Tensor& x, const Tensor& step, float qn, float qp,
                const Tensor& mask, const AQuantSaved& saved, Tensor& dx, Tensor& dstep);
void bnstat_fwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, Tensor& loss, BnStatSaved& saved);
void bnstat_bwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, const Tensor& dout, const BnStatSaved& saved,
                Tensor& dx);
}  // namespace cuda_entry

namespace impl {

// ---- elementary passes (each one read/write sweep) ----
struct SigmoidP {  // y = σ(x)
  const float* x;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = 1.f / (1.f + expf(-x[i])); }
};
struct ScaleP {  // y = x·a
  const float* x;
  float a;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = x[i] * a; }
};
struct AddScalarP {  // y = x + a
  const float* x;
  float a;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = x[i] + a; }
};
struct ClampP {  // y = clamp(x, lo, hi)
  const float* x;
  float lo, hi;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]); }
};
struct StepP {  // y = [x ≥ 0]
  const float* x;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = x[i] >= 0.f ? 1.f : 0.f; }
};
struct AddP {  // y = a + b
  const float* a;
  const float* b;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = a[i] + b[i]; }
};
struct MulP {  // y = a·b
  const float* a;
  const float* b;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = a[i] * b[i]; }
};
struct RowOpP {  // y = x (+|−|·) r[i / M]   (per-output-channel broadcast)
  const float* x;
  const float* r;
  int64_t M;
  int op;
  float* y;
  GENIE_HD void operator()(int64_t i) const {
    const float c = r[i / M];
    y[i] = op == 0 ? x[i] + c : (op == 1 ? x[i] - c : x[i] * c);
  }
};
struct ScalarOpP {  // y = x (·|/) s[0]   (device scalar)
  const float* x;
  const float* s;
  int op;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = op == 0 ? x[i] * s[0] : x[i] / s[0]; }
};
struct RoundP {  // y = round half to even
  const float* x;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = rintf(x[i]); }
};
struct WhereP {  // y = mask ? a : b   (a or b null = 0)
  const uint8_t* m;
  const float* a;
  const float* b;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = m[i] ? (a ? a[i] : 0.f) : (b ? b[i] : 0.f); }
};
struct ClampBwdP {  // dx = dy where lo ≤ x ≤ hi (strict: lo < x < hi)
  const float* dy;
  const float* x;
  float lo, hi;
  bool strict;
  float* dx;
  GENIE_HD void operator()(int64_t i) const {
    const bool in = strict ? (x[i] > lo && x[i] < hi) : (x[i] >= lo && x[i] <= hi);
    dx[i] = in ? dy[i] : 0.f;
  }
};
struct SigmoidBwdP {  // dx = dy·y·(1 − y)
  const float* dy;
  const float* y;
  float* dx;
  GENIE_HD void operator()(int64_t i) const { dx[i] = dy[i] * y[i] * (1.f - y[i]); }
};
struct DivBwdDenP {  // ∂(x/s)/∂s contribution: p = −dt·x/s²
  const float* dt;
  const float* x;
  const float* s;
  float* p;
  GENIE_HD void operator()(int64_t i) const { p[i] = -dt[i] * x[i] / (s[0] * s[0]); }
};
// Small per-channel passes of the BN-statistics loss (length C).
struct SqrtP {
  const float* x;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = sqrtf(x[i] > 0.f ? x[i] : 0.f); }
};
struct SqDiffP {  // y = (a − b)²
  const float* a;
  const float* b;
  float* y;
  GENIE_HD void operator()(int64_t i) const {
    const float d = a[i] - b[i];
    y[i] = d * d;
  }
};
struct DiffScaleP {  // y = 2·w·dout·(a − b)
  const float* a;
  const float* b;
  float w;
  const float* dout;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = 2.f * w * dout[0] * (a[i] - b[i]); }
};
struct SqrtBwdP {  // dvar = dstd / (2·std)   (0 where std = 0)
  const float* dstd;
  const float* std_;
  float* dvar;
  GENIE_HD void operator()(int64_t i) const {
    dvar[i] = std_[i] > 0.f ? dstd[i] / (2.f * std_[i]) : 0.f;
  }
};
struct ScaleByP {  // y = x·(w·s[0]) — the loss weight on a device scalar
  const float* x;
  float w;
  float* y;
  GENIE_HD void operator()(int64_t i) const { y[i] = x[i] * w; }
};

inline Tensor like(const Tensor& t) { return Tensor::empty(t.shape(), t.device()); }

template <class E>
void wquant_fwd(const Tensor& wf, const Tensor& v, const Tensor& step, const Tensor& zero,
                float qmax, bool hard, Tensor& w_hat, WQuantSaved& s) {
  const int64_t n = wf.numel(), M = n / wf.dim(0);
  Tensor h = like(v);
  if (hard) {
    E::run(n, StepP{v.data(), h.data()});
    s.sig = Tensor();
    s.t = Tensor();
  } else {
    s.sig = like(v);
    E::run(n, SigmoidP{v.data(), s.sig.data()});
    Tensor t1 = like(v);
    E::run(n, ScaleP{s.sig.data(), 1.2f, t1.data()});
    s.t = like(v);
    E::run(n, AddScalarP{t1.data(), -0.1f, s.t.data()});
    E::run(n, ClampP{s.t.data(), 0.f, 1.f, h.data()});
  }
  Tensor a = like(v);
  E::run(n, AddP{wf.data(), h.data(), a.data()});
  s.b = like(v);
  E::run(n, RowOpP{a.data(), zero.data(), M, 0, s.b.data()});
  Tensor c = like(v);
  E::run(n, ClampP{s.b.data(), 0.f, qmax, c.data()});
  s.d = like(v);
  E::run(n, RowOpP{c.data(), zero.data(), M, 1, s.d.data()});
  w_hat = like(v);
  E::run(n, RowOpP{s.d.data(), step.data(), M, 2, w_hat.data()});
}

template <class E>
void wquant_bwd(const Tensor& dy, const WQuantSaved& s, const Tensor& step, float qmax, bool hard,
                Tensor& dv, Tensor& dstep) {
  const int64_t n = dy.numel(), K = step.numel(), M = n / K;
  const Device dev = dy.device();
  // ŵ = d·s[k]: ds[k] = Σ_m dŵ·d (a product pass, then a per-row reduction), dd = dŵ·s[k].
  Tensor p = like(dy);
  E::run(n, MulP{dy.data(), s.d.data(), p.data()});
  dstep = Tensor::empty({K}, dev);
  k::channel_sum(dev, p.data(), 1, K, M, dstep.data(), false, nullptr);
  if (hard) {
    dv = Tensor();
    return;
  }
  Tensor dd = like(dy);
  E::run(n, RowOpP{dy.data(), step.data(), M, 2, dd.data()});
  // d = clamp(b) − z, b = a + z, a = w_floor + h: the clamp gates, the adds pass through.
  Tensor db = like(dy);
  E::run(n, ClampBwdP{dd.data(), s.b.data(), 0.f, qmax, false, db.data()});
  Tensor dt = like(dy);
  E::run(n, ClampBwdP{db.data(), s.t.data(), 0.f, 1.f, true, dt.data()});
  Tensor dsig = like(dy);
  E::run(n, ScaleP{dt.data(), 1.2f, dsig.data()});
  dv = like(dy);
  E::run(n, SigmoidBwdP{dsig.data(), s.sig.data(), dv.data()});
}

template <class E>
void aquant_fwd(const Tensor& x, const Tensor& step, float qn, float qp, const Tensor& mask,
                Tensor& y, AQuantSaved& s) {
  const int64_t n = x.numel();
  s.t = like(x);
  E::run(n, ScalarOpP{x.data(), step.data(), 1, s.t.data()});
  Tensor c = like(x);
  E::run(n, ClampP{s.t.data(), qn, qp, c.data()});
  s.r = like(x);
  E::run(n, RoundP{c.data(), s.r.data()});
  Tensor q = like(x);
  E::run(n, ScalarOpP{s.r.data(), step.data(), 0, q.data()});
  y = like(x);
  E::run(n, WhereP{mask.data_as<uint8_t>(), q.data(), x.data(), y.data()});
}

template <class E>
void aquant_bwd(const Tensor& dy, const Tensor& x, const Tensor& step, float qn, float qp,
                const Tensor& mask, const AQuantSaved& s, Tensor& dx, Tensor& dstep) {
  const int64_t n = x.numel();
  const Device dev = x.device();
  const uint8_t* m = mask.data_as<uint8_t>();
  Tensor dq = like(x), dkeep = like(x);
  E::run(n, WhereP{m, dy.data(), nullptr, dq.data()});
  E::run(n, WhereP{m, nullptr, dy.data(), dkeep.data()});
  // q = r·s: ds += Σ dq·r; dr = dq·s; round is straight-through; the clamp gates (inclusive).
  Tensor p1 = like(x);
  E::run(n, MulP{dq.data(), s.r.data(), p1.data()});
  Tensor ds1 = Tensor::empty({1}, dev), ds2 = Tensor::empty({1}, dev);
  k::reduce_sum(dev, p1.data(), n, ds1.data(), nullptr);
  Tensor dr = like(x);
  E::run(n, ScalarOpP{dq.data(), step.data(), 0, dr.data()});
  Tensor dt = like(x);
  E::run(n, ClampBwdP{dr.data(), s.t.data(), qn, qp, false, dt.data()});
  // t = x/s: dx_q = dt/s, ds += Σ −dt·x/s².
  Tensor dxq = like(x);
  E::run(n, ScalarOpP{dt.data(), step.data(), 1, dxq.data()});
  Tensor p2 = like(x);
  E::run(n, DivBwdDenP{dt.data(), x.data(), step.data(), p2.data()});
  k::reduce_sum(dev, p2.data(), n, ds2.data(), nullptr);
  dx = like(x);
  E::run(n, AddP{dxq.data(), dkeep.data(), dx.data()});
  dstep = Tensor::empty({1}, dev);
  E::run(1, AddP{ds1.data(), ds2.data(), dstep.data()});
}

template <class E>
void bnstat_fwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, Tensor& loss, BnStatSaved& s) {
  const Device dev = x.device();
  s.mean = Tensor::empty({C}, dev);
  s.var = Tensor::empty({C}, dev);
  k::channel_mean_var(dev, x.data(), N, C, HW, true, s.mean.data(), s.var.data(), nullptr);
  s.std_ = Tensor::empty({C}, dev);
  E::run(C, SqrtP{s.var.data(), s.std_.data()});
  Tensor e1 = Tensor::empty({C}, dev), e2 = Tensor::empty({C}, dev), e = Tensor::empty({C}, dev);
  E::run(C, SqDiffP{s.mean.data(), mu.data(), e1.data()});
  E::run(C, SqDiffP{s.std_.data(), sigma.data(), e2.data()});
  E::run(C, AddP{e1.data(), e2.data(), e.data()});
  Tensor total = Tensor::empty({1}, dev);
  k::reduce_sum(dev, e.data(), C, total.data(), nullptr);
  loss = Tensor::empty({1}, dev);
  E::run(1, ScaleByP{total.data(), weight, loss.data()});
}

template <class E>
void bnstat_bwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, const Tensor& dout, const BnStatSaved& s,
                Tensor& dx) {
  const Device dev = x.device();
  Tensor dmean = Tensor::empty({C}, dev), dstd = Tensor::empty({C}, dev),
         dvar = Tensor::empty({C}, dev);
  E::run(C, DiffScaleP{s.mean.data(), mu.data(), weight, dout.data(), dmean.data()});
  E::run(C, DiffScaleP{s.std_.data(), sigma.data(), weight, dout.data(), dstd.data()});
  E::run(C, SqrtBwdP{dstd.data(), s.std_.data(), dvar.data()});
  dx = like(x);
  k::moments_bwd(dev, x.data(), N, C, HW, s.mean.data(), s.var.data(), dmean.data(), dvar.data(),
                 false, true, dx.data(), false, nullptr);
}

}  // namespace impl
}  // namespace genie::bench::composed
