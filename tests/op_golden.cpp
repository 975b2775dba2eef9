// Golden-file loader and CPU-vs-CUDA parity harness for the op tests.
#include "op_golden.h"

#include <fstream>
#include <map>
#include <sstream>

namespace genie::test {

namespace {
std::map<std::string, GoldenTensor> load() {
  std::map<std::string, GoldenTensor> m;
  const std::string path = source_path("tests/golden/op_goldens.txt");
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string name, colon;
    int nd = 0;
    is >> name >> nd;
    GoldenTensor g;
    for (int i = 0; i < nd; ++i) {
      int64_t d;
      is >> d;
      g.shape.push_back(d);
    }
    is >> colon;
    REQUIRE_MESSAGE(colon == ":", "malformed golden line for " << name);
    g.v.reserve(size_t(numel_of(g.shape)));
    float x;
    while (is >> x) g.v.push_back(x);
    REQUIRE_MESSAGE(
        int64_t(g.v.size()) == numel_of(g.shape),
        "golden " << name << ": " << g.v.size() << " values for shape " << shape_str(g.shape));
    m.emplace(name, std::move(g));
  }
  return m;
}
}  // namespace

Tensor GoldenTensor::tensor(bool requires_grad) const {
  Tensor t = Tensor::from_vector(v, shape);
  if (requires_grad) t.set_requires_grad();
  return t;
}

Tensor GoldenTensor::i32() const {
  std::vector<int32_t> l(v.size());
  for (size_t i = 0; i < v.size(); ++i) l[i] = int32_t(v[i]);
  return Tensor::from_i32(l, shape);
}

const GoldenTensor& golden(const std::string& name) {
  static const std::map<std::string, GoldenTensor> all = load();
  auto it = all.find(name);
  REQUIRE_MESSAGE(it != all.end(), "golden tensor " << name << " not found");
  return it->second;
}

void check_golden(const Tensor& got, const std::string& name, double tol) {
  const GoldenTensor& g = golden(name);
  INFO("golden ", name);
  REQUIRE(got.defined());
  REQUIRE(shape_str(got.shape()) == shape_str(g.shape));
  const double e = rel_err(got.to_vector(), g.v);
  CHECK_MESSAGE(e <= tol, name << ": rel_err " << e << " > " << tol);
}

void check_parity(const char* what, const std::function<Tensor(const std::vector<Tensor>&)>& f,
                  const std::vector<Tensor>& cpu_inputs, double tol) {
  INFO("parity ", what);
  std::vector<Tensor> ci, gi;
  for (const Tensor& t : cpu_inputs) {
    Tensor c = t.clone(), g = t.to(Device::CUDA);
    if (t.requires_grad()) {
      c.set_requires_grad();
      g.set_requires_grad();
    }
    ci.push_back(c);
    gi.push_back(g);
  }
  // One backward sweeps (and clears) the whole tape, so each device's forward is followed by its
  // own backward before the other device records anything.
  Tensor yc = f(ci);
  const bool grads = yc.requires_grad();
  const Tensor probe = randn_cpu(yc.shape(), 4242);
  if (grads) backward(yc, probe);
  Tensor yg = f(gi);
  REQUIRE(yg.device() == Device::CUDA);
  CHECK(rel_err(yg.to_vector(), yc.to_vector()) <= tol);
  if (grads) backward(yg, probe.to(Device::CUDA));
  for (size_t i = 0; i < ci.size(); ++i) {
    if (!ci[i].requires_grad() || !grads) continue;
    INFO("gradient of input ", i);
    REQUIRE(ci[i].grad().defined());
    REQUIRE(gi[i].grad().defined());
    REQUIRE(gi[i].grad().device() == Device::CUDA);
    CHECK(rel_err(gi[i].grad().to_vector(), ci[i].grad().to_vector()) <= tol);
  }
}

}  // namespace genie::test
