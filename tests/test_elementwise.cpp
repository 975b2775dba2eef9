// Elementwise ops: analytic forward values, finite-difference gradients, tape behaviour.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/functors.h"
#include "op_golden.h"

using namespace genie;

TEST_CASE("elementwise forward matches analytic values") {
  Tensor x = Tensor::from_vector({-2.f, -0.5f, 0.f, 0.5f, 3.f, 7.f}, {6});
  CHECK(ops::relu(x).to_vector() == std::vector<float>{0, 0, 0, 0.5f, 3, 7});
  CHECK(ops::relu6(x).to_vector() == std::vector<float>{0, 0, 0, 0.5f, 3, 6});
  CHECK(ops::leaky_relu(x, 0.2f).to_vector() == std::vector<float>{-0.4f, -0.1f, 0, 0.5f, 3, 7});
  auto t = ops::tanh(x).to_vector();
  auto s = ops::sigmoid(x).to_vector();
  for (int i = 0; i < 6; ++i) {
    const float v = x.to_vector()[size_t(i)];
    CHECK(t[size_t(i)] == doctest::Approx(std::tanh(v)).epsilon(1e-6));
    CHECK(s[size_t(i)] == doctest::Approx(1.0 / (1.0 + std::exp(-v))).epsilon(1e-6));
  }
}

TEST_CASE("elementwise activations propagate NaN and infinities as PyTorch does") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  Tensor x = Tensor::from_vector({nan, -inf, inf, -0.f}, {4});
  for (const auto& y : {ops::relu(x), ops::relu6(x), ops::leaky_relu(x, 0.1f)}) {
    const auto v = y.to_vector();
    CHECK(std::isnan(v[0]));  // a NaN never turns into a plausible value
  }
  const auto r = ops::relu(x).to_vector();
  CHECK(r[1] == 0.f);
  CHECK(r[2] == inf);
  CHECK(r[3] == 0.f);
  CHECK_FALSE(std::signbit(r[3]));  // relu(-0) = +0, as before
  CHECK(ops::relu6(x).to_vector()[2] == 6.f);
}

TEST_CASE("elementwise gradients match finite differences") {
  // Keep inputs away from the kinks of relu/relu6/abs so central differences are valid.
  Tensor x = test::rand_uniform_cpu({3, 4, 5}, 1, -3.f, 8.f);
  float* p = x.data();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (std::fabs(p[i]) < 0.05f || std::fabs(p[i] - 6.f) < 0.05f) p[i] += 0.2f;
  x.set_requires_grad();
  using F = std::function<Tensor(const std::vector<Tensor>&)>;
  std::vector<std::pair<const char*, F>> cases = {
      {"relu", [](auto& v) { return ops::relu(v[0]); }},
      {"relu6", [](auto& v) { return ops::relu6(v[0]); }},
      {"leaky_relu", [](auto& v) { return ops::leaky_relu(v[0], 0.2f); }},
      {"tanh", [](auto& v) { return ops::tanh(ops::mul_scalar(v[0], 0.3f)); }},
      {"sigmoid", [](auto& v) { return ops::sigmoid(v[0]); }},
      {"square", [](auto& v) { return ops::square(v[0]); }},
      {"abs", [](auto& v) { return ops::abs(v[0]); }},
      {"add_scalar", [](auto& v) { return ops::add_scalar(v[0], 1.5f); }},
      {"mul(x,x)", [](auto& v) { return ops::mul(v[0], ops::add(v[0], v[0])); }},
      {"sub", [](auto& v) { return ops::sub(ops::square(v[0]), v[0]); }},
      {"reshape",
       [](auto& v) {
         return ops::square(ops::reshape(v[0], {12, 5}));
       }},
  };
  for (auto& [name, f] : cases) {
    INFO(name);
    CHECK(test::gradcheck(f, {x}, 1e-2) < 2e-3);
  }
}

