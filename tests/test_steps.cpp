// Genie-M's learned steps (issue 16): the s = s0·exp(c·φ) parameterisation (engine/quantizer.h,
// StepParam) checked by finite differences and by Adam's analytic motion under a constant push;
// learning rates of 0 keep the steps; the guard that keeps a unit's initial quantizer when the
// optimisation ends worse; and the depthwise Fashion-MNIST network with tiny depthwise weights
// (tests/data/make_dw_fmnist.py) quantized at W8A8 to within 0.1 pp of FP32, no step ≤ 0.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "autograd/optim.h"
#include "engine/evaluate.h"
#include "engine/qmodel.h"
#include "engine/quantizer.h"
#include "engine/reconstruct.h"
#include "engine/records.h"
#include "engine/report.h"
#include "io/datasets.h"
#include "io/model_file.h"
#include "test_util.h"

using namespace genie;
using quant::QModel;

namespace {

Tensor req(Tensor t) {
  t.set_requires_grad();
  return t;
}

std::vector<float> steps_of(const QModel& qm) {
  std::vector<float> s;
  for (const auto& q : qm.wq)
    for (float v : q.step().to_vector()) s.push_back(v);
  return s;
}
std::vector<float> act_steps_of(const QModel& qm) {
  std::vector<float> s;
  for (const auto& q : qm.aq)
    if (q.initialized()) s.push_back(q.step().item());
  return s;
}

}  // namespace

TEST_CASE("steps: s0·exp(c·φ) has c = min(1/s0, max_change/lr), starts at s0 exactly") {
  const Tensor s0 = Tensor::from_vector({1.f, 0.01f, 1e-5f, 3e-8f}, {4});
  quant::StepParam p;
  p.start(s0, 1e-4f, 0.02f);
  const std::vector<float> c = p.c.to_vector();
  CHECK(c[0] == 1.f);  // 1/s0 = 1 < 200: the paper's absolute move (about lr per iteration)
  CHECK(c[1] == 100.f);
  CHECK(c[2] == 200.f);  // capped: at most 2 % of the step per iteration
  CHECK(c[3] == 200.f);
  CHECK(p.apply(s0).to_vector() == s0.to_vector());  // φ = 0: exp(0) = 1, bit for bit
  CHECK_THROWS_WITH_AS(p.start(Tensor::from_vector({0.1f, 0.f}, {2}), 1e-4f, 0.02f),
                       doctest::Contains("positive finite steps"), Error);
  CHECK_THROWS_WITH_AS(p.start(s0, 0.f, 0.02f), doctest::Contains("positive step learning rate"),
                       Error);
}

TEST_CASE("steps: gradients through s0·exp(c·φ) match finite differences (weights, activations)") {
  // Weight quantizer, elements strictly inside the clamp range; c both 1/s0 and capped.
  Tensor wf = Tensor::from_vector({0, 1, 2, 3, 1, 2, 4, 5, 3, 2, 1, 6}, {3, 4});
  Tensor v = test::randn_cpu({3, 4}, 7, 0.8f);
  Tensor s0 = Tensor::from_vector({0.3f, 0.5f, 0.002f}, {3});
  Tensor z = Tensor::from_vector({3, 2, 4}, {3});
  quant::StepParam p;
  p.start(s0, 1e-2f, 0.5f);  // c = {3.33, 2, 50}
  CHECK(p.c.to_vector()[2] == 50.f);
  Tensor phi = req(Tensor::from_vector({0.05f, -0.1f, 0.01f}, {3}));
  auto f = [&](const std::vector<Tensor>& in) {
    quant::StepParam q = p;
    q.phi = in[0];
    return ops::fake_quant_weight(wf, v, q.apply(s0), z, 4, false);
  };
  CHECK(test::gradcheck(f, {phi}, 1e-3) < 2e-3);
  // Activation quantizer: its step gradient is LSQ's surrogate (not the derivative of the
  // piecewise-constant forward), so the chain rule is checked instead: dL/dφ = dL/ds · s · c.
  Tensor x = test::randn_cpu({64}, 9, 2.f), probe = test::randn_cpu({64}, 10);
  Tensor a0 = Tensor::from_vector({0.5f}, {1});
  quant::StepParam pa;
  pa.start(a0, 4e-5f, 0.02f);
  pa.phi.copy_(Tensor::from_vector({0.3f}, {1}));
  backward(ops::sum(ops::mul(ops::fake_quant_act(x, pa.apply(a0), -4.f, 3.f), probe)));
  Tensor s = req(pa.apply(a0).detach());
  backward(ops::sum(ops::mul(ops::fake_quant_act(x, s, -4.f, 3.f), probe)));
  const double chain = double(s.grad().item()) * double(s.item()) * double(pa.c.item());
  CHECK(pa.phi.grad().item() == doctest::Approx(chain).epsilon(1e-5));
  CHECK(std::fabs(chain) > 1e-3);
}

