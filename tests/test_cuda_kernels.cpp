// CPU-vs-CUDA parity of every kernel with a CUDA driver written in kernels/*.cu by the CUDA
// backend (elementwise, Philox, Adam, reductions, GEMM, convolution, batch norm, spatial, losses,
// moment statistics): the same inputs go through k::fn(Device::CPU, ...) and
// k::fn(Device::CUDA, ...) and the outputs are compared (max |diff| / max |cpu|). Each case starts
// with GENIE_REQUIRE_GPU() and is counted as skipped without a GPU. Accumulate flags, null
// optional pointers, multi-block reductions and edge sizes are covered explicitly.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels_all.h"
#include "kernels/stats.h"
#include "test_util.h"

using namespace genie;

namespace {

constexpr Device kCpu = Device::CPU, kGpu = Device::CUDA;

// A CPU tensor and a CUDA copy with the same contents; each backend writes its own.
struct Twin {
  Tensor c, g;
  explicit Twin(const Tensor& cpu) : c(cpu.clone()), g(cpu.to(kGpu)) {}
  float* f(Device d) { return (d == kCpu ? c : g).data(); }
  template <class T>
  T* as(Device d) {
    return (d == kCpu ? c : g).template data_as<T>();
  }
  double err() const { return test::rel_err(g.to_vector(), c.to_vector()); }
};

Twin randn(const Shape& s, uint64_t seed, float std = 1.f) {
  return Twin(test::randn_cpu(s, seed, std));
}
Twin zeros(const Shape& s) { return Twin(Tensor::zeros(s)); }
Twin filled(const Shape& s, float v) { return Twin(Tensor::full(s, v)); }
Twin labels(const std::vector<int32_t>& v) {
  return Twin(Tensor::from_i32(v, {int64_t(v.size())}));
}

template <class F>
void both(F&& f) {
  f(kCpu);
  f(kGpu);
}

#define CHECK_TWIN(t, tol)       \
  do {                           \
    const double e_ = (t).err(); \
    INFO(#t " rel err " << e_);  \
    CHECK(e_ <= (tol));          \
  } while (0)

}  // namespace

TEST_CASE("cuda parity: unary forward/backward for every op, overwrite and accumulate [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t n = 10007;  // not a multiple of the block size
  using k::UnaryOp;
  for (UnaryOp op :
       {UnaryOp::Relu, UnaryOp::Relu6, UnaryOp::LeakyRelu, UnaryOp::Tanh, UnaryOp::Sigmoid,
        UnaryOp::Scale, UnaryOp::Square, UnaryOp::Abs, UnaryOp::AddScalar, UnaryOp::Exp}) {
    INFO(k::unary_name(op));
    const float a = 0.3f;
    Twin x = randn({n}, 1, 4.f), y = zeros({n}), dy = randn({n}, 2), dx = randn({n}, 3);
    both([&](Device d) { k::unary_fwd(d, op, a, x.f(d), y.f(d), n, nullptr); });
    CHECK_TWIN(y, 2e-6);
    both([&](Device d) {
      k::unary_bwd(d, op, a, x.f(d), y.f(d), dy.f(d), dx.f(d), n, /*accumulate=*/true, nullptr);
    });
    CHECK_TWIN(dx, 2e-6);
    both([&](Device d) {
      k::unary_bwd(d, op, a, x.f(d), y.f(d), dy.f(d), dx.f(d), n, /*accumulate=*/false, nullptr);
    });
    CHECK_TWIN(dx, 2e-6);
  }
}

TEST_CASE("cuda parity: gated ReLU kernels (1-bit gates), overwrite and accumulate [gpu]") {
  GENIE_REQUIRE_GPU();
  using k::UnaryOp;
  for (int64_t n : {int64_t(1), int64_t(31), int64_t(33), int64_t(10007), int64_t(1) << 21}) {
    for (auto [op, a] : std::vector<std::pair<UnaryOp, float>>{
             {UnaryOp::Relu, 0.f}, {UnaryOp::Relu6, 0.f}, {UnaryOp::LeakyRelu, 0.2f}}) {
      INFO(k::unary_name(op), " n ", n);
      const int64_t nw = k::gate_words(n);
      Twin x = randn({n}, 1, 4.f), y = zeros({n}), dy = randn({n}, 2), dx = randn({n}, 3);
      Twin bits(Tensor::zeros({nw}, kCpu, DType::I32));
      both([&](Device d) {
        k::unary_fwd_gated(d, op, a, x.f(d), y.f(d), bits.as<uint32_t>(d), n, nullptr);
      });
      CHECK(y.err() == 0.0);
      CHECK(bits.g.to_i32() == bits.c.to_i32());
      for (bool acc : {true, false}) {
        both([&](Device d) {
          k::unary_bwd_gated(d, op, a, bits.as<uint32_t>(d), dy.f(d), dx.f(d), n, acc, nullptr);
        });
        CHECK(dx.err() == 0.0);
      }
    }
  }
}

namespace {

std::vector<float> abs_of(const Tensor& t) {
  auto v = t.to_vector();
  for (auto& e : v) e = std::fabs(e);
  return v;
}

// Largest |got - ref| / bound over the elements (bound: the same computation on |operands| on the
// CPU, the scale of every rounding error), ignoring elements whose bound is 0.
double worst_ratio(const std::vector<float>& got, const std::vector<float>& ref,
                   const std::vector<float>& bound) {
  double w = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (bound[i] > 0)
      w = std::max(w, std::fabs(double(got[i]) - double(ref[i])) / double(bound[i]));
  return w;
}

// The error bound of a K-term dot product with operands rounded to precision p, relative to
// sum |a_i b_i|: both operands rounded (2e + e^2), FP32 accumulation on both sides (2 gamma_K),
// plus e again when the result itself is stored in the format (BF16 convolutions), plus one
// rounding of an accumulated output.
double dot_bound(Precision p, int64_t K, bool result_in_format) {
  const double e = precision_operand_error(p), u = std::ldexp(1.0, -24);
  const double gamma = double(K) * u / (1 - double(K) * u);
  return 2 * e + e * e + (result_in_format ? e : 0.0) + 2 * gamma + 2 * u;
}

}  // namespace

TEST_CASE(
    "precision bounds: convolutions of bfloat16-rounded operands on the CPU stay within them") {
  // The GPU case below checks cuDNN/cuBLAS against dot_bound; here the bound itself is checked on
  // an emulation of the BF16 path (operands and result rounded to bfloat16, FP32 accumulation):
  // it holds, and it is not vacuous (the error reaches a fair part of it).
  const k::ConvShape cs{2, 8, 9, 9, 6, 3, 3, 1, 1, 1};
  const Shape xs{cs.N, cs.C, cs.H, cs.W}, ws{cs.K, cs.C, cs.R, cs.S},
      ys{cs.N, cs.K, cs.P(), cs.Q()};
  const Tensor x = test::randn_cpu(xs, 1), w = test::randn_cpu(ws, 2, 0.3f);
  auto round_bf16 = [](const Tensor& t) {
    std::vector<uint16_t> h(size_t(t.numel()));
    Tensor r = Tensor::empty(t.shape());
    k::f32_to_bf16(kCpu, t.data(), h.data(), t.numel(), nullptr);
    k::bf16_to_f32(kCpu, h.data(), r.data(), t.numel(), false, nullptr);
    return r;
  };
  Tensor y_ref = Tensor::empty(ys), y_abs = Tensor::empty(ys), y_bf = Tensor::empty(ys);
  const Tensor ax = Tensor::from_vector(abs_of(x), xs), aw = Tensor::from_vector(abs_of(w), ws);
  k::conv2d_fwd(kCpu, cs, x.data(), w.data(), nullptr, y_ref.data(), nullptr);
  k::conv2d_fwd(kCpu, cs, ax.data(), aw.data(), nullptr, y_abs.data(), nullptr);
  k::conv2d_fwd(kCpu, cs, round_bf16(x).data(), round_bf16(w).data(), nullptr, y_bf.data(),
                nullptr);
  const double f = worst_ratio(round_bf16(y_bf).to_vector(), y_ref.to_vector(), y_abs.to_vector());
  const double bound = dot_bound(Precision::BF16, cs.C * cs.R * cs.S, true);
  INFO("error / bound scale ", f, ", bound ", bound);
  CHECK(f <= bound);
  CHECK(f > bound / 20);
}

TEST_CASE(
    "cuda parity: convolutions and GEMMs at each precision, within the format's bound [gpu]") {
  GENIE_REQUIRE_GPU();
  const std::vector<k::ConvShape> shapes = {
      {2, 8, 9, 9, 6, 3, 3, 1, 1, 1},     // plain 3x3
      {2, 8, 10, 10, 8, 3, 3, 2, 1, 8},   // depthwise, stride 2
      {3, 16, 7, 7, 32, 1, 1, 1, 0, 2}};  // grouped 1x1
  for (Precision prec : {Precision::FP32, Precision::TF32, Precision::BF16}) {
    const bool bf16 = prec == Precision::BF16;
    for (const auto& cs : shapes) {
      INFO(precision_name(prec), " conv x (", cs.N, ", ", cs.C, ", ", cs.H, ", ", cs.W, ") K ",
           cs.K, " groups ", cs.groups);
      const int64_t Cg = cs.C / cs.groups, Kg = cs.K / cs.groups;
      const Shape xs{cs.N, cs.C, cs.H, cs.W}, ws{cs.K, Cg, cs.R, cs.S},
          ys{cs.N, cs.K, cs.P(), cs.Q()};
      const Tensor x = test::randn_cpu(xs, 1), w = test::randn_cpu(ws, 2, 0.3f),
                   dy = test::randn_cpu(ys, 3), dx0 = test::randn_cpu(xs, 4),
                   dw0 = test::randn_cpu(ws, 5);
      const Tensor ax = Tensor::from_vector(abs_of(x), xs), aw = Tensor::from_vector(abs_of(w), ws),
                   ady = Tensor::from_vector(abs_of(dy), ys);
      // Reference (CPU, FP32) and bound (CPU, absolute values) of the three directions.
      Tensor y_ref = Tensor::empty(ys), y_abs = Tensor::empty(ys);
      k::conv2d_fwd(kCpu, cs, x.data(), w.data(), nullptr, y_ref.data(), nullptr);
      k::conv2d_fwd(kCpu, cs, ax.data(), aw.data(), nullptr, y_abs.data(), nullptr);
      Tensor dx_ref = dx0.clone(), dx_abs = Tensor::from_vector(abs_of(dx0), xs);
      k::conv2d_bwd_data(kCpu, cs, dy.data(), w.data(), dx_ref.data(), true, nullptr);
      k::conv2d_bwd_data(kCpu, cs, ady.data(), aw.data(), dx_abs.data(), true, nullptr);
      Tensor dw_ref = dw0.clone(), dw_abs = Tensor::from_vector(abs_of(dw0), ws);
      k::conv2d_bwd_filter(kCpu, cs, x.data(), dy.data(), dw_ref.data(), true, nullptr);
      k::conv2d_bwd_filter(kCpu, cs, ax.data(), ady.data(), dw_abs.data(), true, nullptr);

      Tensor xg = x.to(kGpu), wg = w.to(kGpu), dyg = dy.to(kGpu), yg = Tensor::empty(ys, kGpu),
             dxg = dx0.to(kGpu), dwg = dw0.to(kGpu);
      {
        PrecisionScope scope(prec);
        k::conv2d_fwd(kGpu, cs, xg.data(), wg.data(), nullptr, yg.data(), nullptr);
        k::conv2d_bwd_data(kGpu, cs, dyg.data(), wg.data(), dxg.data(), true, nullptr);
        k::conv2d_bwd_filter(kGpu, cs, xg.data(), dyg.data(), dwg.data(), true, nullptr);
      }
      const double fy = worst_ratio(yg.to_vector(), y_ref.to_vector(), y_abs.to_vector());
      const double fdx = worst_ratio(dxg.to_vector(), dx_ref.to_vector(), dx_abs.to_vector());
      const double fdw = worst_ratio(dwg.to_vector(), dw_ref.to_vector(), dw_abs.to_vector());
      INFO("error / bound scale: y ", fy, ", dx ", fdx, ", dw ", fdw);
      CHECK(fy <= dot_bound(prec, Cg * cs.R * cs.S, bf16));
      CHECK(fdx <= dot_bound(prec, Kg * cs.R * cs.S, bf16));
      CHECK(fdw <= dot_bound(prec, cs.N * cs.P() * cs.Q(), bf16));
      if (bf16) CHECK(fy > 0);  // the operands really went through bfloat16
    }
    // GEMM, every transpose combination, alpha/beta, leading dimensions wider than the rows.
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO(precision_name(prec), " gemm ta ", ta, " tb ", tb);
        const int64_t M = 37, N = 29, K = 300, lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5;
        const Tensor A = test::randn_cpu({(ta ? K : M) * lda}, 6),
                     B = test::randn_cpu({(tb ? N : K) * ldb}, 7), C0 = test::randn_cpu({M * N}, 8);
        const Tensor aA = Tensor::from_vector(abs_of(A), A.shape()),
                     aB = Tensor::from_vector(abs_of(B), B.shape());
        Tensor ref = C0.clone(), bound = Tensor::from_vector(abs_of(C0), C0.shape());
        k::gemm(kCpu, ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, ref.data(), N,
                nullptr);
        k::gemm(kCpu, ta, tb, M, N, K, 0.7f, aA.data(), lda, aB.data(), ldb, 0.3f, bound.data(), N,
                nullptr);
        Tensor Ag = A.to(kGpu), Bg = B.to(kGpu), Cg = C0.to(kGpu);
        {
          PrecisionScope scope(prec);
          k::gemm(kGpu, ta, tb, M, N, K, 0.7f, Ag.data(), lda, Bg.data(), ldb, 0.3f, Cg.data(), N,
                  nullptr);
        }
        const double f = worst_ratio(Cg.to_vector(), ref.to_vector(), bound.to_vector());
        INFO("error / bound scale ", f);
        CHECK(f <= dot_bound(prec, K, false));
        if (bf16) CHECK(f > 0);
      }
  }
}