TEST_CASE("gated ReLU kernels: 1-bit gates give the output-based backward bit for bit") {
  using k::UnaryOp;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  // Every edge of the gates (0, -0, 6, just inside and outside, NaN, +-inf), then random values;
  // 1000 + 7 elements: a partial last word.
  std::vector<float> xv = {
      0.f, -0.f, 6.f, std::nextafter(6.f, 0.f), std::nextafter(6.f, 7.f), 1e-30f, -1e-30f,
      nan, inf,  -inf};
  const auto r = test::randn_cpu({997}, 5, 4.f).to_vector();
  xv.insert(xv.end(), r.begin(), r.end());
  const int64_t n = int64_t(xv.size());
  const auto dyv = test::randn_cpu({n}, 6).to_vector();
  const std::vector<std::pair<UnaryOp, float>> ops = {{UnaryOp::Relu, 0.f},
                                                      {UnaryOp::Relu6, 0.f},
                                                      {UnaryOp::LeakyRelu, 0.2f},
                                                      {UnaryOp::LeakyRelu, 0.f},
                                                      {UnaryOp::LeakyRelu, 1.f}};
  for (auto [op, a] : ops) {
    INFO(k::unary_name(op), " slope ", a);
    REQUIRE(k::gated_unary(op, a));
    std::vector<float> ya(static_cast<size_t>(n)), yb(static_cast<size_t>(n), -1.f);
    std::vector<uint32_t> bits(size_t(k::gate_words(n)), 0xdeadbeefu);
    k::unary_fwd(Device::CPU, op, a, xv.data(), ya.data(), n, nullptr);
    k::unary_fwd_gated(Device::CPU, op, a, xv.data(), yb.data(), bits.data(), n, nullptr);
    CHECK(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)) == 0);
    for (bool acc : {false, true}) {
      std::vector<float> d0(size_t(n), 0.5f), d1(size_t(n), 0.5f);
      k::unary_bwd(Device::CPU, op, a, ya.data(), ya.data(), dyv.data(), d0.data(), n, acc,
                   nullptr);
      k::unary_bwd_gated(Device::CPU, op, a, bits.data(), dyv.data(), d1.data(), n, acc, nullptr);
      CHECK(std::memcmp(d0.data(), d1.data(), d0.size() * sizeof(float)) == 0);
    }
    // The gates of the first ten: (leaky) ReLU passes at 6, 6-, 6+, 1e-30 and inf (not at 0, -0,
    // NaN); ReLU6 only strictly inside (0, 6): 6- and 1e-30.
    CHECK((bits[0] & 0x3ffu) == (op == UnaryOp::Relu6 ? 0x28u : 0x13cu));
  }
  CHECK_FALSE(k::gated_unary(UnaryOp::LeakyRelu, -0.5f));
  CHECK_FALSE(k::gated_unary(UnaryOp::Tanh, 0.f));
  std::vector<float> buf(4);
  std::vector<uint32_t> w(1);
  CHECK_THROWS_WITH_AS(k::unary_fwd_gated(Device::CPU, UnaryOp::Tanh, 0.f, buf.data(), buf.data(),
                                          w.data(), 4, nullptr),
                       doctest::Contains("[unary_fwd_gated] tanh is not a gated op"), Error);
}

