// Differentiable statistics: per-channel mean/var (unbiased and biased) and per-(n,c) mean/std
// against PyTorch goldens, finite differences, bad input, CPU-vs-CUDA parity.
#include "op_golden.h"

using namespace genie;
using test::golden;

namespace {
// First / second row of a (2, C) golden (PyTorch stacked [mean, second]).
std::vector<float> row(const std::string& name, int r) {
  const auto& g = golden(name);
  const size_t n = g.v.size() / 2;
  return std::vector<float>(g.v.begin() + long(r * n), g.v.begin() + long((r + 1) * n));
}
Tensor row_tensor(const std::string& name, int r, const Shape& s) {
  return Tensor::from_vector(row(name, r), s);
}
}  // namespace

TEST_CASE("channel_mean_var matches PyTorch (unbiased and biased, values and gradients)") {
  for (bool ub : {true, false}) {
    const std::string c = std::string("chan_mean_var_") + (ub ? "unbiased" : "biased");
    INFO(c);
    Tensor x = golden(c + ".x").tensor(true);
    auto [m, v] = ops::channel_mean_var(x, ub);
    CHECK(test::rel_err(m.to_vector(), row(c + ".y", 0)) < 1e-6);
    CHECK(test::rel_err(v.to_vector(), row(c + ".y", 1)) < 1e-6);
    const int64_t C = x.dim(1);
    Tensor loss = ops::add(ops::sum(ops::mul(m, row_tensor(c + ".dy", 0, {C}))),
                           ops::sum(ops::mul(v, row_tensor(c + ".dy", 1, {C}))));
    backward(loss);
    test::check_golden(x.grad(), c + ".dx", 1e-5);
  }
}

TEST_CASE("spatial_mean_std matches PyTorch (unbiased and biased, values and gradients)") {
  for (bool ub : {true, false}) {
    const std::string c = std::string("spatial_mean_std_") + (ub ? "unbiased" : "biased");
    INFO(c);
    Tensor x = golden(c + ".x").tensor(true);
    auto [m, s] = ops::spatial_mean_std(x, ub);
    REQUIRE(m.shape() == Shape{2, 3});
    CHECK(test::rel_err(m.to_vector(), row(c + ".y", 0)) < 1e-6);
    CHECK(test::rel_err(s.to_vector(), row(c + ".y", 1)) < 1e-6);
    Tensor loss = ops::add(ops::sum(ops::mul(m, row_tensor(c + ".dy", 0, {2, 3}))),
                           ops::sum(ops::mul(s, row_tensor(c + ".dy", 1, {2, 3}))));
    backward(loss);
    test::check_golden(x.grad(), c + ".dx", 1e-5);
  }
}

TEST_CASE("statistics gradients match finite differences; unused outputs cost nothing") {
  Tensor x = golden("chan_mean_var_unbiased.x").tensor(true);
  for (bool ub : {true, false}) {
    CHECK(test::gradcheck(
              [&](const std::vector<Tensor>& t) {
                auto mv = ops::channel_mean_var(t[0], ub);
                return ops::add(ops::square(mv.first), mv.second);
              },
              {x}, 1e-2) < 2e-3);
    CHECK(test::gradcheck(
              [&](const std::vector<Tensor>& t) {
                auto ms = ops::spatial_mean_std(t[0], ub);
                return ops::add(ops::mul_scalar(ms.first, 0.5f), ops::square(ms.second));
              },
              {x}, 1e-2) < 2e-3);
  }
  // Only the variance used: the gradient is exactly 2 (x - mean) / (M - 1) per channel.
  Tensor x2 = golden("chan_mean_var_unbiased.x").tensor(true);
  auto mv = ops::channel_mean_var(x2, true);
  backward(ops::sum(mv.second));
  const auto xv = x2.to_vector(), g = x2.grad().to_vector(), mean = mv.first.to_vector();
  const int64_t N = x2.dim(0), C = x2.dim(1), HW = x2.dim(2) * x2.dim(3);
  double worst = 0;
  for (int64_t i = 0; i < x2.numel(); ++i) {
    const int64_t c = (i / HW) % C;
    const double want = 2.0 * (xv[size_t(i)] - mean[size_t(c)]) / double(N * HW - 1);
    worst = std::max(worst, std::fabs(want - g[size_t(i)]));
  }
  CHECK(worst < 1e-6);
  // A constant plane has std 0: its gradient is 0, not NaN.
  Tensor z = Tensor::full({1, 1, 3, 3}, 2.f).set_requires_grad();
  backward(ops::sum(ops::spatial_mean_std(z, true).second));
  for (float e : z.grad().to_vector()) CHECK(e == 0.f);
}

TEST_CASE("bad input: statistics name the op and the shape") {
  CHECK_THROWS_WITH_AS(ops::channel_mean_var(Tensor::zeros({1, 4, 1, 1}), true),
                       doctest::Contains("[channel_mean_var] expected more than 1 values per "
                                         "channel (unbiased), got input (1, 4, 1, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::channel_mean_var(Tensor::zeros({4}), false),
      doctest::Contains("[channel_mean_var] expected input (N, C, H, W) or (N, C), got (4)"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::spatial_mean_std(Tensor::zeros({2, 3, 5}), false),
      doctest::Contains(
          "[spatial_mean_std] expected input (N, C, H, W) with 4 dimensions, got (2, 3, 5)"),
      Error);
}

TEST_CASE("statistics parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  Tensor x = test::randn_cpu({16, 24, 14, 14}, 8, 2.f).set_requires_grad();
  for (bool ub : {true, false}) {
    test::check_parity(
        "channel_mean_var",
        [ub](const std::vector<Tensor>& t) {
          auto mv = ops::channel_mean_var(t[0], ub);
          return ops::add(mv.first, mv.second);
        },
        {x}, 1e-5);
    test::check_parity(
        "spatial_mean_std",
        [ub](const std::vector<Tensor>& t) {
          auto ms = ops::spatial_mean_std(t[0], ub);
          return ops::add(ms.first, ms.second);
        },
        {x}, 1e-5);
  }
}