TEST_CASE(
    "steps: pushed toward zero, a large step moves by about lr, a small one by at most "
    "max_change of itself, and none crosses zero") {
  // Loss = Σ s with s = s0·exp(c·φ): a constant push down. An unconstrained step with Adam at lr
  // 1e-4 would move by 1e-4 per iteration: the 1e-5 step would be negative after one.
  const Tensor s0 = Tensor::from_vector({1.f, 1e-5f}, {2});
  quant::StepParam p;
  p.start(s0, 1e-4f, 0.02f);
  Adam adam({p.phi}, 1e-4f);
  const int n = 50;
  for (int i = 0; i < n; ++i) {
    backward(ops::sum(p.apply(s0)));
    adam.step();
    adam.zero_grad();
  }
  const std::vector<float> s = p.apply(s0).to_vector();
  // The large step: Adam's constant-gradient move of lr per iteration, as the bare step would
  // (1 − 50·1e-4 = 0.995; exp(−0.005) = 0.995012).
  CHECK(s[0] == doctest::Approx(0.995).epsilon(2e-5));
  // The small one: log s moves by at most 0.02 per iteration (Adam's |m̂/√v̂| ≤ 1 here), and by
  // more than half that (the push shrinks with s, so Adam's ratio falls below 1).
  CHECK(s[1] > 0.f);
  CHECK(s[1] >= 1e-5f * std::exp(-0.02f * n) * 0.999f);
  CHECK(s[1] <= 1e-5f * std::exp(-0.01f * n));
  // Folding keeps the value the forward used.
  Tensor folded = s0.clone();
  p.fold(folded);
  CHECK(folded.to_vector() == s);
  CHECK_FALSE(p.learned());
}

namespace {

struct DwData {
  models::Model model;
  io::LabeledImages test;
  Tensor calib;             // the first 256 training images
  Tensor calib64() const {  // the first 64 of them (the short runs)
    std::vector<float> v = calib.to_vector();
    v.resize(size_t(64 * calib.numel() / calib.dim(0)));
    return Tensor::from_vector(v, {64, calib.dim(1), calib.dim(2), calib.dim(3)});
  }
};

// The depthwise network, its evaluation set and calibration images, loaded once.
const DwData& dw() {
  static const DwData d = [] {
    DwData r;
    r.model = io::load_model(test::source_path("tests/data/dw_fmnist.h5"));
    const io::InputSpec spec = engine::input_spec(r.model.info());
    r.test = io::load_fashion_mnist("test", spec);
    r.calib = io::load_fashion_mnist("train", spec, 256).images;
    return r;
  }();
  return d;
}

// The 8-bit steps of the depthwise layers' weights as initialised.
std::vector<float> depthwise_steps(const QModel& qm) {
  std::vector<float> s;
  for (size_t i = 0; i < qm.wq.size(); ++i)
    if (qm.model().node(qm.wq_node[i]).groups > 1)
      for (float v : qm.wq[i].step().to_vector()) s.push_back(v);
  return s;
}

}  // namespace

