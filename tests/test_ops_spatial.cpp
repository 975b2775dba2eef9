// Spatial ops (nearest x2 upsampling, reflect and zero pad, crop, global, adaptive and k x k
// average pools, max pool with and without ceil_mode) against PyTorch goldens, finite-difference
// gradients, bad input, CPU-vs-CUDA parity.
#include "kernels/spatial.h"
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

namespace {
using Fn = std::function<Tensor(const Tensor&)>;
struct SpatialCase {
  std::string name;
  Fn f;
};
// The k x k pools of tests/golden/make_op_goldens.py: each in floor and ceil mode, the average
// pool with and without count_include_pad.
struct PoolCase {
  const char* tag;
  int64_t k, stride, pad;
};
const PoolCase kPools[] = {
    {"8x8_k3s2p0", 3, 2, 0},   // ceil adds a window clipped to the input
    {"7x7_k3s2p0", 3, 2, 0},   // ceil changes nothing
    {"9x9_k3s1p1", 3, 1, 1},   // GoogLeNet's branch pool
    {"7x9_k2s2p0", 2, 2, 0},   // odd sizes: ceil keeps the half windows
    {"7x7_k3s2p1", 3, 2, 1},   //
    {"8x8_k3s2p1", 3, 2, 1},   // ceil adds a window reaching into the right padding
    {"6x6_k2s2p0", 2, 2, 0},   // DenseNet transition
    {"11x7_k3s3p1", 3, 3, 1},  // rows: ceil's extra window would start in the padding, so the
    {"7x7_k2s2p1", 2, 2, 1},   // rule drops it again
};
std::vector<SpatialCase> pool_cases() {
  std::vector<SpatialCase> v;
  for (const PoolCase& c : kPools) {
    for (bool ceil : {false, true}) {
      const std::string tag = std::string(c.tag) + (ceil ? "_ceil" : "");
      v.push_back({"maxpool_" + tag, [c, ceil](const Tensor& x) {
                     return ops::max_pool2d(x, c.k, c.stride, c.pad, ceil);
                   }});
      for (bool cip : {false, true})
        v.push_back({"avgpool_" + tag + (cip ? "_cip" : ""), [c, ceil, cip](const Tensor& x) {
                       return ops::avg_pool2d(x, c.k, c.stride, c.pad, ceil, cip);
                     }});
    }
  }
  return v;
}
std::vector<SpatialCase> cases() {
  std::vector<SpatialCase> v = {
      {"upsample", [](const Tensor& x) { return ops::upsample_nearest2x(x); }},
      {"reflect_pad2", [](const Tensor& x) { return ops::reflect_pad(x, 2); }},
      {"reflect_pad3_small", [](const Tensor& x) { return ops::reflect_pad(x, 3); }},
      {"crop", [](const Tensor& x) { return ops::crop(x, 1, 2, 5, 4); }},
      {"gap", [](const Tensor& x) { return ops::global_avg_pool(x); }},
      {"maxpool3", [](const Tensor& x) { return ops::max_pool2d(x, 3, 2, 1); }},
      {"maxpool3_even", [](const Tensor& x) { return ops::max_pool2d(x, 3, 2, 1); }},
      {"maxpool2", [](const Tensor& x) { return ops::max_pool2d(x, 2, 2, 0); }},
      {"adaptive_7x7_to_7x7", [](const Tensor& x) { return ops::adaptive_avg_pool2d(x, 7, 7); }},
      {"adaptive_10x13_to_3x4", [](const Tensor& x) { return ops::adaptive_avg_pool2d(x, 3, 4); }},
      {"adaptive_4x5_to_6x7", [](const Tensor& x) { return ops::adaptive_avg_pool2d(x, 6, 7); }},
      {"adaptive_5x6_to_1x1", [](const Tensor& x) { return ops::adaptive_avg_pool2d(x, 1, 1); }},
      {"zero_pad_0101", [](const Tensor& x) { return ops::zero_pad(x, 0, 1, 0, 1); }},
      {"zero_pad_1230", [](const Tensor& x) { return ops::zero_pad(x, 1, 2, 3, 0); }},
  };
  for (SpatialCase& c : pool_cases()) v.push_back(std::move(c));
  return v;
}
std::string key(const std::string& c, const char* t) { return c + "." + t; }
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
    if (c.name == "maxpool3") continue;  // ties: not differentiable there
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

TEST_CASE("pool output sizes follow PyTorch's ceil_mode rule") {
  // (in + 2p - k) / s rounded up, unless that last window would start in the right padding.
  CHECK(k::pool_out_size(8, 3, 2, 0, false) == 3);
  CHECK(k::pool_out_size(8, 3, 2, 0, true) == 4);   // window 3 starts at 6 < 8: kept, clipped
  CHECK(k::pool_out_size(7, 3, 2, 0, true) == 3);   // exact: ceil changes nothing
  CHECK(k::pool_out_size(8, 3, 2, 1, true) == 5);   // the 5th window starts at 7, inside
  CHECK(k::pool_out_size(11, 3, 3, 1, true) == 4);  // ceil(9/3) + 1 = 5, but 4·3 >= 11 + 1: dropped
  CHECK(k::pool_out_size(7, 2, 2, 1, true) == 4);   // ceil(7/2) + 1 = 5, but 4·2 >= 7 + 1: dropped
  CHECK(k::pool_out_size(9, 3, 1, 1, true) == 9);
  CHECK(k::pool_out_size(7, 2, 2, 0, true) == 4);
  CHECK(k::pool_out_size(7, 2, 2, 0, false) == 3);
  for (bool ceil : {false, true}) {
    const auto shape = ops::max_pool2d(Tensor::zeros({1, 1, 8, 7}), 3, 2, 0, ceil).shape();
    CHECK(shape == Shape{1, 1, ceil ? 4 : 3, 3});
    CHECK(ops::avg_pool2d(Tensor::zeros({1, 1, 8, 7}), 3, 2, 0, ceil, true).shape() == shape);
  }
}

TEST_CASE("average pools: divisors at the borders and in ceil_mode windows") {
  // All-ones 5x5, k 3, s 2, p 1, ceil: outputs are the fraction of the divisor that is input.
  Tensor x = Tensor::full({1, 1, 5, 5}, 1.f);
  for (float v : ops::avg_pool2d(x, 3, 2, 1, true, false).to_vector()) CHECK(v == 1.f);
  // count_include_pad: the corner window holds 4 inputs out of 9.
  const auto inc = ops::avg_pool2d(x, 3, 2, 1, false, true).to_vector();
  CHECK(inc[0] == doctest::Approx(4.f / 9.f));
  CHECK(inc[4] == 1.f);  // the centre window
  // 4x4, k 3 s 2 p 0 ceil: the second window is clipped to 2 columns (no padding to count), so
  // both divisors are the input part.
  Tensor r =
      Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
  for (bool cip : {false, true}) {
    const auto y = ops::avg_pool2d(r, 3, 2, 0, true, cip).to_vector();
    REQUIRE(y.size() == 4);
    CHECK(y[0] == doctest::Approx((1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9.f));
    CHECK(y[1] == doctest::Approx((3 + 4 + 7 + 8 + 11 + 12) / 6.f));
    CHECK(y[3] == doctest::Approx((11 + 12 + 15 + 16) / 4.f));
  }
  // Adaptive 3 -> 2: bins [0, 2) and [1, 3) overlap in the middle row and column.
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  CHECK(ops::adaptive_avg_pool2d(a, 2, 2).to_vector() == std::vector<float>{3, 4, 6, 7});
  CHECK(ops::adaptive_avg_pool2d(a, 1, 1).to_vector() == std::vector<float>{5});
  CHECK(ops::adaptive_avg_pool2d(a, 1, 1).shape() == Shape{1, 1, 1, 1});
  // (1, 1) is the global average: identical to global_avg_pool.
  Tensor g = test::randn_cpu({2, 3, 7, 9}, 12);
  CHECK(ops::adaptive_avg_pool2d(g, 1, 1).to_vector() == ops::global_avg_pool(g).to_vector());
}

TEST_CASE("bad input: pools and zero padding name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH_AS(ops::avg_pool2d(x, 3, 2, 2, false, true),
                       doctest::Contains("[avg_pool2d] expected kernel >= 1, stride >= 1, 0 <= pad "
                                         "<= kernel/2, got kernel 3, stride 2, pad 2 for input (2, "
                                         "3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool2d(x, 2, 0, 0, true, false),
                       doctest::Contains("got kernel 2, stride 0, pad 0"), Error);
  CHECK_THROWS_WITH_AS(ops::max_pool2d(x, 2, 2, 2, true),
                       doctest::Contains("[max_pool2d] expected kernel >= 1, stride >= 1, 0 <= pad "
                                         "<= kernel/2, got kernel 2, stride 2, pad 2"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::avg_pool2d(Tensor::zeros({1, 1, 2, 6}), 5, 1, 1, true, true),
      doctest::Contains(
          "[avg_pool2d] expected a 5x5 window to fit the padded input, got input (1, 1, 2, 6)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool2d(Tensor::zeros({3, 4}), 2, 2, 0, false, false),
                       doctest::Contains("[avg_pool2d] expected input (N, C, H, W) with 4 "
                                         "dimensions, got (3, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d(x, 0, 3),
                       doctest::Contains("[adaptive_avg_pool2d] expected an output size >= 1, got "
                                         "(0, 3) for input (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d(Tensor::zeros({2, 3, 0, 5}), 1, 1),
                       doctest::Contains("[adaptive_avg_pool2d] expected a non-empty plane, got "
                                         "input (2, 3, 0, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::zero_pad(x, 0, -1, 0, 1),
                       doctest::Contains("[zero_pad] expected paddings >= 0, got (left 0, right "
                                         "-1, top 0, bottom 1) for input (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::zero_pad(Tensor::zeros({2, 3}), 1, 1, 1, 1),
                       doctest::Contains("[zero_pad] expected input (N, C, H, W) with 4 "
                                         "dimensions, got (2, 3)"),
                       Error);
}

TEST_CASE("spatial ops parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  for (const auto& c : cases()) {
    test::check_parity(
        c.name.c_str(), [&](const std::vector<Tensor>& v) { return c.f(v[0]); },
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
  // The new pools on larger planes (ImageNet-stem and DenseNet/GoogLeNet-like sizes).
  Tensor big2 = test::randn_cpu({2, 16, 29, 30}, 13).set_requires_grad();
  for (bool ceil : {false, true}) {
    test::check_parity(
        "max_pool2d 3/2/0 ceil",
        [ceil](const std::vector<Tensor>& v) { return ops::max_pool2d(v[0], 3, 2, 0, ceil); },
        {big2}, 1e-6);
    for (bool cip : {false, true})
      test::check_parity(
          "avg_pool2d 3/2/1",
          [ceil, cip](const std::vector<Tensor>& v) {
            return ops::avg_pool2d(v[0], 3, 2, 1, ceil, cip);
          },
          {big2}, 1e-6);
  }
  test::check_parity(
      "adaptive_avg_pool2d 29x30 -> 7x7, 1x1 and zero_pad",
      [](const std::vector<Tensor>& v) {
        return ops::add(ops::zero_pad(ops::adaptive_avg_pool2d(v[0], 7, 7), 1, 0, 0, 1),
                        ops::mul_bcast(ops::avg_pool2d(ops::adaptive_avg_pool2d(v[0], 16, 16), 2, 2,
                                                       0, false, true),
                                       ops::adaptive_avg_pool2d(v[0], 1, 1)));
      },
      {big2}, 1e-5);
  test::check_parity(
      "upsample+reflect+crop+gap chain",
      [](const std::vector<Tensor>& v) {
        return ops::global_avg_pool(
            ops::crop(ops::reflect_pad(ops::upsample_nearest2x(v[0]), 3), 2, 1, 60, 61));
      },
      {test::randn_cpu({4, 8, 32, 32}, 4).set_requires_grad()}, 1e-5);
}
