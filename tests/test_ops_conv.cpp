// conv2d and linear: forward and gradients against PyTorch goldens, finite-difference gradients,
// bad-input errors, CPU-vs-CUDA parity.
#include <omp.h>

#include "kernels/conv.h"
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

namespace {
struct ConvCase {
  const char* name;
  int64_t stride, pad, groups;
  bool bias;
};
const ConvCase kConvCases[] = {
    {"conv_basic", 1, 1, 1, true},       {"conv_stride2", 2, 1, 1, false},
    {"conv_groups", 1, 0, 2, true},      {"conv_dw", 1, 1, 4, true},
    {"conv_dw_mult2_s2", 2, 1, 3, true}, {"conv_1x1", 1, 0, 1, true},
    {"conv_1x1_s2", 2, 0, 1, false},     {"conv_5x5_rect", 1, 2, 1, true},
    {"conv_1ch", 1, 1, 1, false},        {"conv_s3_pad2", 3, 2, 1, true},
};
std::string key(const char* c, const char* t) { return std::string(c) + "." + t; }
}  // namespace

TEST_CASE("conv2d forward and gradients match PyTorch (groups, depthwise, stride, pad, 1x1)") {
  for (const ConvCase& c : kConvCases) {
    INFO(c.name);
    Tensor x = golden(key(c.name, "x")).tensor(true);
    Tensor w = golden(key(c.name, "w")).tensor(true);
    Tensor b = c.bias ? golden(key(c.name, "b")).tensor(true) : Tensor();
    Tensor y = ops::conv2d(x, w, b, c.stride, c.pad, c.groups);
    check_golden(y, key(c.name, "y"), 1e-5);
    backward(y, golden(key(c.name, "dy")).tensor());
    check_golden(x.grad(), key(c.name, "dx"), 1e-5);
    check_golden(w.grad(), key(c.name, "dw"), 1e-5);
    if (c.bias) check_golden(b.grad(), key(c.name, "db"), 1e-5);
  }
}

TEST_CASE("conv2d gradients match finite differences; accumulation adds") {
  for (const ConvCase& c : kConvCases) {
    INFO(c.name);
    Tensor x = golden(key(c.name, "x")).tensor(true);
    Tensor w = golden(key(c.name, "w")).tensor(true);
    Tensor b = c.bias ? golden(key(c.name, "b")).tensor(true) : Tensor();
    std::vector<Tensor> in = {x, w};
    if (c.bias) in.push_back(b);
    auto f = [&](const std::vector<Tensor>& v) {
      return ops::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), c.stride, c.pad, c.groups);
    };
    CHECK(test::gradcheck(f, in, 1e-2, 48) < 2e-3);
  }
  // Using the same input twice accumulates both contributions (accumulate = true paths).
  Tensor x = golden("conv_basic.x").tensor(true);
  Tensor w = golden("conv_basic.w").tensor(true);
  Tensor b = golden("conv_basic.b").tensor(true);
  Tensor y1 = ops::conv2d(x, w, b, 1, 1, 1);
  Tensor y2 = ops::conv2d(x, w, b, 1, 1, 1);
  backward(ops::add(y1, y2), golden("conv_basic.dy").tensor());
  auto twice = [](std::vector<float> v) {
    for (float& e : v) e *= 2.f;
    return v;
  };
  CHECK(test::rel_err(x.grad().to_vector(), twice(golden("conv_basic.dx").v)) < 1e-5);
  CHECK(test::rel_err(w.grad().to_vector(), twice(golden("conv_basic.dw").v)) < 1e-5);
  CHECK(test::rel_err(b.grad().to_vector(), twice(golden("conv_basic.db").v)) < 1e-5);
}

