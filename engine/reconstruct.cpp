// Genie-M reconstruction: collection of X / Y / X_q, activation-quantizer initialisation, the
// per-unit optimisation loop, freezing, and the per-unit report.
#include "engine/reconstruct.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "autograd/optim.h"
#include "kernels/elementwise.h"

namespace genie::quant {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int64_t row_elems(const Tensor& t) { return t.dim(0) ? t.numel() / t.dim(0) : 0; }

// Rows [b, e) of a host tensor, copied.
Tensor slice_rows(const Tensor& t, int64_t b, int64_t e) {
  Shape s = t.shape();
  s[0] = e - b;
  Tensor out = Tensor::empty(s);
  const int64_t r = row_elems(t);
  std::memcpy(out.data(), t.data() + b * r, size_t((e - b) * r) * sizeof(float));
  return out;
}

}  // namespace

Tensor row_order(const std::vector<int64_t>& row_numbers, int64_t rows, Device d) {
  GENIE_CHECK(rows < (int64_t(1) << 31), "[gather_rows] a cache of ", rows,
              " rows is beyond 32-bit row numbers");
  std::vector<int32_t> v(row_numbers.size());
  for (size_t i = 0; i < v.size(); ++i) {
    GENIE_CHECK(row_numbers[i] >= 0 && row_numbers[i] < rows, "[gather_rows] row ", row_numbers[i],
                " outside 0..", rows - 1);
    v[i] = int32_t(row_numbers[i]);
  }
  return Tensor::from_i32(v, {int64_t(v.size())}, d);
}

Tensor gather_rows(const Tensor& t, const Tensor& order, int64_t first, int64_t n, Device d) {
  check_f32("gather_rows", t);
  GENIE_CHECK(order.dtype() == DType::I32 && order.ndim() == 1 && order.device() == t.device(),
              "[gather_rows] expected a row order (I32 vector) on ", device_name(t.device()),
              ", got ", order.describe());
  GENIE_CHECK(first >= 0 && n >= 0 && first + n <= order.numel(), "[gather_rows] rows ", first,
              "..", first + n, " outside the order's ", order.numel());
  Shape s = t.shape();
  s[0] = n;
  Tensor out = Tensor::empty(s, t.device());
  k::gather_rows(t.device(), t.data(), order.data_as<int32_t>() + first, n, row_elems(t),
                 out.data(), nullptr);
  return out.to(d);
}

Tensor gather_rows(const Tensor& t, const int64_t* idx, int64_t n, Device d) {
  return gather_rows(t, row_order(std::vector<int64_t>(idx, idx + n), t.dim(0), t.device()), 0, n,
                     d);
}

bool cache_on_device(int64_t bytes, Device d, const ReconOptions& opt) {
  return d != Device::CPU && bytes <= opt.device_cache_bytes;
}

namespace {

Tensor concat_rows(const std::vector<Tensor>& parts) {
  Shape s = parts.at(0).shape();
  int64_t n = 0;
  for (const auto& p : parts) n += p.dim(0);
  s[0] = n;
  Tensor out = Tensor::empty(s);
  int64_t off = 0;
  for (const auto& p : parts) {
    std::memcpy(out.data() + off, p.data(), size_t(p.numel()) * sizeof(float));
    off += p.numel();
  }
  return out;
}

struct Collected {
  Tensor x, xq, y;  // host (N, …)
};

// Teacher input/output of the unit and the partly quantized student's input, over the whole set.
Collected collect(QModel& qm, const models::Unit& u, const Tensor& calib, int64_t cb) {
  NoGradGuard ng;
  const models::Model& m = qm.model();
  const Device d = m.device();
  std::vector<Tensor> xs, xqs, ys;
  const QModel::Run student;  // earlier units hard, activations quantized, no QDrop
  const int64_t N = calib.dim(0);
  for (int64_t b = 0; b < N; b += cb) {
    Tensor xb = slice_rows(calib, b, std::min(N, b + cb)).to(d);
    Tensor X;
    models::ForwardHooks obs;
    if (u.input >= 0)
      obs.observe = [&](int i, const std::vector<Tensor>&, const Tensor& out) {
        if (i == u.input) X = out;
      };
    Tensor Y = m.forward_range(0, u.last, {{-1, xb}}, &obs);
    if (u.input < 0) X = xb;
    Tensor Xq = u.input < 0 ? xb : qm.forward_range(0, u.input, {{-1, xb}}, student);
    xs.push_back(X.to(Device::CPU));
    xqs.push_back(Xq.to(Device::CPU));
    ys.push_back(Y.to(Device::CPU));
  }
  return {concat_rows(xs), concat_rows(xqs), concat_rows(ys)};
}

// Mean reconstruction loss over the set: X_q input, weights as they are, no QDrop.
double eval_loss(QModel& qm, const models::Unit& u, const Collected& c, int64_t cb,
                 const ReconOptions& opt) {
  NoGradGuard ng;
  const Device d = qm.device();
  const QModel::Run run;
  const int64_t N = c.x.dim(0);
  double total = 0;
  for (int64_t b = 0; b < N; b += cb) {
    const int64_t e = std::min(N, b + cb);
    Tensor xq = slice_rows(c.xq, b, e).to(d), y = slice_rows(c.y, b, e).to(d);
    Objective o = unit_objective(qm, u, xq, xq, y, Tensor(), run, 0, opt);
    total += double(o.rec.item()) * double(e - b);
  }
  return total / double(N);
}

}  // namespace

