// End-to-end training test: a small conv net (conv-BN(train)-relu-conv-BN-relu-GAP-linear) trained
// 200 full-batch Adam steps (lr 5e-4) from formula weights on formula data follows PyTorch's loss
// curve
// (tests/golden/make_training_golden.py); plus the learning-rate schedules of autograd/optim.h
// against torch.optim.lr_scheduler.
#include <fstream>
#include <map>
#include <sstream>

#include "autograd/optim.h"
#include "test_util.h"

using namespace genie;

namespace {

std::map<std::string, std::vector<double>> load_training_golden() {
  std::map<std::string, std::vector<double>> m;
  const std::string path = test::source_path("tests/golden/training_golden.txt");
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string name;
    is >> name;
    double v;
    while (is >> v) m[name].push_back(v);
  }
  return m;
}
const std::vector<double>& tg(const std::string& name) {
  static const auto all = load_training_golden();
  auto it = all.find(name);
  REQUIRE_MESSAGE(it != all.end(), "training golden " << name << " not found");
  return it->second;
}

// Same integer formula as the Python script: exact in double on both sides, then rounded to f32.
Tensor init_param(const Shape& shape, int64_t layer, int64_t fan_in, Device dev) {
  const int64_t n = numel_of(shape);
  const double bound = 1.0 / std::sqrt(double(fan_in));
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] = float((double((i * 7919 + layer * 104729) % 2003) / 2003.0 - 0.5) * 2.0 * bound);
  Tensor t = Tensor::from_vector(v, shape, dev);
  t.set_requires_grad();
  return t;
}

// Trains the net on `dev` and returns the loss of each of the 200 steps.
std::vector<double> train_small_net(Device dev) {
  const int64_t N = 64;
  std::vector<float> xv(size_t(N * 64));
  std::vector<int32_t> lv(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    lv[size_t(n)] = int32_t(n % 10);
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x)
        xv[size_t((n * 8 + y) * 8 + x)] =
            float(double((n * 37 + y * 11 + x * 7 + (n % 10) * y * x) % 17) / 8.0 - 1.0);
  }
  Tensor images = Tensor::from_vector(xv, {N, 1, 8, 8}, dev);
  Tensor labels = Tensor::from_i32(lv, {N}, dev);

  Tensor c1 = init_param({8, 1, 3, 3}, 1, 9, dev), c2 = init_param({16, 8, 3, 3}, 2, 72, dev);
  Tensor fw = init_param({10, 16}, 3, 16, dev), fb = init_param({10}, 4, 16, dev);
  Tensor g1 = Tensor::full({8}, 1.f, dev).set_requires_grad();
  Tensor b1 = Tensor::zeros({8}, dev).set_requires_grad();
  Tensor g2 = Tensor::full({16}, 1.f, dev).set_requires_grad();
  Tensor b2 = Tensor::zeros({16}, dev).set_requires_grad();
  Adam opt({c1, g1, b1, c2, g2, b2, fw, fb},
           5e-4f);  // the golden's LR; PyTorch's defaults otherwise

  std::vector<double> losses;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    Tensor h =
        ops::relu(ops::batch_norm_train(ops::conv2d(images, c1, Tensor(), 1, 1), g1, b1, 1e-5f));
    h = ops::relu(ops::batch_norm_train(ops::conv2d(h, c2, Tensor(), 2, 1), g2, b2, 1e-5f));
    Tensor loss = ops::cross_entropy(ops::linear(ops::global_avg_pool(h), fw, fb), labels);
    losses.push_back(loss.item());
    backward(loss);
    opt.step();
  }
  return losses;
}

// The tolerance at a step: `factor` times the golden's own sensitivity there (the worst relative
// change of PyTorch's loss when every initial weight moves by a relative 1e-6: 1.6e-6 at step 50,
// 4.1e-5 at step 200), and never below `floor`. The run is well-conditioned (lr 5e-4), so this
// holds any summation order to a tight bound: on the CPU, 5× and 1e-4; on CUDA, where cuDNN's
// timed algorithm choice changes the order from run to run, 10× and 1e-3.
void check_curve(const std::vector<double>& got, double factor, double floor) {
  const auto& want = tg("loss");
  const auto& sens = tg("loss_sensitivity");
  REQUIRE(want.size() == 200);
  REQUIRE(sens.size() == 200);
  REQUIRE(got.size() == 200);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want[i]) / std::fabs(want[i]));
  MESSAGE("loss at steps 1/50/200: ", got[0], " / ", got[49], " / ", got[199], " (PyTorch ",
          want[0], " / ", want[49], " / ", want[199], "); worst relative deviation over the curve ",
          worst);
  for (int s : {1, 50, 100, 200}) {
    const double tol = std::max(floor, factor * sens[size_t(s - 1)]);
    INFO("step ", s, ", tolerance ", tol);
    CHECK(std::fabs(got[size_t(s - 1)] - want[size_t(s - 1)]) / want[size_t(s - 1)] < tol);
  }
  CHECK(got[199] < 0.75 * got[0]);  // it actually learned (2.39 -> 1.70 in PyTorch)
}

}  // namespace

TEST_CASE("training: small conv net follows PyTorch's Adam loss curve (steps 1, 50, 100, 200)") {
  check_curve(train_small_net(Device::CPU), 5.0, 1e-4);
}

TEST_CASE("training on CUDA follows the same PyTorch loss curve [gpu]") {
  GENIE_REQUIRE_GPU();
  check_curve(train_small_net(Device::CUDA), 10.0, 1e-3);
}

TEST_CASE("schedules match torch.optim.lr_scheduler") {
  const auto& metric = tg("plateau_metric");
  const auto& plateau = tg("plateau_lr");
  REQUIRE(metric.size() == plateau.size());
  ReduceLROnPlateau sched(0.1f, 3, 1e-4f, 3e-4f);
  float lr = 0.1f;
  for (size_t i = 0; i < metric.size(); ++i) {
    lr = sched.step(float(metric[i]), lr);
    INFO("plateau step ", i, " metric ", metric[i]);
    CHECK(lr == doctest::Approx(plateau[i]).epsilon(1e-6));
  }
  const auto& st = tg("step_lr");
  for (size_t i = 0; i < st.size(); ++i) {
    INFO("step_lr epoch ", i);
    CHECK(step_lr(0.1f, 0.95f, 100, int64_t(i)) == doctest::Approx(st[i]).epsilon(1e-6));
  }
  const auto& ex = tg("exp_lr");
  for (size_t i = 0; i < ex.size(); ++i) {
    INFO("exponential_lr epoch ", i);
    CHECK(exponential_lr(0.1f, 0.99f, int64_t(i)) == doctest::Approx(ex[i]).epsilon(1e-5));
  }
  const auto& co = tg("cos_lr");
  for (size_t i = 0; i < co.size(); ++i) {
    INFO("cosine_lr epoch ", i);
    CHECK(cosine_lr(0.1f, int64_t(i), 250, 0.001f) == doctest::Approx(co[i]).epsilon(1e-5));
  }
}