TEST_CASE("bfloat16 conversion: round to nearest even, NaN and infinities, accumulate") {
  auto bits_of = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  auto from_bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  using k::Bf16F;
  // Exactly representable values pass unchanged.
  for (float v : {0.f, -0.f, 1.f, -2.5f, 3.140625f, 65536.f})
    CHECK(Bf16F::to_float(Bf16F::from_float(v)) == v);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3*2^-8 is
  // halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6. Just above a half rounds up.
  CHECK(Bf16F::to_float(Bf16F::from_float(1.f + 0x1p-8f)) == 1.f);
  CHECK(Bf16F::to_float(Bf16F::from_float(1.f + 3 * 0x1p-8f)) == 1.f + 0x1p-6f);
  CHECK(Bf16F::to_float(Bf16F::from_float(from_bits(bits_of(1.f + 0x1p-8f) + 1))) == 1.f + 0x1p-7f);
  CHECK(Bf16F::to_float(Bf16F::from_float(-(1.f + 0x1p-8f + 0x1p-12f))) == -(1.f + 0x1p-7f));
  // Past the largest bfloat16 (0x7f7f): infinity; infinities and NaN stay so.
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(Bf16F::from_float(std::numeric_limits<float>::max()) == 0x7f80u);
  CHECK(Bf16F::from_float(inf) == 0x7f80u);
  CHECK(Bf16F::from_float(-inf) == 0xff80u);
  CHECK(std::isnan(Bf16F::to_float(Bf16F::from_float(std::nanf("")))));
  CHECK(std::isnan(Bf16F::to_float(Bf16F::from_float(from_bits(0x7f800001u)))));  // low payload
  // The relative error of a rounded value is at most 2^-8 (precision_operand_error).
  const auto r = test::randn_cpu({4099}, 9, 3.f).to_vector();
  std::vector<uint16_t> h(r.size());
  k::f32_to_bf16(Device::CPU, r.data(), h.data(), int64_t(r.size()), nullptr);
  std::vector<float> back(r.size(), 1.f);
  k::bf16_to_f32(Device::CPU, h.data(), back.data(), int64_t(r.size()), /*accumulate=*/true,
                 nullptr);
  double worst = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    CHECK(h[i] == Bf16F::from_float(r[i]));
    const double b = double(back[i]) - 1.0;  // accumulated onto 1
    worst = std::max(
        worst, std::fabs(double(Bf16F::to_float(h[i])) - double(r[i])) / std::fabs(double(r[i])));
    CHECK(std::fabs(b - double(Bf16F::to_float(h[i]))) <= 1e-6 * (1 + std::fabs(b)));
  }
  CHECK(worst <= precision_operand_error(Precision::BF16));
  CHECK(worst > precision_operand_error(Precision::BF16) / 4);  // and it does round
}

TEST_CASE("precision: names, parsing, operand error bounds, scopes nest per thread") {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16})
    CHECK(parse_precision(precision_name(p)) == p);
  CHECK_THROWS_WITH_AS(parse_precision("fp16"),
                       doctest::Contains("expected fp32, tf32 or bf16, got 'fp16'"), Error);
  CHECK(precision_operand_error(Precision::FP32) == std::ldexp(1.0, -24));
  CHECK(precision_operand_error(Precision::TF32) == std::ldexp(1.0, -10));
  CHECK(precision_operand_error(Precision::BF16) == std::ldexp(1.0, -8));
  CHECK(current_precision() == Precision::FP32);
  {
    PrecisionScope a(Precision::TF32);
    CHECK(current_precision() == Precision::TF32);
    {
      PrecisionScope b(Precision::BF16);
      CHECK(current_precision() == Precision::BF16);
    }
    CHECK(current_precision() == Precision::TF32);
  }
  CHECK(current_precision() == Precision::FP32);
}

TEST_CASE("select routes values and gradients by the mask") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {4});
  Tensor b = Tensor::from_vector({10, 20, 30, 40}, {4});
  a.set_requires_grad();
  b.set_requires_grad();
  Tensor m = Tensor::empty({4}, Device::CPU, DType::U8);
  uint8_t mv[4] = {1, 0, 0, 1};
  std::copy(mv, mv + 4, m.data_as<uint8_t>());
  Tensor y = ops::select(m, a, b);
  CHECK(y.to_vector() == std::vector<float>{1, 20, 30, 4});
  backward(ops::sum(ops::mul_scalar(y, 2.f)));
  CHECK(a.grad().to_vector() == std::vector<float>{2, 0, 0, 2});
  CHECK(b.grad().to_vector() == std::vector<float>{0, 2, 2, 0});
}