TEST_CASE("cuda parity: binary, axpby, fill, select_mask, channel_affine, u8_to_f32 [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t n = 4099;
  Twin a = randn({n}, 4), b = randn({n}, 5), y = zeros({n});
  for (k::BinaryOp op : {k::BinaryOp::Add, k::BinaryOp::Sub, k::BinaryOp::Mul}) {
    both([&](Device d) { k::binary_fwd(d, op, a.f(d), b.f(d), y.f(d), n, nullptr); });
    CHECK(y.err() == 0.0);
  }
  both([&](Device d) { k::axpby(d, 0.7f, a.f(d), -1.3f, y.f(d), n, nullptr); });
  CHECK_TWIN(y, 1e-6);
  // beta == 0 must not read y: NaN there must not leak into the result.
  Twin nan = filled({n}, std::numeric_limits<float>::quiet_NaN());
  both([&](Device d) { k::axpby(d, 2.f, a.f(d), 0.f, nan.f(d), n, nullptr); });
  CHECK_TWIN(nan, 0.0);
  both([&](Device d) { k::fill(d, y.f(d), 2.5f, n, nullptr); });
  CHECK(y.g.to_vector() == std::vector<float>(size_t(n), 2.5f));

  Tensor mask_cpu = Tensor::empty({n}, kCpu, DType::U8);
  Tensor u = test::rand_uniform_cpu({n}, 6, 0.f, 1.f);
  for (int64_t i = 0; i < n; ++i) mask_cpu.data_as<uint8_t>()[i] = u.data()[i] < 0.4f ? 1 : 0;
  Twin mask(mask_cpu);
  both([&](Device d) {
    k::select_mask(d, mask.as<uint8_t>(d), a.f(d), b.f(d), y.f(d), n, nullptr);
  });
  CHECK(y.err() == 0.0);
  both([&](Device d) { k::u8_to_f32(d, mask.as<uint8_t>(d), y.f(d), n, nullptr); });
  CHECK(y.err() == 0.0);

  const int64_t N = 3, C = 5, HW = 37;
  Twin x = randn({N, C, HW}, 7), sc = randn({C}, 8), sh = randn({C}, 9), z = zeros({N, C, HW});
  both(
      [&](Device d) { k::channel_affine(d, x.f(d), sc.f(d), sh.f(d), z.f(d), N, C, HW, nullptr); });
  CHECK_TWIN(z, 1e-6);
  both(
      [&](Device d) { k::channel_affine(d, x.f(d), sc.f(d), nullptr, z.f(d), N, C, HW, nullptr); });
  CHECK_TWIN(z, 1e-6);
}