TEST_CASE("steps: --lr-wstep 0 and --lr-astep 0 keep every step as initialised") {
  const DwData& d = dw();
  auto run = [&](float lr) {
    QModel qm(d.model, {4, 4, false});
    const std::vector<float> w0 = steps_of(qm);
    // Each activation step as first seen: at the first iteration of the unit that initialises it
    // (a learning rate of 0 leaves it there; otherwise one Adam update has moved it already).
    std::vector<float> a0(qm.aq.size(), NAN);
    quant::ReconOptions opt;
    opt.iters = 4;
    opt.batch = 16;
    opt.log_every = 1;
    opt.lr_w_step = opt.lr_a_step = lr;
    quant::ReconCallbacks cb;
    cb.progress = [&](const quant::ReconProgress& p) {
      if (p.iter != 1) return;
      NoGradGuard ng;
      for (size_t i = 0; i < qm.aq.size(); ++i)
        if (std::isnan(a0[i]) && qm.aq[i].initialized()) a0[i] = qm.aq[i].effective_step().item();
    };
    quant::reconstruct(qm, d.calib64(), opt, cb);
    return std::make_tuple(w0, steps_of(qm), a0, act_steps_of(qm));
  };
  const auto [w0, w1, a0, a1] = run(0.f);
  CHECK(w1 == w0);
  CHECK(a1 == a0);
  const auto [v0, v1, b0, b1] = run(1e-3f);  // the control: they do move
  CHECK(v1 != v0);
  CHECK(b1 != b0);
}

TEST_CASE("steps: a unit whose optimisation ends worse keeps its initial quantizer, and says so") {
  const DwData& d = dw();
  QModel qm(d.model, {4, 4, false});
  const std::vector<float> w0 = steps_of(qm);
  quant::ReconOptions opt;
  opt.iters = 6;
  opt.batch = 16;
  // Learning rates far too large: each step jumps by up to a factor e per iteration, the
  // rounding logits by 10.
  opt.lr_w_step = 1.f;
  opt.lr_a_step = 1.f;
  opt.max_step_change = 1.f;
  opt.lr_logits = 10.f;
  std::vector<std::string> notes;
  quant::ReconCallbacks cb;
  cb.message = [&](const std::string& m) { notes.push_back(m); };
  const auto reps = quant::reconstruct(qm, d.calib64(), opt, cb);
  int kept = 0;
  size_t w = 0;
  const std::vector<float> w1 = steps_of(qm);
  for (const auto& r : reps) {
    INFO(r.name);
    CHECK(r.final_loss() <= r.loss_before);  // never worse than it started
    const Json j = engine::to_json(r);
    CHECK(j.at("kept_initial").as_bool() == r.kept_initial);
    CHECK(j.at("loss_final").as_number() == r.final_loss());
    CHECK(engine::unit_report_from_json(j).kept_initial == r.kept_initial);
    // Its weight steps: the initial ones exactly when the guard kept the initial quantizer.
    bool same = true;
    for (int q : qm.wq_in(r.first, r.last)) {
      const size_t k = size_t(qm.wq[size_t(q)].step().numel());
      size_t off = 0;
      for (int i = 0; i < q; ++i) off += size_t(qm.wq[size_t(i)].step().numel());
      same = same &&
             std::equal(w1.begin() + long(off), w1.begin() + long(off + k), w0.begin() + long(off));
      w += k;
    }
    if (r.kept_initial) {
      ++kept;
      CHECK(same);
      CHECK(r.loss_after > r.loss_before);
    }
  }
  CHECK(w == w0.size());
  CHECK(kept > 0);
  int said = 0;
  for (const auto& n : notes) said += n.find("the initial quantizer is kept") != std::string::npos;
  CHECK(said == kept);
  MESSAGE("W4A4 with runaway learning rates: ", kept, " of ", reps.size(),
          " units kept their initial quantizer");
}

