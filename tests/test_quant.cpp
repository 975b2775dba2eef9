// Genie-M quantizers (kernels/quant.h, autograd/ops_quant.h, engine/quantizer.h): PyTorch goldens
// (tests/golden/make_quant_golden.py) for forwards, surrogate gradients and the clip searches;
// hand-computed values for rounding ties and inclusive clamp boundaries; finite differences where
// the op is smooth; thread-count independence; CPU-vs-CUDA parity (skipped without a GPU).
#include <cmath>
#include <cstring>

#include "engine/quantizer.h"
#include "io/h5.h"
#include "kernels/quant.h"
#include "kernels/quant_functors.h"
#include "test_util.h"

using namespace genie;

namespace {

io::H5Reader& golden() {
  static io::H5Reader r(test::source_path("tests/golden/quant_ops.h5"));
  return r;
}
Tensor G(const std::string& name) { return golden().read_f32(name); }
Tensor req(Tensor t) {
  t.set_requires_grad();
  return t;
}
double rel(const Tensor& a, const Tensor& b) { return test::rel_err(a.to_vector(), b.to_vector()); }

}  // namespace

TEST_CASE("quant: weight fake-quant forward and surrogate gradients match the PyTorch golden") {
  Tensor wf = G("wq.w_floor"), z = G("wq.zero"), dy = G("wq.dy");
  Tensor v = req(G("wq.v")), s = req(G("wq.s"));
  Tensor soft = ops::fake_quant_weight(wf, v, s, z, 4, false);
  CHECK(rel(soft, G("wq.soft")) < 1e-6);
  backward(soft, dy);
  CHECK(rel(v.grad(), G("wq.dv")) < 1e-5);
  CHECK(rel(s.grad(), G("wq.ds")) < 1e-5);
  Tensor hard = ops::fake_quant_weight(wf, v.detach(), s.detach(), z, 4, true);
  CHECK(rel(hard, G("wq.hard")) == 0.0);
}

TEST_CASE("quant: weight quantizer init (per-channel clip search, W_floor, V) matches the golden") {
  auto q = quant::WeightQuantizer::from_weight(G("wq.w"), 4);
  CHECK(rel(q.step(), G("wq.s_init")) < 1e-6);
  CHECK(q.zero().to_vector() == G("wq.zero").to_vector());
  CHECK(q.w_floor().to_vector() == G("wq.w_floor").to_vector());
  CHECK(rel(q.logits(), G("wq.v_init")) < 1e-5);
  // h(V_init) reproduces the fractional part, so the soft weight is the FP weight wherever the
  // grid does not clip it (w/s + z within [0, 15]).
  auto w = G("wq.w").to_vector(), wh = q.forward().to_vector();
  auto s0 = G("wq.s_init").to_vector(), z0 = G("wq.zero").to_vector();
  const size_t M = w.size() / s0.size();
  double worst = 0;
  int inside = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double t = double(w[i]) / s0[i / M] + z0[i / M];
    if (t < 0 || t > 15) continue;
    ++inside;
    worst = std::max(worst, std::fabs(double(w[i]) - wh[i]));
  }
  CHECK(inside > int(w.size()) / 2);
  CHECK(worst < 1e-6);
}

TEST_CASE("quant: activation LSQ + QDrop forward and gradients match the PyTorch golden") {
  {
    Tensor x = req(G("aq.x")), s = req(G("aq.s"));
    Tensor mask = golden().read_u8("aq.mask");
    Tensor y = ops::fake_quant_act(x, s, -8.f, 7.f, mask);
    CHECK(rel(y, G("aq.y")) < 1e-6);
    backward(y, G("aq.dy"));
    CHECK(rel(x.grad(), G("aq.dx")) == 0.0);
    CHECK(rel(s.grad(), G("aq.ds")) < 1e-5);
  }
  {
    Tensor x = req(G("aqu.x")), s = req(G("aqu.s"));
    Tensor y = ops::fake_quant_act(x, s, 0.f, 15.f);
    CHECK(rel(y, G("aqu.y")) < 1e-6);
    backward(y, G("aqu.dy"));
    CHECK(rel(x.grad(), G("aqu.dx")) < 1e-6);  // PyTorch's (dy·s)/s is dy up to rounding
    CHECK(rel(s.grad(), G("aqu.ds")) < 1e-5);
  }
}

