// Kernel cases of genie_bench: the device copy (bandwidth yardstick), the fused Genie-M quantizer
// kernels and the fused BN-statistics loss against their composed forms (bench/composed.h), and
// convolutions (forward, backward-data, backward-filter) at ResNet-20 (Fashion-MNIST) and ResNet-18
// (ImageNet) shapes. Each case checks its result before timing: fused vs composed on the device,
// and the device result vs the CPU kernel (the reference) when running on CUDA; convolutions vs
// direct-loop sums at sampled positions.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "bench/composed.h"
#include "kernels/bnstat_loss.h"
#include "kernels/conv.h"
#include "kernels/quant.h"

namespace genie::bench {

namespace {

std::string sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1e", v);
  return b;
}

// Compares `got` against `ref` (any devices): max |got − ref| ≤ atol + rtol·max|ref|.
struct Check {
  bool ok = true;
  std::string text;
  void compare(const char* what, const Tensor& got, const Tensor& ref, double rtol,
               double atol = 0) {
    const auto a = got.to_vector(), b = ref.to_vector();
    double err = 0, mx = 0;
    bool nan = a.size() != b.size();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      const double d = std::fabs(double(a[i]) - double(b[i]));
      if (std::isnan(d)) nan = true;
      err = std::max(err, d);
      mx = std::max(mx, std::fabs(double(b[i])));
    }
    const double tol = atol + rtol * mx;
    const bool good = !nan && err <= tol;
    if (!text.empty()) text += ", ";
    text += str(what, " err ", sci(err / (mx + 1e-30)));
    if (!good) {
      ok = false;
      text += str(" > tol ", tol);
    }
  }
  std::string result() const { return (ok ? "ok (rel: " : "FAIL (rel: ") + text + ")"; }
};

int reps_or(const Options& o, int def) {
  return o.reps > 0 ? o.reps : (o.quick ? std::max(2, def / 3) : def);
}

Tensor u8_mask(const Shape& s, uint64_t seed, Device d) {
  ops::Generator g(seed);
  return ops::bernoulli_mask(s, 0.5f, g, d);
}

void add_timed(Bench& b, const std::string& group, const std::string& variant, const Check& chk,
               const std::function<void()>& fn, double bytes, double flops, const Json& params,
               int warmup, int reps, const std::string& note = "") {
  if (!b.selected(group + "/" + variant)) return;
  Result r;
  r.group = group;
  r.variant = variant;
  r.check = chk.result();
  r.failed = !chk.ok;
  r.params = params;
  r.bytes = bytes;
  r.flops = flops;
  r.note = note;
  if (!r.failed) r.t = time_fn(b.opt, fn, warmup, reps);
  b.add(std::move(r));
}

// ---------------------------------------------------------------- device copy
void copy_case(Bench& b, int64_t n) {
  const std::string g = "copy";
  if (!b.selected(g + "/d2d")) return;
  const Device d = b.opt.device;
  Tensor x = random_normal({n}, 1, d), y = Tensor::empty({n}, d);
  Check chk;
  copy_bytes(y.raw(), d, x.raw(), d, size_t(n) * 4);
  chk.compare("copy", y, x, 0);
  Json p = Json::object();
  p.set("elements", n);
  add_timed(
      b, g, "d2d", chk, [&] { copy_bytes(y.raw(), d, x.raw(), d, size_t(n) * 4); }, 8.0 * double(n),
      0, p, 3, reps_or(b.opt, 20),
      d == Device::CPU ? "memcpy (one thread)" : "cudaMemcpy device to device");
}