TEST_CASE("conv2d matches a direct double-precision loop at ResNet-like sizes, deterministically") {
  // Larger than the goldens: >= 8 channels per group takes the stride-1 flipped-filter data
  // gradient, batch 20 the multi-chunk filter-gradient reduction, and all of them OpenMP.
  struct Case {
    int64_t N, C, H, K, R, stride, pad, groups;
  };
  const Case cases[] = {{20, 8, 9, 12, 3, 2, 1, 1},
                        {20, 8, 9, 12, 3, 1, 1, 1},
                        {6, 16, 7, 8, 3, 1, 0, 2},
                        {6, 8, 8, 8, 5, 1, 2, 1},
                        {6, 16, 7, 16, 1, 1, 0, 1},
                        {4, 16, 6, 16, 3, 1, 2, 1},
                        // K <= 3 (direct few-output path, the Genie-D generator's last conv)
                        {20, 16, 9, 1, 3, 1, 1, 1},
                        {6, 8, 8, 3, 3, 1, 2, 1},
                        // K = 4, 2x2, pad 1: the generator's fused upsample + conv to 1 channel
                        {20, 16, 9, 4, 2, 1, 1, 1}};
  for (const Case& c : cases) {
    INFO("N ", c.N, " C ", c.C, " H ", c.H, " K ", c.K, " R ", c.R, " stride ", c.stride, " pad ",
         c.pad, " groups ", c.groups);
    const int64_t Cg = c.C / c.groups, Kg = c.K / c.groups, H = c.H, R = c.R;
    const int64_t P = (H + 2 * c.pad - R) / c.stride + 1;
    Tensor x = test::randn_cpu({c.N, c.C, H, H}, 5);
    Tensor w = test::randn_cpu({c.K, Cg, R, R}, 6, 0.2f);
    Tensor dy = test::randn_cpu({c.N, c.K, P, P}, 7);
    Tensor b = test::randn_cpu({c.K}, 8);
    x.set_requires_grad();
    w.set_requires_grad();
    b.set_requires_grad();
    Tensor y = ops::conv2d(x, w, b, c.stride, c.pad, c.groups);
    backward(y, dy);
    const auto yv = y.to_vector(), dxv = x.grad().to_vector(), dwv = w.grad().to_vector();
    const auto xv = x.to_vector(), wv = w.to_vector(), dyv = dy.to_vector(), bv = b.to_vector();
    std::vector<double> yr(yv.size(), 0.0), dxr(xv.size(), 0.0), dwr(wv.size(), 0.0),
        dbr(bv.size(), 0.0);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < c.K; ++k)
        for (int64_t pq = 0; pq < P * P; ++pq) {
          yr[size_t((n * c.K + k) * P * P + pq)] = bv[size_t(k)];
          dbr[size_t(k)] += dyv[size_t((n * c.K + k) * P * P + pq)];
        }
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < c.K; ++k)
        for (int64_t p = 0; p < P; ++p)
          for (int64_t q = 0; q < P; ++q)
            for (int64_t cc = 0; cc < Cg; ++cc)
              for (int64_t r = 0; r < R; ++r)
                for (int64_t s = 0; s < R; ++s) {
                  const int64_t ih = p * c.stride - c.pad + r, iw = q * c.stride - c.pad + s;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= H) continue;
                  const int64_t ci = (k / Kg) * Cg + cc;
                  const size_t xi = size_t(((n * c.C + ci) * H + ih) * H + iw);
                  const size_t wi = size_t(((k * Cg + cc) * R + r) * R + s);
                  const size_t yi = size_t(((n * c.K + k) * P + p) * P + q);
                  yr[yi] += double(xv[xi]) * wv[wi];
                  dxr[xi] += double(dyv[yi]) * wv[wi];
                  dwr[wi] += double(dyv[yi]) * xv[xi];
                }
    auto to_f = [](const std::vector<double>& d) { return std::vector<float>(d.begin(), d.end()); };
    CHECK(test::rel_err(yv, to_f(yr)) < 1e-5);
    CHECK(test::rel_err(dxv, to_f(dxr)) < 1e-5);
    CHECK(test::rel_err(dwv, to_f(dwr)) < 1e-5);
    CHECK(test::rel_err(b.grad().to_vector(), to_f(dbr)) < 1e-5);
    // Bit-identical on a second run.
    x.zero_grad();
    w.zero_grad();
    Tensor y2 = ops::conv2d(x, w, b, c.stride, c.pad, c.groups);
    backward(y2, dy);
    CHECK(y2.to_vector() == yv);
    CHECK(x.grad().to_vector() == dxv);
    CHECK(w.grad().to_vector() == dwv);
    // ... and with a single thread (the filter-gradient partition depends on N only).
    {
      const int prev = omp_get_max_threads();
      omp_set_num_threads(1);
      Tensor x1 = x.detach().clone().set_requires_grad(),
             w1 = w.detach().clone().set_requires_grad();
      Tensor y1 = ops::conv2d(x1, w1, b, c.stride, c.pad, c.groups);
      backward(y1, dy);
      omp_set_num_threads(prev);
      CHECK(y1.to_vector() == yv);
      CHECK(x1.grad().to_vector() == dxv);
      CHECK(w1.grad().to_vector() == dwv);
    }
    // A third pass accumulates into the existing gradients.
    backward(ops::conv2d(x, w, b, c.stride, c.pad, c.groups), dy);
    auto twice = [](std::vector<float> v) {
      for (float& e : v) e *= 2.f;
      return v;
    };
    CHECK(test::rel_err(x.grad().to_vector(), twice(dxv)) < 1e-6);
    CHECK(test::rel_err(w.grad().to_vector(), twice(dwv)) < 1e-6);
  }
}

