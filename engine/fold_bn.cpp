// BatchNorm folding into the preceding convolution (double-precision arithmetic, float storage).
#include "engine/fold_bn.h"

#include <cmath>

namespace genie::quant {

models::Model fold_bn(const models::Model& m, std::vector<int>* folded) {
  models::Graph g = m.graph();
  std::map<std::string, Tensor> params;
  for (const auto& kv : m.params()) params[kv.first] = kv.second.to(Device::CPU).clone();
  const auto cons = g.consumers();
  std::vector<int> done;
  for (int i = 0; i < g.size(); ++i) {
    models::Node& bn = g.nodes[size_t(i)];
    if (bn.op != "bn" || bn.inputs.size() != 1 || bn.inputs[0] < 0) continue;
    const int c = bn.inputs[0];
    models::Node& conv = g.nodes[size_t(c)];
    if (conv.op != "conv" || cons[size_t(c)] != std::vector<int>{i}) continue;
    const int64_t K = conv.out_ch;
    GENIE_CHECK(bn.out_ch == K, "[fold_bn] node ", i, " (", bn.name, "): expected ", K,
                " channels to match conv ", conv.name, ", got ", bn.out_ch);
    auto vec = [&](const std::string& key, float def) {
      auto it = params.find(key);
      return it == params.end() ? std::vector<float>(size_t(K), def) : it->second.to_vector();
    };
    const std::vector<float> gamma = vec(bn.name + ".weight", 1.f),
                             beta = vec(bn.name + ".bias", 0.f);
    const std::vector<float> mean = vec(bn.name + ".running_mean", 0.f);
    const std::vector<float> var = vec(bn.name + ".running_var", 1.f);
    const std::vector<float> bias = vec(conv.name + ".bias", 0.f);
    Tensor& w = params.at(conv.name + ".weight");
    const int64_t M = w.numel() / K;
    float* wp = w.data();
    std::vector<float> nb(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      const double a =
          double(gamma[size_t(k)]) / std::sqrt(double(var[size_t(k)]) + double(bn.eps));
      for (int64_t j = 0; j < M; ++j) wp[k * M + j] = float(double(wp[k * M + j]) * a);
      nb[size_t(k)] =
          float((double(bias[size_t(k)]) - double(mean[size_t(k)])) * a + double(beta[size_t(k)]));
    }
    params[conv.name + ".bias"] = Tensor::from_vector(nb, {K});
    conv.has_bias = true;
    for (const char* s : {".weight", ".bias", ".running_mean", ".running_var"})
      params.erase(bn.name + s);
    bn.op = "identity";
    done.push_back(i);
  }
  if (folded) *folded = done;
  models::Model out(std::move(g), m.info(), std::move(params), "fold_bn");
  out.to(m.device());
  return out;
}

}  // namespace genie::quant