TEST_CASE("quant: activation quantizer init (sign + clip search) matches the golden") {
  quant::ActQuantizer a(4);
  a.init(G("aq.search_x"));
  CHECK(a.is_signed());
  CHECK(a.qn() == -8.f);
  CHECK(a.qp() == 7.f);
  CHECK(rel(a.step(), G("aq.search_step_s4")) < 1e-6);
  quant::ActQuantizer u(3);
  u.init(G("aq.search_xpos"));
  CHECK_FALSE(u.is_signed());
  CHECK(u.qn() == 0.f);
  CHECK(u.qp() == 7.f);
  CHECK(rel(u.step(), G("aq.search_step_u3")) < 1e-6);
}

TEST_CASE("quant: rounding regulariser and its gradient match the golden for several beta") {
  for (float beta : {20.f, 7.3f, 2.f}) {
    const std::string tag = beta == 20.f ? "20.0" : (beta == 2.f ? "2.0" : "7.3");
    INFO("beta " << beta);
    Tensor v = req(G("reg.v"));
    Tensor r = ops::rounding_reg(v, beta);
    CHECK(r.item() == doctest::Approx(G("reg.out_" + tag).item()).epsilon(1e-5));
    backward(r);
    CHECK(rel(v.grad(), G("reg.dv_" + tag)) < 1e-5);
  }
}

TEST_CASE("quant: hand-computed rounding ties, inclusive clamp boundaries and STE codes") {
  // s = 0.25, signed 4-bit [−8, 7]: t = x/s
  Tensor x = req(Tensor::from_vector({-2.f, 1.75f, 2.f, 0.125f, 0.375f, -0.125f, -3.f, 0.3f}, {8}));
  Tensor s = req(Tensor::from_vector({0.25f}, {1}));
  Tensor y = ops::fake_quant_act(x, s, -8.f, 7.f);
  // t = −8 (inside, inclusive), 7 (inside), 8 (above), .5→0, 1.5→2, −.5→−0, −12 (below), 1.2→1
  CHECK(y.to_vector() == std::vector<float>{-2.f, 1.75f, 1.75f, 0.f, 0.5f, -0.f, -2.f, 0.25f});
  backward(ops::sum(y));
  CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 0, 1, 1, 1, 0, 1});
  // ds = Σ (round(t) − t) inside + Qp above + Qn below
  const double ds = 0 + 0 + 7 + (0 - 0.5) + (2 - 1.5) + (0 + 0.5) + (-8) + (1 - 1.2);
  CHECK(s.grad().item() == doctest::Approx(ds).epsilon(1e-5));

  // Weight: 2-bit grid [0, 3], z = 1, s = 0.5; hard bit from V ≥ 0 (V = 0 rounds up).
  Tensor wf = Tensor::from_vector({-2.f, -1.f, 0.f, 1.f, 2.f, 1.f}, {1, 6});
  Tensor v = Tensor::from_vector({0.f, -0.1f, 3.f, 0.f, 0.f, -5.f}, {1, 6});
  Tensor sw = Tensor::from_vector({0.5f}, {1}), zw = Tensor::from_vector({1.f}, {1});
  Tensor hard = ops::fake_quant_weight(wf, v, sw, zw, 2, true);
  // levels clamp(wf + bit + 1, 0, 3) = clamp(0,0,2,3,4,2) → (0,0,2,3,3,2) − 1 → ×0.5
  CHECK(hard.to_vector() == std::vector<float>{-0.5f, -0.5f, 0.5f, 1.f, 1.f, 0.5f});
  // Soft: V = 0 → h = 0.5; surrogate gradients by hand where the clamp passes inclusively.
  Tensor v2 = req(Tensor::from_vector({0.f, 0.f, 0.f}, {1, 3}));
  Tensor s2 = req(Tensor::from_vector({0.5f}, {1}));
  Tensor wf2 = Tensor::from_vector({-1.5f, 1.f, 2.5f}, {1, 3});  // q = 0 (edge), 2.5, 4 (above)
  Tensor soft = ops::fake_quant_weight(wf2, v2, s2, zw, 2, false);
  CHECK(soft.to_vector() == std::vector<float>{-0.5f, 0.75f, 1.f});
  backward(ops::sum(soft));
  const float hp = 1.2f * 0.25f * 0.5f;  // s · h'(0) = 0.5 · 1.2 · σ(1−σ)
  CHECK(v2.grad().to_vector() == std::vector<float>{hp, hp, 0.f});
  CHECK(s2.grad().item() == doctest::Approx((0 - 1) + (2.5 - 1) + (3 - 1)).epsilon(1e-6));
}