TEST_CASE("cuda parity: Philox draws are identical, Adam steps agree [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t n = 5003;
  Twin y = zeros({n});
  both([&](Device d) { k::philox_uniform(d, 123, 77, y.f(d), n, nullptr); });
  CHECK(y.err() == 0.0);
  both([&](Device d) { k::philox_normal(d, 123, 78, 0.5f, 2.f, y.f(d), n, nullptr); });
  CHECK_TWIN(y, 1e-6);
  Twin m = Twin(Tensor::empty({n}, kCpu, DType::U8));
  both(
      [&](Device d) { k::philox_bernoulli(d, 9, 3, nullptr, 0.3f, m.as<uint8_t>(d), n, nullptr); });
  CHECK(m.g.to_i8() == m.c.to_i8());

  Twin p = randn({n}, 10), g = randn({n}, 11), mm = zeros({n}), vv = zeros({n});
  k::AdamHyper h;
  h.lr = 1e-2f;
  h.weight_decay = 1e-3f;
  for (int64_t t = 1; t <= 3; ++t) {
    h.step = t;
    both([&](Device d) { k::adam_step(d, p.f(d), g.f(d), mm.f(d), vv.f(d), n, h, nullptr); });
  }
  CHECK_TWIN(p, 1e-6);
  CHECK_TWIN(mm, 1e-6);
  CHECK_TWIN(vv, 1e-6);
}

