// Genie-D distillation loop (GENIE.md §1): teacher hooks (swing convolution, BN-statistics loss),
// the per-batch optimisation with its two Adam optimizers and schedules, and the output writers.
#include "engine/distill.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "autograd/ops_genie.h"
#include "autograd/optim.h"
#include "autograd/replay.h"
#include "engine/evaluate.h"
#include "engine/records.h"
#include "io/atomic.h"
#include "io/h5.h"
#include "io/image.h"
#include "kernels/functors.h"
#include "kernels/util.h"

namespace genie::engine {

using models::Model;

const char* distill_mode_name(DistillMode m) {
  switch (m) {
    case DistillMode::Genie:
      return "genie";
    case DistillMode::LatentsOnly:
      return "latents_only";
    case DistillMode::GeneratorOnly:
      return "generator_only";
  }
  return "?";
}

DistillMode parse_distill_mode(const std::string& s) {
  if (s == "genie") return DistillMode::Genie;
  if (s == "latents_only") return DistillMode::LatentsOnly;
  if (s == "generator_only") return DistillMode::GeneratorOnly;
  throw Error(
      str("[distill] expected a mode genie | latents_only | generator_only, got '", s, "'"));
}

namespace {

// Independent Philox key for (seed, batch, stream): stream 0 = generator init + latents,
// 1 = swing offsets, 2 = noise images for the yardstick.
uint64_t stream_key(uint64_t seed, int64_t batch, int stream) {
  return splitmix64(splitmix64(seed) ^ splitmix64(uint64_t(batch) * 4 + uint64_t(stream) + 1));
}

// (dy, dx) ∈ {0,1,2}² for strided conv `layer` at iteration `iter`: one Philox block per
// (iter, layer), lanes 0/1 mapped to {0,1,2} by multiply-high (no modulo bias worth noting).
std::pair<int, int> philox_offsets(uint64_t key, int64_t iter, int layer, int layers) {
  k::Philox4x32 r(key, uint64_t(iter) * uint64_t(layers) + uint64_t(layer));
  return {int((uint64_t(r.c[0]) * 3) >> 32), int((uint64_t(r.c[1]) * 3) >> 32)};
}

// Everything the teacher hooks need, precomputed once per distill() call.
struct TeacherCtx {
  const Model& m;
  std::vector<int> swing_slot;    // node -> index among strided convs, or -1
  std::vector<int> bn_slot;       // node -> index among BN nodes, or -1
  std::vector<Tensor> mu, sigma;  // per BN node: running_mean, sqrt(running_var + 1e-6)
  int last_bn = -1;
  int num_strided = 0;

  explicit TeacherCtx(const Model& model) : m(model) {
    const int n = m.graph().size();
    swing_slot.assign(size_t(n), -1);
    bn_slot.assign(size_t(n), -1);
    const auto strided = m.strided_convs();
    num_strided = int(strided.size());
    for (size_t i = 0; i < strided.size(); ++i) swing_slot[size_t(strided[i])] = int(i);
    const auto& bns = m.bn_nodes();
    for (size_t i = 0; i < bns.size(); ++i) {
      const int b = bns[i];
      bn_slot[size_t(b)] = int(i);
      last_bn = std::max(last_bn, b);
      mu.push_back(m.node_param(b, "running_mean"));
      // σ_l = sqrt(running_var + 1e-6) (GENIE.md §1.4), computed once on the host.
      auto v = m.node_param(b, "running_var").to_vector();
      for (auto& x : v) x = float(std::sqrt(double(x) + 1e-6));
      sigma.push_back(Tensor::from_vector(v, {int64_t(v.size())}, m.device()));
    }
  }

