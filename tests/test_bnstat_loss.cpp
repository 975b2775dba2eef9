// Fused BN-statistics loss (kernels/bnstat_loss.h, ops::bn_stat_loss / ops::input_stat_loss):
// analytic cases, a double-precision host reference, the unfused op composition, finite
// differences, and CPU-vs-CUDA parity. Swing shift (kernels/swing.h, ops::swing_shift) against
// crop(reflect_pad) and finite differences.
#include <cmath>

#include "autograd/ops_genie.h"
#include "kernels/bnstat_loss.h"
#include "test_util.h"

using namespace genie;

namespace {

// Host reference in double: weight · Σ_c ((mean_c − mu_c)² + (std_c − sigma_c)²) over (N, HW),
// and its gradient (two-pass statistics).
struct RefOut {
  double loss;
  std::vector<double> grad;
};
RefOut reference(const std::vector<float>& x, int64_t N, int64_t C, int64_t HW,
                 const std::vector<float>& mu, const std::vector<float>& sigma, double weight) {
  RefOut r{0, std::vector<double>(x.size())};
  const double n = double(N * HW);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < HW; ++j) s += x[size_t((i * C + c) * HW + j)];
    const double m = s / n;
    double ss = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < HW; ++j) {
        const double d = x[size_t((i * C + c) * HW + j)] - m;
        ss += d * d;
      }
    const double sd = std::sqrt(ss / (n - 1));
    r.loss += weight * ((m - mu[size_t(c)]) * (m - mu[size_t(c)]) +
                        (sd - sigma[size_t(c)]) * (sd - sigma[size_t(c)]));
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < HW; ++j) {
        const size_t k = size_t((i * C + c) * HW + j);
        r.grad[k] = weight * (2 * (m - mu[size_t(c)]) / n +
                              2 * (sd - sigma[size_t(c)]) * (x[k] - m) / ((n - 1) * sd));
      }
  }
  return r;
}

double rel_err_d(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / den;
}

}  // namespace

TEST_CASE("bn_stat_loss analytic small cases") {
  // One channel, values {1,3 | 5,7}: mean 4, unbiased var 20/3. With targets (4, 0) the loss is the
  // variance itself and its gradient 2 (x − 4) / 3.
  Tensor x = Tensor::from_vector({1, 3, 5, 7}, {2, 1, 1, 2});
  x.set_requires_grad();
  Tensor mu = Tensor::from_vector({4}, {1}), sigma = Tensor::from_vector({0}, {1});
  Tensor l = ops::bn_stat_loss(x, mu, sigma);
  CHECK(l.item() == doctest::Approx(20.0 / 3.0).epsilon(1e-6));
  backward(l);
  auto g = x.grad().to_vector();
  const double want[4] = {-2.0, -2.0 / 3.0, 2.0 / 3.0, 2.0};
  for (int i = 0; i < 4; ++i) CHECK(g[size_t(i)] == doctest::Approx(want[i]).epsilon(1e-6));

  // Two channels, averaged over C: channel 0 = {0, 2, 4, 6} (mean 3, std sqrt(20/3)) against
  // (1, 2); channel 1 constant 5 (std 0) against (5, 1) → term 1, gradient of the std term 0.
  Tensor y = Tensor::from_vector({0, 2, 5, 5, 4, 6, 5, 5}, {2, 2, 1, 2});
  y.set_requires_grad();
  Tensor l2 =
      ops::bn_stat_loss(y, Tensor::from_vector({1, 5}, {2}), Tensor::from_vector({2, 1}, {2}));
  const double s0 = std::sqrt(20.0 / 3.0);
  CHECK(l2.item() ==
        doctest::Approx(((3 - 1) * (3 - 1) + (s0 - 2) * (s0 - 2) + 1.0) / 2).epsilon(1e-6));
  backward(ops::mul_scalar(l2, 3.f));  // upstream gradient 3 is honoured
  auto gy = y.grad().to_vector();
  const double xs[4] = {0, 2, 4, 6};
  const size_t idx0[4] = {0, 1, 4, 5};
  for (int i = 0; i < 4; ++i)
    CHECK(gy[idx0[i]] ==
          doctest::Approx(3.0 / 2 * (2 * 2.0 / 4 + 2 * (s0 - 2) * (xs[i] - 3) / (3 * s0)))
              .epsilon(1e-5));
  for (size_t i : {2, 3, 6, 7})
    CHECK(gy[i] == doctest::Approx(0.0));  // constant channel: mean on target
}