TEST_CASE(
    "steps: depthwise network with tiny depthwise weights, W8A8: top-1 within 0.1 pp of "
    "FP32 and no learned step <= 0") {
  const DwData& d = dw();
  const double fp32_top1 = engine::evaluate(d.model, d.test).top1;
  QModel qm(d.model, {8, 8, false});
  // The case of issue 16: the depthwise layers' 8-bit steps are far below the step learning rate
  // (an unconstrained step would cross zero in its first iterations).
  std::vector<float> dws = depthwise_steps(qm);
  REQUIRE(!dws.empty());
  std::sort(dws.begin(), dws.end());
  const quant::ReconOptions defaults;
  CHECK(dws[dws.size() / 2] < defaults.lr_w_step);
  quant::ReconOptions opt;
  opt.iters = 300;
  const auto reps = quant::reconstruct(qm, d.calib, opt);
  int kept = 0;
  for (const auto& r : reps) kept += r.kept_initial;
  for (float s : steps_of(qm)) CHECK(s > 0.f);
  for (float s : act_steps_of(qm)) CHECK(s > 0.f);
  const engine::EvalResult q = engine::evaluate(qm, d.test);
  MESSAGE("dw_fmnist W8A8 (300 iterations per unit, 256 training images): top-1 ", q.top1,
          " vs FP32 ", fp32_top1, "; median depthwise step ", dws[dws.size() / 2], "; ", kept,
          " of ", reps.size(), " units kept their initial quantizer");
  CHECK(q.n == 10000);
  CHECK(std::fabs(q.top1 - fp32_top1) <= 0.001 + 1e-12);
}

TEST_CASE("steps: a quantized file with a step <= 0 is refused on load, and never written") {
  const std::string src = test::source_path("tests/fuzz/corpus/model/vgg_small_w4a4.h5");
  const std::string path = str("/tmp/genie_test_", ::getpid(), "_negative_step.h5");
  {
    std::ifstream in(src, std::ios::binary);
    std::ofstream out(path, std::ios::binary);
    out << in.rdbuf();
  }
  QModel good = QModel::load(path);
  const std::string key = "classifier.1.weight_step";
  std::vector<float> st = io::H5Reader(path).read_f32(key).to_vector();
  REQUIRE(st.size() > 3);
  st[3] = -st[3];  // what the learned steps of issue 16 did
  {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t d = H5Dopen2(f, key.c_str(), H5P_DEFAULT);
    REQUIRE(d >= 0);
    CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, st.data()) >= 0);
    H5Dclose(d);
    H5Fclose(f);
  }
  const std::string want =
      str("dataset 'classifier.1.weight_step' expected finite positive steps, got ", st[3]);
  CHECK_THROWS_WITH_AS(QModel::load(path), doctest::Contains(want.c_str()), Error);
  // save() refuses such a quantizer too.
  good.wq.back().step().copy_(
      Tensor::from_vector(std::vector<float>(size_t(good.wq.back().step().numel()), -1e-3f),
                          good.wq.back().step().shape()));
  CHECK_THROWS_WITH_AS(good.save(path + ".out.h5"), doctest::Contains("non-positive"), Error);
  std::FILE* written = std::fopen((path + ".out.h5").c_str(), "rb");
  CHECK(written == nullptr);
  if (written) std::fclose(written);
  std::remove(path.c_str());
}

TEST_CASE("steps: the run's summary says which units kept their initial quantizer") {
  auto report = [](bool kept) {
    return Json::parse(str(R"({"command": "quantize", "bits": "W8A8", "model": {"arch": "x"},
      "timings_s": {"total": 3},
      "units": [{"name": "stem", "loss_before": 1, "loss_after": 2, "kept_initial": )",
                           kept ? "true" : "false", R"(, "loss_final": )", kept ? 1 : 2, R"(},
                {"name": "blocks.0", "loss_before": 1, "loss_after": 0.5, "kept_initial": false,
                 "loss_final": 0.5}]})"));
  };
  const std::string t = engine::summary_table(report(true));
  INFO(t);
  CHECK(test::contains(t, "2 units, summed loss 2 -> 1.5"));
  CHECK(test::contains(t, "1 unit(s) kept the initial quantizer: stem"));
  const std::string u = engine::summary_table(report(false));
  CHECK(test::contains(u, "2 units, summed loss 2 -> 2.5"));
  CHECK_FALSE(test::contains(u, "kept the initial"));
}
