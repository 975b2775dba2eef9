// Iteration cases of genie_bench: one Genie-D iteration (the engine's own distill() loop, timed
// per iteration from its progress callback) and one Genie-M iteration per reconstruction-unit kind
// (the body of quant::reconstruct()'s loop on the engine's QModel: batch gather, input mixing,
// quantized unit forward with QDrop, reconstruction + rounding loss, backward, both Adam updates),
// plus the cost growth of Genie-D with batch and image size. Every case records in
// "params" what bench/compare_pytorch.py needs to run the same computation in PyTorch.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>

#include "autograd/ops.h"
#include "autograd/ops_genie.h"
#include "autograd/ops_quant.h"
#include "autograd/optim.h"
#include "bench/bench.h"
#include "engine/distill.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "io/model_file.h"
#include "models/archs.h"

namespace genie::bench {

namespace {

using models::Model;

// ---------------------------------------------------------------- models

struct ModelSpec {
  std::string arch;     // built-in architecture
  std::string weights;  // "resnet20_fmnist" (the bundled teacher) or "random"
  int64_t C = 3, R = 224, classes = 1000;
};

// Random weights in PyTorch's default spirit (kaiming-normal convs, unit BN), running statistics
// drawn near (0, 1) so that the BN-statistics loss is non-trivial.
Model random_model(const ModelSpec& s, uint64_t seed, Device d) {
  models::ModelInfo info;
  info.arch = s.arch;
  info.C = s.C;
  info.H = info.W = s.R;
  info.num_classes = s.classes;
  info.mean.assign(size_t(s.C), 0.f);
  info.std.assign(size_t(s.C), 1.f);
  models::Graph g = models::make_arch(s.arch, info);
  std::map<std::string, Tensor> params;
  uint64_t k = seed;
  auto ends = [](const std::string& a, const char* b) {
    const std::string t(b);
    return a.size() >= t.size() && a.compare(a.size() - t.size(), t.size(), t) == 0;
  };
  for (const auto& ps : g.param_specs()) {
    const int64_t fan_in = ps.shape.size() > 1 ? numel_of(ps.shape) / ps.shape[0] : 1;
    Tensor t;
    if (ends(ps.key, ".running_var"))
      t = random_uniform(ps.shape, ++k, Device::CPU, 0.5f, 1.5f);
    else if (ends(ps.key, ".running_mean"))
      t = random_normal(ps.shape, ++k, Device::CPU, 0.f, 0.1f);
    else if (ps.shape.size() == 1 && ends(ps.key, ".weight"))
      t = Tensor::full(ps.shape, 1.f);
    else if (ends(ps.key, ".bias"))
      t = Tensor::zeros(ps.shape);
    else
      t = random_normal(ps.shape, ++k, Device::CPU, 0.f, float(std::sqrt(2.0 / double(fan_in))));
    params[ps.key] = t;
  }
  Model m(std::move(g), info, std::move(params), s.arch + " (random)");
  m.to(d);
  return m;
}

Model load_teacher(const Options& o, Device d) {
  Model m = io::load_model(o.model_path);
  m.to(d);
  return m;
}

Json model_params(const ModelSpec& s) {
  Json p = Json::object();
  p.set("arch", s.arch);
  p.set("weights", s.weights);
  p.set("channels", s.C);
  p.set("image", s.R);
  p.set("classes", s.classes);
  return p;
}

int reps_or(const Options& o, int def) {
  return o.reps > 0 ? o.reps : (o.quick ? std::max(2, def / 2) : def);
}

// ---------------------------------------------------------------- Genie-D

// Checks the teacher's BN-statistics loss on `dev` against the CPU (the reference) for one input
// and fixed swing offsets; on the CPU itself, that the loss is finite and positive.
std::string check_bn_loss(const Model& teacher, Device dev, int64_t B, double tol, bool& ok) {
  const auto& info = teacher.info();
  const int64_t n = std::min<int64_t>(B, 4);
  Tensor x = random_normal({n, info.C, info.H, info.W}, 77, Device::CPU);
  std::vector<std::pair<int, int>> offs(teacher.strided_convs().size(), {2, 1});
  NoGradGuard ng;
  const float got = engine::teacher_bn_loss(teacher, x.to(dev), offs).item();
  if (dev == Device::CPU) {
    ok = std::isfinite(got) && got > 0;
    return str(ok ? "ok" : "FAIL", " (L_bn on N(0,1) input finite: ", got,
               "; CPU is the reference)");
  }
  Model cpu = teacher;  // shares nothing after to(): parameters are copied
  cpu.to(Device::CPU);
  const float ref = engine::teacher_bn_loss(cpu, x, offs).item();
  const double rel = std::fabs(double(got) - double(ref)) / (std::fabs(double(ref)) + 1e-30);
  ok = rel < tol;
  return str(ok ? "ok" : "FAIL", " (L_bn device vs CPU rel ", rel, ")");
}

// graph: the iterations as replays of the captured step (DistillConfig::graph); its losses must
// equal `eager_losses` (the iter variant's, when it ran) bit for bit on the CPU, rel 1e-5 on the
// GPU. Returns the per-iteration losses.
std::vector<float> genie_d_case(Bench& b, const std::string& group, const Model& teacher,
                                const ModelSpec& spec, int64_t B, int warmup, int reps,
                                const std::string& note = "", bool graph = false,
                                const std::vector<float>* eager_losses = nullptr) {
  const std::string variant = graph ? "iter_graph" : "iter";
  const std::string name = group + "/" + variant;
  std::vector<float> losses;
  if (!b.selected(name)) return losses;
  const Device d = b.opt.device;
  Result r;
  r.group = group;
  r.variant = variant;
  r.note = note;
  r.params = model_params(spec);
  r.params.set("batch", B);
  r.params.set("swing", true);
  try {
    bool ok = false;
    r.check = check_bn_loss(teacher, d, B, b.opt.device_tol(), ok);
    r.failed = !ok;
    if (!r.failed) {
      engine::DistillConfig cfg;
      cfg.samples = B;
      cfg.batch = B;
      cfg.iters = warmup + 1 + reps;
      cfg.device = d;
      cfg.precision = b.opt.precision;
      cfg.progress_every = 1;
      cfg.graph = graph;
      IterClock clk(d);
      float first = 0, last = 0;
      if (d == Device::CUDA) cuda_reset_peak();
      host_reset_peak();
      // Kernel calls of iteration 3 (steady state); graph: of iteration 2, the one captured.
      uint64_t calls_at[4] = {0, 0, 0, 0};
      engine::distill(teacher, cfg, [&](const engine::DistillProgress& p) {
        if (p.iter <= 3) calls_at[p.iter] = k::dispatch_count().load();
        clk.mark();
        if (p.iter == 1) first = p.bn_loss + p.input_loss;
        last = p.bn_loss + p.input_loss;
        losses.push_back(p.bn_loss + p.input_loss);
      });
      const int ci = graph ? 1 : 2;
      r.peak_mem_mb = double(d == Device::CUDA ? cuda_mem_stats().peak_allocated
                                               : host_mem_stats().peak_allocated) /
                      (1 << 20);
      r.t = summarize(clk.deltas_ms(warmup));
      if (calls_at[ci + 1] > calls_at[ci])
        r.params.set("kernel_calls", int64_t(calls_at[ci + 1] - calls_at[ci]));
      if (!std::isfinite(last)) {
        r.failed = true;
        r.check = str("FAIL (loss not finite after ", cfg.iters, " iterations)");
      } else {
        r.check +=
            str("; loss ", fmt(first, 3), " -> ", fmt(last, 3), " over ", cfg.iters, " iters");
      }
      if (graph && !r.failed) {
        if (!eager_losses || eager_losses->size() != losses.size()) {
          r.check += "; not compared with the eager variant";
        } else {
          double e = 0;
          for (size_t i = 0; i < losses.size(); ++i)
            e = std::max(e, std::fabs(double(losses[i]) - double((*eager_losses)[i])) /
                                (std::fabs(double((*eager_losses)[i])) + 1e-30));
          r.failed = d == Device::CPU ? e != 0 : !(e < 1e-5);
          r.check += e == 0 ? "; = eager" : str("; vs eager rel ", e);
        }
      }
    }
  } catch (const std::exception& e) {
    r.failed = true;
    r.check = str("FAIL: ", e.what());
  }
  b.add(std::move(r));
  return losses;
}

// The parts of one Genie-D iteration, timed separately (where the time goes): the generator's
// forward (recorded on the tape) and forward + backward; the teacher's forward with the swing
// shifts and BN-statistics losses, without and with the backward to the images; the two Adam
// steps. compare_pytorch.py times the same parts in PyTorch.
void genie_d_parts(Bench& b, const std::string& group, const Model& teacher, const ModelSpec& spec,
                   int64_t B, int warmup, int reps) {
  const char* parts[] = {"gen_fwd", "gen_fwd_bwd", "teacher_fwd", "teacher_fwd_bwd", "adam", "all"};
  bool any = false;
  for (const char* p : parts) any = any || b.selected(group + "/" + p);
  if (!any) return;
  const Device d = b.opt.device;
  const auto& info = teacher.info();
  ops::Generator rng(5);
  models::GenieGenerator gen(info.H, info.C, rng, d);
  Tensor z = ops::randn({B, models::GenieGenerator::kLatentDim}, rng, d);
  z.set_requires_grad();
  Tensor dx = random_normal({B, info.C, info.H, info.W}, 6, d);
  std::vector<std::pair<int, int>> offs(teacher.strided_convs().size(), {1, 2});
  Adam opt_z({z}, 0.1f), opt_g(gen.parameters(), 0.01f);
  Json params = model_params(spec);
  params.set("batch", B);
  auto run = [&](const char* part, const std::function<void()>& fn) {
    const std::string name = group + "/" + part;
    if (!b.selected(name)) return;
    Result r;
    r.group = group;
    r.variant = part;
    r.params = params;
    r.check = "n/a (a part of the checked iteration)";
    try {
      r.t = time_fn(b.opt, fn, warmup, reps);
    } catch (const std::exception& e) {
      r.failed = true;
      r.check = str("FAIL: ", e.what());
    }
    b.add(std::move(r));
  };
  run("gen_fwd", [&] {
    Tensor x = gen.forward(z);
    clear_tape();
  });
  run("gen_fwd_bwd", [&] {
    opt_g.zero_grad();
    z.zero_grad();
    Tensor x = gen.forward(z);
    backward(x, dx);
  });
  Tensor xs = random_normal({B, info.C, info.H, info.W}, 7, d);
  run("teacher_fwd", [&] {
    NoGradGuard ng;
    Tensor l = ops::add(engine::teacher_bn_loss(teacher, xs, offs), ops::input_stat_loss(xs));
  });
  Tensor xl = xs.clone();
  xl.set_requires_grad();
  run("teacher_fwd_bwd", [&] {
    xl.zero_grad();
    Tensor l = ops::add(engine::teacher_bn_loss(teacher, xl, offs), ops::input_stat_loss(xl));
    backward(l);
  });
  {  // gradients in place for the optimizer steps
    Tensor x = gen.forward(z);
    backward(x, dx);
  }
  run("adam", [&] {
    opt_z.step();
    opt_g.step();
  });
  // Everything of one iteration in one piece (generator, teacher, backward through both, Adam),
  // without distill()'s bookkeeping (schedules, loss read-back, swing draws, progress).
  run("all", [&] {
    opt_z.zero_grad();
    opt_g.zero_grad();
    Tensor x = gen.forward(z);
    Tensor l = ops::add(engine::teacher_bn_loss(teacher, x, offs), ops::input_stat_loss(x));
    backward(l);
    opt_z.step();
    opt_g.step();
  });
}

// ---------------------------------------------------------------- Genie-M

// A model holding just one reconstruction unit of `m`, so that QModel's clip-search
// initialisation and quantizer layout cover the unit's weights only (the whole ResNet-50 would
// take a minute on the CPU): a 1x1 identity "stem" conv in front (it takes QModel's first-layer
// convention: 8-bit weights, unquantized input), the unit's nodes with their original names and
// parameters, and global pooling + a linear head behind (the classifier convention, W8A8).
// Within the unit, every conv/linear gets the standard wbits/abits, its first conv an 8-bit input
// (the second-layer convention) — bit widths do not change the cost of an iteration.
Model unit_model(const Model& m, const models::Unit& u, const Shape& xs, uint64_t seed) {
  models::Graph g;
  const int64_t C = xs[1];
  models::Node stem;
  stem.op = "conv";
  stem.name = "bench_stem";
  stem.inputs = {-1};
  stem.in_ch = stem.out_ch = C;
  stem.kernel = 1;
  g.add(stem);
  for (int i = u.first; i <= u.last; ++i) {
    models::Node n = m.node(i);
    for (int& j : n.inputs) {
      GENIE_CHECK(j == u.input || j >= u.first, "[bench] unit ", u.name, " node ", i,
                  " reads node ", j, " from outside the unit");
      j = j == u.input ? 0 : j - u.first + 1;
    }
    g.add(n);
  }
  const auto shapes = m.node_shapes(xs[0]);
  const int64_t C_out = shapes.at(size_t(u.last)).at(1);
  models::Node pool;
  pool.op = "avgpool";
  g.add(pool);
  models::Node head;
  head.op = "linear";
  head.name = "bench_head";
  head.in_ch = C_out;
  head.out_ch = 10;
  head.has_bias = true;
  g.add(head);

  std::map<std::string, Tensor> params;
  std::vector<float> eye(size_t(C * C), 0.f);
  for (int64_t c = 0; c < C; ++c) eye[size_t(c * C + c)] = 1.f;
  params["bench_stem.weight"] = Tensor::from_vector(eye, {C, C, 1, 1});
  params["bench_head.weight"] = random_normal({10, C_out}, seed, Device::CPU, 0.f, 0.1f);
  params["bench_head.bias"] = Tensor::zeros({10});
  for (const auto& ps : g.param_specs())
    if (!params.count(ps.key)) params[ps.key] = m.param(ps.key).to(Device::CPU);
  models::ModelInfo info;
  info.arch = "graph";
  info.C = C;
  info.H = xs[2];
  info.W = xs[3];
  info.mean.assign(size_t(C), 0.f);
  info.std.assign(size_t(C), 1.f);
  info.num_classes = 10;
  Model sub(std::move(g), info, std::move(params), "bench unit " + u.name);
  sub.to(m.device());
  return sub;
}

const models::Unit* find_unit(const std::vector<models::Unit>& units, const std::string& name) {
  for (const auto& u : units)
    if (u.name == name) return &u;
  return nullptr;
}

Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& idx, Device d) {
  return quant::gather_rows(t, idx.data(), int64_t(idx.size()), d);
}

// One Genie-M unit being reconstructed with the engine's own pieces (engine/qmodel.h,
// engine/reconstruct.h): QModel quantizers, activation-quantizer initialisation on the first
// batch, and per iteration quant::UnitOptimizer::step, the body of quant::reconstruct()'s loop —
// gather a batch of X / X_q / Y from the cache (on the GPU when it fits, as in reconstruct()),
// QDrop mixing mask, unit_objective (quantized unit forward with QDrop, Σ_channels squared error,
// rounding regulariser), backward, the three Adam updates with the cosine schedule; eagerly, or
// (`graph`) as replays of the captured step (ReconOptions::graph). The cache holds `cache`
// random samples of the unit's input shape (X ≥ 0 like a post-ReLU tensor, X_q = X + noise, Y = the
// FP unit on X).
struct MState {
  static constexpr int64_t kIters = 20000, kIterNow = 10000;  // halfway: rounding loss on
  Shape xs;
  Tensor X, Xq, Y;  // (cache, …) on the host, or on the GPU when reconstruct() would keep it there
  std::unique_ptr<quant::QModel> qm;
  models::Unit unit;
  quant::ReconOptions opt;
  ops::Generator gen{99};
  std::unique_ptr<quant::UnitOptimizer> uo;
  Device dev;

