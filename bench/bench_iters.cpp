// Iteration cases of genie_bench: one Genie-D iteration (the engine's own distill() loop, timed
// per iteration from its progress callback) and one Genie-M iteration per reconstruction-unit kind
// (input mixing, quantized unit forward with QDrop, reconstruction + rounding loss, backward, both
// Adam updates), plus the cost growth of Genie-D with batch and image size. Every case records in
// "params" what bench/compare_pytorch.py needs to run the same computation in PyTorch.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "autograd/ops.h"
#include "autograd/ops_quant.h"
#include "autograd/optim.h"
#include "bench/bench.h"
#include "engine/distill.h"
#include "engine/quantizer.h"
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
    if (ends(ps.key, ".running_var")) t = random_uniform(ps.shape, ++k, Device::CPU, 0.5f, 1.5f);
    else if (ends(ps.key, ".running_mean")) t = random_normal(ps.shape, ++k, Device::CPU, 0.f, 0.1f);
    else if (ps.shape.size() == 1 && ends(ps.key, ".weight")) t = Tensor::full(ps.shape, 1.f);
    else if (ends(ps.key, ".bias")) t = Tensor::zeros(ps.shape);
    else t = random_normal(ps.shape, ++k, Device::CPU, 0.f, float(std::sqrt(2.0 / double(fan_in))));
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

int reps_or(const Options& o, int def) { return o.reps > 0 ? o.reps : (o.quick ? std::max(2, def / 2) : def); }

// ---------------------------------------------------------------- Genie-D

// Checks the teacher's BN-statistics loss on `dev` against the CPU (the reference) for one input
// and fixed swing offsets; on the CPU itself, that the loss is finite and positive.
std::string check_bn_loss(const Model& teacher, Device dev, int64_t B, bool& ok) {
  const auto& info = teacher.info();
  const int64_t n = std::min<int64_t>(B, 4);
  Tensor x = random_normal({n, info.C, info.H, info.W}, 77, Device::CPU);
  std::vector<std::pair<int, int>> offs(teacher.strided_convs().size(), {2, 1});
  NoGradGuard ng;
  const float got = engine::teacher_bn_loss(teacher, x.to(dev), offs).item();
  if (dev == Device::CPU) {
    ok = std::isfinite(got) && got > 0;
    return str(ok ? "ok" : "FAIL", " (L_bn on N(0,1) input finite: ", got, "; CPU is the reference)");
  }
  Model cpu = teacher;  // shares nothing after to(): parameters are copied
  cpu.to(Device::CPU);
  const float ref = engine::teacher_bn_loss(cpu, x, offs).item();
  const double rel = std::fabs(double(got) - double(ref)) / (std::fabs(double(ref)) + 1e-30);
  ok = rel < 1e-3;
  return str(ok ? "ok" : "FAIL", " (L_bn device vs CPU rel ", rel, ")");
}

void genie_d_case(Bench& b, const std::string& group, const Model& teacher, const ModelSpec& spec,
                  int64_t B, int warmup, int reps, const std::string& note = "") {
  const std::string name = group + "/iter";
  if (!b.selected(name)) return;
  const Device d = b.opt.device;
  Result r;
  r.group = group;
  r.variant = "iter";
  r.note = note;
  r.params = model_params(spec);
  r.params.set("batch", B);
  r.params.set("swing", true);
  try {
    bool ok = false;
    r.check = check_bn_loss(teacher, d, B, ok);
    r.failed = !ok;
    if (!r.failed) {
      engine::DistillConfig cfg;
      cfg.samples = B;
      cfg.batch = B;
      cfg.iters = warmup + 1 + reps;
      cfg.device = d;
      cfg.progress_every = 1;
      IterClock clk(d);
      float first = 0, last = 0;
      if (d == Device::CUDA) cuda_reset_peak();
      engine::distill(teacher, cfg, [&](const engine::DistillProgress& p) {
        clk.mark();
        if (p.iter == 1) first = p.bn_loss + p.input_loss;
        last = p.bn_loss + p.input_loss;
      });
      if (d == Device::CUDA) r.peak_mem_mb = double(cuda_mem_stats().peak_allocated) / (1 << 20);
      r.t = summarize(clk.deltas_ms(warmup));
      if (!std::isfinite(last)) {
        r.failed = true;
        r.check = str("FAIL (loss not finite after ", cfg.iters, " iterations)");
      } else {
        r.check += str("; loss ", fmt(first, 3), " -> ", fmt(last, 3), " over ", cfg.iters, " iters");
      }
    }
  } catch (const std::exception& e) {
    r.failed = true;
    r.check = str("FAIL: ", e.what());
  }
  b.add(std::move(r));
}