TEST_CASE("upsample2x_conv3x3 equals upsample_nearest2x then conv2d (values and gradients)") {
  struct Case {
    int64_t N, C, H, W, K;
    bool bias;
  };
  // The generator's shapes (128 -> 64 and 64 -> 1 channels) scaled down; C >= 8 takes the
  // flipped-filter data gradient, 1x1 inputs the all-padding border.
  const Case cases[] = {{3, 12, 7, 7, 8, true},
                        {20, 16, 5, 6, 1, true},
                        {2, 3, 4, 9, 5, false},
                        {2, 5, 1, 1, 2, true}};
  for (const Case& c : cases) {
    INFO("N ", c.N, " C ", c.C, " H ", c.H, " W ", c.W, " K ", c.K, " bias ", c.bias);
    Tensor x = test::randn_cpu({c.N, c.C, c.H, c.W}, 11).set_requires_grad();
    Tensor w = test::randn_cpu({c.K, c.C, 3, 3}, 12, 0.3f).set_requires_grad();
    Tensor b = c.bias ? test::randn_cpu({c.K}, 13).set_requires_grad() : Tensor();
    Tensor dy = test::randn_cpu({c.N, c.K, 2 * c.H, 2 * c.W}, 14);
    Tensor y = ops::upsample2x_conv3x3(x, w, b);
    REQUIRE(y.shape() == Shape{c.N, c.K, 2 * c.H, 2 * c.W});
    backward(y, dy);
    Tensor x2 = x.detach().clone().set_requires_grad(), w2 = w.detach().clone().set_requires_grad();
    Tensor b2 = c.bias ? b.detach().clone().set_requires_grad() : Tensor();
    Tensor y2 = ops::conv2d(ops::upsample_nearest2x(x2), w2, b2, 1, 1);
    backward(y2, dy);
    CHECK(test::rel_err(y.to_vector(), y2.to_vector()) < 1e-5);
    CHECK(test::rel_err(x.grad().to_vector(), x2.grad().to_vector()) < 1e-5);
    CHECK(test::rel_err(w.grad().to_vector(), w2.grad().to_vector()) < 1e-5);
    if (c.bias) CHECK(test::rel_err(b.grad().to_vector(), b2.grad().to_vector()) < 1e-5);
  }
  Tensor x = test::randn_cpu({2, 3, 3, 4}, 21).set_requires_grad();
  Tensor w = test::randn_cpu({2, 3, 3, 3}, 22, 0.3f).set_requires_grad();
  Tensor b = test::randn_cpu({2}, 23).set_requires_grad();
  auto f = [](const std::vector<Tensor>& v) { return ops::upsample2x_conv3x3(v[0], v[1], v[2]); };
  CHECK(test::gradcheck(f, {x, w, b}, 1e-2, 48) < 2e-3);
  CHECK_THROWS_WITH_AS(
      ops::upsample2x_conv3x3(Tensor::zeros({2, 6, 5, 5}), Tensor::zeros({8, 6, 5, 5}), Tensor()),
      doctest::Contains("[upsample2x_conv3x3] expected weight (K, C, 3, 3) with "
                        "C = 6, got (8, 6, 5, 5)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::upsample2x_conv3x3(Tensor::zeros({2, 6, 5, 5}),
                                               Tensor::zeros({8, 6, 3, 3}), Tensor::zeros({7})),
                       doctest::Contains("[upsample2x_conv3x3] expected bias (8), got (7)"), Error);
}