TEST_CASE("cuda parity: sum, min/max, channel/row mean-var, channel_sum [gpu]") {
  GENIE_REQUIRE_GPU();
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(1000), int64_t((1 << 20) + 3)}) {
    INFO("n = " << n);
    Twin x = randn({n}, 12, 3.f), s = zeros({1}), mm = zeros({2});
    both([&](Device d) { k::reduce_sum(d, x.f(d), n, s.f(d), nullptr); });
    CHECK(std::fabs(double(s.g.to_vector()[0]) - double(s.c.to_vector()[0])) <=
          1e-6 * (1.0 + std::sqrt(double(n)) * 3.0));
    both([&](Device d) { k::reduce_minmax(d, x.f(d), n, mm.f(d), nullptr); });
    CHECK(mm.g.to_vector() == mm.c.to_vector());  // inf/-inf for n == 0
  }
  struct S {
    int64_t N, C, HW;
  };
  // Small, one channel with many splits, many channels, HW > block size, HW == 1.
  for (S s : {S{3, 5, 7}, S{64, 3, 1024}, S{4, 300, 9}, S{2, 4, 1000}, S{50, 6, 1}}) {
    INFO("N C HW = " << s.N << " " << s.C << " " << s.HW);
    // A large mean relative to the spread checks the numerics of the accumulation.
    Tensor xc = test::randn_cpu({s.N, s.C, s.HW}, 13);
    for (int64_t i = 0; i < xc.numel(); ++i) xc.data()[i] += 100.f;
    Twin x(xc), mean = zeros({s.C}), var = zeros({s.C}), cs = randn({s.C}, 14);
    for (bool unbiased : {false, true}) {
      both([&](Device d) {
        k::channel_mean_var(d, x.f(d), s.N, s.C, s.HW, unbiased, mean.f(d), var.f(d), nullptr);
      });
      CHECK_TWIN(mean, 1e-6);
      CHECK_TWIN(var, 1e-5);
    }
    for (bool acc : {true, false}) {
      both([&](Device d) { k::channel_sum(d, x.f(d), s.N, s.C, s.HW, cs.f(d), acc, nullptr); });
      CHECK_TWIN(cs, 1e-6);
    }
  }
  const int64_t rows = 24, len = 49;
  Twin x = randn({rows, len}, 15), mean = zeros({rows}), var = zeros({rows});
  for (bool unbiased : {false, true}) {
    both([&](Device d) {
      k::row_mean_var(d, x.f(d), rows, len, unbiased, mean.f(d), var.f(d), nullptr);
    });
    CHECK_TWIN(mean, 1e-6);
    CHECK_TWIN(var, 1e-6);
  }
}