// ---------------------------------------------------------------- weight fake-quant
void wquant_cases(Bench& b, bool hard, int64_t K, int64_t M) {
  const std::string g = hard ? "wquant_hard" : "wquant_soft";
  if (!b.selected_any(g, {".fwd/fused", ".fwd/composed", ".bwd/fused", ".bwd/composed"})) return;
  const Device d = b.opt.device;
  const int bits = 4;
  const float qmax = float((1 << bits) - 1);
  const int64_t n = K * M;
  // A realistic state: W/s spread over the grid and a bit beyond (clamping happens), V around 0.
  Tensor wf = random_uniform({K, M}, 11, d, -10.f, 7.f);
  {
    Tensor h = wf.to(Device::CPU);
    for (int64_t i = 0; i < n; ++i) h.data()[i] = std::floor(h.data()[i]);
    wf = h.to(d);
  }
  Tensor v = random_normal({K, M}, 12, d, 0.f, 2.f);
  Tensor step = random_uniform({K}, 13, d, 0.01f, 0.05f);
  Tensor zero = random_uniform({K}, 14, d, 6.f, 9.f);
  {
    Tensor h = zero.to(Device::CPU);
    for (int64_t i = 0; i < K; ++i) h.data()[i] = std::round(h.data()[i]);
    zero = h.to(d);
  }
  Tensor dy = random_normal({K, M}, 15, d);
  Json p = Json::object();
  p.set("K", K);
  p.set("M", M);
  p.set("bits", bits);
  p.set("hard", hard);

  // Fused: one forward kernel (output + straight-through mask), one backward kernel.
  auto fused_fwd = [&](Tensor& w_hat, Tensor& mask) {
    w_hat = Tensor::empty({K, M}, d);
    mask = hard ? Tensor() : Tensor::empty({K, M}, d, DType::U8);
    k::wquant_fwd(d, wf.data(), v.data(), step.data(), zero.data(), K, M, qmax, hard, w_hat.data(),
                  hard ? nullptr : mask.data_as<uint8_t>(), nullptr);
  };
  auto fused_bwd = [&](const Tensor& mask, Tensor& dv, Tensor& ds) {
    dv = hard ? Tensor() : Tensor::empty({K, M}, d);
    ds = Tensor::empty({K}, d);
    k::wquant_bwd(d, dy.data(), wf.data(), v.data(), step.data(), zero.data(),
                  hard ? nullptr : mask.data_as<uint8_t>(), K, M, qmax, hard,
                  hard ? nullptr : dv.data(), ds.data(), false, nullptr);
  };

  Tensor w_f, m_f, dv_f, ds_f;
  fused_fwd(w_f, m_f);
  fused_bwd(m_f, dv_f, ds_f);
  composed::WQuantSaved sv;
  Tensor w_c, dv_c, ds_c;
  composed::wquant_fwd(d, wf, v, step, zero, qmax, hard, w_c, sv);
  composed::wquant_bwd(d, dy, sv, step, qmax, hard, dv_c, ds_c);
  sync(d);

  Check cf, cb, cc_f, cc_b;
  if (d != Device::CPU) {  // device vs the CPU kernels (the reference)
    const Tensor wf_h = wf.to(Device::CPU), v_h = v.to(Device::CPU), s_h = step.to(Device::CPU),
                 z_h = zero.to(Device::CPU), dy_h = dy.to(Device::CPU);
    Tensor w_r = Tensor::empty({K, M}), m_r = Tensor::empty({K, M}, Device::CPU, DType::U8);
    Tensor dv_r = Tensor::empty({K, M}), ds_r = Tensor::empty({K});
    k::wquant_fwd_cpu(wf_h.data(), v_h.data(), s_h.data(), z_h.data(), K, M, qmax, hard, w_r.data(),
                      m_r.data_as<uint8_t>(), nullptr);
    k::wquant_bwd_cpu(dy_h.data(), wf_h.data(), v_h.data(), s_h.data(), z_h.data(),
                      m_r.data_as<uint8_t>(), K, M, qmax, hard, hard ? nullptr : dv_r.data(),
                      ds_r.data(), false, nullptr);
    cf.compare("w_hat", w_f, w_r, 1e-6);
    if (!hard) cb.compare("dV", dv_f, dv_r, 1e-5);
    cb.compare("dstep", ds_f, ds_r, 1e-5);
  }
  // Composed vs fused: same math, different pass structure (and float vs double step sums).
  cc_f.compare("w_hat", w_c, w_f, 1e-6);
  cf.compare("w_hat(composed)", w_c, w_f, 1e-6);
  if (!hard) {
    cc_b.compare("dV", dv_c, dv_f, 1e-5);
    cb.compare("dV(composed)", dv_c, dv_f, 1e-5);
  }
  cc_b.compare("dstep", ds_c, ds_f, 1e-4);
  cb.compare("dstep(composed)", ds_c, ds_f, 1e-4);

  const double nb = double(n);
  const double fwd_bytes = hard ? 12 * nb : 13 * nb, bwd_bytes = hard ? 12 * nb : 17 * nb;
  const int reps = reps_or(b.opt, 15);
  Tensor t1, t2, t3;
  add_timed(
      b, g + ".fwd", "fused", cf, [&] { fused_fwd(t1, t2); }, fwd_bytes, 0, p, 2, reps);
  add_timed(
      b, g + ".fwd", "composed", cc_f,
      [&] {
        composed::WQuantSaved s;
        composed::wquant_fwd(d, wf, v, step, zero, qmax, hard, t1, s);
      },
      fwd_bytes, 0, p, 2, reps, hard ? "6 passes" : "9 passes");
  add_timed(
      b, g + ".bwd", "fused", cb, [&] { fused_bwd(m_f, t1, t3); }, bwd_bytes, 0, p, 2, reps);
  add_timed(
      b, g + ".bwd", "composed", cc_b,
      [&] { composed::wquant_bwd(d, dy, sv, step, qmax, hard, t1, t3); }, bwd_bytes, 0, p, 2, reps,
      hard ? "1 pass + row sums" : "6 passes + row sums");
}

