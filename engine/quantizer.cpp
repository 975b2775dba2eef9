// Weight and activation quantizers: clip-search initialisation and fake-quant forwards.
#include "engine/quantizer.h"

#include <algorithm>
#include <cmath>

#include "kernels/quant.h"
#include "kernels/quant_functors.h"

namespace genie::quant {

void clip_grid(float x_max, float x_min, double r, int bits, float& delta, float& zero) {
  // The reference multiplies float32 tensors by the Python float r: r is rounded to float32 first.
  const float rf = float(r);
  const float new_max = x_max * rf, new_min = x_min * rf;
  delta = (new_max - new_min) / k::grid_max(bits);
  // A degenerate range (constant row, or all zeros) would divide by zero; any positive step
  // represents it exactly enough, so fall back to a tiny one.
  if (!(delta > 0.f)) delta = std::max(std::fabs(new_max), 1e-8f);
  zero = std::nearbyint(-new_min / delta);  // half to even (default rounding mode), as torch.round
}

void clip_grid_symmetric(float x_max, float x_min, double r, int bits, float& delta, float& zero) {
  const float half = float(1 << (bits - 1));
  delta = std::max(std::fabs(x_max), std::fabs(x_min)) * float(r) / half;
  if (!(delta > 0.f)) delta = 1e-8f;  // an all-zero row
  zero = half;
}

ClipSearch clip_search(const Tensor& x2d, const std::vector<float>& hi,
                       const std::vector<float>& lo, int bits, bool symmetric) {
  check_f32("clip_search", x2d);
  GENIE_CHECK(x2d.ndim() == 2, "[clip_search] expected (rows, cols), got ", shape_str(x2d.shape()));
  k::check_bits("clip_search", bits);
  const int64_t rows = x2d.dim(0), cols = x2d.dim(1);
  GENIE_CHECK(int64_t(hi.size()) == rows && int64_t(lo.size()) == rows, "[clip_search] expected ",
              rows, " row ranges, got ", hi.size());
  const int64_t nc = kClipCandidates;
  std::vector<float> delta(size_t(rows * nc)), zero(size_t(rows * nc));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < nc; ++i)
      (symmetric ? clip_grid_symmetric : clip_grid)(
          hi[size_t(r)], lo[size_t(r)], 1.0 - double(i) * 0.01, bits, delta[size_t(r * nc + i)],
          zero[size_t(r * nc + i)]);
  const Device d = x2d.device();
  Tensor dt = Tensor::from_vector(delta, {rows, nc}, d),
         zt = Tensor::from_vector(zero, {rows, nc}, d);
  // double scores: a (rows, nc) f64 buffer as raw bytes
  Tensor score = Tensor::empty({rows, nc, 2}, d, DType::I32);
  k::clip_search_scores(d, x2d.data(), rows, cols, nc, dt.data(), zt.data(), k::grid_max(bits),
                        static_cast<double*>(score.raw()), nullptr);
  Tensor host = score.to(Device::CPU);
  const double* sc = static_cast<const double*>(host.raw());
  ClipSearch out;
  out.delta.resize(size_t(rows));
  out.zero.resize(size_t(rows));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    for (int64_t i = 1; i < nc; ++i)  // strict <: the first (largest r) wins ties
      if (sc[r * nc + i] < sc[r * nc + best]) best = i;
    out.delta[size_t(r)] = delta[size_t(r * nc + best)];
    out.zero[size_t(r)] = zero[size_t(r * nc + best)];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

WeightQuantizer WeightQuantizer::from_weight(const Tensor& w, int bits, bool symmetric) {
  check_f32("weight_quantizer", w);
  GENIE_CHECK(w.ndim() >= 1 && w.dim(0) > 0, "[weight_quantizer] expected a weight (K, ...), got ",
              shape_str(w.shape()));
  const int64_t K = w.dim(0), M = w.numel() / K;
  const Device d = w.device();
  Tensor w2 = ops::reshape(w.detach(), {K, M});
  std::vector<float> wh = w.to_vector();
  std::vector<float> hi(static_cast<size_t>(K)), lo(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    float mx = wh[size_t(k * M)], mn = mx;
    for (int64_t m = 0; m < M; ++m) {
      mx = std::max(mx, wh[size_t(k * M + m)]);
      mn = std::min(mn, wh[size_t(k * M + m)]);
    }
    hi[size_t(k)] = mx;
    lo[size_t(k)] = mn;
  }
  ClipSearch cs = clip_search(w2.detach(), hi, lo, bits, symmetric);
  // W_floor = floor(W/s), V = −log(1.2/(frac + 0.1) − 1) so that h(V) = frac (GENIE.md §2.2).
  std::vector<float> wf(wh.size()), v(wh.size());
  for (int64_t k = 0; k < K; ++k) {
    const float s = cs.delta[size_t(k)];
    for (int64_t m = 0; m < M; ++m) {
      const size_t i = size_t(k * M + m);
      const float t = wh[i] / s;
      wf[i] = std::floor(t);
      const float frac = t - wf[i];
      v[i] = -std::log(1.2f / (frac + 0.1f) - 1.f);
    }
  }
  WeightQuantizer q;
  q.bits_ = bits;
  q.w_floor_ = Tensor::from_vector(wf, w.shape(), d);
  q.v_ = Tensor::from_vector(v, w.shape(), d);
  q.step_ = Tensor::from_vector(cs.delta, {K}, d);
  q.zero_ = Tensor::from_vector(cs.zero, {K}, d);
  return q;
}

WeightQuantizer WeightQuantizer::from_codes(const Tensor& codes, const Tensor& step,
                                            const Tensor& zero, int bits) {
  check_f32("weight_quantizer", codes);
  k::check_bits("weight_quantizer", bits);
  const int64_t K = codes.dim(0);
  GENIE_CHECK(step.numel() == K && zero.numel() == K, "[weight_quantizer] expected ", K,
              " steps and zero points, got ", step.numel(), " and ", zero.numel());
  const int64_t M = codes.numel() / K;
  std::vector<float> c = codes.to_vector(), z = zero.to_vector();
  std::vector<float> wf(c.size());
  const float qmax = k::grid_max(bits);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t m = 0; m < M; ++m) {
      const float ck = c[size_t(k * M + m)];
      GENIE_CHECK(ck >= 0.f && ck <= qmax && ck == std::floor(ck), "[weight_quantizer] code ", ck,
                  " outside 0..", qmax);
      // W_floor = code − z with hard bit 0: clamp(code − z + 0 + z) = code exactly (integers).
      wf[size_t(k * M + m)] = ck - z[size_t(k)];
    }
  WeightQuantizer q;
  q.bits_ = bits;
  q.hard_ = true;
  const Device d = codes.device();
  q.w_floor_ = Tensor::from_vector(wf, codes.shape(), d);
  q.v_ = Tensor::full(codes.shape(), -1.f, d);
  q.step_ = step.clone();
  q.zero_ = zero.clone();
  return q;
}