  MState(const Model& model, const std::string& unit_name, const ModelSpec& spec, int64_t B,
         int64_t cache, bool extract, Device d, bool graph)
      : dev(d) {
    const std::vector<models::Unit> units0 = quant::recon_units(model);
    const models::Unit* u0 = find_unit(units0, unit_name);
    GENIE_CHECK(u0, "[bench] no unit '", unit_name, "' in ", spec.arch);
    const auto shapes = model.node_shapes(cache);
    xs = u0->input < 0 ? Shape{cache, spec.C, spec.R, spec.R} : shapes.at(size_t(u0->input));
    Model m = extract ? unit_model(model, *u0, xs, 7) : model;
    const std::vector<models::Unit> units = quant::recon_units(m);
    const models::Unit* u = find_unit(units, unit_name);
    GENIE_CHECK(u, "[bench] unit '", unit_name, "' lost in extraction");
    unit = *u;
    X = ops::relu(random_normal(xs, 501, Device::CPU));
    Xq = ops::relu(ops::add(X, random_normal(xs, 502, Device::CPU, 0.f, 0.05f)));
    {
      NoGradGuard ng;
      Y = m.forward_range(unit.first, unit.last, {{unit.input, X.to(d)}}).to(Device::CPU);
    }
    qm = std::make_unique<quant::QModel>(m, quant::QuantConfig{});
    opt.iters = kIters;
    opt.batch = B;
    opt.graph = graph;
    if (quant::cache_on_device(int64_t(X.numel() + Xq.numel() + Y.numel()) * 4, d, opt)) {
      X = X.to(d);
      Xq = Xq.to(d);
      Y = Y.to(d);
    }
    const auto wids = qm->wq_in(unit.first, unit.last), aids = qm->aq_in(unit.first, unit.last);
    for (int w : wids) qm->wq[size_t(w)].set_hard(false);
    for (int a : aids) qm->aq[size_t(a)].qdrop = true;
    {
      NoGradGuard ng;
      quant::QModel::Run init;
      init.init_acts = true;
      init.gen = &gen;
      std::vector<int64_t> first(static_cast<size_t>(B));
      std::iota(first.begin(), first.end(), int64_t(0));
      qm->forward_range(unit.first, unit.last, {{unit.input, gather_rows(Xq, first, d)}}, init);
    }
    uo = std::make_unique<quant::UnitOptimizer>(*qm, unit, X, Xq, Y, opt, gen, 7);
  }