TEST_CASE("input_stat_loss analytic case") {
  // Image 0 = {0, 2}: m 1, s √2; image 1 = {−1, 1}: m 0, s √2.  L = (1 + 2 (1 − √2)²) / 2.
  Tensor x = Tensor::from_vector({0, 2, -1, 1}, {2, 1, 1, 2});
  x.set_requires_grad();
  Tensor l = ops::input_stat_loss(x);
  const double r2 = std::sqrt(2.0);
  CHECK(l.item() == doctest::Approx((1 + 2 * (1 - r2) * (1 - r2)) / 2).epsilon(1e-6));
  backward(l);
  // d/dx of (m² + (1−s)²)/2 with n = 2: (2m/2 + 2(s−1)(x−m)/s) / 2
  auto g = x.grad().to_vector();
  const double m[2] = {1, 0};
  const float xv[4] = {0, 2, -1, 1};
  for (int i = 0; i < 4; ++i) {
    const double mi = m[i / 2];
    CHECK(g[size_t(i)] ==
          doctest::Approx((mi + 2 * (r2 - 1) * (xv[i] - mi) / r2) / 2).epsilon(1e-5));
  }
}

TEST_CASE("bn_stat_loss matches a double-precision reference (value and gradient)") {
  // Mean far from zero (12) checks the shifted one-pass statistics against two-pass in double.
  const int64_t N = 5, C = 7, H = 6, W = 5;
  Tensor a = test::randn_cpu({N, C, H, W}, 11, 2.f);
  float* p = a.data();
  for (int64_t i = 0; i < a.numel(); ++i) p[i] += 12.f;
  a.set_requires_grad();
  Tensor mu = test::randn_cpu({C}, 12), sigma = test::rand_uniform_cpu({C}, 13, 0.5f, 3.f);
  Tensor l = ops::bn_stat_loss(a, mu, sigma);
  RefOut r = reference(a.to_vector(), N, C, H * W, mu.to_vector(), sigma.to_vector(), 1.0 / C);
  CHECK(l.item() == doctest::Approx(r.loss).epsilon(1e-6));
  backward(l);
  CHECK(rel_err_d(a.grad().to_vector(), r.grad) < 1e-5);

  // Input term = the same math on the (1, N·C, H·W) view with targets 0/1 and weight 1/N.
  Tensor x = test::randn_cpu({N, 3, H, W}, 14, 0.7f);
  x.set_requires_grad();
  Tensor li = ops::input_stat_loss(x);
  RefOut ri = reference(x.to_vector(), 1, N * 3, H * W, std::vector<float>(size_t(N * 3), 0.f),
                        std::vector<float>(size_t(N * 3), 1.f), 1.0 / N);
  CHECK(li.item() == doctest::Approx(ri.loss).epsilon(1e-6));
  backward(li);
  CHECK(rel_err_d(x.grad().to_vector(), ri.grad) < 1e-5);
}