TEST_CASE("quant: finite differences where the quantizers are smooth") {
  // Weight quantizer in s and V (elements kept strictly inside the clamp range).
  Tensor wf = Tensor::from_vector({0, 1, 2, 3, 1, 2, 4, 5, 3, 2, 1, 6}, {3, 4});
  Tensor v = req(test::randn_cpu({3, 4}, 7, 0.8f));
  Tensor s = req(Tensor::from_vector({0.3f, 0.5f, 0.2f}, {3}));
  Tensor z = Tensor::from_vector({3, 2, 4}, {3});
  auto f = [&](const std::vector<Tensor>& in) {
    return ops::fake_quant_weight(wf, in[0], in[1], z, 4, false);
  };
  CHECK(test::gradcheck(f, {v, s}, 1e-3) < 2e-3);
  // Regulariser in V (β = 3 keeps the curvature moderate).
  Tensor vr = req(test::randn_cpu({40}, 8, 1.f));
  auto g = [&](const std::vector<Tensor>& in) { return ops::rounding_reg(in[0], 3.f); };
  CHECK(test::gradcheck(g, {vr}, 1e-3) < 5e-3);
}

TEST_CASE("quant: weight codes and from_codes reproduce the hard weights exactly") {
  auto q = quant::WeightQuantizer::from_weight(test::randn_cpu({5, 3, 3, 3}, 11, 0.3f), 3);
  q.set_hard(true);
  Tensor w = q.forward();
  auto r = quant::WeightQuantizer::from_codes(q.codes(), q.step(), q.zero(), 3);
  CHECK(r.forward().to_vector() == w.to_vector());
  for (float c : q.codes().to_vector()) CHECK((c >= 0.f && c <= 7.f && c == std::floor(c)));
}

TEST_CASE("quant: symmetric weight grids: zero point 2^(b-1), step r·max|w|/2^(b-1)") {
  float d = 0, z = 0;
  quant::clip_grid_symmetric(0.25f, -1.0f, 1.0, 4, d, z);
  CHECK(d == 0.125f);  // max |w| = 1 over 8 levels below zero
  CHECK(z == 8.f);
  quant::clip_grid_symmetric(0.f, 0.f, 1.0, 2, d, z);
  CHECK(d > 0.f);  // an all-zero row still gets a usable step
  const Tensor w = test::randn_cpu({6, 4, 3, 3}, 12, 0.2f);
  for (int bits : {2, 4, 8}) {
    INFO(bits);
    auto q = quant::WeightQuantizer::from_weight(w, bits, true);
    const float half = float(1 << (bits - 1));
    const std::vector<float> wv = w.to_vector(), step = q.step().to_vector();
    for (float zp : q.zero().to_vector()) CHECK(zp == half);
    for (size_t k = 0; k < 6; ++k) {  // the step is one of the candidates r·max|w_k|/2^(b−1)
      float m = 0;
      for (size_t j = 0; j < 36; ++j) m = std::max(m, std::fabs(wv[k * 36 + j]));
      bool candidate = false;
      for (int i = 0; i < quant::kClipCandidates; ++i)
        candidate = candidate || step[k] == m * float(1.0 - i * 0.01) / half;
      CHECK(candidate);
    }
    q.set_hard(true);
    for (float c : q.codes().to_vector())
      CHECK((c >= 0.f && c <= 2 * half - 1 && c == std::floor(c)));
  }
  // The default stays asymmetric: zero points follow each channel's range.
  auto a = quant::WeightQuantizer::from_weight(w, 4);
  bool all_half = true;
  for (float zp : a.zero().to_vector()) all_half = all_half && zp == 8.f;
  CHECK_FALSE(all_half);
}