TEST_CASE(
    "memory: the tape, frozen-weight convolutions and ReLUs keep no activation they do not need") {
  // (1, 4, 64, 64) floats = 64 KiB: exactly one host size class, so the counts below are exact.
  // The ReLU's gate: 16384 bits = 2 KiB (a 64-byte multiple, exact too).
  const size_t blk = size_t(64) << 10, bits = size_t(2) << 10;
  Tensor x = test::randn_cpu({1, 4, 64, 64}, 3).set_requires_grad();
  Tensor w = test::randn_cpu({4, 4, 3, 3}, 4, 0.2f);
  for (bool w_grad : {false, true}) {
    INFO("weight requires grad: ", w_grad);
    w.set_requires_grad(w_grad);
    const size_t before = host_mem_stats().allocated;
    Tensor y;
    {
      Tensor h = ops::relu(ops::mul_scalar(x, 2.f));  // two intermediates, 64 KiB each
      y = ops::conv2d(h, w, Tensor(), 1, 1);
    }
    // Kept: y, the ReLU's 1-bit gate, and its output h only for the filter gradient when w
    // learns. Not kept: the scaled input (only its gradient slot is on the tape).
    CHECK(host_mem_stats().allocated == before + (w_grad ? 2 : 1) * blk + bits);
    backward(ops::sum(y));
    CHECK(x.grad().defined());
    CHECK(w_grad == w.grad().defined());
    x.zero_grad();
    w.zero_grad();
  }
  {  // a frozen convolution of a leaf: after the forward, only y is new
    w.set_requires_grad(false);
    const size_t before = host_mem_stats().allocated;
    Tensor y;
    {
      Tensor h = ops::mul_scalar(x, 2.f);
      y = ops::conv2d(h, w, Tensor(), 1, 1);
    }
    CHECK(host_mem_stats().allocated == before + blk);
  }
}

TEST_CASE("memory on the GPU: a frozen convolution keeps no activation it does not need [gpu]") {
  GENIE_REQUIRE_GPU();
  // (1, 4, 64, 64) floats, one CUDA size class; the ReLU's gate, 16384 bits = 2 KiB, another.
  const size_t blk = size_t(64) << 10, bits = size_t(2) << 10;
  Tensor x = test::randn_cpu({1, 4, 64, 64}, 3).to(Device::CUDA).set_requires_grad();
  Tensor w = test::randn_cpu({4, 4, 3, 3}, 4, 0.2f).to(Device::CUDA);
  k::conv2d_fwd(Device::CUDA, k::ConvShape{1, 4, 64, 64, 4, 3, 3, 1, 1, 1}, x.data(), w.data(),
                nullptr, Tensor::empty({1, 4, 64, 64}, Device::CUDA).data(), nullptr);  // warm-up
  const size_t before = cuda_mem_stats().allocated;
  Tensor y;
  {
    Tensor h = ops::relu(ops::mul_scalar(x, 2.f));
    y = ops::conv2d(h, w, Tensor(), 1, 1);
  }
  CHECK(cuda_mem_stats().allocated == before + blk + bits);  // y and the ReLU's gate bits
  backward(ops::sum(y));
  CHECK(x.grad().defined());
}