TEST_CASE("bn_stat_loss matches the unfused composition of ops") {
  // Unfused: channel statistics over (N,H,W) of a equal the spatial statistics of the channel-major
  // copy at (1, C, N·H, W); loss = (Σ (m − mu)² + Σ (s − sigma)²) / C from elementwise ops.
  const int64_t N = 4, C = 3, H = 5, W = 6;
  Tensor a = test::randn_cpu({N, C, H, W}, 21, 1.5f);
  a.set_requires_grad();
  Tensor at = Tensor::empty({1, C, N * H, W});
  {
    const float* s = a.data();
    float* d = at.data();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < H * W; ++i) d[(c * N + n) * H * W + i] = s[(n * C + c) * H * W + i];
  }
  at.set_requires_grad();
  Tensor mu = test::randn_cpu({C}, 22), sigma = test::rand_uniform_cpu({C}, 23, 0.5f, 2.f);
  Tensor fused = ops::bn_stat_loss(a, mu, sigma);
  backward(fused);

  auto [m, s] = ops::spatial_mean_std(at, /*unbiased=*/true);  // (1, C) each
  Tensor mu2 = ops::reshape(mu, {1, C}), sg2 = ops::reshape(sigma, {1, C});
  Tensor unfused = ops::mul_scalar(
      ops::add(ops::sum(ops::square(ops::sub(m, mu2))), ops::sum(ops::square(ops::sub(s, sg2)))),
      1.f / float(C));
  backward(unfused);
  CHECK(fused.item() == doctest::Approx(unfused.item()).epsilon(1e-5));
  auto g = a.grad().to_vector(), gt = at.grad().to_vector();
  std::vector<float> gu(g.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i)
        gu[size_t((n * C + c) * H * W + i)] = gt[size_t((c * N + n) * H * W + i)];
  CHECK(test::rel_err(g, gu) < 1e-5);

  // Input term against spatial_mean_std directly.
  Tensor x = test::randn_cpu({N, C, H, W}, 24, 0.8f);
  x.set_requires_grad();
  Tensor fi = ops::input_stat_loss(x);
  backward(fi);
  auto gf = x.grad().to_vector();
  x.zero_grad();
  auto [mi, si] = ops::spatial_mean_std(x, true);
  Tensor ui = ops::mul_scalar(
      ops::add(ops::sum(ops::square(mi)), ops::sum(ops::square(ops::add_scalar(si, -1.f)))),
      1.f / float(N));
  backward(ui);
  CHECK(fi.item() == doctest::Approx(ui.item()).epsilon(1e-5));
  CHECK(test::rel_err(gf, x.grad().to_vector()) < 1e-5);
}

TEST_CASE("bn_stat_loss gradients match finite differences") {
  Tensor a = test::randn_cpu({3, 4, 3, 3}, 31, 1.2f);
  a.set_requires_grad();
  Tensor mu = test::randn_cpu({4}, 32), sigma = test::rand_uniform_cpu({4}, 33, 0.5f, 2.f);
  CHECK(test::gradcheck(
            [&](const std::vector<Tensor>& v) { return ops::bn_stat_loss(v[0], mu, sigma); }, {a},
            1e-2, 108) < 2e-3);
  Tensor x = test::randn_cpu({3, 2, 4, 4}, 34, 0.9f);
  x.set_requires_grad();
  CHECK(test::gradcheck([](const std::vector<Tensor>& v) { return ops::input_stat_loss(v[0]); },
                        {x}, 1e-2, 96) < 2e-3);
  // (N, C) activations (BatchNorm1d-style) are accepted too.
  Tensor f = test::randn_cpu({6, 5}, 35);
  f.set_requires_grad();
  CHECK(test::gradcheck(
            [&](const std::vector<Tensor>& v) {
              return ops::bn_stat_loss(v[0], test::randn_cpu({5}, 36), Tensor::full({5}, 1.f));
            },
            {f}, 1e-2, 30) < 2e-3);
}

TEST_CASE("bn_stat_loss rejects bad shapes") {
  Tensor a = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(ops::bn_stat_loss(a, Tensor::zeros({4}), Tensor::zeros({3})),
                       doctest::Contains("[bn_stat_loss] expected targets of shape (3)"), Error);
  CHECK_THROWS_WITH_AS(
      ops::bn_stat_loss(Tensor::zeros({2, 3, 4}), Tensor::zeros({3}), Tensor::zeros({3})),
      doctest::Contains("[bn_stat_loss] expected an activation"), Error);
  CHECK_THROWS_AS(ops::input_stat_loss(Tensor::zeros({2, 3, 1, 1})), Error);
}