TEST_CASE("tape: no-grad guard, accumulation across uses, cleared after backward") {
  Tensor x = Tensor::from_vector({1, -2, 3}, {3});
  x.set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = ops::relu(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(tape_size() == 0);
  }
  Tensor y = ops::add(ops::mul_scalar(x, 2.f), ops::mul_scalar(x, 3.f));  // dy/dx = 5
  CHECK(tape_size() == 3);
  backward(ops::sum(y));
  CHECK(tape_size() == 0);
  CHECK(x.grad().to_vector() == std::vector<float>{5, 5, 5});
  backward(ops::sum(ops::mul_scalar(x, 1.f)));  // accumulates
  CHECK(x.grad().to_vector() == std::vector<float>{6, 6, 6});
}

TEST_CASE("tape: an add hands its output gradient on without copying, and nothing aliases") {
  // out = (a + b) + 3a - c: the outer add passes its gradient to the inner add's output, which
  // passes it to a; later contributions to a's gradient (3·seed, from the other branch) must not
  // leak into b's, and sub's negated copy must stay separate.
  Tensor a = test::randn_cpu({4, 5}, 1).set_requires_grad();
  Tensor b = test::randn_cpu({4, 5}, 2).set_requires_grad();
  Tensor c = test::randn_cpu({4, 5}, 3).set_requires_grad();
  Tensor seed = test::randn_cpu({4, 5}, 4);
  Tensor out = ops::sub(ops::add(ops::add(a, b), ops::mul_scalar(a, 3.f)), c);
  backward(out, seed);
  const auto sv = seed.to_vector();
  std::vector<float> four(sv), neg(sv);
  for (size_t i = 0; i < sv.size(); ++i) {
    four[i] = 3.f * sv[i] + sv[i];
    neg[i] = -sv[i];
  }
  CHECK(a.grad().to_vector() == four);
  CHECK(b.grad().to_vector() == sv);
  CHECK(c.grad().to_vector() == neg);
  CHECK(seed.to_vector() == sv);  // the caller's seed is never adopted
  // x + x: both contributions land in one gradient.
  Tensor x = test::randn_cpu({3}, 5).set_requires_grad();
  backward(ops::add(x, x), Tensor::full({3}, 1.5f));
  CHECK(x.grad().to_vector() == std::vector<float>{3.f, 3.f, 3.f});
}

TEST_CASE("bad input: elementwise shape, dtype and device mismatches name the op and shapes") {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(ops::add(a, b),
                       doctest::Contains("[add] expected matching shapes, got (2, 3) and (3, 2)"),
                       Error);
  Tensor i8 = Tensor::zeros({2, 3}, Device::CPU, DType::I8);
  CHECK_THROWS_WITH_AS(ops::relu(i8), doctest::Contains("[relu] expected f32"), Error);
  CHECK_THROWS_WITH_AS(ops::reshape(a, {4}),
                       doctest::Contains("[reshape] cannot reshape (2, 3) to (4)"), Error);
  if (!cuda_available()) {
    CHECK_THROWS_WITH_AS(Tensor::zeros({2}, Device::CUDA), doctest::Contains("CUDA"), Error);
  }
}

TEST_CASE("Philox: reproducible, offset-consistent, sane moments") {
  ops::Generator g1(42), g2(42);
  Tensor a = ops::randn({1000}, g1);
  Tensor b = ops::randn({1000}, g2);
  CHECK(a.to_vector() == b.to_vector());
  // Drawing 8 then 8 equals drawing 16 at once (offsets advance by whole counters).
  ops::Generator g3(7), g4(7);
  auto p1 = ops::rand({8}, g3).to_vector();
  auto p2 = ops::rand({8}, g3).to_vector();
  auto all = ops::rand({16}, g4).to_vector();
  for (int i = 0; i < 8; ++i) {
    CHECK(all[size_t(i)] == p1[size_t(i)]);
    CHECK(all[size_t(8 + i)] == p2[size_t(i)]);
  }
  ops::Generator g5(3);
  auto n = ops::randn({200000}, g5).to_vector();
  double m = 0, v = 0;
  for (float x : n) m += x;
  m /= double(n.size());
  for (float x : n) v += (x - m) * (x - m);
  v /= double(n.size());
  CHECK(std::fabs(m) < 0.01);
  CHECK(std::fabs(v - 1.0) < 0.01);
  ops::Generator g6(5);
  auto mask = ops::bernoulli_mask({100000}, 0.5f, g6).to_i8();
  double ones = 0;
  for (auto x : mask) ones += x;
  CHECK(std::fabs(ones / 100000 - 0.5) < 0.01);
}