TEST_CASE("linear forward and gradients match PyTorch and finite differences") {
  for (const char* c : {"linear", "linear_nobias"}) {
    INFO(c);
    const bool has_b = std::string(c) == "linear";
    Tensor x = golden(key(c, "x")).tensor(true);
    Tensor w = golden(key(c, "w")).tensor(true);
    Tensor b = has_b ? golden(key(c, "b")).tensor(true) : Tensor();
    Tensor y = ops::linear(x, w, b);
    check_golden(y, key(c, "y"), 1e-6);
    backward(y, golden(key(c, "dy")).tensor());
    check_golden(x.grad(), key(c, "dx"), 1e-6);
    check_golden(w.grad(), key(c, "dw"), 1e-6);
    if (has_b) check_golden(b.grad(), key(c, "db"), 1e-6);
    std::vector<Tensor> in = {x, w};
    if (has_b) in.push_back(b);
    auto f = [](const std::vector<Tensor>& v) {
      return ops::linear(v[0], v[1], v.size() > 2 ? v[2] : Tensor());
    };
    CHECK(test::gradcheck(f, in, 1e-2) < 1e-3);
  }
  // Large enough to take the multi-threaded GEMM split path (rows, then columns).
  for (auto dims : {std::vector<int64_t>{300, 200, 64}, std::vector<int64_t>{16, 150, 900}}) {
    const int64_t N = dims[0], in = dims[1], out = dims[2];
    Tensor x = test::randn_cpu({N, in}, 1), w = test::randn_cpu({out, in}, 2);
    auto y = ops::linear(x, w, Tensor()).to_vector();
    auto xv = x.to_vector(), wv = w.to_vector();
    double worst = 0;
    for (int64_t i = 0; i < N; i += 7)
      for (int64_t j = 0; j < out; ++j) {
        double s = 0;
        for (int64_t t = 0; t < in; ++t)
          s += double(xv[size_t(i * in + t)]) * wv[size_t(j * in + t)];
        worst = std::max(worst, std::fabs(s - y[size_t(i * out + j)]) / std::sqrt(double(in)));
      }
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("bad input: conv2d and linear name the op and both shapes") {
  Tensor x = Tensor::zeros({2, 6, 5, 5});
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 4, 3, 3}), Tensor(), 1, 1, 2),
                       doctest::Contains("[conv2d] expected weight (K, C/groups, R, S) with "
                                         "C/groups = 3, got (8, 4, 3, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 6, 3, 3}), Tensor(), 1, 1, 4),
                       doctest::Contains("divisible by groups = 4"), Error);
  CHECK_THROWS_WITH_AS(
      ops::conv2d(Tensor::zeros({6, 5, 5}), Tensor::zeros({8, 6, 3, 3}), Tensor(), 1, 1),
      doctest::Contains("[conv2d] expected input (N, C, H, W) with 4 dimensions, got (6, 5, 5)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 6, 3, 3}), Tensor::zeros({7}), 1, 1),
                       doctest::Contains("[conv2d] expected bias (8), got (7)"), Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 6, 9, 9}), Tensor(), 1, 1),
                       doctest::Contains("[conv2d] expected a kernel that fits"), Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 6, 3, 3}), Tensor(), 0, 1),
                       doctest::Contains("stride >= 1"), Error);
  CHECK_THROWS_WITH_AS(
      ops::conv2d(x, Tensor::zeros({8, 6, 3, 3}, Device::CPU, DType::I8), Tensor(), 1, 1),
      doctest::Contains("[conv2d] expected weight (K, C/groups, R, S) f32"), Error);
  CHECK_THROWS_WITH_AS(
      ops::linear(Tensor::zeros({4, 7}), Tensor::zeros({3, 6}), Tensor()),
      doctest::Contains(
          "[linear] expected weight (out, in) with in = 7, got (3, 6) for input (4, 7)"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::linear(Tensor::zeros({4, 7}), Tensor::zeros({3, 7}), Tensor::zeros({4})),
      doctest::Contains("[linear] expected bias (3), got (4)"), Error);
  if (cuda_available()) {
    CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 6, 3, 3}, Device::CUDA), Tensor(), 1, 1),
                         doctest::Contains("[conv2d] expected weight on cpu"), Error);
  }
}

TEST_CASE("conv2d and linear parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  for (const ConvCase& c : kConvCases) {
    std::vector<Tensor> in = {golden(key(c.name, "x")).tensor(true),
                              golden(key(c.name, "w")).tensor(true)};
    if (c.bias) in.push_back(golden(key(c.name, "b")).tensor(true));
    test::check_parity(
        c.name,
        [&](const std::vector<Tensor>& v) {
          return ops::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), c.stride, c.pad, c.groups);
        },
        in, 1e-4);
  }
  // A ResNet-20-sized layer (cuDNN picks different algorithms than for the tiny cases).
  test::check_parity(
      "conv 32x32 14x14 batch 16",
      [](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], Tensor(), 1, 1, 1); },
      {test::randn_cpu({16, 32, 14, 14}, 1).set_requires_grad(),
       test::randn_cpu({32, 32, 3, 3}, 2, 0.1f).set_requires_grad()},
      1e-4);
  test::check_parity(
      "linear", [](const std::vector<Tensor>& v) { return ops::linear(v[0], v[1], v[2]); },
      {golden("linear.x").tensor(true), golden("linear.w").tensor(true),
       golden("linear.b").tensor(true)},
      1e-4);
}
