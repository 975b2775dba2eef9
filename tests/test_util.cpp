// Implementation of the shared test helpers.
#include "test_util.h"

#include <algorithm>

namespace genie::test {

int& gpu_skipped() {
  static int n = 0;
  return n;
}

int& onnx_skipped() {
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

// ---- deterministic parameters: mirrors det_values() in make_model_goldens.py ----

static uint32_t fnv1a(const std::string& s) {
  uint32_t h = 0x811C9DC5u;
  for (unsigned char c : s) h = (h ^ c) * 0x01000193u;
  return h;
}

Tensor det_values(const std::string& key, const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  const uint32_t h = fnv1a(key);
  int64_t fan_in = 1;
  for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
  auto ends = [&](const char* s) {
    const std::string suf(s);
    return key.size() >= suf.size() && key.compare(key.size() - suf.size(), suf.size(), suf) == 0;
  };
  float* p = t.data();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t x = (uint64_t(i) * 2654435761ull + h) & 0xFFFFFFFFull;
    for (int r = 0; r < 2; ++r) {
      x ^= x >> 16;
      x = (x * 0x45D9F3Bull) & 0xFFFFFFFFull;
    }
    x ^= x >> 16;
    const double u = double(x) / 4294967296.0;
    double v;
    if (ends(".running_var"))
      v = 0.5 + u;
    else if (ends(".running_mean"))
      v = 0.2 * (2.0 * u - 1.0);
    else if (ends(".bias"))
      v = 0.1 * (2.0 * u - 1.0);
    else if (ends(".weight") && shape.size() == 1)
      v = 0.5 + 0.5 * u;
    else if (key == "input")
      v = 1.5 * (2.0 * u - 1.0);
    else
      v = (2.0 * u - 1.0) * std::sqrt(6.0 / double(fan_in));
    p[i] = float(v);
  }
  return t;
}

Shape json_shape(const Json& j) {
  Shape s;
  for (const Json& v : j.as_array()) s.push_back(v.as_int());
  return s;
}

std::vector<float> json_floats(const Json& j) {
  std::vector<float> v;
  for (const Json& x : j.as_array()) v.push_back(float(x.as_number()));
  return v;
}

}  // namespace genie::test