// ---------------------------------------------------------------- LSQ + QDrop
void aquant_cases(Bench& b, const Shape& shape) {
  const std::string g = "aquant_qdrop";
  if (!b.selected_any(g, {".fwd/fused", ".fwd/composed", ".bwd/fused", ".bwd/composed"})) return;
  const Device d = b.opt.device;
  const float qn = -8.f, qp = 7.f;  // 4-bit signed
  Tensor x = random_normal(shape, 21, d);
  Tensor step = Tensor::from_vector({0.31f}, {1}, d);
  Tensor mask = u8_mask(shape, 22, d);
  Tensor dy = random_normal(shape, 23, d);
  const int64_t n = x.numel();
  Json p = Json::object();
  p.set("shape", shape_str(shape));
  p.set("qn", qn);
  p.set("qp", qp);

  auto fused_fwd = [&](Tensor& y, Tensor& code) {
    y = Tensor::empty(shape, d);
    code = Tensor::empty(shape, d, DType::U8);
    k::aquant_fwd(d, x.data(), step.data(), qn, qp, mask.data_as<uint8_t>(), n, y.data(),
                  code.data_as<uint8_t>(), nullptr);
  };
  auto fused_bwd = [&](const Tensor& code, Tensor& dx, Tensor& ds) {
    dx = Tensor::empty(shape, d);
    ds = Tensor::empty({1}, d);
    k::aquant_bwd(d, dy.data(), x.data(), step.data(), code.data_as<uint8_t>(), qn, qp, n,
                  dx.data(), ds.data(), false, nullptr);
  };
  Tensor y_f, code_f, dx_f, ds_f;
  fused_fwd(y_f, code_f);
  fused_bwd(code_f, dx_f, ds_f);
  composed::AQuantSaved sv;
  Tensor y_c, dx_c, ds_c;
  composed::aquant_fwd(d, x, step, qn, qp, mask, y_c, sv);
  composed::aquant_bwd(d, dy, x, step, qn, qp, mask, sv, dx_c, ds_c);
  sync(d);

  // dstep sums n terms of size O(1): compare with an absolute floor scaled by √n.
  const double ds_atol = 1e-5 * std::sqrt(double(n));
  Check cf, cb, cc_f, cc_b;
  if (d != Device::CPU) {
    const Tensor x_h = x.to(Device::CPU), s_h = step.to(Device::CPU), m_h = mask.to(Device::CPU),
                 dy_h = dy.to(Device::CPU);
    Tensor y_r = Tensor::empty(shape), c_r = Tensor::empty(shape, Device::CPU, DType::U8);
    Tensor dx_r = Tensor::empty(shape), ds_r = Tensor::empty({1});
    k::aquant_fwd_cpu(x_h.data(), s_h.data(), qn, qp, m_h.data_as<uint8_t>(), n, y_r.data(),
                      c_r.data_as<uint8_t>(), nullptr);
    k::aquant_bwd_cpu(dy_h.data(), x_h.data(), s_h.data(), c_r.data_as<uint8_t>(), qn, qp, n,
                      dx_r.data(), ds_r.data(), false, nullptr);
    cf.compare("y", y_f, y_r, 1e-6);
    cb.compare("dx", dx_f, dx_r, 0);
    cb.compare("dstep", ds_f, ds_r, 1e-5, ds_atol);
  }
  cc_f.compare("y", y_c, y_f, 1e-6);
  cf.compare("y(composed)", y_c, y_f, 1e-6);
  cc_b.compare("dx", dx_c, dx_f, 1e-6);
  cc_b.compare("dstep", ds_c, ds_f, 1e-4, ds_atol);
  cb.compare("dx(composed)", dx_c, dx_f, 1e-6);

  const double nb = double(n);
  const int reps = reps_or(b.opt, 15);
  Tensor t1, t2, t3;
  add_timed(
      b, g + ".fwd", "fused", cf, [&] { fused_fwd(t1, t2); }, 10 * nb, 0, p, 2, reps);
  add_timed(
      b, g + ".fwd", "composed", cc_f,
      [&] {
        composed::AQuantSaved s;
        composed::aquant_fwd(d, x, step, qn, qp, mask, t1, s);
      },
      10 * nb, 0, p, 2, reps, "5 passes");
  add_timed(
      b, g + ".bwd", "fused", cb, [&] { fused_bwd(code_f, t1, t3); }, 13 * nb, 0, p, 2, reps);
  add_timed(
      b, g + ".bwd", "composed", cc_b,
      [&] { composed::aquant_bwd(d, dy, x, step, qn, qp, mask, sv, t1, t3); }, 13 * nb, 0, p, 2,
      reps, "8 passes + 2 sums");
}