std::vector<models::Unit> recon_units(const models::Model& m) {
  std::vector<models::Unit> units = m.units();
  for (auto& u : units)
    if (u.kind == "conv" || u.kind == "linear") u.last = u.first;
  return units;
}

float round_beta(int64_t it, const ReconOptions& opt) {
  // The reference's LinearTempDecay: start_b before warmup·T, then end + (start − end)·max(0, 1 −
  // rel).
  const double start = double(opt.warmup) * double(opt.iters);
  if (double(it) < start) return opt.beta_start;
  const double rel = (double(it) - start) / (double(opt.iters) - start);
  return float(double(opt.beta_end) +
               double(opt.beta_start - opt.beta_end) * std::max(0.0, 1.0 - rel));
}

bool round_reg_on(int64_t it, const ReconOptions& opt) {
  return double(it) >= double(opt.warmup) * double(opt.iters);
}

Objective unit_objective(QModel& qm, const models::Unit& u, const Tensor& x, const Tensor& xq,
                         const Tensor& y, const Tensor& mix_mask, const QModel::Run& run,
                         int64_t it, const ReconOptions& opt) {
  Tensor xin = mix_mask.defined() ? ops::select(mix_mask, xq, x) : xq;
  Tensor out = qm.forward_range(u.first, u.last, {{u.input, xin}}, run);
  check_same_shape("reconstruct", out, y);
  GENIE_CHECK(out.ndim() >= 2, "[reconstruct] expected a unit output (N, C, …), got ",
              shape_str(out.shape()));
  Objective o;
  // Σ_channels (out − Y)² averaged over batch and spatial positions = C · mean((out − Y)²).
  o.rec = ops::mul_scalar(ops::mse_loss(out, y), float(out.dim(1)));
  o.total = o.rec;
  if (it > 0 && round_reg_on(it, opt)) {
    o.beta = round_beta(it, opt);
    for (int w : qm.wq_in(u.first, u.last)) {
      Tensor r = ops::rounding_reg(qm.wq[size_t(w)].logits(), o.beta);
      o.reg = o.reg.defined() ? ops::add(o.reg, r) : r;
    }
    if (o.reg.defined()) o.total = ops::add(o.rec, ops::mul_scalar(o.reg, opt.round_weight));
  }
  return o;
}