TEST_CASE("swing_shift equals crop(reflect_pad(x, 1)) in value and gradient, all 9 offsets") {
  for (auto shape : {Shape{2, 3, 5, 7}, Shape{1, 2, 9, 11}, Shape{1, 2, 2, 2}, Shape{1, 1, 3, 2}}) {
    for (int dy = 0; dy < 3; ++dy)
      for (int dx = 0; dx < 3; ++dx) {
        INFO(shape_str(shape), " offset ", dy, ",", dx);
        Tensor x = test::randn_cpu(shape, 51);
        Tensor probe = test::randn_cpu(shape, 52);
        x.set_requires_grad();
        Tensor y = ops::swing_shift(x, dy, dx);
        backward(ops::sum(ops::mul(y, probe)));
        const auto g = x.grad().to_vector();
        x.zero_grad();
        Tensor yr = ops::crop(ops::reflect_pad(x, 1), dy, dx, shape[2], shape[3]);
        backward(ops::sum(ops::mul(yr, probe)));
        CHECK(y.to_vector() == yr.to_vector());  // a gather: bit-identical
        CHECK(test::max_abs_diff(g, x.grad().to_vector()) < 1e-6);
      }
  }
  Tensor x = test::randn_cpu({2, 2, 4, 3}, 53);
  x.set_requires_grad();
  CHECK(test::gradcheck([](const std::vector<Tensor>& v) { return ops::swing_shift(v[0], 2, 0); },
                        {x}, 1e-2, 48) < 2e-3);
  CHECK_THROWS_WITH_AS(ops::swing_shift(x, 3, 0),
                       doctest::Contains("[swing_shift] expected offsets"), Error);
  CHECK_THROWS_AS(ops::swing_shift(Tensor::zeros({1, 1, 1, 4}), 1, 1), Error);
}

TEST_CASE("bn_stat_loss and swing_shift CPU vs CUDA parity") {
  GENIE_REQUIRE_GPU();
  for (auto shape : {Shape{128, 16, 28, 28}, Shape{7, 64, 7, 7}, Shape{1, 300, 5, 5}}) {
    INFO(shape_str(shape));
    const int64_t C = shape[1];
    Tensor a = test::randn_cpu(shape, 41, 1.3f);
    float* p = a.data();
    for (int64_t i = 0; i < a.numel(); ++i) p[i] += 0.5f;
    Tensor mu = test::randn_cpu({C}, 42), sigma = test::rand_uniform_cpu({C}, 43, 0.5f, 2.f);
    Tensor ac = a.to(Device::CUDA);
    a.set_requires_grad();
    ac.set_requires_grad();
    // One backward sweeps the whole tape: each device's forward is followed by its backward.
    Tensor l = ops::bn_stat_loss(a, mu, sigma);
    backward(ops::mul_scalar(l, 2.f));
    Tensor lc = ops::bn_stat_loss(ac, mu.to(Device::CUDA), sigma.to(Device::CUDA));
    backward(ops::mul_scalar(lc, 2.f));
    CHECK(lc.item() == doctest::Approx(l.item()).epsilon(1e-6));
    CHECK(test::rel_err(ac.grad().to_vector(), a.grad().to_vector()) < 1e-5);
    Tensor li = ops::input_stat_loss(a.detach()), lic = ops::input_stat_loss(ac.detach());
    CHECK(lic.item() == doctest::Approx(li.item()).epsilon(1e-6));
  }
  // Swing shift: a gather both ways, so CPU and CUDA agree exactly.
  Tensor x = test::randn_cpu({3, 4, 9, 6}, 44), g = test::randn_cpu({3, 4, 9, 6}, 45);
  for (int dy = 0; dy < 3; ++dy)
    for (int dx = 0; dx < 3; ++dx) {
      Tensor xs = x.clone(), xc = x.to(Device::CUDA);
      xs.set_requires_grad();
      xc.set_requires_grad();
      Tensor ys = ops::swing_shift(xs, dy, dx);
      backward(ys, g);
      Tensor yc = ops::swing_shift(xc, dy, dx);
      backward(yc, g.to(Device::CUDA));
      CHECK(yc.to_vector() == ys.to_vector());
      CHECK(xc.grad().to_vector() == xs.grad().to_vector());
    }
}