TEST_CASE("quant: QDrop masks are fair Philox bits, reproducible, and advance the generator") {
  ops::Generator g(123);
  Tensor m = ops::qdrop_mask({1000, 100}, g);
  CHECK(g.offset == (100000 + 127) / 128);
  const uint8_t* p = m.data_as<uint8_t>();
  int64_t ones = 0, same_as_next = 0, bad = 0;
  for (int64_t i = 0; i < m.numel(); ++i) {
    bad += p[i] > 1;
    ones += p[i];
    if (i + 1 < m.numel()) same_as_next += p[i] == p[i + 1];
  }
  CHECK(bad == 0);
  CHECK(std::abs(double(ones) / 1e5 - 0.5) < 0.01);          // 6 sigma ≈ 0.0095
  CHECK(std::abs(double(same_as_next) / 1e5 - 0.5) < 0.01);  // no lag-1 correlation
  // Element i is bit i%128 of Philox block (seed, offset + i/128).
  for (int64_t i : {0, 1, 31, 32, 127, 128, 99999}) {
    k::Philox4x32 r(123, uint64_t(i) / 128);
    const int b = int(i % 128);
    CHECK(int(p[i]) == int((r.c[b / 32] >> (b % 32)) & 1u));
  }
  Tensor m2 = ops::qdrop_mask({1000, 100}, g);  // next draw differs
  CHECK(std::memcmp(m2.data_as<uint8_t>(), p, 100000) != 0);
  ops::Generator g2(123);
  Tensor m3 = ops::qdrop_mask({1000, 100}, g2);  // same seed, same bits
  CHECK(std::memcmp(m3.data_as<uint8_t>(), p, 100000) == 0);
}

TEST_CASE("quant: step-gradient reductions do not depend on the thread count") {
  Tensor x = test::randn_cpu({200000}, 3, 2.f), dy = test::randn_cpu({200000}, 4);
  Tensor s = Tensor::from_vector({0.1f}, {1});
  Tensor code = Tensor::empty({200000}, Device::CPU, DType::U8), y = Tensor::empty({200000});
  k::aquant_fwd_cpu(x.data(), s.data(), -8, 7, nullptr, x.numel(), y.data(),
                    code.data_as<uint8_t>(), nullptr);
  const int threads = cpu_threads();
  float ds[2];
  for (int t = 0; t < 2; ++t) {
    set_cpu_threads(t == 0 ? 1 : 2);
    k::aquant_bwd_cpu(dy.data(), x.data(), s.data(), code.data_as<uint8_t>(), -8, 7, x.numel(),
                      nullptr, &ds[t], false, nullptr);
  }
  set_cpu_threads(threads);
  CHECK(ds[0] == ds[1]);
}

