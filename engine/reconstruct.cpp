// Genie-M reconstruction: collection of X / Y / X_q, activation-quantizer initialisation, the
// per-unit optimisation loop, freezing, and the per-unit report.
#include "engine/reconstruct.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "autograd/optim.h"
#include "autograd/replay.h"
#include "engine/evaluate.h"
#include "kernels/elementwise.h"
#include "kernels/util.h"

namespace genie::quant {

namespace {

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

// Rows rows[0 .. n) (device memory, checked when written) of a cache on the device.
Tensor gather_device_rows(const Tensor& t, const int32_t* rows, int64_t n) {
  Shape s = t.shape();
  s[0] = n;
  Tensor out = Tensor::empty(s, t.device());
  k::gather_rows(t.device(), t.data(), rows, n, row_elems(t), out.data(), nullptr);
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
                         int64_t it, const ReconOptions& opt, const float* beta_at) {
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
      Tensor r = ops::rounding_reg(qm.wq[size_t(w)].logits(), o.beta, beta_at);
      o.reg = o.reg.defined() ? ops::add(o.reg, r) : r;
    }
    if (o.reg.defined()) o.total = ops::add(o.rec, ops::mul_scalar(o.reg, opt.round_weight));
  }
  return o;
}

// ---- UnitOptimizer ----
// An iteration draws its batch rows from the shuffle, its QDrop masks from `gen`, and runs the
// objective, backward and the three Adam updates: one ReplayedStep (autograd/replay.h) with two
// variants, before and after the regulariser switches on. Replayed, the step reads its batch rows
// and β from per-step inputs (the Adams' schedules and the Philox position are the seam's own).
struct UnitOptimizer::Impl {
  QModel& qm;
  const models::Unit u;
  const ReconOptions opt;
  ops::Generator& gen;
  Tensor x, xq, y;
  Device d;
  int64_t N, bs;
  std::mt19937_64 perm_rng;
  std::vector<int64_t> perm;
  Tensor order;     // eager: the shuffle on the cache's device
  int64_t pos = 0;  // next row of perm
  std::unique_ptr<Adam> opt_w, opt_a, opt_v;
  std::unique_ptr<ReplayedStep> step;
  StepSlot<int32_t> rows;  // replayed: the batch's row numbers
  StepSlot<float> beta;    // replayed: the regulariser's β
  Objective out[2];        // per variant: the step's outputs (a replay rewrites them)
  // Sharded steps (ReconOptions::shards): the ranks, the shard streams (s > 0), the parameters
  // whose gradients are summed, and the last step's summed losses.
  const engine::Comm& comm;
  bool sharded = false;
  std::vector<std::unique_ptr<ops::Generator>> shard_gen;
  std::vector<Tensor> params;
  int64_t grad_elems = 0;
  Losses shard_losses;

