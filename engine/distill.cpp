// Genie-D distillation loop (GENIE.md §1): teacher hooks (swing convolution, BN-statistics loss),
// the per-batch optimisation with its two Adam optimizers and schedules, and the output writers.
#include "engine/distill.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

#include "autograd/ops_genie.h"
#include "autograd/optim.h"
#include "io/atomic.h"
#include "io/h5.h"
#include "io/image.h"
#include "kernels/functors.h"
#include "kernels/graph.h"
#include "kernels/util.h"
#include "kernels/json.h"

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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void validate_distill(const Model& teacher, const DistillConfig& cfg) {
  const auto& info = teacher.info();
  GENIE_CHECK(!teacher.bn_nodes().empty(),
              "[distill] expected a teacher with BatchNorm layers (Genie-D matches their running "
              "statistics), got a model (",
              info.arch, ") without any");
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

DistillResult distill(const Model& teacher, const DistillConfig& cfg,
                      const DistillProgressFn& progress, const DistillBatchFn& on_batch,
                      const DistillResume* resume) {
  validate_distill(teacher, cfg);
  const auto& info = teacher.info();
  const int64_t S = cfg.samples, B = cfg.batch, C = info.C, H = info.H, W = info.W;
  const int64_t num_batches = (S + B - 1) / B;
  const Device dev = cfg.device;

  DistillResult res;
  int64_t start = 0;
  if (resume && resume->next_batch > 0) {
    start = resume->next_batch;
    const DistillResult& prev = resume->previous;
    GENIE_CHECK(start <= num_batches, "[distill] resume: expected next batch <= ", num_batches,
                ", got ", start);
    GENIE_CHECK(prev.images.defined() && prev.images.shape() == (Shape{S, C, H, W}),
                "[distill] resume: expected previous images of shape ", shape_str({S, C, H, W}),
                ", got ", prev.images.defined() ? shape_str(prev.images.shape()) : "none");
    GENIE_CHECK(int64_t(prev.batches.size()) >= start, "[distill] resume: expected ", start,
                " finished batch records, got ", prev.batches.size());
    res.images = prev.images.to(Device::CPU).clone();
    res.batches.assign(prev.batches.begin(), prev.batches.begin() + start);
  } else {
    res.images = Tensor::zeros({S, C, H, W});
  }

  TeacherCtx ctx(teacher);
  const bool use_g = cfg.mode != DistillMode::LatentsOnly;
  const bool opt_latents = cfg.mode != DistillMode::GeneratorOnly;
  const int64_t total_iters = (num_batches - start) * cfg.iters;
  int64_t done_iters = 0;
  const auto t_run = std::chrono::steady_clock::now();

  auto finish_totals = [&]() {
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
    res.time_s = seconds_since(t_run);
    res.iters_per_s = res.time_s > 0 ? double(done_iters) / res.time_s : 0.0;
  };

  std::vector<std::pair<int, int>> offsets(size_t(cfg.swing ? ctx.num_strided : 0));
  bool capture_failed = false;  // graph mode: then every later iteration runs eagerly
  for (int64_t b = start; b < num_batches; ++b) {
    const auto t_batch = std::chrono::steady_clock::now();
    const int64_t first = b * B, nb = std::min(B, S - first);
    const uint64_t swing_key = stream_key(cfg.seed, b, 1);

    // Fresh generator and latents (latents_only: the images themselves, N(0,1)).
    ops::Generator rng(stream_key(cfg.seed, b, 0));
    Tensor z = use_g ? ops::randn({nb, models::GenieGenerator::kLatentDim}, rng, dev)
                     : ops::randn({nb, C, H, W}, rng, dev);
    std::unique_ptr<models::GenieGenerator> gen;
    if (use_g) gen = std::make_unique<models::GenieGenerator>(H, C, rng, dev);
    if (cfg.init_batch) cfg.init_batch(b, gen.get(), z);
    if (opt_latents) z.set_requires_grad();

    std::unique_ptr<Adam> opt_z, opt_g;
    if (opt_latents) opt_z = std::make_unique<Adam>(std::vector<Tensor>{z}, cfg.lr_z);
    if (use_g) opt_g = std::make_unique<Adam>(gen->parameters(), cfg.lr_g);
    ReduceLROnPlateau plateau(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_threshold,
                              cfg.plateau_min_lr);

    DistillBatch rec;
    rec.index = b;
    rec.first = first;
    rec.count = nb;
    rec.iters = cfg.iters;
    // Graph mode: the iteration's swing offsets and the Adams' schedules in one device tensor
    //   int32 [0, 2L) (dy, dx) per strided conv; float at 2L: z's {step size, sqrt bias
    //   correction}, then G's
    // uploaded before each iteration; one capture per batch (shapes are fixed within a batch).
    const bool graph = cfg.graph && !cfg.after_backward;
    const int64_t L = int64_t(offsets.size());
    Tensor in;
    std::vector<int32_t> in_host;
    std::unique_ptr<k::Uploader> up;
    std::unique_ptr<k::StepGraph> step_graph;
    bool warm = false;
    struct Out {
      Tensor x, loss, l_bn, l_in;
    } out;
    if (graph) {
      in = Tensor::zeros({2 * L + 4}, dev, DType::I32);
      in_host.assign(size_t(in.numel()), 0);
      up = std::make_unique<k::Uploader>(dev, size_t(in.numel()) * sizeof(int32_t));
      const float* f = reinterpret_cast<const float*>(in.data_as<int32_t>() + 2 * L);
      if (opt_z) opt_z->bind_schedule(f);
      if (opt_g) opt_g->bind_schedule(f + 2);
    }
    const int32_t* offsets_at = graph && L > 0 ? in.data_as<int32_t>() : nullptr;
    // zero_grad, forward, backward, the optimizer steps: what one capture records.
    auto body = [&](const std::function<void(const Out&)>& after_backward) {
      if (opt_z) opt_z->zero_grad();
      if (opt_g) opt_g->zero_grad();
      Out o;
      o.x = use_g ? gen->forward(z) : z;
      o.l_in = ops::input_stat_loss(o.x);
      o.l_bn = ctx.bn_loss(o.x, offsets, offsets_at);
      o.loss = ops::add(o.l_bn, o.l_in);
      backward(o.loss);
      if (after_backward) after_backward(o);
      if (opt_z) opt_z->step();
      if (opt_g) opt_g->step();
      return o;
    };
    for (int64_t it = 0; it < cfg.iters; ++it) {
      if (opt_g) opt_g->lr = step_lr(cfg.lr_g, cfg.g_lr_gamma, cfg.g_lr_step, it);
      for (size_t l = 0; l < offsets.size(); ++l)
        offsets[l] = cfg.swing_offsets ? cfg.swing_offsets(b, it, int(l))
                                       : philox_offsets(swing_key, it, int(l), ctx.num_strided);
      const float lr_g_now = opt_g ? opt_g->lr : 0.f;
      float lv = 0, bnv = 0, inv = 0;
      if (!graph) {
        out = body([&](const Out& o) {
          lv = o.loss.item(), bnv = o.l_bn.item(), inv = o.l_in.item();
          if (cfg.after_backward)
            cfg.after_backward(b, it + 1, lv, opt_latents ? z.grad() : Tensor());
        });
      } else {
        for (int64_t l = 0; l < L; ++l) {
          in_host[size_t(2 * l)] = offsets[size_t(l)].first;
          in_host[size_t(2 * l + 1)] = offsets[size_t(l)].second;
        }
        float f[4] = {0, 0, 0, 0};
        for (int j = 0; j < 2; ++j) {
          Adam* a = j == 0 ? opt_z.get() : opt_g.get();
          if (!a) continue;
          const auto sched = a->schedule(a->steps() + 1);
          f[2 * j] = sched[0];
          f[2 * j + 1] = sched[1];
        }
        std::memcpy(&in_host[size_t(2 * L)], f, sizeof(f));
        up->upload(in.raw(), in_host.data(), in_host.size() * sizeof(int32_t));
        if (!warm || capture_failed) {
          out = body({});
          warm = true;
        } else if (!step_graph) {
          const int64_t steps_z = opt_z ? opt_z->steps() : 0, steps_g = opt_g ? opt_g->steps() : 0;
          auto g = std::make_unique<k::StepGraph>(dev);
          try {
            k::Capture cap(*g);
            out = body({});  // recorded, not run; the Adams count the step
            cap.finish();
            step_graph = std::move(g);
            step_graph->replay();
          } catch (const std::exception& ex) {
            // Nothing ran on the device: undo the host's bookkeeping and go on eagerly.
            clear_tape();
            out = Out{};
            if (opt_z) opt_z->set_steps(steps_z), opt_z->zero_grad();
            if (opt_g) opt_g->set_steps(steps_g), opt_g->zero_grad();
            g.reset();
            capture_failed = true;
            if (cfg.message)
              cfg.message(str("Genie-D: the step could not be captured (", ex.what(),
                              "); running it eagerly (same results)"));
            out = body({});
          }
        } else {
          step_graph->replay();
          if (opt_z) opt_z->set_steps(opt_z->steps() + 1);
          if (opt_g) opt_g->set_steps(opt_g->steps() + 1);
        }
        lv = out.loss.item(), bnv = out.l_bn.item(), inv = out.l_in.item();
      }
      if (opt_z) opt_z->lr = plateau.step(lv, opt_z->lr);
      ++done_iters;

      if (it + 1 == cfg.iters) {
        // The batch's images: x of this last forward (before the final optimizer step).
        copy_bytes(res.images.data() + first * C * H * W, Device::CPU, out.x.data(), dev,
                   size_t(nb * C * H * W) * sizeof(float));
        rec.bn_loss = bnv;
        rec.input_loss = inv;
      }
      if (progress &&
          ((it + 1) % std::max<int64_t>(cfg.progress_every, 1) == 0 || it + 1 == cfg.iters)) {
        DistillProgress p;
        p.batch = b;
        p.num_batches = num_batches;
        p.iter = it + 1;
        p.iters = cfg.iters;
        p.bn_loss = bnv;
        p.input_loss = inv;
        p.lr_z = opt_z ? opt_z->lr : 0.f;
        p.lr_g = lr_g_now;
        const double el = seconds_since(t_run);
        p.iters_per_s = el > 0 ? double(done_iters) / el : 0.0;
        p.eta_s = p.iters_per_s > 0 ? double(total_iters - done_iters) / p.iters_per_s : 0.0;
        progress(p);
      }
    }

    // Yardstick: the same loss on N(0,1) noise images of this batch's shape (swing as configured,
    // offsets of one more "iteration" of the swing stream).
    {
      NoGradGuard ng;
      ops::Generator nrng(stream_key(cfg.seed, b, 2));
      Tensor noise = ops::randn({nb, C, H, W}, nrng, dev);
      for (size_t l = 0; l < offsets.size(); ++l)
        offsets[l] = philox_offsets(swing_key, cfg.iters, int(l), ctx.num_strided);
      rec.bn_loss_noise = ctx.bn_loss(noise, offsets).item();
    }
    rec.time_s = seconds_since(t_batch);
    res.batches.push_back(rec);
    finish_totals();
    if (on_batch) on_batch(res, rec);
  }
  finish_totals();
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

std::string distill_report_json(const DistillResult& r, const DistillConfig& cfg) {
  Json j = Json::object();
  j.set("bn_loss_final", r.bn_loss_final);
  j.set("input_loss_final", r.input_loss_final);
  j.set("bn_loss_noise", r.bn_loss_noise);
  j.set("iters_per_s", r.iters_per_s);
  j.set("time_s", r.time_s);
  Json s = Json::object();
  s.set("samples", cfg.samples);
  s.set("batch", cfg.batch);
  s.set("iters", cfg.iters);
  s.set("lr_z", cfg.lr_z);
  s.set("lr_g", cfg.lr_g);
  s.set("seed", int64_t(cfg.seed));
  s.set("swing", cfg.swing);
  s.set("mode", distill_mode_name(cfg.mode));
  s.set("device", device_name(cfg.device));
  j.set("settings", s);
  Json bs = Json::array();
  for (const auto& b : r.batches) {
    Json o = Json::object();
    o.set("index", b.index);
    o.set("first", b.first);
    o.set("count", b.count);
    o.set("bn_loss", b.bn_loss);
    o.set("input_loss", b.input_loss);
    o.set("bn_loss_noise", b.bn_loss_noise);
    o.set("time_s", b.time_s);
    bs.push_back(o);
  }
  j.set("batches", bs);
  return j.dump(2) + "\n";
}

void write_distill_report(const std::string& path, const DistillResult& r,
                          const DistillConfig& cfg) {
  io::write_file_atomic(path, distill_report_json(r, cfg));
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

void write_distill_outputs(const std::string& out_dir, const DistillResult& r,
                           const DistillConfig& cfg, const Model& teacher) {
  io::make_dirs(out_dir);
  write_distill_h5(out_dir + "/images.h5", r, cfg, teacher);
  write_distill_report(out_dir + "/report.json", r, cfg);
  write_distill_contact_sheet(out_dir + "/contact_sheet.png", r, teacher);
}

std::string format_distill_progress(const DistillProgress& p) {
  char buf[256];
  const double eta = p.eta_s;
  std::snprintf(
      buf, sizeof buf,
      "[distill] batch %lld/%lld iter %lld/%lld  L_bn %.5g  L_in %.5g  lr_z %.3g  lr_g %.3g  "
      "%.2f it/s  ETA %02d:%02d:%02d",
      (long long)(p.batch + 1), (long long)p.num_batches, (long long)p.iter, (long long)p.iters,
      double(p.bn_loss), double(p.input_loss), double(p.lr_z), double(p.lr_g), p.iters_per_s,
      int(eta / 3600), int(std::fmod(eta / 60, 60.0)), int(std::fmod(eta, 60.0)));
  return buf;
}

}  // namespace genie::engine