TEST_CASE("cuda parity: GEMM in all transpose combinations, beta, K == 0 [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t M = 37, N = 29, K = 53;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      // Row-major storage: A is (M x K), or (K x M) when transposed; likewise B.
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      Twin A = randn({M * K}, 20), B = randn({K * N}, 21), C = randn({M * N}, 22);
      both([&](Device d) {
        k::gemm(d, ta, tb, M, N, K, 0.7f, A.f(d), lda, B.f(d), ldb, 0.3f, C.f(d), N, nullptr);
      });
      CHECK_TWIN(C, 1e-5);
      // beta == 0 ignores C, NaN included.
      Twin Cn = filled({M * N}, std::numeric_limits<float>::quiet_NaN());
      both([&](Device d) {
        k::gemm(d, ta, tb, M, N, K, 1.f, A.f(d), lda, B.f(d), ldb, 0.f, Cn.f(d), N, nullptr);
      });
      CHECK_TWIN(Cn, 1e-5);
    }
  // Sub-matrix with a leading dimension larger than the width.
  Twin A = randn({M * 60}, 23), B = randn({K * 40}, 24), C = randn({M * 50}, 25);
  both([&](Device d) {
    k::gemm(d, false, false, M, N, K, 1.f, A.f(d), 60, B.f(d), 40, 1.f, C.f(d), 50, nullptr);
  });
  CHECK_TWIN(C, 1e-5);
  Twin C0 = randn({M * N}, 26);
  both([&](Device d) {
    k::gemm(d, false, false, M, N, 0, 1.f, A.f(d), 1, B.f(d), N, 0.5f, C0.f(d), N, nullptr);
  });
  CHECK_TWIN(C0, 0.0);
}

TEST_CASE(
    "cuda parity: convolution forward/backward (groups, depthwise, stride, pad, 1x1, stem) [gpu]") {
  GENIE_REQUIRE_GPU();
  auto make = [](int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t st,
                 int64_t pad, int64_t g) {
    k::ConvShape cs;
    cs.N = N, cs.C = C, cs.H = H, cs.W = W, cs.K = K, cs.R = R, cs.S = R;
    cs.stride = st, cs.pad = pad, cs.groups = g;
    return cs;
  };
  const std::vector<k::ConvShape> shapes = {
      make(2, 6, 9, 7, 8, 3, 1, 1, 1),    // plain 3x3
      make(2, 6, 10, 9, 4, 3, 2, 0, 2),   // grouped, strided, no padding
      make(3, 6, 8, 8, 6, 3, 1, 1, 6),    // depthwise
      make(2, 8, 7, 7, 12, 1, 2, 0, 1),   // 1x1 stride 2 (downsample shortcut)
      make(2, 3, 32, 32, 16, 7, 2, 3, 1)  // ResNet stem
  };
  for (const auto& cs : shapes) {
    INFO("N C H W K R stride pad groups = " << cs.N << " " << cs.C << " " << cs.H << " " << cs.W
                                            << " " << cs.K << " " << cs.R << " " << cs.stride << " "
                                            << cs.pad << " " << cs.groups);
    const int64_t P = cs.P(), Q = cs.Q();
    Twin x = randn({cs.N, cs.C, cs.H, cs.W}, 30),
         w = randn({cs.K, cs.C / cs.groups, cs.R, cs.S}, 31, 0.3f);
    Twin bias = randn({cs.K}, 32), y = zeros({cs.N, cs.K, P, Q}),
         dy = randn({cs.N, cs.K, P, Q}, 33);
    both([&](Device d) { k::conv2d_fwd(d, cs, x.f(d), w.f(d), bias.f(d), y.f(d), nullptr); });
    CHECK_TWIN(y, 1e-5);
    both([&](Device d) { k::conv2d_fwd(d, cs, x.f(d), w.f(d), nullptr, y.f(d), nullptr); });
    CHECK_TWIN(y, 1e-5);
    Twin dx = randn({cs.N, cs.C, cs.H, cs.W}, 34),
         dw = randn({cs.K, cs.C / cs.groups, cs.R, cs.S}, 35);
    for (bool acc : {true, false}) {
      INFO("accumulate " << acc);
      both([&](Device d) { k::conv2d_bwd_data(d, cs, dy.f(d), w.f(d), dx.f(d), acc, nullptr); });
      CHECK_TWIN(dx, 1e-5);
      both([&](Device d) { k::conv2d_bwd_filter(d, cs, x.f(d), dy.f(d), dw.f(d), acc, nullptr); });
      CHECK_TWIN(dw, 1e-5);
    }
  }
}