  Impl(QModel& qm_, const models::Unit& u_, const Tensor& x_, const Tensor& xq_, const Tensor& y_,
       const ReconOptions& opt_, ops::Generator& gen_, uint64_t perm_seed,
       std::function<void(const std::string&)> message)
      : qm(qm_),
        u(u_),
        opt(opt_),
        gen(gen_),
        x(x_),
        xq(xq_),
        y(y_),
        d(qm_.device()),
        N(x_.dim(0)),
        bs(std::min(opt_.batch, x_.dim(0))),
        perm_rng(perm_seed),
        perm(static_cast<size_t>(x_.dim(0))),
        comm(opt_.comm ? *opt_.comm : engine::Comm::single()) {
    GENIE_CHECK(N > 0 && xq.dim(0) == N && y.dim(0) == N,
                "[reconstruct] expected caches with the same positive row count, got ",
                x.describe(), ", ", xq.describe(), ", ", y.describe());
    GENIE_CHECK(opt.iters > 0 && opt.batch > 0, "[reconstruct] expected positive iters/batch");
    GENIE_CHECK(opt.shards >= 1 && opt.shards <= bs, "[reconstruct] expected 1..", bs,
                " shards (at most one per row of the batch), got ", opt.shards);
    sharded = opt.shards > 1 || comm.size() > 1;
    // Steps are learned as s0·exp(c·φ) (quantizer.h, StepParam); a learning rate of 0 leaves
    // them as initialised.
    std::vector<Tensor> ws, as, vs;
    for (int w : qm.wq_in(u.first, u.last)) {
      WeightQuantizer& q = qm.wq[size_t(w)];
      if (opt.lr_w_step > 0.f) {
        q.learn_step(opt.lr_w_step, opt.max_step_change);
        ws.push_back(q.step_param());
      }
      vs.push_back(q.logits().set_requires_grad(true));
    }
    for (int a : qm.aq_in(u.first, u.last)) {
      ActQuantizer& q = qm.aq[size_t(a)];
      if (opt.lr_a_step > 0.f) {
        q.learn_step(opt.lr_a_step, opt.max_step_change);
        as.push_back(q.step_param());
      }
    }
    opt_w = std::make_unique<Adam>(ws, opt.lr_w_step);
    opt_a = std::make_unique<Adam>(as, opt.lr_a_step);
    opt_v = std::make_unique<Adam>(vs, opt.lr_logits);
    pos = N;  // forces a fresh permutation first
    if (sharded) {
      for (Adam* a : {opt_w.get(), opt_a.get(), opt_v.get()})
        for (const Tensor& p : a->params()) {
          params.push_back(p);
          grad_elems += p.numel();
        }
      for (int s = 1; s < opt.shards; ++s)
        shard_gen.push_back(std::make_unique<ops::Generator>(
            splitmix64(perm_seed ^ (0x5AD5A11DULL * uint64_t(s)))));
    }
    ReplayedStep::Options ro;
    ro.device = d;
    ro.capture = opt.graph && !sharded && x.device() == d && xq.device() == d && y.device() == d;
    ro.name = "Genie-M " + u.name;
    ro.adams = {opt_w.get(), opt_a.get(), opt_v.get()};
    ro.stream = &gen;
    ro.message = std::move(message);
    step = std::make_unique<ReplayedStep>(std::move(ro));
    rows = step->input<int32_t>(size_t(bs));
    beta = step->input<float>(1);
  }

  // The next batch's rows: from `order` (eager) or written to the step's input.
  void next_rows() {
    if (pos + bs > N) {
      std::iota(perm.begin(), perm.end(), int64_t(0));
      std::shuffle(perm.begin(), perm.end(), perm_rng);
      if (!step->bound()) order = row_order(perm, N, x.device());
      pos = 0;
    }
    int32_t* host = step->host(rows);
    for (int64_t i = 0; i < bs; ++i) host[i] = int32_t(perm[size_t(pos + i)]);
  }

  Tensor batch_of(const Tensor& cache) const {
    if (!step->bound()) return gather_rows(cache, order, pos, bs, d);
    return gather_device_rows(cache, step->device(rows), bs);
  }

  // The iteration's work after the batch is chosen: objective, backward, the three updates.
  Objective body(int64_t it) {
    ops::Generator& g = step->generator();
    const Tensor xb = batch_of(x), xqb = batch_of(xq), yb = batch_of(y);
    Tensor mix = opt.qdrop_p == 0.5f ? ops::qdrop_mask(xb.shape(), g, d)
                                     : ops::bernoulli_mask(xb.shape(), 1.f - opt.qdrop_p, g, d);
    QModel::Run run;  // training: soft weights, QDrop masks from g
    run.gen = &g;
    run.qdrop_p = opt.qdrop_p;
    Objective o = unit_objective(qm, u, xb, xqb, yb, mix, run, it, opt, step->device(beta));
    backward(o.total);
    for (Adam* a : {opt_w.get(), opt_a.get(), opt_v.get()}) a->step();
    for (Adam* a : {opt_w.get(), opt_a.get(), opt_v.get()}) a->zero_grad();
    return o;
  }

  // Row r of the batch where shard s begins.
  int64_t shard_row(int s) const { return int64_t(s) * bs / opt.shards; }

