// Spatial ops (nearest x2 upsampling, reflect pad, crop, global average pool, max pool) against
// PyTorch goldens, finite-difference gradients, bad input, CPU-vs-CUDA parity.
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

namespace {
using Fn = std::function<Tensor(const Tensor&)>;
struct SpatialCase {
  const char* name;
  Fn f;
};
std::vector<SpatialCase> cases() {
  return {
      {"upsample", [](const Tensor& x) { return ops::upsample_nearest2x(x); }},
      {"reflect_pad2", [](const Tensor& x) { return ops::reflect_pad(x, 2); }},
      {"reflect_pad3_small", [](const Tensor& x) { return ops::reflect_pad(x, 3); }},
      {"crop", [](const Tensor& x) { return ops::crop(x, 1, 2, 5, 4); }},
      {"gap", [](const Tensor& x) { return ops::global_avg_pool(x); }},
      {"maxpool3", [](const Tensor& x) { return ops::max_pool2d(x, 3, 2, 1); }},
      {"maxpool3_even", [](const Tensor& x) { return ops::max_pool2d(x, 3, 2, 1); }},
      {"maxpool2", [](const Tensor& x) { return ops::max_pool2d(x, 2, 2, 0); }},
  };
}
std::string key(const char* c, const char* t) { return std::string(c) + "." + t; }
}  // namespace

TEST_CASE("spatial ops match PyTorch (values and gradients; max-pool ties pick the first)") {
  for (const auto& c : cases()) {
    INFO(c.name);
    Tensor x = golden(key(c.name, "x")).tensor(true);
    Tensor y = c.f(x);
    check_golden(y, key(c.name, "y"), 1e-6);
    backward(y, golden(key(c.name, "dy")).tensor());
    check_golden(x.grad(), key(c.name, "dx"), 1e-6);
  }
}

TEST_CASE("spatial op gradients match finite differences and accumulate") {
  for (const auto& c : cases()) {
    if (std::string(c.name) == "maxpool3") continue;  // ties: not differentiable there
    INFO(c.name);
    Tensor x = golden(key(c.name, "x")).tensor(true);
    CHECK(test::gradcheck([&](const std::vector<Tensor>& v) { return c.f(v[0]); }, {x}, 1e-3) <
          1e-3);
    // Two uses of x: the second backward call accumulates into the existing buffer.
    Tensor x2 = golden(key(c.name, "x")).tensor(true);
    backward(ops::add(c.f(x2), c.f(x2)), golden(key(c.name, "dy")).tensor());
    auto want = golden(key(c.name, "dx")).v;
    for (float& e : want) e *= 2.f;
    CHECK(test::rel_err(x2.grad().to_vector(), want) < 1e-6);
  }
}

TEST_CASE("max pool: -inf padding and NaN propagate like PyTorch") {
  // All-negative input: padding must never win.
  Tensor x = Tensor::full({1, 1, 4, 4}, -5.f);
  auto y = ops::max_pool2d(x, 3, 2, 1).to_vector();
  for (float v : y) CHECK(v == -5.f);
  // NaN at (0, 0) lies only in the first window (rows/cols -1..1); the others see plain 1s.
  std::vector<float> v(16, 1.f);
  v[0] = std::nanf("");
  auto yn = ops::max_pool2d(Tensor::from_vector(v, {1, 1, 4, 4}), 3, 2, 1).to_vector();
  REQUIRE(yn.size() == 4);
  CHECK(std::isnan(yn[0]));
  CHECK(yn[1] == 1.f);
  CHECK(yn[2] == 1.f);
  CHECK(yn[3] == 1.f);
}

TEST_CASE("bad input: spatial ops name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH_AS(
      ops::reflect_pad(x, 4),
      doctest::Contains(
          "[reflect_pad] expected 0 <= pad < H and pad < W, got pad 4 for input (2, 3, 4, 5)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::crop(x, 1, 1, 4, 2),
                       doctest::Contains("[crop] expected a window inside the input, got window (y "
                                         "1, x 1, h 4, w 2) for input (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::max_pool2d(x, 3, 2, 2),
      doctest::Contains("[max_pool2d] expected kernel >= 1, stride >= 1, 0 <= pad <= kernel/2"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::max_pool2d(Tensor::zeros({1, 1, 2, 2}), 5, 1, 1),
      doctest::Contains(
          "[max_pool2d] expected a 5x5 window to fit the padded input, got input (1, 1, 2, 2)"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::upsample_nearest2x(Tensor::zeros({3, 4})),
      doctest::Contains(
          "[upsample_nearest2x] expected input (N, C, H, W) with 4 dimensions, got (3, 4)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::global_avg_pool(Tensor::zeros({2, 3, 4, 5}, Device::CPU, DType::U8)),
                       doctest::Contains("[global_avg_pool] expected input (N, C, H, W) f32"),
                       Error);
}

TEST_CASE("spatial ops parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  for (const auto& c : cases()) {
    test::check_parity(
        c.name, [&](const std::vector<Tensor>& v) { return c.f(v[0]); },
        {golden(key(c.name, "x")).tensor(true)}, 1e-6);
  }
  // Larger planes (ResNet stem sizes) with ties in the max pool.
  Tensor big = test::randn_cpu({4, 8, 32, 32}, 3);
  float* p = big.data();
  for (int64_t i = 0; i < big.numel(); ++i) p[i] = std::round(p[i] * 2.f) / 2.f;
  big.set_requires_grad();
  test::check_parity(
      "max_pool2d 3/2/1 large",
      [](const std::vector<Tensor>& v) { return ops::max_pool2d(v[0], 3, 2, 1); }, {big}, 1e-6);
  test::check_parity(
      "upsample+reflect+crop+gap chain",
      [](const std::vector<Tensor>& v) {
        return ops::global_avg_pool(
            ops::crop(ops::reflect_pad(ops::upsample_nearest2x(v[0]), 3), 2, 1, 60, 61));
      },
      {test::randn_cpu({4, 8, 32, 32}, 4).set_requires_grad()}, 1e-5);
}