TEST_CASE("cuda parity: batch norm eval/train forward and backward [gpu]") {
  GENIE_REQUIRE_GPU();
  struct S {
    int64_t N, C, HW;
  };
  const float eps = 1e-5f;
  for (S s : {S{4, 6, 25}, S{16, 8, 1024}, S{32, 3, 1}}) {
    INFO("N C HW = " << s.N << " " << s.C << " " << s.HW);
    const Shape xs = {s.N, s.C, s.HW};
    Twin x = randn(xs, 40, 2.f), dy = randn(xs, 41), gamma = randn({s.C}, 42),
         beta = randn({s.C}, 43);
    Twin rm = randn({s.C}, 44, 0.5f), rv(test::rand_uniform_cpu({s.C}, 45, 0.5f, 2.f));
    Twin y = zeros(xs), dx = randn(xs, 46), dg = randn({s.C}, 47), db = randn({s.C}, 48);
    for (bool affine : {true, false}) {
      INFO("affine " << affine);
      auto G = [&](Device d) { return affine ? gamma.f(d) : nullptr; };
      auto B = [&](Device d) { return affine ? beta.f(d) : nullptr; };
      both([&](Device d) {
        k::bn_eval_fwd(d, x.f(d), s.N, s.C, s.HW, rm.f(d), rv.f(d), G(d), B(d), eps, y.f(d),
                       nullptr);
      });
      CHECK_TWIN(y, 1e-6);
      for (bool acc : {true, false}) {
        both([&](Device d) {
          k::bn_eval_bwd(d, x.f(d), dy.f(d), s.N, s.C, s.HW, rm.f(d), rv.f(d), G(d), eps, dx.f(d),
                         dg.f(d), db.f(d), acc, nullptr);
        });
        CHECK_TWIN(dx, 1e-6);
        CHECK_TWIN(dg, 1e-5);
        CHECK_TWIN(db, 1e-5);
      }
      // Only dx wanted (parameter gradients null).
      both([&](Device d) {
        k::bn_eval_bwd(d, x.f(d), dy.f(d), s.N, s.C, s.HW, rm.f(d), rv.f(d), G(d), eps, dx.f(d),
                       nullptr, nullptr, false, nullptr);
      });
      CHECK_TWIN(dx, 1e-6);

      Twin sm = zeros({s.C}), si = zeros({s.C});
      both([&](Device d) {
        k::bn_train_fwd(d, x.f(d), s.N, s.C, s.HW, G(d), B(d), eps, y.f(d), sm.f(d), si.f(d),
                        nullptr);
      });
      CHECK_TWIN(sm, 1e-6);
      CHECK_TWIN(si, 1e-5);
      CHECK_TWIN(y, 1e-5);
      for (bool acc : {true, false}) {
        both([&](Device d) {
          k::bn_train_bwd(d, x.f(d), dy.f(d), s.N, s.C, s.HW, G(d), sm.f(d), si.f(d), dx.f(d),
                          dg.f(d), db.f(d), acc, nullptr);
        });
        CHECK_TWIN(dx, 1e-5);
        CHECK_TWIN(dg, 1e-5);
        CHECK_TWIN(db, 1e-5);
      }
      // Parameter gradients only (dx null).
      both([&](Device d) {
        k::bn_train_bwd(d, x.f(d), dy.f(d), s.N, s.C, s.HW, G(d), sm.f(d), si.f(d), nullptr,
                        dg.f(d), db.f(d), false, nullptr);
      });
      CHECK_TWIN(dg, 1e-5);
      CHECK_TWIN(db, 1e-5);
    }
  }
}