std::vector<UnitReport> reconstruct(QModel& qm, const Tensor& calib, const ReconOptions& opt,
                                    const ReconCallbacks& cb) {
  check_f32("reconstruct", calib);
  GENIE_CHECK(grad_enabled(), "[reconstruct] expected grad mode on (called under a NoGradGuard)");
  GENIE_CHECK(calib.device() == Device::CPU,
              "[reconstruct] expected the calibration set on the host, got ", calib.describe());
  const int64_t N = calib.dim(0);
  GENIE_CHECK(N > 0, "[reconstruct] expected a non-empty calibration set");
  GENIE_CHECK(opt.iters > 0 && opt.batch > 0 && opt.collect_batch > 0,
              "[reconstruct] expected positive iters/batch sizes, got ", opt.iters, "/", opt.batch,
              "/", opt.collect_batch);
  const std::vector<models::Unit> units = recon_units(qm.model());
  GENIE_CHECK(opt.start_unit >= 0 && opt.start_unit <= int(units.size()),
              "[reconstruct] start_unit ", opt.start_unit, " outside 0..", units.size());
  const Device d = qm.device();
  const int64_t bs = std::min(opt.batch, N);
  std::vector<UnitReport> reports;
  for (int ui = opt.start_unit; ui < int(units.size()); ++ui) {
    const models::Unit& u = units[size_t(ui)];
    UnitReport rep;
    rep.name = u.name;
    rep.kind = u.kind;
    rep.first = u.first;
    rep.last = u.last;
    rep.iters = opt.iters;
    const auto t0 = Clock::now();
    const Collected c = collect(qm, u, calib, opt.collect_batch);
    // The optimisation's batches come from a copy of the cache on the GPU when it fits.
    const bool dev_cache = cache_on_device(
        int64_t(c.x.numel() + c.xq.numel() + c.y.numel()) * int64_t(sizeof(float)), d, opt);
    const Collected cd = dev_cache ? Collected{c.x.to(d), c.xq.to(d), c.y.to(d)} : Collected{};
    const Collected& src = dev_cache ? cd : c;
    ops::Generator gen(splitmix64(opt.seed * 0x100000001B3ull + uint64_t(ui) + 1));
    std::mt19937_64 perm_rng(splitmix64(opt.seed ^ (0xA5A5A5A5ull + uint64_t(ui))));
    const std::vector<int> wids = qm.wq_in(u.first, u.last), aids = qm.aq_in(u.first, u.last);
    // Activation quantizers: initialised by the first collection batch reaching them, with the
    // unit in training mode (soft weights, QDrop), as the reference's collection pass does.
    for (int w : wids) qm.wq[size_t(w)].set_hard(false);
    for (int a : aids) qm.aq[size_t(a)].qdrop = true;
    {
      NoGradGuard ng;
      QModel::Run init;
      init.init_acts = true;
      init.gen = &gen;
      init.qdrop_p = opt.qdrop_p;
      Tensor xb = slice_rows(c.xq, 0, std::min(N, opt.collect_batch)).to(d);
      qm.forward_range(u.first, u.last, {{u.input, xb}}, init);
    }
    rep.collect_s = since(t0);
    // Loss before: hard (nearest-like) rounding of the initial logits.
    for (int w : wids) qm.wq[size_t(w)].set_hard(true);
    rep.loss_before = eval_loss(qm, u, c, opt.collect_batch, opt);
    for (int w : wids) qm.wq[size_t(w)].set_hard(false);

    const auto t1 = Clock::now();
    std::vector<Tensor> ws, as, vs;
    for (int w : wids) {
      ws.push_back(qm.wq[size_t(w)].step().set_requires_grad(true));
      vs.push_back(qm.wq[size_t(w)].logits().set_requires_grad(true));
    }
    for (int a : aids) as.push_back(qm.aq[size_t(a)].step().set_requires_grad(true));
    Adam opt_w(ws, opt.lr_w_step), opt_a(as, opt.lr_a_step), opt_v(vs, opt.lr_logits);
    QModel::Run train;
    train.gen = &gen;
    train.qdrop_p = opt.qdrop_p;
    std::vector<int64_t> perm(static_cast<size_t>(N));
    Tensor order;     // perm on the cache's device
    int64_t pos = N;  // forces a fresh permutation first
    for (int64_t it = 1; it <= opt.iters; ++it) {
      if (pos + bs > N) {
        std::iota(perm.begin(), perm.end(), int64_t(0));
        std::shuffle(perm.begin(), perm.end(), perm_rng);
        order = row_order(perm, N, src.x.device());
        pos = 0;
      }
      Tensor xb = gather_rows(src.x, order, pos, bs, d),
             xqb = gather_rows(src.xq, order, pos, bs, d);
      Tensor yb = gather_rows(src.y, order, pos, bs, d);
      pos += bs;
      Tensor mix = opt.qdrop_p == 0.5f ? ops::qdrop_mask(xb.shape(), gen, d)
                                       : ops::bernoulli_mask(xb.shape(), 1.f - opt.qdrop_p, gen, d);
      Objective o = unit_objective(qm, u, xb, xqb, yb, mix, train, it, opt);
      opt_w.lr = cosine_lr(opt.lr_w_step, it - 1, opt.iters);
      opt_a.lr = cosine_lr(opt.lr_a_step, it - 1, opt.iters);
      const bool report = cb.progress && (it == 1 || it == opt.iters ||
                                          (opt.log_every > 0 && it % opt.log_every == 0));
      ReconProgress p;
      if (report) {
        p.loss = o.total.item();
        p.rec = o.rec.item();
        p.reg = o.reg.defined() ? o.reg.item() : 0.f;
        p.beta = o.beta;
      }
      backward(o.total);
      opt_w.step();
      opt_a.step();
      opt_v.step();
      opt_w.zero_grad();
      opt_a.zero_grad();
      opt_v.zero_grad();
      if (report) {
        p.unit = ui;
        p.units = int(units.size());
        p.name = u.name;
        p.iter = it;
        p.iters = opt.iters;
        const double el = since(t1);
        p.it_per_s = double(it) / std::max(el, 1e-9);
        p.eta_s = double(opt.iters - it) / std::max(p.it_per_s, 1e-9);
        cb.progress(p);
      }
    }
    // Freeze: hard rounding, QDrop off, nothing learns any more.
    for (int w : wids) {
      WeightQuantizer& q = qm.wq[size_t(w)];
      q.set_hard(true);
      q.step().set_requires_grad(false);
      q.logits().set_requires_grad(false);
    }
    for (int a : aids) {
      qm.aq[size_t(a)].qdrop = false;
      qm.aq[size_t(a)].step().set_requires_grad(false);
    }
    rep.optimize_s = since(t1);
    rep.loss_after = eval_loss(qm, u, c, opt.collect_batch, opt);
    reports.push_back(rep);
    if (cb.unit_done) cb.unit_done(ui, rep, qm);
  }
  return reports;
}

}  // namespace genie::quant