// ---------------------------------------------------------------- BN-statistics loss
void bnstat_cases(Bench& b, int64_t N, int64_t C, int64_t H, int64_t W) {
  const std::string g = "bnstat_loss";
  if (!b.selected_any(g, {".fwd/fused", ".fwd/composed", ".bwd/fused", ".bwd/composed"})) return;
  const Device d = b.opt.device;
  const int64_t HW = H * W;
  const Shape shape{N, C, H, W};
  Tensor x = random_normal(shape, 31, d, 0.3f, 1.2f);
  Tensor mu = random_normal({C}, 32, d, 0.f, 0.2f);
  Tensor sigma = random_uniform({C}, 33, d, 0.5f, 1.5f);
  Tensor dout = Tensor::from_vector({1.f}, {1}, d);
  const float weight = 1.f / float(C);
  Json p = Json::object();
  p.set("shape", shape_str(shape));

  auto fused_fwd = [&](Tensor& loss, Tensor& mean, Tensor& sd) {
    loss = Tensor::empty({1}, d);
    mean = Tensor::empty({C}, d);
    sd = Tensor::empty({C}, d);
    k::bnstat_loss_fwd(d, x.data(), N, C, HW, mu.data(), sigma.data(), weight, mean.data(),
                       sd.data(), loss.data(), nullptr);
  };
  auto fused_bwd = [&](const Tensor& mean, const Tensor& sd, Tensor& dx) {
    dx = Tensor::empty(shape, d);
    k::bnstat_loss_bwd(d, x.data(), N, C, HW, mu.data(), sigma.data(), mean.data(), sd.data(),
                       weight, dout.data(), dx.data(), false, nullptr);
  };
  Tensor l_f, mean_f, sd_f, dx_f;
  fused_fwd(l_f, mean_f, sd_f);
  fused_bwd(mean_f, sd_f, dx_f);
  composed::BnStatSaved sv;
  Tensor l_c, dx_c;
  composed::bnstat_fwd(d, x, N, C, HW, mu, sigma, weight, l_c, sv);
  composed::bnstat_bwd(d, x, N, C, HW, mu, sigma, weight, dout, sv, dx_c);
  sync(d);

  Check cf, cb, cc_f, cc_b;
  if (d != Device::CPU) {
    const Tensor x_h = x.to(Device::CPU), mu_h = mu.to(Device::CPU), sg_h = sigma.to(Device::CPU),
                 one = Tensor::from_vector({1.f}, {1});
    Tensor l_r = Tensor::empty({1}), m_r = Tensor::empty({C}), s_r = Tensor::empty({C}),
           dx_r = Tensor::empty(shape);
    k::bnstat_loss_fwd_cpu(x_h.data(), N, C, HW, mu_h.data(), sg_h.data(), weight, m_r.data(),
                           s_r.data(), l_r.data(), nullptr);
    k::bnstat_loss_bwd_cpu(x_h.data(), N, C, HW, mu_h.data(), sg_h.data(), m_r.data(), s_r.data(),
                           weight, one.data(), dx_r.data(), false, nullptr);
    cf.compare("loss", l_f, l_r, 1e-5);
    cb.compare("dx", dx_f, dx_r, 1e-4);
  }
  cc_f.compare("loss", l_c, l_f, 1e-4);
  cf.compare("loss(composed)", l_c, l_f, 1e-4);
  cc_b.compare("dx", dx_c, dx_f, 1e-3);
  cb.compare("dx(composed)", dx_c, dx_f, 1e-3);

  const double nb = double(N * C * HW);
  const int reps = reps_or(b.opt, 15);
  Tensor t1, t2, t3;
  add_timed(
      b, g + ".fwd", "fused", cf, [&] { fused_fwd(t1, t2, t3); }, 4 * nb, 0, p, 2, reps);
  add_timed(
      b, g + ".fwd", "composed", cc_f,
      [&] {
        composed::BnStatSaved s;
        composed::bnstat_fwd(d, x, N, C, HW, mu, sigma, weight, t1, s);
      },
      4 * nb, 0, p, 2, reps, "channel_mean_var + 5 small passes + sum");
  add_timed(
      b, g + ".bwd", "fused", cb, [&] { fused_bwd(mean_f, sd_f, t1); }, 8 * nb, 0, p, 2, reps);
  add_timed(
      b, g + ".bwd", "composed", cc_b,
      [&] { composed::bnstat_bwd(d, x, N, C, HW, mu, sigma, weight, dout, sv, t1); }, 8 * nb, 0, p,
      2, reps, "3 small passes + moments_bwd");
}

