// Genie-D generator: construction with PyTorch-default initialisation and the forward pass.
#include "models/generator.h"

#include <cmath>

#include "models/limits.h"

namespace genie::models {

namespace {
// U(−b, b) from Philox, b = 1/√fan_in (PyTorch's kaiming_uniform(a=√5) and its bias rule).
Tensor uniform_pm(const Shape& s, int64_t fan_in, ops::Generator& rng, Device d) {
  const float b = float(1.0 / std::sqrt(double(fan_in)));
  Tensor u = ops::rand(s, rng, d);  // [0, 1)
  Tensor w = ops::add_scalar(ops::mul_scalar(u, 2.f * b), -b);
  w.set_requires_grad();
  return w;
}
Tensor constant(const Shape& s, float v, Device d) {
  Tensor t = Tensor::full(s, v, d);
  t.set_requires_grad();
  return t;
}
}  // namespace

GenieGenerator::GenieGenerator(int64_t img_size, int64_t channels, ops::Generator& rng, Device d)
    : R_(img_size), C_(channels) {
  GENIE_CHECK(img_size >= 4 && img_size % 4 == 0,
              "[generator] expected an image size divisible by 4, got ", img_size);
  GENIE_CHECK(img_size <= limits::kMaxSpatial,
              "[generator] expected an image size <= ", limits::kMaxSpatial, ", got ", img_size);
  GENIE_CHECK(channels >= 1 && channels <= limits::kMaxChannels, "[generator] expected 1 to ",
              limits::kMaxChannels, " image channels, got ", channels);
  // numel_of throws instead of wrapping (l1.weight, 128·(R/4)² × 256, is the largest tensor).
  const int64_t s = R_ / 4, feat = numel_of({128, s, s});
  params_.emplace_back("l1.weight", uniform_pm({feat, kLatentDim}, kLatentDim, rng, d));
  params_.emplace_back("l1.bias", uniform_pm({feat}, kLatentDim, rng, d));
  params_.emplace_back("bn0.weight", constant({128}, 1.f, d));
  params_.emplace_back("bn0.bias", constant({128}, 0.f, d));
  params_.emplace_back("conv1.weight", uniform_pm({64, 128, 3, 3}, 128 * 9, rng, d));
  params_.emplace_back("conv1.bias", uniform_pm({64}, 128 * 9, rng, d));
  params_.emplace_back("bn1.weight", constant({64}, 1.f, d));
  params_.emplace_back("bn1.bias", constant({64}, 0.f, d));
  params_.emplace_back("conv2.weight", uniform_pm({C_, 64, 3, 3}, 64 * 9, rng, d));
  params_.emplace_back("conv2.bias", uniform_pm({C_}, 64 * 9, rng, d));
}

const Tensor& GenieGenerator::param(const std::string& name) const {
  for (auto& [k, t] : params_)
    if (k == name) return t;
  throw Error(str("[generator] no parameter '", name, "'"));
}

std::vector<Tensor> GenieGenerator::parameters() const {
  std::vector<Tensor> v;
  for (auto& kv : params_) v.push_back(kv.second);
  return v;
}

void GenieGenerator::load(const std::map<std::string, Tensor>& values) {
  for (auto& [k, t] : params_) {
    auto it = values.find(k);
    GENIE_CHECK(it != values.end(), "[generator] load: missing parameter '", k, "'");
    GENIE_CHECK(it->second.shape() == t.shape(), "[generator] load: expected ", k, " of shape ",
                shape_str(t.shape()), ", got ", shape_str(it->second.shape()));
    Tensor dst = t;
    dst.copy_(it->second);
  }
  for (auto& [k, v] : values) {
    bool known = false;
    for (auto& kv : params_) known = known || kv.first == k;
    GENIE_CHECK(known, "[generator] load: unexpected parameter '", k, "'");
  }
}

Tensor GenieGenerator::forward(const Tensor& z) const {
  GENIE_CHECK(z.ndim() == 2 && z.dim(1) == kLatentDim, "[generator] expected latents (B, ",
              kLatentDim, "), got ", shape_str(z.shape()));
  const int64_t B = z.dim(0), s = R_ / 4;
  auto P = [&](size_t i) -> const Tensor& { return params_[i].second; };
  Tensor h = ops::linear(z, P(0), P(1));  // (B, 128·s²)
  h = ops::reshape(h, {B, 128, s, s});
  h = ops::batch_norm_train(h, P(2), P(3), kBnEps);
  // upsample x2 -> conv3x3 (pad 1), fused: four 2x2 convolutions of the low-resolution input.
  h = ops::upsample2x_conv3x3(h, P(4), P(5));  // (B, 64, 2s, 2s)
  h = ops::batch_norm_train(h, P(6), P(7), kBnEps);
  h = ops::leaky_relu(h, kSlope);
  h = ops::upsample2x_conv3x3(h, P(8), P(9));  // (B, C, R, R)
  h = ops::tanh(h);
  return ops::batch_norm_train(h, Tensor(), Tensor(), kBnEps);
}

}  // namespace genie::models