  // Shard s of the iteration's batch, back-propagated alone: its loss is its reconstruction term
  // weighted by its rows' share of the batch (plus the regulariser on shard 0); its gradients and
  // its two loss terms go to row `into` (on d). A parameter the shard did not reach contributes
  // zeros: to Adam a zero gradient leaves a parameter that nothing reaches where it is, as
  // skipping it would (every learned value of a unit is reached by its loss).
  void shard_pass(int s, int64_t it, float* into) {
    const int64_t r0 = shard_row(s), n = shard_row(s + 1) - r0;
    ops::Generator& g = s == 0 ? step->generator() : *shard_gen[size_t(s - 1)];
    const Tensor xb = gather_rows(x, order, pos + r0, n, d);
    const Tensor xqb = gather_rows(xq, order, pos + r0, n, d);
    const Tensor yb = gather_rows(y, order, pos + r0, n, d);
    Tensor mix = opt.qdrop_p == 0.5f ? ops::qdrop_mask(xb.shape(), g, d)
                                     : ops::bernoulli_mask(xb.shape(), 1.f - opt.qdrop_p, g, d);
    QModel::Run run;
    run.gen = &g;
    run.qdrop_p = opt.qdrop_p;
    const Objective o = unit_objective(qm, u, xb, xqb, yb, mix, run, s == 0 ? it : 0, opt);
    const Tensor rec = ops::mul_scalar(o.rec, float(double(n) / double(bs)));
    const Tensor total =
        o.reg.defined() ? ops::add(rec, ops::mul_scalar(o.reg, opt.round_weight)) : rec;
    backward(total);
    float* at = into;
    for (Tensor& p : params) {
      const Tensor gr = p.grad();
      const size_t bytes = size_t(p.numel()) * sizeof(float);
      if (gr.defined())
        copy_bytes(at, d, gr.data(), d, bytes);
      else
        fill_bytes_zero(at, d, bytes);
      at += p.numel();
      p.zero_grad();
    }
    copy_bytes(at, d, rec.data(), d, sizeof(float));
    if (o.reg.defined())
      copy_bytes(at + 1, d, o.reg.data(), d, sizeof(float));
    else
      fill_bytes_zero(at + 1, d, sizeof(float));
  }

  // One sharded iteration: this rank's shards, the ordered sum over all shards, the updates; the
  // summed losses are read back (a host sync) only when `read_losses`.
  void sharded_body(int64_t it, bool read_losses) {
    const int total = opt.shards, first = comm.shard_first(comm.rank(), total);
    const int mine = comm.shard_count(comm.rank(), total);
    const int64_t width = grad_elems + 2;
    Tensor local = Tensor::empty({std::max(mine, 1), width}, d);
    for (int i = 0; i < mine; ++i) shard_pass(first + i, it, local.data() + int64_t(i) * width);
    Tensor sum = Tensor::empty({width}, d);
    comm.ordered_sum(local.data(), total, width, sum.data(), d);
    const float* at = sum.data();
    for (Tensor& p : params) {
      Tensor gr = Tensor::empty(p.shape(), d);
      copy_bytes(gr.data(), d, at, d, size_t(gr.numel()) * sizeof(float));
      p.impl()->autograd().grad = gr;
      at += p.numel();
    }
    for (Adam* a : {opt_w.get(), opt_a.get(), opt_v.get()}) a->step();
    for (Adam* a : {opt_w.get(), opt_a.get(), opt_v.get()}) a->zero_grad();
    if (!read_losses) return;
    float l[2];
    copy_bytes(l, Device::CPU, at, d, sizeof l);
    shard_losses.rec = l[0];
    shard_losses.reg = l[1];
    shard_losses.total = l[0] + opt.round_weight * l[1];
  }