// ---------------------------------------------------------------- Genie-M

// One reconstruction unit with Genie-M's quantizers, trained as GENIE.md §2.5 says (the
// benchmark's own composition of the public pieces: Model::forward_unit with an override hook,
// quant::WeightQuantizer / ActQuantizer, ops::rounding_reg, two Adam optimizers).
//   * every conv/linear of the unit: weight quantizer (wbits) and an input-activation quantizer
//     keyed by the producing node, so consumers of one tensor share it (block input → conv1 and
//     the downsample path); the identity branch of an add reading the unit input uses it too;
//   * QDrop: each quantizer draws a fresh keep-mask per forward; input mixing x = m ? X_q : X.
class QuantUnit {
 public:
  QuantUnit(const Model& m, const models::Unit& u, int wbits, int abits, Device d)
      : m_(m), u_(u), rng_(1234) {
    for (int i = u.first; i <= u.last; ++i) {
      const auto& n = m.node(i);
      if (n.op != "conv" && n.op != "linear") continue;
      quant::WeightQuantizer wq = quant::WeightQuantizer::from_weight(m.node_param(i, "weight"), wbits);
      wq.step().set_requires_grad();
      wq.logits().set_requires_grad();
      wq_.emplace(i, std::move(wq));
      aq_.emplace(n.inputs.at(0), quant::ActQuantizer(abits));
    }
    hooks_.override_node = [this](int node, const std::vector<Tensor>& in, Tensor& out) {
      return override(node, in, out);
    };
    (void)d;
  }

  // Calibration forward (no grad): initialises the activation quantizers from this batch.
  void calibrate(const Tensor& x) {
    NoGradGuard ng;
    calibrating_ = true;
    forward(x);
    calibrating_ = false;
    for (auto& [p, aq] : aq_) {
      aq.step().set_requires_grad();
      aq.qdrop = true;
    }
  }

  Tensor forward(const Tensor& x) {
    cache_.clear();
    Tensor y = m_.forward_unit(u_, x, &hooks_);
    cache_.clear();
    return y;
  }

  std::vector<Tensor> weight_steps() {
    std::vector<Tensor> v;
    for (auto& [i, wq] : wq_) v.push_back(wq.step());
    return v;
  }
  std::vector<Tensor> act_steps() {
    std::vector<Tensor> v;
    for (auto& [i, aq] : aq_) v.push_back(aq.step());
    return v;
  }
  std::vector<Tensor> logits() {
    std::vector<Tensor> v;
    for (auto& [i, wq] : wq_) v.push_back(wq.logits());
    return v;
  }
  int64_t num_weights() const {
    int64_t n = 0;
    for (auto& [i, wq] : wq_) n += wq.logits().numel();
    return n;
  }
  size_t num_act_quantizers() const { return aq_.size(); }
  ops::Generator& rng() { return rng_; }

 private:
  Tensor quantized(int producer, const Tensor& a) {
    auto it = cache_.find(producer);
    if (it != cache_.end()) return it->second;
    auto& aq = aq_.at(producer);
    if (calibrating_ && !aq.initialized()) aq.init(a);
    Tensor y = aq.forward(a, &rng_);
    cache_.emplace(producer, y);
    return y;
  }

  bool override(int node, const std::vector<Tensor>& in, Tensor& out) {
    const auto& n = m_.node(node);
    if (n.op == "conv" || n.op == "linear") {
      const Tensor xq = quantized(n.inputs.at(0), in.at(0));
      const Tensor w = wq_.at(node).forward();
      out = n.op == "conv" ? ops::conv2d(xq, w, m_.node_param(node, "bias"), n.stride, n.pad, n.groups)
                           : ops::linear(xq, w, m_.node_param(node, "bias"));
      return true;
    }
    if (n.op == "add") {
      bool any = false;
      Tensor a = in.at(0), c = in.at(1);
      if (n.inputs[0] == u_.input && aq_.count(u_.input)) a = quantized(u_.input, a), any = true;
      if (n.inputs[1] == u_.input && aq_.count(u_.input)) c = quantized(u_.input, c), any = true;
      if (!any) return false;
      out = ops::add(a, c);
      return true;
    }
    return false;
  }