WeightQuantizer WeightQuantizer::from_state(const Tensor& w_floor, const Tensor& v,
                                            const Tensor& step, const Tensor& zero, int bits,
                                            bool hard) {
  check_same_shape("weight_quantizer", w_floor, v);
  GENIE_CHECK(
      w_floor.ndim() >= 1 && step.numel() == w_floor.dim(0) && zero.numel() == w_floor.dim(0),
      "[weight_quantizer] expected ", w_floor.ndim() ? w_floor.dim(0) : 0,
      " steps and zero points, got ", step.numel(), " and ", zero.numel());
  WeightQuantizer q;
  q.bits_ = bits;
  q.hard_ = hard;
  q.w_floor_ = w_floor.detach().clone();
  q.v_ = v.detach().clone();
  q.step_ = step.detach().clone();
  q.zero_ = zero.detach().clone();
  return q;
}

namespace {

// A tensor moved to device d, keeping whether it learns.
void move_param(Tensor& t, Device d) {
  if (!t.defined()) return;
  const bool rg = t.requires_grad();
  t = t.to(d).detach();
  if (rg) t.set_requires_grad();
}

}  // namespace

bool valid_steps(const Tensor& steps) {
  const std::vector<float> v = steps.detach().to_vector();
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x) && x > 0.f; });
}

void StepParam::start(const Tensor& s0, float lr, float max_change) {
  GENIE_CHECK(lr > 0.f && max_change > 0.f, "[quantizer] expected a positive step learning rate ",
              "and max change, got ", lr, " and ", max_change);
  std::vector<float> cv = s0.detach().to_vector();
  for (float& x : cv) {
    GENIE_CHECK(x > 0.f && std::isfinite(x), "[quantizer] expected positive finite steps, got ", x);
    x = std::min(1.f / x, max_change / lr);
  }
  c = Tensor::from_vector(cv, s0.shape(), s0.device());
  phi = Tensor::zeros(s0.shape(), s0.device());
  phi.set_requires_grad(true);
}