  void step_at(int64_t it, Losses* losses) {
    next_rows();
    opt_w->lr = cosine_lr(opt.lr_w_step, it - 1, opt.iters);
    opt_a->lr = cosine_lr(opt.lr_a_step, it - 1, opt.iters);
    *step->host(beta) = round_beta(it, opt);
    const int phase = round_reg_on(it, opt) ? 1 : 0;
    if (phase == 1 && out[0].total.defined()) {  // the first phase is over: free its capture
      out[0] = Objective{};
      step->drop(0);
    }
    if (sharded) {
      step->run([&] { sharded_body(it, losses != nullptr); }, phase);
      pos += bs;
      if (losses) {
        *losses = shard_losses;
        losses->beta = phase == 1 ? round_beta(it, opt) : 0.f;
      }
      return;
    }
    step->run([&] { out[phase] = body(it); }, phase);
    pos += bs;
    if (losses) {
      const Objective& o = out[phase];
      losses->total = o.total.item();
      losses->rec = o.rec.item();
      losses->reg = o.reg.defined() ? o.reg.item() : 0.f;
      losses->beta = phase == 1 ? round_beta(it, opt) : 0.f;
    }
  }
};

UnitOptimizer::UnitOptimizer(QModel& qm, const models::Unit& u, const Tensor& x, const Tensor& xq,
                             const Tensor& y, const ReconOptions& opt, ops::Generator& gen,
                             uint64_t perm_seed, std::function<void(const std::string&)> message)
    : impl_(std::make_unique<Impl>(qm, u, x, xq, y, opt, gen, perm_seed, std::move(message))) {}
UnitOptimizer::~UnitOptimizer() = default;
void UnitOptimizer::step(int64_t it, Losses* losses) { impl_->step_at(it, losses); }
bool UnitOptimizer::graphed() const { return impl_->step->replaying(); }
size_t UnitOptimizer::captured_kernels() const { return impl_->step->captured_kernels(); }

namespace {

// Activation quantizers of the unit: initialised by the first collection batch reaching them, with
// the unit in training mode (soft weights, QDrop), as the reference's collection pass does.
void init_unit_acts(QModel& qm, const models::Unit& u, const Collected& c, ops::Generator& gen,
                    const ReconOptions& opt) {
  for (int w : qm.wq_in(u.first, u.last)) qm.wq[size_t(w)].set_hard(false);
  for (int a : qm.aq_in(u.first, u.last)) qm.aq[size_t(a)].qdrop = true;
  NoGradGuard ng;
  QModel::Run init;
  init.init_acts = true;
  init.gen = &gen;
  init.qdrop_p = opt.qdrop_p;
  Tensor xb = slice_rows(c.xq, 0, std::min(c.xq.dim(0), opt.collect_batch)).to(qm.device());
  qm.forward_range(u.first, u.last, {{u.input, xb}}, init);
}

// The optimisation loop of one unit (GENIE.md §2.5) with its progress reports.
void optimize_unit(QModel& qm, const models::Unit& u, int ui, int units, const Collected& src,
                   ops::Generator& gen, const ReconOptions& opt, const ReconCallbacks& cb) {
  const Stopwatch clock;
  UnitOptimizer uo(qm, u, src.x, src.xq, src.y, opt, gen,
                   splitmix64(opt.seed ^ (0xA5A5A5A5ull + uint64_t(ui))), cb.message);
  for (int64_t it = 1; it <= opt.iters; ++it) {
    const bool report = cb.progress && (it == 1 || it == opt.iters ||
                                        (opt.log_every > 0 && it % opt.log_every == 0));
    UnitOptimizer::Losses l;
    uo.step(it, report ? &l : nullptr);
    if (!report) continue;
    ReconProgress p;
    p.loss = l.total;
    p.rec = l.rec;
    p.reg = l.reg;
    p.beta = l.beta;
    p.unit = ui;
    p.units = units;
    p.name = u.name;
    p.iter = it;
    p.iters = opt.iters;
    p.it_per_s = double(it) / std::max(clock.seconds(), 1e-9);
    p.eta_s = double(opt.iters - it) / std::max(p.it_per_s, 1e-9);
    cb.progress(p);
  }
}  // the optimizer (and its captured steps' memory) ends here

// Hard rounding, QDrop off, the learned steps folded in: nothing of the unit learns any more.
void freeze_unit(QModel& qm, const models::Unit& u) {
  for (int w : qm.wq_in(u.first, u.last)) {
    WeightQuantizer& q = qm.wq[size_t(w)];
    q.set_hard(true);
    q.fix_step();
    q.step().set_requires_grad(false);
    q.logits().set_requires_grad(false);
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    ActQuantizer& q = qm.aq[size_t(a)];
    q.qdrop = false;
    q.fix_step();
    q.step().set_requires_grad(false);
  }
}

// Whether the unit's learned quantizer parameters are all finite.
bool unit_finite(const QModel& qm, const models::Unit& u) {
  for (int w : qm.wq_in(u.first, u.last))
    if (!engine::all_finite(qm.wq[size_t(w)].step()) ||
        !engine::all_finite(qm.wq[size_t(w)].logits()))
      return false;
  for (int a : qm.aq_in(u.first, u.last))
    if (!engine::all_finite(qm.aq[size_t(a)].step())) return false;
  return true;
}

// The unit's quantizer parameters as initialised (grid-searched steps, nearest-rounding logits),
// kept to fall back on when the optimisation ends worse than it started.
struct UnitState {
  std::vector<Tensor> w_step, w_logits, a_step;