  const Model& m_;
  models::Unit u_;
  ops::Generator rng_;
  std::map<int, quant::WeightQuantizer> wq_;
  std::map<int, quant::ActQuantizer> aq_;
  std::map<int, Tensor> cache_;
  models::ForwardHooks hooks_;
  bool calibrating_ = false;
};

const models::Unit* find_unit(const Model& m, const std::string& name) {
  for (const auto& u : m.units())
    if (u.name == name) return &u;
  return nullptr;
}

// Everything one Genie-M iteration touches, built identically on any device (Philox draws give
// the same numbers on the CPU and CUDA, so a CPU copy reproduces a device run).
struct MState {
  static constexpr int kWBits = 4, kABits = 4;
  static constexpr int64_t kIters = 20000, kIterNow = 10000;  // halfway: rounding loss on
  Shape xs;
  Tensor X, Xq, Y;
  float C_out = 1, beta = 0;
  std::unique_ptr<QuantUnit> qu;
  std::unique_ptr<Adam> opt_w, opt_a, opt_v;
  std::vector<Tensor> vs;

  MState(const Model& model, const models::Unit& u, const ModelSpec& spec, int64_t B, Device d) {
    // β annealed linearly 20 → 2 between 20 % and 100 % of the iterations (GENIE.md §2.5).
    beta = float(20.0 - (double(kIterNow) / double(kIters) - 0.2) / 0.8 * 18.0);
    const auto shapes = model.node_shapes(B);
    xs = u.input < 0 ? Shape{B, spec.C, spec.R, spec.R} : shapes.at(size_t(u.input));
    // Unit data: X non-negative (post-ReLU), X_q a perturbed copy, Y the FP unit output on X.
    X = ops::relu(random_normal(xs, 501, d));
    Xq = ops::relu(ops::add(X, random_normal(xs, 502, d, 0.f, 0.05f)));
    {
      NoGradGuard ng;
      Y = model.forward_unit(u, X);
    }
    C_out = float(Y.dim(1));
    qu = std::make_unique<QuantUnit>(model, u, kWBits, kABits, d);
    qu->calibrate(X);
    opt_w = std::make_unique<Adam>(qu->weight_steps(), 1e-4f);
    opt_a = std::make_unique<Adam>(qu->act_steps(), 4e-5f);
    opt_v = std::make_unique<Adam>(qu->logits(), 1e-3f);
    vs = qu->logits();
  }

  // One iteration: input mixing, quantized forward, loss, backward, both Adam updates (the
  // steps' optimizer with its cosine schedule — as two Adam objects, one per lr group — and the
  // rounding logits' optimizer). Returns the loss when asked (a host sync).
  float step(int64_t it, bool want_loss) {
    Tensor mix = ops::bernoulli_mask(xs, 0.5f, qu->rng(), X.device());
    Tensor x = ops::select(mix, Xq, X);
    Tensor out = qu->forward(x);
    Tensor loss = ops::mul_scalar(ops::mse_loss(out, Y), C_out);  // Σ_channels, mean over N·spatial
    for (const Tensor& v : vs) loss = ops::add(loss, ops::rounding_reg(v, beta));
    backward(loss);
    const float lv = want_loss ? loss.item() : 0.f;
    opt_w->lr = cosine_lr(1e-4f, it, kIters);
    opt_a->lr = cosine_lr(4e-5f, it, kIters);
    opt_w->step();
    opt_a->step();
    opt_v->step();
    opt_w->zero_grad();
    opt_a->zero_grad();
    opt_v->zero_grad();
    return lv;
  }
};