  // Σ_l bn_stat_loss over the BN inputs of one teacher forward of x (only up to the last BN node:
  // nothing after it influences the loss). offsets empty = swing off. offsets_at: device memory
  // {dy, dx} per strided conv that the swing kernels read instead (replayed steps).
  Tensor bn_loss(const Tensor& x, const std::vector<std::pair<int, int>>& offsets,
                 const int32_t* offsets_at = nullptr) const {
    std::vector<Tensor> terms;
    terms.reserve(mu.size());
    models::ForwardHooks hooks;
    if (!offsets.empty()) {
      hooks.override_node = [&](int node, const std::vector<Tensor>& in, Tensor& out) {
        const int slot = swing_slot[size_t(node)];
        if (slot < 0) return false;
        // Swing convolution: reflect-pad 1, crop the H×W window at (dy, dx), then the conv itself.
        const Tensor& a = in.at(0);
        const auto [dy, dx] = offsets[size_t(slot)];
        // == crop(reflect_pad(a, 1), dy, dx, H, W)
        Tensor shifted = ops::swing_shift(a, dy, dx, offsets_at ? offsets_at + 2 * slot : nullptr);
        out = m.run_node(node, {shifted});
        return true;
      };
    }
    hooks.observe = [&](int node, const std::vector<Tensor>& in, const Tensor&) {
      const int slot = bn_slot[size_t(node)];
      if (slot >= 0)
        terms.push_back(ops::bn_stat_loss(in.at(0), mu[size_t(slot)], sigma[size_t(slot)]));
    };
    m.forward_range(0, last_bn, {{-1, x}}, &hooks);
    Tensor total = terms.at(0);
    for (size_t i = 1; i < terms.size(); ++i) total = ops::add(total, terms[i]);
    return total;
  }
};

}  // namespace

void validate_distill(const Model& teacher, const DistillConfig& cfg) {
  const auto& info = teacher.info();
  GENIE_CHECK(!teacher.bn_nodes().empty(),
              "[distill] expected a teacher with BatchNorm layers (Genie-D matches their running "
              "statistics), got a model (",
              info.arch,
              ") without any; calibrate it with real images (--calib real:PATH) or noise "
              "(--calib noise) instead");
  GENIE_CHECK(cfg.samples >= 1, "[distill] expected samples >= 1, got ", cfg.samples);
  GENIE_CHECK(cfg.batch >= 1, "[distill] expected batch >= 1, got ", cfg.batch);
  GENIE_CHECK(cfg.iters >= 1, "[distill] expected distill iterations >= 1, got ", cfg.iters);
  GENIE_CHECK(cfg.lr_z > 0 && cfg.lr_g > 0, "[distill] expected positive learning rates, got lr_z ",
              cfg.lr_z, " lr_g ", cfg.lr_g);
  GENIE_CHECK(teacher.device() == cfg.device, "[distill] expected the teacher on ",
              device_name(cfg.device), ", got it on ", device_name(teacher.device()));
  if (cfg.mode != DistillMode::LatentsOnly) {
    GENIE_CHECK(info.H == info.W, "[distill] expected a square input for the generator, got ",
                info.H, "x", info.W);
    GENIE_CHECK(info.H % 4 == 0 && info.H >= 4,
                "[distill] expected an input size divisible by 4 (the generator upsamples its "
                "R/4 x R/4 map twice), got ",
                info.H, "x", info.W);
  }
  GENIE_CHECK(info.H * info.W >= 2, "[distill] expected images of at least 2 pixels, got ", info.H,
              "x", info.W);
  if (cfg.swing) {
    // Reflect padding by 1 needs every strided conv's input to be at least 2×2.
    const auto shapes = teacher.node_shapes(1);
    for (int c : teacher.strided_convs()) {
      const int j = teacher.node(c).inputs.at(0);
      const Shape s = j < 0 ? Shape{1, info.C, info.H, info.W} : shapes.at(size_t(j));
      GENIE_CHECK(s.size() == 4 && s[2] >= 2 && s[3] >= 2, "[distill] swing convolution at ",
                  teacher.node(c).name, " needs an input of at least 2x2, got ", shape_str(s),
                  " (use swing off)");
    }
  }
}

Tensor teacher_bn_loss(const Model& teacher, const Tensor& x,
                       const std::vector<std::pair<int, int>>& offsets) {
  GENIE_CHECK(!teacher.bn_nodes().empty(), "[distill] expected a teacher with BatchNorm layers");
  TeacherCtx ctx(teacher);
  GENIE_CHECK(offsets.empty() || int(offsets.size()) == ctx.num_strided, "[distill] expected ",
              ctx.num_strided, " swing offsets (one per strided conv), got ", offsets.size());
  return ctx.bn_loss(x, offsets);
}

namespace {

// One batch of Genie-D (GENIE.md §1.5): a fresh generator and latents (latents_only: the images
// themselves), their two Adams and schedules, and the step they take each iteration, replayed when
// captured (autograd/replay.h).
class BatchSynthesis {
 public:
  struct Losses {
    float total = 0, bn = 0, in = 0;
  };