TEST_CASE("quant: CPU and CUDA kernels agree (GPU)") {
  GENIE_REQUIRE_GPU();
  const Device C = Device::CPU, D = Device::CUDA;
  // weights
  Tensor wf = G("wq.w_floor"), z = G("wq.zero"), dy = G("wq.dy");
  for (bool hard : {false, true}) {
    std::vector<Tensor> gv, gs, out;
    for (Device d : {C, D}) {
      Tensor v = req(G("wq.v").to(d)), s = req(G("wq.s").to(d));
      Tensor w = ops::fake_quant_weight(wf.to(d), v, s, z.to(d), 4, hard);
      backward(w, dy.to(d));
      out.push_back(w.to(C));
      gs.push_back(s.grad().to(C));
      if (!hard) gv.push_back(v.grad().to(C));
    }
    CHECK(rel(out[0], out[1]) < 1e-6);
    CHECK(rel(gs[0], gs[1]) < 1e-5);
    if (!hard) CHECK(rel(gv[0], gv[1]) < 1e-5);
  }
  // activations, large enough for several reduction chunks
  Tensor x = test::randn_cpu({3, 50000}, 5, 2.f), dya = test::randn_cpu({3, 50000}, 6);
  ops::Generator g(77);
  Tensor mask = ops::bernoulli_mask({3, 50000}, 0.5f, g);
  std::vector<Tensor> ys, dxs, dss;
  for (Device d : {C, D}) {
    Tensor xd = req(x.to(d)), s = req(Tensor::from_vector({0.3f}, {1}, d));
    Tensor y = ops::fake_quant_act(xd, s, -8.f, 7.f, mask.to(d));
    backward(y, dya.to(d));
    ys.push_back(y.to(C));
    dxs.push_back(xd.grad().to(C));
    dss.push_back(s.grad().to(C));
  }
  for (uint64_t seed : {1, 2}) {
    ops::Generator gc(seed), gd(seed);
    Tensor mc = ops::qdrop_mask({7, 1001}, gc), md = ops::qdrop_mask({7, 1001}, gd, D).to(C);
    CHECK(std::memcmp(mc.data_as<uint8_t>(), md.data_as<uint8_t>(), 7007) == 0);
  }
  CHECK(rel(ys[0], ys[1]) == 0.0);
  CHECK(rel(dxs[0], dxs[1]) == 0.0);
  CHECK(rel(dss[0], dss[1]) < 1e-5);
  // regulariser and clip search
  Tensor vr = test::randn_cpu({70000}, 9, 3.f);
  std::vector<float> rs, gr[2];
  for (int i = 0; i < 2; ++i) {
    Tensor v = req(vr.to(i ? D : C));
    Tensor r = ops::rounding_reg(v, 11.f);
    backward(r);
    rs.push_back(r.to(C).item());
    gr[i] = v.grad().to(C).to_vector();
  }
  CHECK(rs[0] == doctest::Approx(rs[1]).epsilon(1e-5));
  CHECK(test::rel_err(gr[1], gr[0]) < 1e-5);
  quant::ActQuantizer a0(4), a1(4);
  a0.init(G("aq.search_x"));
  a1.init(G("aq.search_x").to(D));
  CHECK(a0.step().item() == a1.step().to(C).item());
  auto w0 = quant::WeightQuantizer::from_weight(G("wq.w"), 4);
  auto w1 = quant::WeightQuantizer::from_weight(G("wq.w").to(D), 4);
  CHECK(w0.step().to_vector() == w1.step().to(C).to_vector());
}

