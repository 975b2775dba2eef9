// Reverse-mode autograd: a tape of backward closures recorded in execution order.
// An op records a node only when grad mode is on and one of its inputs requires grad; the node's
// closure captures just what its backward needs. backward(loss) walks the tape in reverse,
// accumulating into TensorImpl::grad (with shape checks), then clears the tape (capacity kept).
#pragma once
#include <functional>
#include <vector>

#include "autograd/tensor.h"

namespace genie {

bool grad_enabled();

// RAII: disables recording in its scope (teacher passes, evaluation, collection).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when an op over these inputs must be recorded.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Record a node producing `out` (marks it non-leaf, requires_grad). `fn` receives the output
// gradient (defined, same shape as out) and must accumulate into its inputs via accumulate_grad.
void record(const char* name, Tensor& out, std::function<void(const Tensor& dout)> fn);

// A tensor's gradient slot without its data (shape, device and the shared AutogradMeta). Backward
// closures capture a GradRef instead of the Tensor for inputs whose values their gradient does not
// need, so those inputs are freed as soon as the forward pass is done with them.
class GradRef {
 public:
  GradRef() = default;
  explicit GradRef(const Tensor& t);  // undefined t: an undefined ref
  bool defined() const { return meta_ != nullptr; }
  bool requires_grad() const { return meta_ && meta_->requires_grad; }
  const Shape& shape() const { return shape_; }
  Device device() const { return device_; }
  AutogradMeta* meta() const { return meta_.get(); }

 private:
  std::shared_ptr<AutogradMeta> meta_;
  Shape shape_;
  Device device_ = Device::CPU;
};

// grad(t) += g. The first gradient is adopted without a copy when no other tensor shares g's
// buffer (a fresh buffer made by a backward closure), otherwise copied.
// Shapes must match exactly (throws naming the op).
void accumulate_grad(const Tensor& t, const Tensor& g, const char* op = "accumulate_grad");
void accumulate_grad(const GradRef& t, const Tensor& g, const char* op = "accumulate_grad");
// Returns t's gradient buffer for in-place accumulation by a kernel, allocating zeros if absent,
// and sets *fresh = true when newly created (kernels may then overwrite instead of add).
Tensor& grad_buffer(const Tensor& t, bool* fresh);
Tensor& grad_buffer(const GradRef& t, bool* fresh);

// Runs backward from a scalar (or from `seed` gradient for non-scalars), then clears the tape.
void backward(const Tensor& loss, const Tensor& seed = Tensor());
void clear_tape();
size_t tape_size();

}  // namespace genie