  int64_t num_weights() const {
    int64_t n = 0;
    for (int w : qm->wq_in(unit.first, unit.last)) n += qm->wq[size_t(w)].logits().numel();
    return n;
  }
  size_t num_act_quantizers() const { return qm->aq_in(unit.first, unit.last).size(); }

  // One iteration (it is 1-based, as in reconstruct()); returns the loss when asked (a sync).
  float step(int64_t it, bool want_loss) {
    quant::UnitOptimizer::Losses l;
    uo->step(it, want_loss ? &l : nullptr);
    return l.total;
  }
};

void genie_m_case(Bench& b, const std::string& group, const Model& model, const ModelSpec& spec,
                  const std::string& unit_name, int64_t B, int warmup, int reps, bool graph,
                  const std::string& note = "") {
  const std::string variant = graph ? "iter_graph" : "iter";
  const std::string name = group + "/" + variant;
  if (!b.selected(name)) return;
  const Device d = b.opt.device;
  Result r;
  r.group = group;
  r.variant = variant;
  r.note = note;
  r.params = model_params(spec);
  r.params.set("unit", unit_name);
  r.params.set("batch", B);
  const int64_t cache = 4 * B;
  // Whole-model QModel for small teachers (exact bit conventions); the unit alone otherwise.
  const bool extract = model.num_params() > 2000000;
  try {
    MState st(model, unit_name, spec, B, cache, extract, d, graph);
    const int64_t it0 = MState::kIterNow;
    r.params.set("kind", st.unit.kind);
    r.params.set("wbits", st.qm->config().wbits);
    r.params.set("abits", st.qm->config().abits);
    r.params.set("beta", quant::round_beta(it0, st.opt));
    r.params.set("iter", it0);
    r.params.set("iters", MState::kIters);
    r.params.set("cache", cache);
    r.params.set("unit_input", shape_str(st.xs));
    r.params.set("unit_output", shape_str(st.Y.shape()));
    r.params.set("quantized_weights", st.num_weights());
    r.params.set("act_quantizers", int64_t(st.num_act_quantizers()));
    r.params.set("unit_extracted", extract);
    r.params.set("graph", st.uo->graphed());
    // Check before timing: the loss of two iterations is finite; on a device, both match the
    // same two iterations on the CPU (the reference: same quantizers, same Philox masks).
    // A graph variant runs its first iteration eagerly, captures the second and replays from the
    // third: all three must equal the eager variant's on the same device, bit for bit.
    const float l0 = st.step(it0, true), l1 = st.step(it0 + 1, true);
    bool ok = std::isfinite(l0) && std::isfinite(l1);
    std::string detail = str("loss ", l0, ", ", l1);
    if (ok && graph) {
      const float l2 = st.step(it0 + 2, true);
      MState eager(model, unit_name, spec, B, cache, extract, d, false);
      const float e0 = eager.step(it0, true), e1 = eager.step(it0 + 1, true),
                  e2 = eager.step(it0 + 2, true);
      const bool exact = l0 == e0 && l1 == e1 && l2 == e2;
      double e = 0;  // on a GPU a nondeterministic cuDNN algorithm may differ in the last bits
      for (auto [g, x] : {std::pair{l0, e0}, std::pair{l1, e1}, std::pair{l2, e2}})
        e = std::max(e, std::fabs(double(g - x)) / (std::fabs(double(x)) + 1e-30));
      ok = st.uo->graphed() && (d == Device::CPU ? exact : e < 1e-5);
      detail +=
          str(", ", l2, exact ? "; = eager" : str("; eager ", e0, ", ", e1, ", ", e2, ", rel ", e),
              st.uo->graphed() ? "" : "; not graphed");
    }
    if (ok && d != Device::CPU && !graph) {  // (the graph variant is held to the eager one)
      Model cpu = model;
      cpu.to(Device::CPU);
      MState ref(cpu, unit_name, spec, B, cache, extract, Device::CPU, false);
      const float r0 = ref.step(it0, true), r1 = ref.step(it0 + 1, true);
      const double e = std::max(std::fabs(double(l0 - r0)) / (std::fabs(double(r0)) + 1e-30),
                                std::fabs(double(l1 - r1)) / (std::fabs(double(r1)) + 1e-30));
      ok = e < b.opt.device_tol();
      detail += str("; vs CPU rel ", e);
    }
    r.failed = !ok;
    r.check = str(ok ? "ok" : "FAIL", " (", detail, ")");
    if (!r.failed) {
      int64_t it = it0 + (graph ? 3 : 2);
      // Kernel calls of one step (device independent: on the GPU, launches or library calls);
      // for replays, the kernels the capture recorded (one launch on the GPU).
      const uint64_t c0 = k::dispatch_count().load();
      st.step(it++, false);
      r.params.set("kernel_calls", graph ? int64_t(st.uo->captured_kernels())
                                         : int64_t(k::dispatch_count().load() - c0));
      r.t = time_fn(
          b.opt, [&] { st.step(it++, false); }, warmup, reps);
    }
  } catch (const std::exception& e) {
    r.failed = true;
    r.check = str("FAIL: ", e.what());
  }
  b.add(std::move(r));
}

}  // namespace