TEST_CASE("quant: CUDA kernels' 4-wide and element-wise paths both match the CPU (GPU)") {
  GENIE_REQUIRE_GPU();
  const Device C = Device::CPU, D = Device::CUDA;
  // M % 4 == 0 with aligned arrays takes the 4-wide path; M = 37 or arrays one float off their
  // alignment take the element-wise one. Activations: several reduction chunks and a tail.
  struct WCase {
    int64_t K, M, off;
  };
  for (const WCase& c : {WCase{5, 64, 0}, WCase{5, 37, 0}, WCase{3, 64, 1}}) {
    for (bool hard : {false, true}) {
      INFO("K ", c.K, " M ", c.M, " offset ", c.off, " hard ", hard);
      const int64_t n = c.K * c.M + c.off;
      Tensor wf = test::randn_cpu({n}, 31, 3.f), v = test::randn_cpu({n}, 32, 2.f);
      for (int64_t i = 0; i < n; ++i) wf.data()[i] = std::floor(wf.data()[i]) + 8.f;
      Tensor st = test::randn_cpu({c.K}, 33, 0.01f), zr = Tensor::full({c.K}, 8.f);
      for (int64_t i = 0; i < c.K; ++i) st.data()[i] = 0.05f + std::fabs(st.data()[i]);
      Tensor dy = test::randn_cpu({n}, 34), dv0 = test::randn_cpu({n}, 35);
      std::vector<float> wh[2], dv[2], ds[2];
      std::vector<uint8_t> mk[2];
      for (int j = 0; j < 2; ++j) {
        const Device d = j ? D : C;
        Tensor wfd = wf.to(d), vd = v.to(d), sd = st.to(d), zd = zr.to(d), dyd = dy.to(d);
        Tensor w_hat = Tensor::zeros({n}, d), mask = Tensor::zeros({n}, d, DType::U8);
        Tensor dvd = dv0.to(d), dsd = Tensor::full({c.K}, 1.f, d);
        const int64_t o = c.off;
        k::wquant_fwd(d, wfd.data() + o, vd.data() + o, sd.data(), zd.data(), c.K, c.M, 15.f, hard,
                      w_hat.data() + o, mask.data_as<uint8_t>() + o, nullptr);
        k::wquant_bwd(d, dyd.data() + o, wfd.data() + o, vd.data() + o, sd.data(), zd.data(),
                      mask.data_as<uint8_t>() + o, c.K, c.M, 15.f, hard, dvd.data() + o, dsd.data(),
                      true, nullptr);
        wh[j] = w_hat.to(C).to_vector();
        dv[j] = dvd.to(C).to_vector();
        ds[j] = dsd.to(C).to_vector();
        Tensor mc = mask.to(C);
        mk[j].assign(mc.data_as<uint8_t>(), mc.data_as<uint8_t>() + n);
      }
      CHECK(test::rel_err(wh[1], wh[0]) < 1e-6);
      CHECK(test::rel_err(dv[1], dv[0]) < 1e-5);
      CHECK(test::rel_err(ds[1], ds[0]) < 1e-5);
      int64_t diff = 0;
      for (int64_t i = 0; i < n; ++i) diff += mk[0][size_t(i)] != mk[1][size_t(i)];
      CHECK(diff <= (hard ? 0 : 2));  // soft: expf may differ in the last bit at a clamp edge
    }
  }
  for (int64_t off : {int64_t(0), int64_t(1)}) {
    INFO("activation offset ", off);
    const int64_t n = 3 * k::kQuantChunk + 7 + off;
    Tensor x = test::randn_cpu({n}, 41, 2.f), dy = test::randn_cpu({n}, 42);
    Tensor dx0 = test::randn_cpu({n}, 43);
    ops::Generator g(5);
    Tensor keep = ops::bernoulli_mask({n}, 0.5f, g);
    std::vector<float> y[2], dx[2], ds(2);
    std::vector<uint8_t> code[2];
    for (int j = 0; j < 2; ++j) {
      const Device d = j ? D : C;
      Tensor xd = x.to(d), dyd = dy.to(d), kd = keep.to(d), dxd = dx0.to(d);
      Tensor sd = Tensor::from_vector({0.3f}, {1}, d), dsd = Tensor::full({1}, 0.5f, d);
      Tensor yd = Tensor::zeros({n}, d), cd = Tensor::zeros({n}, d, DType::U8);
      k::aquant_fwd(d, xd.data() + off, sd.data(), -8.f, 7.f, kd.data_as<uint8_t>() + off, n - off,
                    yd.data() + off, cd.data_as<uint8_t>() + off, nullptr);
      k::aquant_bwd(d, dyd.data() + off, xd.data() + off, sd.data(), cd.data_as<uint8_t>() + off,
                    -8.f, 7.f, n - off, dxd.data() + off, dsd.data(), true, nullptr);
      y[j] = yd.to(C).to_vector();
      dx[j] = dxd.to(C).to_vector();
      ds[size_t(j)] = dsd.to(C).item();
      Tensor cc = cd.to(C);
      code[j].assign(cc.data_as<uint8_t>(), cc.data_as<uint8_t>() + n);
    }
    CHECK(y[1] == y[0]);
    CHECK(dx[1] == dx[0]);
    CHECK(code[1] == code[0]);
    CHECK(ds[1] == doctest::Approx(ds[0]).epsilon(1e-5));
  }
}
