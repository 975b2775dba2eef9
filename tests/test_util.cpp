// Implementation of the shared test helpers.
#include "test_util.h"

#include <algorithm>

namespace genie::test {

int& gpu_skipped() {
  static int n = 0;
  return n;
}

int& torch_skipped() {
  static int n = 0;
  return n;
}

std::string source_path(const std::string& rel) {
  return std::string(GENIE_SOURCE_DIR) + "/" + rel;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b, double floor) {
  double ref = floor;
  for (float v : b) ref = std::max(ref, std::fabs(double(v)));
  return max_abs_diff(a, b) / ref;
}

Tensor randn_cpu(const Shape& s, uint64_t seed, float std) {
  ops::Generator g(seed);
  return ops::randn(s, g, Device::CPU, 0.f, std);
}

Tensor rand_uniform_cpu(const Shape& s, uint64_t seed, float lo, float hi) {
  ops::Generator g(seed);
  Tensor u = ops::rand(s, g, Device::CPU);
  float* p = u.data();
  for (int64_t i = 0; i < u.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  return u;
}

double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                 std::vector<Tensor> inputs, double eps, int max_elems) {
  // Fixed random probe so that every output element contributes with a distinct weight.
  std::vector<Tensor> detached;
  Tensor out0;
  {
    NoGradGuard ng;
    out0 = f(inputs);
  }
  Tensor probe = randn_cpu(out0.shape(), 9001);
  auto scalar_of = [&](const Tensor& out) {
    auto o = out.to_vector();
    auto p = probe.to_vector();
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += double(o[i]) * double(p[i]);
    return s;
  };
  for (auto& t : inputs) t.zero_grad();
  Tensor out = f(inputs);
  backward(out, probe);
  double worst = 0;
  for (auto& t : inputs) {
    if (!t.requires_grad()) continue;
    REQUIRE_MESSAGE(t.grad().defined(), "no gradient reached an input");
    auto g = t.grad().to_vector();
    const int64_t n = t.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_elems);
    float* p = t.data();
    for (int64_t i = 0; i < n; i += stride) {
      const float orig = p[i];
      double fp, fm;
      {
        NoGradGuard ng;
        p[i] = float(orig + eps);
        fp = scalar_of(f(inputs));
        p[i] = float(orig - eps);
        fm = scalar_of(f(inputs));
        p[i] = orig;
      }
      const double num = (fp - fm) / (2 * eps);
      const double err = std::fabs(num - g[size_t(i)]) / std::max(1.0, std::fabs(num));
      worst = std::max(worst, err);
    }
  }
  return worst;
}

}  // namespace genie::test