TEST_CASE("cuda parity: upsample, reflect pad, crop, global average pool, max pool [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t NC = 6, H = 5, W = 7;
  Twin x = randn({NC, H, W}, 50);
  for (bool acc : {true, false}) {
    INFO("accumulate " << acc);
    {
      Twin y = zeros({NC, 2 * H, 2 * W}), dy = randn({NC, 2 * H, 2 * W}, 51),
           dx = randn({NC, H, W}, 52);
      both([&](Device d) { k::upsample2x_fwd(d, x.f(d), NC, H, W, y.f(d), nullptr); });
      CHECK(y.err() == 0.0);
      both([&](Device d) { k::upsample2x_bwd(d, dy.f(d), NC, H, W, dx.f(d), acc, nullptr); });
      CHECK_TWIN(dx, 0.0);  // same summation order on both backends
    }
    {
      const int64_t pad = 3;
      Twin y = zeros({NC, H + 2 * pad, W + 2 * pad}),
           dy = randn({NC, H + 2 * pad, W + 2 * pad}, 53);
      Twin dx = randn({NC, H, W}, 54);
      both([&](Device d) { k::reflect_pad_fwd(d, x.f(d), NC, H, W, pad, y.f(d), nullptr); });
      CHECK(y.err() == 0.0);
      both([&](Device d) { k::reflect_pad_bwd(d, dy.f(d), NC, H, W, pad, dx.f(d), acc, nullptr); });
      CHECK_TWIN(dx, 0.0);
    }
    {
      const int64_t oy = 1, ox = 2, OH = 3, OW = 4;
      Twin y = zeros({NC, OH, OW}), dy = randn({NC, OH, OW}, 55), dx = randn({NC, H, W}, 56);
      both([&](Device d) { k::crop_fwd(d, x.f(d), NC, H, W, oy, ox, OH, OW, y.f(d), nullptr); });
      CHECK(y.err() == 0.0);
      both([&](Device d) {
        k::crop_bwd(d, dy.f(d), NC, H, W, oy, ox, OH, OW, dx.f(d), acc, nullptr);
      });
      CHECK_TWIN(dx, 0.0);
    }
    for (int64_t hw : {int64_t(1), int64_t(49), int64_t(3000)}) {
      Twin xi = randn({NC, hw}, 57), y = zeros({NC}), dy = randn({NC}, 58),
           dx = randn({NC, hw}, 59);
      both([&](Device d) { k::gap_fwd(d, xi.f(d), NC, hw, y.f(d), nullptr); });
      CHECK_TWIN(y, 1e-6);
      both([&](Device d) { k::gap_bwd(d, dy.f(d), NC, hw, dx.f(d), acc, nullptr); });
      CHECK_TWIN(dx, 0.0);
    }
    {
      // 3x3/2 pad 1 (ResNet stem) on an odd and an even plane, one plane constant (ties).
      const int64_t Hm = 11, Wm = 12, kk = 3, st = 2, pd = 1;
      const int64_t OH = (Hm + 2 * pd - kk) / st + 1, OW = (Wm + 2 * pd - kk) / st + 1;
      Tensor xc = test::randn_cpu({NC, Hm, Wm}, 60);
      for (int64_t i = 0; i < Hm * Wm; ++i) xc.data()[i] = 0.25f;
      Twin xm(xc), y = zeros({NC, OH, OW}), dy = randn({NC, OH, OW}, 61),
                   dx = randn({NC, Hm, Wm}, 62);
      Twin arg(Tensor::zeros({NC, OH, OW}, kCpu, DType::I32));
      both([&](Device d) {
        k::maxpool_fwd(d, xm.f(d), NC, Hm, Wm, kk, st, pd, y.f(d), arg.as<int32_t>(d), nullptr);
      });
      CHECK(y.err() == 0.0);
      CHECK(arg.g.to_i32() == arg.c.to_i32());
      both([&](Device d) {
        k::maxpool_bwd(d, dy.f(d), arg.as<int32_t>(d), NC, Hm, Wm, OH, OW, dx.f(d), acc, nullptr);
      });
      CHECK_TWIN(dx, 0.0);
    }
  }
}

TEST_CASE("cuda parity: fused upsample + 3x3 conv (parity filters, interleave) [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t N = 3, C = 5, H = 4, W = 6, K = 7;
  Twin w = randn({K, C, 3, 3}, 70), wp = zeros({4 * K, C, 2, 2});
  Twin z = randn({N, 4 * K, H + 1, W + 1}, 71), b = randn({K}, 72), y = zeros({N, K, 2 * H, 2 * W});
  both([&](Device d) { k::parity_weights_fwd(d, w.f(d), K, C, wp.f(d), nullptr); });
  CHECK(wp.err() == 0.0);
  both([&](Device d) { k::parity_interleave_fwd(d, z.f(d), b.f(d), N, K, H, W, y.f(d), nullptr); });
  CHECK(y.err() == 0.0);
  for (bool acc : {true, false}) {
    INFO("accumulate " << acc);
    Twin dwp = randn({4 * K, C, 2, 2}, 73), dw = randn({K, C, 3, 3}, 74);
    both([&](Device d) { k::parity_weights_bwd(d, dwp.f(d), K, C, dw.f(d), acc, nullptr); });
    CHECK_TWIN(dw, 0.0);
    Twin dy = randn({N, K, 2 * H, 2 * W}, 75), dz = randn({N, 4 * K, H + 1, W + 1}, 76);
    both(
        [&](Device d) { k::parity_interleave_bwd(d, dy.f(d), N, K, H, W, dz.f(d), acc, nullptr); });
    CHECK_TWIN(dz, 0.0);
  }
  // The whole op (cuDNN 2x2 convolution inside) against the CPU.
  Tensor xc = test::randn_cpu({N, C, H, W}, 77), dyc = test::randn_cpu({N, K, 2 * H, 2 * W}, 78);
  std::vector<float> out[2][4];
  int i = 0;
  both([&](Device d) {
    Tensor x = xc.to(d).set_requires_grad(), wt = w.c.to(d).set_requires_grad();
    Tensor bt = b.c.to(d).set_requires_grad();
    Tensor yt = ops::upsample2x_conv3x3(x, wt, bt);
    backward(yt, dyc.to(d));
    out[i][0] = yt.to_vector();
    out[i][1] = x.grad().to_vector();
    out[i][2] = wt.grad().to_vector();
    out[i][3] = bt.grad().to_vector();
    ++i;
  });
  for (int j = 0; j < 4; ++j) {
    INFO("output " << j);
    CHECK(test::rel_err(out[1][j], out[0][j]) < 1e-5);
  }
}