  BatchSynthesis(const TeacherCtx& ctx, const DistillConfig& cfg, int64_t batch, int64_t count,
                 bool capture)
      : ctx_(ctx), cfg_(cfg), batch_(batch), swing_key_(stream_key(cfg.seed, batch, 1)) {
    const auto& info = ctx.m.info();
    const bool use_g = cfg.mode != DistillMode::LatentsOnly;
    ops::Generator rng(stream_key(cfg.seed, batch, 0));
    z_ = use_g ? ops::randn({count, models::GenieGenerator::kLatentDim}, rng, cfg.device)
               : ops::randn({count, info.C, info.H, info.W}, rng, cfg.device);
    if (use_g) gen_ = std::make_unique<models::GenieGenerator>(info.H, info.C, rng, cfg.device);
    if (cfg.init_batch) cfg.init_batch(batch, gen_.get(), z_);
    ReplayedStep::Options ro;
    if (cfg.mode != DistillMode::GeneratorOnly) {
      z_.set_requires_grad();
      opt_z_ = std::make_unique<Adam>(std::vector<Tensor>{z_}, cfg.lr_z);
      ro.adams.push_back(opt_z_.get());
    }
    if (use_g) {
      opt_g_ = std::make_unique<Adam>(gen_->parameters(), cfg.lr_g);
      ro.adams.push_back(opt_g_.get());
    }
    offsets_.resize(size_t(cfg.swing ? ctx.num_strided : 0));
    ro.device = cfg.device;
    ro.capture = capture;
    ro.name = "Genie-D";
    ro.message = cfg.message;
    step_ = std::make_unique<ReplayedStep>(std::move(ro));
    offsets_at_ = step_->input<int32_t>(2 * offsets_.size());
  }

  // Iteration `it` (0-based): the schedules and swing offsets of this iteration, one step, the
  // plateau schedule on its loss.
  Losses step(int64_t it) {
    if (opt_g_) opt_g_->lr = step_lr(cfg_.lr_g, cfg_.g_lr_gamma, cfg_.g_lr_step, it);
    set_offsets(it);
    it_ = it;
    step_->run([this] { body(); });
    const Losses l{out_.loss.item(), out_.l_bn.item(), out_.l_in.item()};
    if (!std::isfinite(l.total)) fail_nonfinite(l);
    if (opt_z_) opt_z_->lr = plateau_.step(l.total, opt_z_->lr);
    return l;
  }

  // x of the last forward: the batch's images.
  const Tensor& images() const { return out_.x; }
  float lr_z() const { return opt_z_ ? opt_z_->lr : 0.f; }
  float lr_g() const { return opt_g_ ? opt_g_->lr : 0.f; }
  bool capture_failed() const { return step_->failed(); }

  // The yardstick: L_bn of N(0,1) images of this batch's shape, with the swing offsets of one
  // more "iteration" of the batch's swing stream.
  float noise_bn_loss() {
    NoGradGuard ng;
    ops::Generator nrng(stream_key(cfg_.seed, batch_, 2));
    Tensor noise = ops::randn(out_.x.shape(), nrng, cfg_.device);
    for (size_t l = 0; l < offsets_.size(); ++l)
      offsets_[l] = philox_offsets(swing_key_, cfg_.iters, int(l), ctx_.num_strided);
    return ctx_.bn_loss(noise, offsets_).item();
  }

 private:
  void set_offsets(int64_t it) {
    int32_t* host = step_->host(offsets_at_);
    for (size_t l = 0; l < offsets_.size(); ++l) {
      offsets_[l] = cfg_.swing_offsets ? cfg_.swing_offsets(batch_, it, int(l))
                                       : philox_offsets(swing_key_, it, int(l), ctx_.num_strided);
      host[2 * l] = offsets_[l].first;
      host[2 * l + 1] = offsets_[l].second;
    }
  }

  // A non-finite loss stops the run (no images are computed from it), saying where it came from:
  // the teacher's own activations (a model that overflows), or the synthesized images.
  [[noreturn]] void fail_nonfinite(const Losses& l) const {
    const std::string where = first_nonfinite(ctx_.m, out_.x);
    throw Error(
        str("[distill] batch ", batch_, ", iteration ", it_ + 1, ": the loss is not finite (",
            "BN statistics ", l.bn, ", input statistics ", l.in, "); ",
            where == "the input" ? "the synthesized images are not finite"
            : where.empty() ? "the BN statistics overflow (check the model's BN running statistics)"
                            : "the teacher's activations are not finite from " + where +
                                  " on (check the model file)"));
  }