// ---------------------------------------------------------------- convolutions
struct ConvCase {
  const char* name;
  k::ConvShape cs;
};

k::ConvShape conv_shape(int64_t N, int64_t C, int64_t H, int64_t K, int64_t R, int64_t stride,
                        int64_t pad, int64_t groups = 1) {
  k::ConvShape cs;
  cs.N = N;
  cs.C = C;
  cs.H = H;
  cs.W = H;
  cs.K = K;
  cs.R = R;
  cs.S = R;
  cs.stride = stride;
  cs.pad = pad;
  cs.groups = groups;
  return cs;
}

// Direct-loop sums at sampled positions (host copies), the reference for all three kernels.
double conv_check(const k::ConvShape& cs, const std::vector<float>& x, const std::vector<float>& w,
                  const std::vector<float>& dy, const std::vector<float>& y,
                  const std::vector<float>& dx, const std::vector<float>& dw, std::string& what) {
  const int64_t P = cs.P(), Q = cs.Q(), Cg = cs.C / cs.groups, Kg = cs.K / cs.groups;
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t n) { return int64_t(rng() % uint64_t(n)); };
  double worst = 0;
  auto rel = [&](double got, double ref, double scale, const char* which) {
    const double e = std::fabs(got - ref) / (scale + 1e-12);
    if (e > worst) {
      worst = e;
      what = which;
    }
  };
  for (int t = 0; t < 48; ++t) {
    {  // y[n,k,p,q]
      const int64_t n = pick(cs.N), kk = pick(cs.K), p = pick(P), q = pick(Q), g = kk / Kg;
      double s = 0, sa = 0;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < cs.R; ++r)
          for (int64_t u = 0; u < cs.S; ++u) {
            const int64_t h = p * cs.stride - cs.pad + r, ww = q * cs.stride - cs.pad + u;
            if (h < 0 || h >= cs.H || ww < 0 || ww >= cs.W) continue;
            const double a = double(x[size_t(((n * cs.C + g * Cg + c) * cs.H + h) * cs.W + ww)]) *
                             double(w[size_t(((kk * Cg + c) * cs.R + r) * cs.S + u)]);
            s += a;
            sa += std::fabs(a);
          }
      rel(y[size_t(((n * cs.K + kk) * P + p) * Q + q)], s, sa, "y");
    }
    {  // dx[n,c,h,w] = Σ dy[n,k,p,q] w[k,c,r,s] with h = p·stride − pad + r
      const int64_t n = pick(cs.N), c = pick(cs.C), h = pick(cs.H), ww = pick(cs.W), g = c / Cg;
      double s = 0, sa = 0;
      for (int64_t kk = g * Kg; kk < (g + 1) * Kg; ++kk)
        for (int64_t r = 0; r < cs.R; ++r)
          for (int64_t u = 0; u < cs.S; ++u) {
            const int64_t ph = h + cs.pad - r, qw = ww + cs.pad - u;
            if (ph < 0 || qw < 0 || ph % cs.stride || qw % cs.stride) continue;
            const int64_t p = ph / cs.stride, q = qw / cs.stride;
            if (p >= P || q >= Q) continue;
            const double a = double(dy[size_t(((n * cs.K + kk) * P + p) * Q + q)]) *
                             double(w[size_t(((kk * Cg + (c - g * Cg)) * cs.R + r) * cs.S + u)]);
            s += a;
            sa += std::fabs(a);
          }
      rel(dx[size_t(((n * cs.C + c) * cs.H + h) * cs.W + ww)], s, sa, "dx");
    }
    {  // dw[k,c,r,s] = Σ_{n,p,q} dy[n,k,p,q] x[n, g·Cg + c, p·stride − pad + r, …]
      const int64_t kk = pick(cs.K), c = pick(Cg), r = pick(cs.R), u = pick(cs.S), g = kk / Kg;
      double s = 0, sa = 0;
      for (int64_t n = 0; n < cs.N; ++n)
        for (int64_t p = 0; p < P; ++p)
          for (int64_t q = 0; q < Q; ++q) {
            const int64_t h = p * cs.stride - cs.pad + r, ww = q * cs.stride - cs.pad + u;
            if (h < 0 || h >= cs.H || ww < 0 || ww >= cs.W) continue;
            const double a = double(dy[size_t(((n * cs.K + kk) * P + p) * Q + q)]) *
                             double(x[size_t(((n * cs.C + g * Cg + c) * cs.H + h) * cs.W + ww)]);
            s += a;
            sa += std::fabs(a);
          }
      rel(dw[size_t(((kk * Cg + c) * cs.R + r) * cs.S + u)], s, sa, "dw");
    }
  }
  return worst;
}