void save_random_model(const std::string& arch, int64_t R, const std::string& path) {
  io::save_model(random_model(ModelSpec{arch, "random", 3, R, 1000}, 7, Device::CPU), path);
}

void run_genie_d_cases(Bench& b) {
  const Options& o = b.opt;
  const Device d = o.device;
  const bool gpu = d == Device::CUDA, q = o.quick;
  const int reps = reps_or(o, gpu ? 20 : 5), warm = gpu ? 3 : 1;
  auto wanted = [&](const std::string& group) {
    return b.selected(group + "/iter") || b.selected(group + "/iter_graph");
  };

  // Case list first (names decide what runs; models are built only for selected cases).
  const std::string main_case = "genie_d/resnet20_fmnist/B128";
  // ResNet-18 Genie-D: batch 128 on the GPU, 8 on the CPU (GENIE_BENCH_R18_BATCH overrides the
  // CPU batch, e.g. 128 to compare host memory with the GPU run: about 2 minutes on 2 cores).
  const char* r18_env = std::getenv("GENIE_BENCH_R18_BATCH");
  const int64_t B18 = gpu ? 128 : (r18_env ? std::max<int64_t>(1, std::atoll(r18_env)) : 8);
  const std::string r18_case = str("genie_d/resnet18/B", B18);
  std::vector<int64_t> batches;
  for (int64_t B : {32, 64, 128, 256})
    if (!(q && B > 64)) batches.push_back(B);
  const int64_t Bs = gpu ? 128 : 16;
  std::vector<int64_t> sizes;
  for (int64_t R : {28, 112, 224})
    if (!(q && R > 28)) sizes.push_back(R);
  auto batch_case = [](int64_t B) { return str("genie_d_scale/batch/resnet20_fmnist/B", B); };
  auto size_case = [&](int64_t R) { return str("genie_d_scale/size/resnet20/R", R, "_B", Bs); };

  const std::string parts_group = "genie_d_parts/resnet20_fmnist/B128";
  bool need_teacher = wanted(main_case);
  for (const char* p : {"gen_fwd", "gen_fwd_bwd", "teacher_fwd", "teacher_fwd_bwd", "adam", "all"})
    need_teacher = need_teacher || b.selected(parts_group + "/" + p);
  for (int64_t B : batches) need_teacher = need_teacher || wanted(batch_case(B));
  ModelSpec fm{"resnet20", "resnet20_fmnist", 1, 28, 10};
  std::unique_ptr<Model> teacher;
  if (need_teacher) {
    try {
      teacher = std::make_unique<Model>(load_teacher(o, d));
    } catch (const std::exception& e) {
      b.fail(main_case + "/iter", e.what());
    }
  }
  // The CPU target case: resnet20_fmnist at B = 128, and where its time goes.
  if (teacher && wanted(main_case)) {
    const std::vector<float> eager = genie_d_case(b, main_case, *teacher, fm, 128, warm, reps);
    genie_d_case(b, main_case, *teacher, fm, 128, warm, reps, "", true, &eager);
  }
  if (teacher) genie_d_parts(b, parts_group, *teacher, fm, 128, warm, reps);

  // ResNet-18, 224x224, random weights: B = 128 on the GPU; reduced batch on the CPU (not quick).
  if (wanted(r18_case) && (gpu || !q)) {
    ModelSpec r18{"resnet18", "random", 3, 224, 1000};
    Model m = random_model(r18, 18, d);
    genie_d_case(b, r18_case, m, r18, B18, gpu ? 3 : 1, gpu ? reps : 2,
                 gpu ? "" : "CPU: batch reduced from 128 to 8");
  }

  // Cost growth with the batch (resnet20_fmnist, 28x28).
  for (int64_t B : batches)
    if (teacher && wanted(batch_case(B)))
      genie_d_case(b, batch_case(B), *teacher, fm, B, warm,
                   B >= 256 ? std::max(2, reps / 2) : reps);
  // Cost growth with the image size (ResNet-20 architecture, 1 channel, random weights).
  for (int64_t R : sizes) {
    if (!wanted(size_case(R))) continue;
    ModelSpec s{"resnet20", "random", 1, R, 10};
    Model m = random_model(s, 20, d);
    const bool big = !gpu && R >= 112;
    genie_d_case(b, size_case(R), m, s, Bs, big ? 1 : warm, big ? 2 : reps,
                 gpu ? "" : "CPU: batch 16");
  }
}

