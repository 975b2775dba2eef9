// Adam and the learning-rate schedules of the Genie spec (GENIE.md §1.5, §2.5).
#pragma once
#include <array>
#include <vector>

#include "autograd/tensor.h"
#include "kernels/adam.h"

namespace genie {

class Adam {
 public:
  Adam(std::vector<Tensor> params, float lr, float beta1 = 0.9f, float beta2 = 0.999f,
       float eps = 1e-8f, float weight_decay = 0.f);
  void step();       // params without a gradient are skipped (PyTorch semantics)
  void zero_grad();  // drops gradients
  float lr;
  int64_t steps() const { return t_; }
  const std::vector<Tensor>& params() const { return params_; }
  // State for checkpoints: per-param first/second moments and the step count.
  std::vector<Tensor>& m() { return m_; }
  std::vector<Tensor>& v() { return v_; }
  void set_steps(int64_t t) { t_ = t; }
  // Replayed steps (kernels/graph.h): the update kernels read their per-step values (step size
  // and bias correction, which depend on lr and the step count) from device memory `at`, two
  // floats that the host writes before each replay: schedule(steps() + 1) for the next step.
  void bind_schedule(const float* at) { at_ = at; }
  std::array<float, 2> schedule(int64_t t) const;

 private:
  std::vector<Tensor> params_, m_, v_;
  float beta1_, beta2_, eps_, wd_;
  int64_t t_ = 0;
  const float* at_ = nullptr;
};

// torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min', factor, patience, threshold (rel),
// cooldown=0, min_lr): call step(metric) once per iteration.
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(float factor = 0.1f, int patience = 100, float threshold = 1e-4f,
                    float min_lr = 1e-4f)
      : factor_(factor), patience_(patience), threshold_(threshold), min_lr_(min_lr) {}
  float step(float metric, float lr);  // returns the new lr
  float best = 1e30f;
  int bad_epochs = 0;

 private:
  float factor_;
  int patience_;
  float threshold_, min_lr_;
};

// lr = base * gamma^(floor(iter / step_size))  (StepLR, used for G: 0.95 every 100 iterations)
float step_lr(float base, float gamma, int64_t step_size, int64_t iter);
// lr = base * gamma^iter
float exponential_lr(float base, float gamma, int64_t iter);
// CosineAnnealingLR with eta_min: base * (1 + cos(pi * iter / T_max)) / 2 (closed form)
float cosine_lr(float base, int64_t iter, int64_t t_max, float eta_min = 0.f);

}  // namespace genie