void conv_case(Bench& b, const std::string& family, const ConvCase& cc) {
  const std::string g = "conv/" + family + "/" + cc.name;
  if (!b.selected_any(g, {"/fwd", "/bwd_data", "/bwd_filter"})) return;
  const Device d = b.opt.device;
  const k::ConvShape& cs = cc.cs;
  const Shape xs{cs.N, cs.C, cs.H, cs.W}, ws{cs.K, cs.C / cs.groups, cs.R, cs.S},
      ys{cs.N, cs.K, cs.P(), cs.Q()};
  Tensor x = random_normal(xs, 41, d), w = random_normal(ws, 42, d, 0.f, 0.1f),
         dy = random_normal(ys, 43, d);
  Tensor y = Tensor::empty(ys, d), dx = Tensor::empty(xs, d), dw = Tensor::empty(ws, d);
  auto fwd = [&] { k::conv2d_fwd(d, cs, x.data(), w.data(), nullptr, y.data(), nullptr); };
  auto bwd_data = [&] {
    k::conv2d_bwd_data(d, cs, dy.data(), w.data(), dx.data(), false, nullptr);
  };
  auto bwd_filter = [&] {
    k::conv2d_bwd_filter(d, cs, x.data(), dy.data(), dw.data(), false, nullptr);
  };
  fwd();
  bwd_data();
  bwd_filter();
  sync(d);
  std::string which;
  const double err = conv_check(cs, x.to_vector(), w.to_vector(), dy.to_vector(), y.to_vector(),
                                dx.to_vector(), dw.to_vector(), which);
  Check chk;
  // FP32: 1e-4 of the sums' scale; a reduced precision: in proportion to its operand rounding.
  chk.ok = err <= std::max(1e-4, 8 * precision_operand_error(b.opt.precision));
  chk.text = str("sampled vs direct sums, worst ", which, " ", sci(err));
  const double flops =
      2.0 * double(cs.N * cs.K * cs.P() * cs.Q()) * double(cs.C / cs.groups * cs.R * cs.S);
  Json p = Json::object();
  p.set("N", cs.N);
  p.set("C", cs.C);
  p.set("H", cs.H);
  p.set("K", cs.K);
  p.set("R", cs.R);
  p.set("stride", cs.stride);
  p.set("pad", cs.pad);
  p.set("groups", cs.groups);
  const int reps = reps_or(b.opt, 10);
  add_timed(b, g, "fwd", chk, fwd, 0, flops, p, 2, reps);
  add_timed(b, g, "bwd_data", chk, bwd_data, 0, flops, p, 2, reps);
  add_timed(b, g, "bwd_filter", chk, bwd_filter, 0, flops, p, 2, reps);
}

}  // namespace