  static UnitState of(const QModel& qm, const models::Unit& u) {
    UnitState s;
    for (int w : qm.wq_in(u.first, u.last)) {
      s.w_step.push_back(qm.wq[size_t(w)].step().detach().clone());
      s.w_logits.push_back(qm.wq[size_t(w)].logits().detach().clone());
    }
    for (int a : qm.aq_in(u.first, u.last))
      s.a_step.push_back(qm.aq[size_t(a)].step().detach().clone());
    return s;
  }
  void restore(QModel& qm, const models::Unit& u) const {
    size_t i = 0;
    for (int w : qm.wq_in(u.first, u.last)) {
      qm.wq[size_t(w)].step() = w_step[i].clone();
      qm.wq[size_t(w)].logits() = w_logits[i++].clone();
    }
    i = 0;
    for (int a : qm.aq_in(u.first, u.last)) qm.aq[size_t(a)].step() = a_step[i++].clone();
  }
  // Every learned step still positive (s0·exp(c·φ) cannot cross zero, but can underflow).
  static bool steps_positive(const QModel& qm, const models::Unit& u) {
    for (int w : qm.wq_in(u.first, u.last))
      if (!valid_steps(qm.wq[size_t(w)].step())) return false;
    for (int a : qm.aq_in(u.first, u.last))
      if (!valid_steps(qm.aq[size_t(a)].step())) return false;
    return true;
  }
};

// A non-finite reconstruction loss (or quantizer parameter) stops Genie-M before anything is
// written from it, saying whether the unit's data was already non-finite (a teacher that
// overflows: the first node named) or the optimisation diverged.
[[noreturn]] void fail_nonfinite(QModel& qm, const models::Unit& u, const Tensor& calib,
                                 double loss, const char* when) {
  NoGradGuard ng;
  const int64_t n = std::min<int64_t>(calib.dim(0), 32);
  const Tensor x = slice_rows(calib, 0, n).to(qm.device());
  // Up to the unit's end: later activation quantizers are not initialised yet.
  const std::string teacher = engine::first_nonfinite(qm.model(), x, nullptr, u.last);
  const QModel::Run run;
  const models::ForwardHooks h = qm.hooks(run);
  const std::string student = engine::first_nonfinite(qm.model(), x, &h, u.last);
  throw Error(
      str("[reconstruct] unit ", u.name, ": the reconstruction loss ", when,
          " the optimisation is not finite (", loss, ", or a learned step is); ",
          !teacher.empty() ? "the FP32 teacher's activations are not finite from " + teacher +
                                 " on (check the model file or the calibration data)"
          : !student.empty() ? "the quantized model's activations are not finite from " + student +
                                   " on (the learning rates may be too large)"
                             : "the optimisation diverged (the learning rates may be too large)"));
}

// Unit ui: collect its data, initialise its activation quantizers, optimise, freeze.
UnitReport reconstruct_unit(QModel& qm, const std::vector<models::Unit>& units, int ui,
                            const Tensor& calib, const ReconOptions& opt,
                            const ReconCallbacks& cb) {
  const models::Unit& u = units[size_t(ui)];
  UnitReport rep;
  rep.name = u.name;
  rep.kind = u.kind;
  rep.first = u.first;
  rep.last = u.last;
  rep.iters = opt.iters;
  Stopwatch clock;
  const Collected c = collect(qm, u, calib, opt.collect_batch);
  // The optimisation's batches come from a copy of the cache on the GPU when it fits.
  const Device d = qm.device();
  const bool dev_cache = cache_on_device(
      int64_t(c.x.numel() + c.xq.numel() + c.y.numel()) * int64_t(sizeof(float)), d, opt);
  const Collected cd = dev_cache ? Collected{c.x.to(d), c.xq.to(d), c.y.to(d)} : Collected{};
  ops::Generator gen(splitmix64(opt.seed * 0x100000001B3ull + uint64_t(ui) + 1));
  init_unit_acts(qm, u, c, gen, opt);
  rep.collect_s = clock.lap();
  // Loss before: hard (nearest-like) rounding of the initial logits.
  for (int w : qm.wq_in(u.first, u.last)) qm.wq[size_t(w)].set_hard(true);
  rep.loss_before = eval_loss(qm, u, c, opt.collect_batch, opt);
  if (!std::isfinite(rep.loss_before)) fail_nonfinite(qm, u, calib, rep.loss_before, "before");
  for (int w : qm.wq_in(u.first, u.last)) qm.wq[size_t(w)].set_hard(false);
  const UnitState initial = UnitState::of(qm, u);
  clock.restart();
  optimize_unit(qm, u, ui, int(units.size()), dev_cache ? cd : c, gen, opt, cb);
  freeze_unit(qm, u);
  rep.optimize_s = clock.seconds();
  rep.loss_after = eval_loss(qm, u, c, opt.collect_batch, opt);
  if (!std::isfinite(rep.loss_after) || !unit_finite(qm, u))
    fail_nonfinite(qm, u, calib, rep.loss_after, "after");
  // The guard: a unit never ends worse than its initial (grid-searched, nearest-rounded)
  // quantizer.
  const bool positive = UnitState::steps_positive(qm, u);
  if (rep.loss_after > rep.loss_before || !positive) {
    initial.restore(qm, u);
    rep.kept_initial = true;
    if (cb.message)
      cb.message(str("unit ", u.name, ": the optimised quantizer ",
                     positive ? str("has loss ", rep.loss_after, ", worse than the initial's ",
                                    rep.loss_before)
                              : std::string("has a step that underflowed to 0"),
                     "; the initial quantizer is kept"));
  }
  return rep;
}

}  // namespace