TEST_CASE("Philox parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  ops::Generator gc(11), gg(11);
  auto c = ops::randn({4099}, gc).to_vector();
  auto g = ops::randn({4099}, gg, Device::CUDA).to_vector();
  CHECK(test::max_abs_diff(c, g) < 1e-6);
  auto uc = ops::rand({4099}, gc).to_vector();
  auto ug = ops::rand({4099}, gg, Device::CUDA).to_vector();
  CHECK(uc == ug);
}

TEST_CASE("host memory: large blocks are cached per size class and reused, small ones are not") {
  if (!host_cache_enabled()) {
    MESSAGE("host block cache off (GENIE_HOST_CACHE=0): nothing to check");
    return;
  }
  host_empty_cache();
  CHECK(host_cached_bytes() == 0);
  const size_t big = (size_t(1) << 20) + 12345;  // class: 1 MiB + 256 KiB steps -> 1.25 MiB
  void* a = device_alloc(Device::CPU, big);
  std::memset(a, 7, big);
  device_free(Device::CPU, a, big);
  CHECK(host_cached_bytes() == (size_t(5) << 18));
  void* b = device_alloc(Device::CPU, (size_t(1) << 20) + 200000);  // same class: the same block
  CHECK(b == a);
  CHECK(host_cached_bytes() == 0);
  void* c = device_alloc(Device::CPU, size_t(3) << 20);  // another class: a new block
  CHECK(c != a);
  device_free(Device::CPU, b, (size_t(1) << 20) + 200000);
  device_free(Device::CPU, c, size_t(3) << 20);
  CHECK(host_cached_bytes() == (size_t(5) << 18) + (size_t(3) << 20));
  void* s = device_alloc(Device::CPU, 1000);  // small: plain malloc, never cached
  device_free(Device::CPU, s, 1000);
  CHECK(host_cached_bytes() == (size_t(5) << 18) + (size_t(3) << 20));
  // Tensors go through it: a freed activation's block serves the next one of its size.
  host_empty_cache();
  const float* first;
  {
    Tensor t = Tensor::zeros({128, 16, 28, 28});
    first = t.data();
  }
  Tensor u = Tensor::empty({128, 16, 28, 28});
  CHECK(u.data() == first);
  host_empty_cache();
  CHECK(host_cached_bytes() == 0);
}

TEST_CASE("host memory statistics: blocks in use and the peak since a reset") {
  const HostMemStats s0 = host_mem_stats();
  host_reset_peak();
  CHECK(host_mem_stats().peak_allocated == s0.allocated);
  const size_t big = size_t(3) << 20, blk = size_t(3) << 20;  // exactly a size class
  void* a = device_alloc(Device::CPU, big);
  void* b = device_alloc(Device::CPU, big);
  CHECK(host_mem_stats().allocated == s0.allocated + 2 * blk);
  device_free(Device::CPU, a, big);
  CHECK(host_mem_stats().allocated == s0.allocated + blk);  // a cached block is not in use
  CHECK(host_mem_stats().peak_allocated == s0.allocated + 2 * blk);
  host_reset_peak();
  CHECK(host_mem_stats().peak_allocated == s0.allocated + blk);
  {
    Tensor t = Tensor::empty({256, 1024});  // 1 MiB
    CHECK(host_mem_stats().allocated == s0.allocated + blk + (size_t(1) << 20));
  }
  device_free(Device::CPU, b, big);
  CHECK(host_mem_stats().allocated == s0.allocated);
  CHECK(host_mem_stats().peak_allocated == s0.allocated + blk + (size_t(1) << 20));
}