void run_kernel_cases(Bench& b) {
  const bool q = b.opt.quick, gpu = b.opt.device == Device::CUDA;
  // Sizes: large enough on the GPU that launch latency is noise next to the memory traffic.
  const int64_t n_copy = q ? (1 << 21) : (gpu ? (int64_t(64) << 20) : (int64_t(9) << 20));
  copy_case(b, n_copy);
  // Weights: 3x3 weights of a wide layer stack, (K, M) = (2048, 4608) = 9.4 M elements (4x on GPU).
  const int64_t K = q ? 512 : (gpu ? 8192 : 2048), M = 4608;
  wquant_cases(b, false, K, M);
  wquant_cases(b, true, K, M);
  // Activations: ResNet-18 layer1 at batch 32 (6.4 M elements; batch 128 on the GPU).
  const int64_t NA = q ? 8 : (gpu ? 128 : 32);
  aquant_cases(b, Shape{NA, 64, 56, 56});
  bnstat_cases(b, NA, 64, 56, 56);
}

void run_conv_cases(Bench& b) {
  const bool q = b.opt.quick, gpu = b.opt.device == Device::CUDA;
  // ResNet-20 on Fashion-MNIST (28x28, widths 16/32/64) at the Genie-D batch 128.
  const int64_t n20 = q ? 32 : 128;
  const ConvCase r20[] = {
      {"l1.3x3.16x28", conv_shape(n20, 16, 28, 16, 3, 1, 1)},
      {"l2.0.3x3s2.16to32", conv_shape(n20, 16, 28, 32, 3, 2, 1)},
      {"l2.0.down1x1s2", conv_shape(n20, 16, 28, 32, 1, 2, 0)},
      {"l2.3x3.32x14", conv_shape(n20, 32, 14, 32, 3, 1, 1)},
      {"l3.3x3.64x7", conv_shape(n20, 64, 7, 64, 3, 1, 1)},
      // The Genie-D generator for 28x28 images at the same batch (a large share of the iteration).
      {"gen.conv1.3x3.128to64x14", conv_shape(n20, 128, 14, 64, 3, 1, 1)},
      {"gen.conv2.3x3.64to1x28", conv_shape(n20, 64, 28, 1, 3, 1, 1)},
      // ... as the engine runs them: upsample + 3x3 conv fused into four stacked 2x2 filters on
      // the low-resolution input (ops::upsample2x_conv3x3), 4/9 of the multiply-adds.
      {"gen.conv1.fused2x2.128to4x64x7", conv_shape(n20, 128, 7, 256, 2, 1, 1)},
      {"gen.conv2.fused2x2.64to4x1x14", conv_shape(n20, 64, 14, 4, 2, 1, 1)},
  };
  for (const auto& c : r20) conv_case(b, str("resnet20_B", n20), c);
  // ResNet-18 on ImageNet shapes: batch 128 on the GPU, 16 on the CPU (8 quick).
  const int64_t n18 = gpu ? (q ? 32 : 128) : (q ? 4 : 16);
  const ConvCase r18[] = {
      {"stem.7x7s2", conv_shape(n18, 3, 224, 64, 7, 2, 3)},
      {"l1.3x3.64x56", conv_shape(n18, 64, 56, 64, 3, 1, 1)},
      {"l2.0.3x3s2.64to128", conv_shape(n18, 64, 56, 128, 3, 2, 1)},
      {"l2.3x3.128x28", conv_shape(n18, 128, 28, 128, 3, 1, 1)},
      {"l3.3x3.256x14", conv_shape(n18, 256, 14, 256, 3, 1, 1)},
      {"l4.3x3.512x7", conv_shape(n18, 512, 7, 512, 3, 1, 1)},
  };
  for (const auto& c : r18) conv_case(b, str("resnet18_B", n18), c);
}

}  // namespace genie::bench