std::vector<UnitReport> reconstruct(QModel& qm, const Tensor& calib, const ReconOptions& opt,
                                    const ReconCallbacks& cb) {
  check_f32("reconstruct", calib);
  GENIE_CHECK(grad_enabled(), "[reconstruct] expected grad mode on (called under a NoGradGuard)");
  GENIE_CHECK(calib.device() == Device::CPU,
              "[reconstruct] expected the calibration set on the host, got ", calib.describe());
  GENIE_CHECK(calib.dim(0) > 0, "[reconstruct] expected a non-empty calibration set");
  GENIE_CHECK(opt.iters > 0 && opt.batch > 0 && opt.collect_batch > 0,
              "[reconstruct] expected positive iters/batch sizes, got ", opt.iters, "/", opt.batch,
              "/", opt.collect_batch);
  GENIE_CHECK(qm.model().device() == Device::CUDA || opt.precision == Precision::FP32,
              "[reconstruct] precision ", precision_name(opt.precision),
              " needs the model on a CUDA device (the CPU computes FP32 only)");
  const PrecisionScope precision(opt.precision);
  const std::vector<models::Unit> units = recon_units(qm.model());
  GENIE_CHECK(opt.start_unit >= 0 && opt.start_unit <= int(units.size()),
              "[reconstruct] start_unit ", opt.start_unit, " outside 0..", units.size());
  std::vector<UnitReport> reports;
  for (int ui = opt.start_unit; ui < int(units.size()); ++ui) {
    reports.push_back(reconstruct_unit(qm, units, ui, calib, opt, cb));
    if (cb.unit_done) cb.unit_done(ui, reports.back(), qm);
  }
  return reports;
}

}  // namespace genie::quant