Tensor StepParam::apply(const Tensor& s0) const {
  return learned() ? ops::mul(s0, ops::exp(ops::mul(c, phi))) : s0;
}

void StepParam::fold(Tensor& s0) {
  if (!learned()) return;
  NoGradGuard ng;
  Tensor s = apply(s0.detach()).detach();
  s0 = s;
  phi = Tensor();
  c = Tensor();
}

void StepParam::to(Device d) {
  move_param(phi, d);
  if (c.defined()) c = c.to(d);
}

void WeightQuantizer::learn_step(float lr, float max_change) {
  GENIE_CHECK(defined(), "[weight_quantizer] used before initialisation");
  param_.start(step_, lr, max_change);
}
Tensor WeightQuantizer::effective_step() const { return param_.apply(step_); }
void WeightQuantizer::fix_step() { param_.fold(step_); }

Tensor WeightQuantizer::forward() const {
  GENIE_CHECK(defined(), "[weight_quantizer] used before initialisation");
  return ops::fake_quant_weight(w_floor_, v_, effective_step(), zero_, bits_, hard_);
}

Tensor WeightQuantizer::codes() const {
  const int64_t K = w_floor_.dim(0), M = w_floor_.numel() / K;
  // Ŵ/s would round; recompute the integer level with the same functor as the kernel.
  std::vector<float> wf = w_floor_.to_vector(), v = v_.to_vector(), z = zero_.to_vector();
  std::vector<float> c(wf.size());
  const k::WeightQuantF f{k::grid_max(bits_), true};
  for (int64_t kk = 0; kk < K; ++kk)
    for (int64_t m = 0; m < M; ++m) {
      const size_t i = size_t(kk * M + m);
      uint8_t mask;
      float sig;
      c[i] = f.level(wf[i], v[i], z[size_t(kk)], mask, sig);
    }
  return Tensor::from_vector(c, w_floor_.shape(), Device::CPU);
}

void WeightQuantizer::to(Device d) {
  if (!defined()) return;
  w_floor_ = w_floor_.to(d);
  move_param(v_, d);
  move_param(step_, d);
  param_.to(d);
  zero_ = zero_.to(d);
}

// ---------------------------------------------------------------------------------------------

void ActQuantizer::init(const Tensor& a) {
  check_f32("act_quantizer", a);
  GENIE_CHECK(a.numel() > 0, "[act_quantizer] expected a non-empty calibration batch");
  auto [mn, mx] = ops::min_max(a);
  signed_ = mn < 0.f;
  const float m = std::max(std::fabs(mn), std::fabs(mx));
  // Signed grid [−r·m, r·m], unsigned [0, r·m] (GENIE.md §2.3); same search as the weights.
  ClipSearch cs =
      clip_search(ops::reshape(a.detach(), {1, a.numel()}), {m}, {signed_ ? -m : 0.f}, bits_);
  step_ = Tensor::from_vector({cs.delta[0]}, {1}, a.device());
}

void ActQuantizer::set_state(bool is_signed, float step, Device d) {
  param_ = StepParam();
  signed_ = is_signed;
  step_ = Tensor::from_vector({step}, {1}, d);
}

Tensor ActQuantizer::forward(const Tensor& x, ops::Generator* gen) const {
  if (qdrop && gen) return forward_masked(x, ops::qdrop_mask(x.shape(), *gen, x.device()));
  return forward_masked(x, Tensor());
}

Tensor ActQuantizer::forward_masked(const Tensor& x, const Tensor& mask) const {
  GENIE_CHECK(initialized(), "[act_quantizer] used before initialisation");
  return ops::fake_quant_act(x, effective_step(), qn(), qp(), mask);
}

void ActQuantizer::learn_step(float lr, float max_change) {
  GENIE_CHECK(initialized(), "[act_quantizer] used before initialisation");
  param_.start(step_, lr, max_change);
}
Tensor ActQuantizer::effective_step() const { return param_.apply(step_); }
void ActQuantizer::fix_step() { param_.fold(step_); }

void ActQuantizer::to(Device d) {
  move_param(step_, d);
  param_.to(d);
}

}  // namespace genie::quant
