// Adam and learning-rate schedules (PyTorch semantics).
#include "autograd/optim.h"

#include <cmath>

#include "kernels/functors.h"

namespace genie {

Adam::Adam(std::vector<Tensor> params, float lr_, float b1, float b2, float eps, float wd)
    : lr(lr_), params_(std::move(params)), beta1_(b1), beta2_(b2), eps_(eps), wd_(wd) {
  for (auto& p : params_) {
    GENIE_CHECK(p.defined() && p.dtype() == DType::F32, "[adam] expected f32 parameters");
    m_.push_back(Tensor::zeros(p.shape(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.device()));
  }
}

void Adam::step() {
  ++t_;
  k::AdamHyper h;
  h.lr = lr;
  h.beta1 = beta1_;
  h.beta2 = beta2_;
  h.eps = eps_;
  h.weight_decay = wd_;
  h.step = t_;
  h.at = at_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    k::adam_step(params_[i].device(), params_[i].data(), g.data(), m_[i].data(), v_[i].data(),
                 params_[i].numel(), h, nullptr);
  }
}

std::array<float, 2> Adam::schedule(int64_t t) const {
  const k::AdamF f = k::AdamF::make(lr, beta1_, beta2_, eps_, wd_, t);
  return {f.step_size, f.sqrt_bc2};
}

void Adam::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

float ReduceLROnPlateau::step(float metric, float lr) {
  // mode 'min', threshold_mode 'rel': improvement when metric < best * (1 - threshold)
  if (metric < best * (1.f - threshold_)) {
    best = metric;
    bad_epochs = 0;
  } else {
    ++bad_epochs;
  }
  if (bad_epochs > patience_) {
    const float nl = std::max(lr * factor_, min_lr_);
    // PyTorch only applies the change when it exceeds eps=1e-8
    if (lr - nl > 1e-8f) lr = nl;
    bad_epochs = 0;  // cooldown 0
  }
  return lr;
}

float step_lr(float base, float gamma, int64_t step_size, int64_t iter) {
  return base * std::pow(gamma, float(iter / step_size));
}
float exponential_lr(float base, float gamma, int64_t iter) {
  return base * std::pow(gamma, float(iter));
}
float cosine_lr(float base, int64_t iter, int64_t t_max, float eta_min) {
  const double pi = 3.14159265358979323846;
  return float(eta_min +
               (base - eta_min) * (1.0 + std::cos(pi * double(iter) / double(t_max))) / 2.0);
}

}  // namespace genie