  // zero_grad, forward, backward, the optimizer steps: what one capture records.
  void body() {
    if (opt_z_) opt_z_->zero_grad();
    if (opt_g_) opt_g_->zero_grad();
    out_.x = gen_ ? gen_->forward(z_) : z_;
    out_.l_in = ops::input_stat_loss(out_.x);
    out_.l_bn = ctx_.bn_loss(out_.x, offsets_, step_->device(offsets_at_));
    out_.loss = ops::add(out_.l_bn, out_.l_in);
    backward(out_.loss);
    if (cfg_.after_backward)  // never captured: the hook reads the gradient mid-step
      cfg_.after_backward(batch_, it_ + 1, out_.loss.item(), opt_z_ ? z_.grad() : Tensor());
    if (opt_z_) opt_z_->step();
    if (opt_g_) opt_g_->step();
  }

  const TeacherCtx& ctx_;
  const DistillConfig& cfg_;
  const int64_t batch_;
  const uint64_t swing_key_;
  Tensor z_;
  std::unique_ptr<models::GenieGenerator> gen_;
  std::unique_ptr<Adam> opt_z_, opt_g_;
  ReduceLROnPlateau plateau_{cfg_.plateau_factor, cfg_.plateau_patience, cfg_.plateau_threshold,
                             cfg_.plateau_min_lr};
  std::vector<std::pair<int, int>> offsets_;
  std::unique_ptr<ReplayedStep> step_;
  StepSlot<int32_t> offsets_at_;
  int64_t it_ = 0;
  struct {
    Tensor x, loss, l_bn, l_in;
  } out_;
};

// Progress of a whole distill() call: iterations done of those it computes, and their rate.
struct RunProgress {
  Stopwatch clock;
  int64_t done = 0, total = 0, num_batches = 0;  // iterations of all ranks
  int ranks = 1;
  int64_t active = 1;  // ranks with a batch in the current round
  DistillProgress at(const DistillConfig& cfg, int64_t batch, int64_t iter,
                     const BatchSynthesis::Losses& l, float lr_z, float lr_g) const {
    DistillProgress p;
    p.batch = batch;
    p.num_batches = num_batches;
    p.iter = iter;
    p.iters = cfg.iters;
    p.ranks = ranks;
    p.bn_loss = l.bn;
    p.input_loss = l.in;
    p.lr_z = lr_z;
    p.lr_g = lr_g;
    const double el = clock.seconds();
    p.iters_per_s = el > 0 ? double(done) / el : 0.0;
    p.eta_s = p.iters_per_s > 0 ? double(total - done) / p.iters_per_s : 0.0;
    return p;
  }
};

// Genie-D of batch b into rows [first, first + count) of `images`; returns the batch's record.
DistillBatch synthesize_batch(const TeacherCtx& ctx, const DistillConfig& cfg, int64_t b,
                              bool& capture, Tensor& images, RunProgress& run,
                              const DistillProgressFn& progress) {
  const Stopwatch clock;
  DistillBatch rec;
  rec.index = b;
  rec.first = b * cfg.batch;
  rec.count = std::min(cfg.batch, cfg.samples - rec.first);
  rec.iters = cfg.iters;
  BatchSynthesis bs(ctx, cfg, b, rec.count, capture);
  const int64_t every = std::max<int64_t>(cfg.progress_every, 1);
  for (int64_t it = 0; it < cfg.iters; ++it) {
    const BatchSynthesis::Losses l = bs.step(it);
    run.done += run.active;  // every working rank is at this iteration of its own batch
    if (it + 1 == cfg.iters) {
      rec.bn_loss = l.bn;
      rec.input_loss = l.in;
    }
    if (progress && ((it + 1) % every == 0 || it + 1 == cfg.iters))
      progress(run.at(cfg, b, it + 1, l, bs.lr_z(), bs.lr_g()));
  }
  // The batch's images: x of the last forward (before the final optimizer step).
  const int64_t row = images.numel() / images.dim(0);
  copy_bytes(images.data() + rec.first * row, Device::CPU, bs.images().data(), cfg.device,
             size_t(rec.count * row) * sizeof(float));
  rec.bn_loss_noise = bs.noise_bn_loss();
  capture = capture && !bs.capture_failed();  // no second attempt after a failed capture
  rec.time_s = clock.seconds();
  return rec;
}

// The means over batches, weighted by batch size, and the rate of this call.
void finish_totals(DistillResult& res, const RunProgress& run) {
  double wsum = 0, bn = 0, in = 0, noise = 0;
  for (const auto& b : res.batches) {
    wsum += double(b.count);
    bn += double(b.bn_loss) * double(b.count);
    in += double(b.input_loss) * double(b.count);
    noise += double(b.bn_loss_noise) * double(b.count);
  }
  if (wsum > 0) {
    res.bn_loss_final = float(bn / wsum);
    res.input_loss_final = float(in / wsum);
    res.bn_loss_noise = float(noise / wsum);
  }
  res.time_s = run.clock.seconds();
  res.iters_per_s = res.time_s > 0 ? double(run.done) / res.time_s : 0.0;
}

// The finished batches of an interrupted run (images and records), or an empty start.
int64_t resume_from(const DistillResume* resume, const Shape& shape, int64_t num_batches,
                    DistillResult& res) {
  if (!resume || resume->next_batch <= 0) {
    res.images = Tensor::zeros(shape);
    return 0;
  }
  const int64_t start = resume->next_batch;
  const DistillResult& prev = resume->previous;
  GENIE_CHECK(start <= num_batches, "[distill] resume: expected next batch <= ", num_batches,
              ", got ", start);
  GENIE_CHECK(prev.images.defined() && prev.images.shape() == shape,
              "[distill] resume: expected previous images of shape ", shape_str(shape), ", got ",
              prev.images.defined() ? shape_str(prev.images.shape()) : "none");
  GENIE_CHECK(int64_t(prev.batches.size()) >= start, "[distill] resume: expected ", start,
              " finished batch records, got ", prev.batches.size());
  res.images = prev.images.to(Device::CPU).clone();
  res.batches.assign(prev.batches.begin(), prev.batches.begin() + start);
  return start;
}

// The batches of one round [b0, b0 + size) from every rank: each rank's record and image rows go
// to every other, so that all ranks hold the round's images and records in batch order.
std::vector<DistillBatch> share_round(const Comm& comm, int64_t b0, int64_t nb,
                                      const DistillBatch& mine, Tensor& images) {
  const int64_t row = images.numel() / images.dim(0);
  std::string payload;
  if (b0 + comm.rank() < nb) {
    payload = to_json(mine).dump() + '\n';
    const auto* bytes = reinterpret_cast<const char*>(images.data() + mine.first * row);
    payload.append(bytes, size_t(mine.count * row) * sizeof(float));
  }
  const std::vector<std::string> all = comm.allgather(payload);
  std::vector<DistillBatch> round;
  for (int r = 0; r < comm.size() && b0 + r < nb; ++r) {
    const std::string& p = all[size_t(r)];
    const size_t eol = p.find('\n');
    GENIE_CHECK(eol != std::string::npos, "[distill] rank ", r, " sent no record for batch ",
                b0 + r);
    DistillBatch rec = distill_batch_from_json(Json::parse(p.substr(0, eol), "batch record"));
    GENIE_CHECK(rec.index == b0 + r && rec.first >= 0 && rec.count >= 0 &&
                    rec.first + rec.count <= images.dim(0) &&
                    p.size() - eol - 1 == size_t(rec.count * row) * sizeof(float),
                "[distill] rank ", r, " sent a malformed batch ", rec.index);
    if (r != comm.rank())
      std::memcpy(images.data() + rec.first * row, p.data() + eol + 1, p.size() - eol - 1);
    round.push_back(rec);
  }
  return round;
}

}  // namespace

DistillResult distill(const Model& teacher, const DistillConfig& cfg,
                      const DistillProgressFn& progress, const DistillBatchFn& on_batch,
                      const DistillResume* resume) {
  validate_distill(teacher, cfg);
  GENIE_CHECK(cfg.device == Device::CUDA || cfg.precision == Precision::FP32,
              "[distill] precision ", precision_name(cfg.precision),
              " needs a CUDA device (the CPU computes FP32 only)");
  const PrecisionScope precision(cfg.precision);
  const auto& info = teacher.info();
  RunProgress run;
  run.num_batches = (cfg.samples + cfg.batch - 1) / cfg.batch;
  DistillResult res;
  const int64_t start =
      resume_from(resume, {cfg.samples, info.C, info.H, info.W}, run.num_batches, res);
  run.total = (run.num_batches - start) * cfg.iters;
  const Comm* comm = cfg.comm && cfg.comm->size() > 1 ? cfg.comm : nullptr;
  const int ranks = comm ? comm->size() : 1;
  run.ranks = ranks;
  const TeacherCtx ctx(teacher);
  bool capture = cfg.graph && !cfg.after_backward;
  for (int64_t b0 = start; b0 < run.num_batches; b0 += ranks) {
    const int64_t b = b0 + (comm ? comm->rank() : 0);
    DistillBatch mine;
    run.active = std::min<int64_t>(ranks, run.num_batches - b0);
    if (b < run.num_batches)
      mine = synthesize_batch(ctx, cfg, b, capture, res.images, run, progress);
    const std::vector<DistillBatch> round =
        comm ? share_round(*comm, b0, run.num_batches, mine, res.images)
             : std::vector<DistillBatch>{mine};
    for (const DistillBatch& rec : round) {
      res.batches.push_back(rec);
      finish_totals(res, run);
      if (on_batch) on_batch(res, rec);
    }
  }
  finish_totals(res, run);
  return res;
}

// ---- outputs ----

void write_distill_h5(const std::string& path, const DistillResult& r, const DistillConfig& cfg,
                      const Model& teacher) {
  const auto& info = teacher.info();
  io::H5Writer w(path);
  w.write("images", r.images);
  w.set_attr_string("format", "genie-distill-1");
  w.set_attr_string("layout", "NCHW float32, normalized input space");
  w.set_attr_i64("samples", cfg.samples);
  w.set_attr_i64("batch", cfg.batch);
  w.set_attr_i64("iters", cfg.iters);
  w.set_attr_f64("lr_z", cfg.lr_z);
  w.set_attr_f64("lr_g", cfg.lr_g);
  w.set_attr_i64("seed", int64_t(cfg.seed));
  w.set_attr_i64("swing", cfg.swing ? 1 : 0);
  w.set_attr_string("mode", distill_mode_name(cfg.mode));
  w.set_attr_string("device", device_name(cfg.device));
  w.set_attr_f64("plateau_factor", cfg.plateau_factor);
  w.set_attr_i64("plateau_patience", cfg.plateau_patience);
  w.set_attr_f64("plateau_threshold", cfg.plateau_threshold);
  w.set_attr_f64("plateau_min_lr", cfg.plateau_min_lr);
  w.set_attr_f64("g_lr_gamma", cfg.g_lr_gamma);
  w.set_attr_i64("g_lr_step", cfg.g_lr_step);
  w.set_attr_string("model_arch", info.arch);
  w.set_attr_i64_vec("input_shape", {info.C, info.H, info.W});
  w.set_attr_f32_vec("input_mean", info.mean);
  w.set_attr_f32_vec("input_std", info.std);
  w.set_attr_f64("bn_loss_final", r.bn_loss_final);
  w.set_attr_f64("input_loss_final", r.input_loss_final);
  w.set_attr_f64("bn_loss_noise", r.bn_loss_noise);
  // No timings here (they are in report.json): the file is a pure function of the settings, so two
  // CPU runs with one seed produce the same bytes.
  w.commit();
}

void write_distill_contact_sheet(const std::string& path, const DistillResult& r,
                                 const Model& teacher, int64_t max_images, int scale) {
  GENIE_CHECK(r.images.defined() && r.images.ndim() == 4 && r.images.dim(0) > 0,
              "[distill] contact sheet: expected images (N, C, H, W), got ", r.images.describe());
  const auto& info = teacher.info();
  const int64_t n = std::min<int64_t>(r.images.dim(0), std::max<int64_t>(max_images, 1));
  Tensor first = r.images;
  if (n < r.images.dim(0)) {
    first = Tensor::empty({n, r.images.dim(1), r.images.dim(2), r.images.dim(3)});
    copy_bytes(first.data(), Device::CPU, r.images.data(), r.images.device(),
               size_t(first.numel()) * sizeof(float));
  }
  const std::vector<float> mean = info.mean.empty() ? std::vector<float>{0.f} : info.mean;
  const std::vector<float> sd = info.std.empty() ? std::vector<float>{1.f} : info.std;
  io::write_contact_sheet(path, first, mean, sd, 0, scale);
}

}  // namespace genie::engine
