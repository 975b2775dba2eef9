// The Genie-D image generator (GENIE.md §1.2): for R×R images with C channels (R divisible by 4)
//
//   z (B, 256) → Linear(256 → 128·(R/4)²) → reshape (B, 128, R/4, R/4) → BN(128) → up×2
//     → Conv3x3(128 → 64, pad 1, bias) → BN(64) → LeakyReLU(0.2) → up×2
//     → Conv3x3(64 → C, pad 1, bias) → tanh → BN(C, no affine)       → x (B, C, R, R)
//
// All BatchNorms run in training mode (batch statistics, biased variance, eps 1e-5); no running
// statistics are kept. Initialisation is PyTorch's default, drawn from Philox: Linear/Conv weights
// kaiming-uniform with a = √5, i.e. U(−1/√fan_in, 1/√fan_in), biases U(−1/√fan_in, 1/√fan_in),
// BN γ = 1, β = 0. Parameters are leaf Tensors with requires_grad, named like the state_dict of
// the equivalent PyTorch module (tests/golden/make_distill_golden.py):
//   l1.weight (128·(R/4)², 256)  l1.bias      bn0.weight (128)  bn0.bias
//   conv1.weight (64, 128, 3, 3) conv1.bias   bn1.weight (64)   bn1.bias
//   conv2.weight (C, 64, 3, 3)   conv2.bias
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace genie::models {

class GenieGenerator {
 public:
  static constexpr int64_t kLatentDim = 256;
  static constexpr float kBnEps = 1e-5f;
  static constexpr float kSlope = 0.2f;

  // Fresh generator with PyTorch-default initialisation; draws advance `rng` (l1.weight, l1.bias,
  // conv1.weight, conv1.bias, conv2.weight, conv2.bias in that order). Throws
  // "[generator] expected an image size divisible by 4, got R", and for sizes outside
  // models/limits.h (R > kMaxSpatial, channels outside [1, kMaxChannels]).
  GenieGenerator(int64_t img_size, int64_t channels, ops::Generator& rng, Device d = Device::CPU);

  int64_t img_size() const { return R_; }
  int64_t channels() const { return C_; }

  // z (B, 256) → images (B, C, R, R); differentiable w.r.t. z and every parameter.
  Tensor forward(const Tensor& z) const;

  // Parameters in the fixed order above (for the optimizer).
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, Tensor>>& named_parameters() const { return params_; }
  const Tensor& param(const std::string& name) const;  // throws naming the key
  // Copies values in place (keeps the leaf tensors, so an optimizer built on parameters() still
  // drives them). Every key must be present with the exact shape; extra keys are an error.
  void load(const std::map<std::string, Tensor>& values);

 private:
  int64_t R_, C_;
  std::vector<std::pair<std::string, Tensor>> params_;
};

}  // namespace genie::models