void run_genie_m_cases(Bench& b) {
  const Options& o = b.opt;
  const Device d = o.device;
  const bool gpu = d == Device::CUDA;
  const int reps = reps_or(o, gpu ? 50 : 10), warm = gpu ? 5 : 2;
  const int64_t B = 32;
  auto wanted = [&](const std::string& group) {
    return b.selected(group + "/iter") || b.selected(group + "/iter_graph");
  };

  const std::string l10 = "genie_m/basic_block/resnet20_fmnist.layer1.0",
                    l20 = "genie_m/basic_block/resnet20_fmnist.layer2.0";
  if (wanted(l10) || wanted(l20)) {
    ModelSpec fm{"resnet20", "resnet20_fmnist", 1, 28, 10};
    try {
      Model teacher = load_teacher(o, d);
      for (bool graph : {false, true}) {
        if (wanted(l10)) genie_m_case(b, l10, teacher, fm, "layer1.0", B, warm, reps, graph);
        if (wanted(l20)) genie_m_case(b, l20, teacher, fm, "layer2.0", B, warm, reps, graph);
      }
    } catch (const std::exception& e) {
      b.fail(l10 + "/iter", e.what());
    }
  }
  // ImageNet-size units with random weights: 224x224 on the GPU, 112x112 on the CPU.
  const int64_t R = gpu ? 224 : 112;
  const std::string rn = gpu ? "" : "CPU: 112x112 input instead of 224x224";
  struct MCase {
    std::string group, arch, unit;
    uint64_t seed;
  };
  const MCase cases[] = {
      {str("genie_m/basic_block/resnet18.layer2.0_R", R), "resnet18", "layer2.0", 18},
      {str("genie_m/bottleneck/resnet50.layer1.0_R", R), "resnet50", "layer1.0", 50},
      {str("genie_m/inverted_residual/mobilenet_v2.features.3_R", R), "mobilenet_v2", "features.3",
       2},
  };
  for (const auto& c : cases) {
    if (!wanted(c.group)) continue;
    ModelSpec s{c.arch, "random", 3, R, 1000};
    Model m = random_model(s, c.seed, d);
    for (bool graph : {false, true})
      genie_m_case(b, c.group, m, s, c.unit, B, warm, reps, graph, rn);
  }
}

}  // namespace genie::bench