void genie_m_case(Bench& b, const std::string& group, const Model& model, const ModelSpec& spec,
                  const std::string& unit_name, int64_t B, int warmup, int reps,
                  const std::string& note = "") {
  const std::string name = group + "/iter";
  if (!b.selected(name)) return;
  const Device d = b.opt.device;
  Result r;
  r.group = group;
  r.variant = "iter";
  r.note = note;
  r.params = model_params(spec);
  r.params.set("unit", unit_name);
  r.params.set("batch", B);
  try {
    const models::Unit* u = find_unit(model, unit_name);
    GENIE_CHECK(u, "[bench] no unit '", unit_name, "' in ", spec.arch);
    MState st(model, *u, spec, B, d);
    r.params.set("kind", u->kind);
    r.params.set("wbits", MState::kWBits);
    r.params.set("abits", MState::kABits);
    r.params.set("beta", st.beta);
    r.params.set("iter", MState::kIterNow);
    r.params.set("iters", MState::kIters);
    r.params.set("unit_input", shape_str(st.xs));
    r.params.set("unit_output", shape_str(st.Y.shape()));
    r.params.set("quantized_weights", st.qu->num_weights());
    r.params.set("act_quantizers", int64_t(st.qu->num_act_quantizers()));
    // Check before timing: the loss of the first two iterations is finite; on a device, both
    // match the same iterations composed on the CPU (the reference).
    const float l0 = st.step(MState::kIterNow, true), l1 = st.step(MState::kIterNow + 1, true);
    r.failed = !std::isfinite(l0) || !std::isfinite(l1);
    r.check = str(r.failed ? "FAIL" : "ok", " (loss ", l0, ", ", l1);
    if (!r.failed && d != Device::CPU) {
      Model cpu = model;
      cpu.to(Device::CPU);
      MState ref(cpu, *u, spec, B, Device::CPU);
      const float r0 = ref.step(MState::kIterNow, true), r1 = ref.step(MState::kIterNow + 1, true);
      const double e = std::max(std::fabs(double(l0 - r0)) / (std::fabs(double(r0)) + 1e-30),
                                std::fabs(double(l1 - r1)) / (std::fabs(double(r1)) + 1e-30));
      r.failed = !(e < 1e-3);
      r.check = str(r.failed ? "FAIL" : "ok", " (loss ", l0, ", ", l1, "; vs CPU rel ", e);
    }
    r.check += ")";
    if (!r.failed) {
      int64_t it = MState::kIterNow + 2;
      r.t = time_fn(b.opt, [&] { st.step(it++, false); }, warmup, reps);
    }
  } catch (const std::exception& e) {
    r.failed = true;
    r.check = str("FAIL: ", e.what());
  }
  b.add(std::move(r));
}

}  // namespace

void run_genie_d_cases(Bench& b) {
  const Options& o = b.opt;
  const Device d = o.device;
  const bool gpu = d == Device::CUDA, q = o.quick;
  const int reps = reps_or(o, gpu ? 20 : 5), warm = gpu ? 3 : 1;
  auto wanted = [&](const std::string& group) { return b.selected(group + "/iter"); };

  // Case list first (names decide what runs; models are built only for selected cases).
  const std::string main_case = "genie_d/resnet20_fmnist/B128";
  const int64_t B18 = gpu ? 128 : 8;
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

  bool need_teacher = wanted(main_case);
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
  // The CPU target case: resnet20_fmnist at B = 128.
  if (teacher && wanted(main_case)) genie_d_case(b, main_case, *teacher, fm, 128, warm, reps);

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
      genie_d_case(b, batch_case(B), *teacher, fm, B, warm, B >= 256 ? std::max(2, reps / 2) : reps);
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
  auto wanted = [&](const std::string& group) { return b.selected(group + "/iter"); };

  const std::string l10 = "genie_m/basic_block/resnet20_fmnist.layer1.0",
                    l20 = "genie_m/basic_block/resnet20_fmnist.layer2.0";
  if (wanted(l10) || wanted(l20)) {
    ModelSpec fm{"resnet20", "resnet20_fmnist", 1, 28, 10};
    try {
      Model teacher = load_teacher(o, d);
      if (wanted(l10)) genie_m_case(b, l10, teacher, fm, "layer1.0", B, warm, reps);
      if (wanted(l20)) genie_m_case(b, l20, teacher, fm, "layer2.0", B, warm, reps);
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
      {str("genie_m/inverted_residual/mobilenet_v2.features.3_R", R), "mobilenet_v2", "features.3", 2},
  };
  for (const auto& c : cases) {
    if (!wanted(c.group)) continue;
    ModelSpec s{c.arch, "random", 3, R, 1000};
    Model m = random_model(s, c.seed, d);
    genie_m_case(b, c.group, m, s, c.unit, B, warm, reps, rn);
  }
}

}  // namespace genie::bench