TEST_CASE("cuda parity: MSE and cross-entropy forward/backward [gpu]") {
  GENIE_REQUIRE_GPU();
  for (int64_t n : {int64_t(1000), int64_t(70001)}) {
    Twin a = randn({n}, 70), b = randn({n}, 71), out = zeros({1}), dout = filled({1}, 0.75f);
    both([&](Device d) { k::mse_fwd(d, a.f(d), b.f(d), n, out.f(d), nullptr); });
    CHECK_TWIN(out, 1e-6);
    Twin da = randn({n}, 72);
    for (bool acc : {true, false}) {
      both([&](Device d) { k::mse_bwd(d, a.f(d), b.f(d), n, dout.f(d), da.f(d), acc, nullptr); });
      CHECK_TWIN(da, 1e-6);
    }
  }
  const int64_t N = 33, K = 10;
  std::vector<int32_t> lab(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) lab[size_t(i)] = int32_t((i * 7) % K);
  Twin z = randn({N, K}, 73, 3.f), y = labels(lab), prob = zeros({N, K}), out = zeros({1});
  both([&](Device d) {
    k::cross_entropy_fwd(d, z.f(d), y.as<int32_t>(d), N, K, prob.f(d), out.f(d), nullptr);
  });
  CHECK_TWIN(prob, 2e-6);
  CHECK_TWIN(out, 2e-6);
  Twin dout = filled({1}, 1.5f), dz = randn({N, K}, 74);
  for (bool acc : {true, false}) {
    both([&](Device d) {
      k::cross_entropy_bwd(d, prob.f(d), y.as<int32_t>(d), N, K, dout.f(d), dz.f(d), acc, nullptr);
    });
    CHECK_TWIN(dz, 1e-6);
  }
}

TEST_CASE("cuda parity: row mean/std and moment-statistics backward [gpu]") {
  GENIE_REQUIRE_GPU();
  const int64_t rows = 18, len = 64;
  Twin x = randn({rows, len}, 80), mean = zeros({rows}), sd = zeros({rows});
  for (bool unbiased : {false, true}) {
    both([&](Device d) {
      k::row_mean_std(d, x.f(d), rows, len, unbiased, mean.f(d), sd.f(d), nullptr);
    });
    CHECK_TWIN(mean, 1e-6);
    CHECK_TWIN(sd, 1e-6);
  }
  const int64_t N = 4, G = 5, L = 36;
  Twin xg = randn({N, G, L}, 81), gm = zeros({G}), gv = zeros({G});
  both(
      [&](Device d) { k::channel_mean_var(d, xg.f(d), N, G, L, true, gm.f(d), gv.f(d), nullptr); });
  Twin dmean = randn({G}, 82), dsec = randn({G}, 83), dx = randn({N, G, L}, 84);
  for (bool is_std : {false, true})
    for (bool with_dmean : {false, true})
      for (bool acc : {false, true}) {
        INFO("is_std " << is_std << " dmean " << with_dmean << " acc " << acc);
        both([&](Device d) {
          k::moments_bwd(d, xg.f(d), N, G, L, gm.f(d), gv.f(d), with_dmean ? dmean.f(d) : nullptr,
                         dsec.f(d), is_std, true, dx.f(d), acc, nullptr);
        });
        CHECK_TWIN(dx, 1e-6);
      }
}

TEST_CASE("cuda: 64-bit index path (2^31 + 5 elements) fills and reduces correctly [gpu]") {
  GENIE_REQUIRE_GPU();
  // 8.6 GB on the device; checked on the device (sum and min/max), no host copy of the data.
  const int64_t n = (int64_t(1) << 31) + 5;
  float* x = static_cast<float*>(device_alloc(kGpu, size_t(n) * sizeof(float)));
  Tensor out = Tensor::zeros({2}, kGpu);
  k::fill(kGpu, x, 0.5f, n, nullptr);
  k::fill(kGpu, x + n - 1, 3.f, 1, nullptr);  // the last element, past 2^31
  k::reduce_sum(kGpu, x, n, out.data(), nullptr);
  const double expect = 0.5 * double(n - 1) + 3.0;
  CHECK(double(out.to_vector()[0]) == doctest::Approx(expect).epsilon(1e-6));
  k::reduce_minmax(kGpu, x, n, out.data(), nullptr);
  CHECK(out.to_vector() == std::vector<float>{0.5f, 3.f});
  device_free(kGpu, x, size_t(n) * sizeof(float));
  cuda_empty_cache();
}