TEST_CASE("dispatch count: every kernel call through a dispatcher is counted") {
  Tensor a = Tensor::zeros({5});
  const uint64_t c0 = k::dispatch_count().load();
  k::fill(Device::CPU, a.data(), 2.f, 5, nullptr);
  k::axpby(Device::CPU, 1.f, a.data(), 1.f, a.data(), 5, nullptr);
  CHECK(k::dispatch_count().load() - c0 == 2);
  CHECK(a.to_vector() == std::vector<float>(5, 4.f));
}

TEST_CASE(
    "elementwise: SiLU, hardswish, hardsigmoid, GELU match PyTorch (values, gradients at +-3)") {
  // The hard* inputs step by 0.25 through -3 and 3, where PyTorch's backward picks a side.
  for (const std::string n : {"silu", "hardswish", "hardsigmoid", "gelu"}) {
    INFO(n);
    using Op = Tensor (*)(const Tensor&);
    const Op f = n == "silu"          ? ops::silu
                 : n == "hardswish"   ? ops::hardswish
                 : n == "hardsigmoid" ? ops::hardsigmoid
                                      : ops::gelu;
    Tensor x = test::golden(n + ".x").tensor(true);
    Tensor y = f(x);
    test::check_golden(y, n + ".y", 1e-6);
    backward(y, test::golden(n + ".dy").tensor());
    test::check_golden(x.grad(), n + ".dx", 1e-6);
  }
}

TEST_CASE("elementwise: SiLU, hardswish, hardsigmoid, GELU gradients match finite differences") {
  // Inputs over [-6, 6], kept 0.05 away from the kinks of the hard* ops at -3 and 3.
  Tensor x = test::rand_uniform_cpu({4, 5, 6}, 11, -6.f, 6.f);
  float* p = x.data();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (std::fabs(std::fabs(p[i]) - 3.f) < 0.05f) p[i] += 0.1f;
  x.set_requires_grad();
  using F = std::function<Tensor(const std::vector<Tensor>&)>;
  std::vector<std::pair<const char*, F>> cases = {
      {"silu", [](auto& v) { return ops::silu(v[0]); }},
      {"hardswish", [](auto& v) { return ops::hardswish(v[0]); }},
      {"hardsigmoid", [](auto& v) { return ops::hardsigmoid(v[0]); }},
      {"gelu", [](auto& v) { return ops::gelu(v[0]); }},
  };
  for (auto& [name, f] : cases) {
    INFO(std::string(name));
    CHECK(test::gradcheck(f, {x}, 1e-2) < 2e-3);
  }
}

TEST_CASE("elementwise: the new activations propagate NaN, and a second use accumulates") {
  const float nan = std::nanf("");
  for (const auto& f : {ops::silu, ops::hardswish, ops::hardsigmoid, ops::gelu}) {
    const auto v = f(Tensor::from_vector({nan, 0.f}, {2})).to_vector();
    CHECK(std::isnan(v[0]));
  }
  // Two uses of x: the second backward contribution is added to the first.
  Tensor x = Tensor::from_vector({-3.f, -1.f, 0.5f, 3.f}, {4});
  x.set_requires_grad();
  backward(ops::sum(ops::add(ops::hardswish(x), ops::hardsigmoid(x))));
  const float sixth = 1.f / 6.f;
  CHECK(x.grad().to_vector() ==
        std::vector<float>{-0.5f, -1.f / 3.f + 0.5f + sixth, 0.5f / 3.f + 0.5f + sixth, 1.5f});
}

TEST_CASE("elementwise: SiLU, hardswish, hardsigmoid, GELU parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  // Random values plus the exact kinks of the hard* ops (both backends share the functors; only
  // expf/erff may differ in the last bit).
  Tensor x = test::randn_cpu({3, 7, 11, 13}, 21, 3.f);
  float* p = x.data();
  const float kinks[] = {-3.f, 3.f, 0.f, -6.f, 6.f};
  for (int i = 0; i < 5; ++i) p[i * 97] = kinks[i];
  x.set_requires_grad();
  for (const auto& f : {ops::silu, ops::hardswish, ops::hardsigmoid, ops::gelu})
    test::check_parity(
        "activation", [&](const std::vector<Tensor>& v) { return f(v[0]); }, {x}, 2e-6);
}
