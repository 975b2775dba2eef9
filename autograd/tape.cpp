// The autograd tape: recording, gradient accumulation and the reverse sweep.
#include "autograd/tape.h"

#include "kernels/elementwise.h"

namespace genie {

namespace {
struct Node {
  const char* name;
  std::shared_ptr<TensorImpl> out;  // whose grad feeds the closure
  std::function<void(const Tensor&)> fn;
};
thread_local std::vector<Node> g_tape;
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(const char* name, Tensor& out, std::function<void(const Tensor&)> fn) {
  TensorImpl* impl = out.impl();
  impl->requires_grad = true;
  impl->is_leaf = false;
  g_tape.push_back(Node{name, out.impl_ptr(), std::move(fn)});
}

void accumulate_grad(const Tensor& t, const Tensor& g, const char* op) {
  TensorImpl* impl = t.impl();
  if (!impl->requires_grad) return;
  GENIE_CHECK(g.shape() == impl->shape, "[", op, "] gradient shape ", shape_str(g.shape()),
              " does not match tensor shape ", shape_str(impl->shape));
  GENIE_CHECK(g.device() == t.device(), "[", op, "] gradient on ", device_name(g.device()),
              " for a tensor on ", device_name(t.device()));
  if (!impl->grad.defined()) {
    // Adopt g only when nobody else can see it (a fresh buffer made by the backward closure);
    // otherwise later in-place accumulation would write through into another tensor's gradient.
    const bool exclusive = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1;
    impl->grad = exclusive ? g : g.clone();
  } else {
    k::axpby(t.device(), 1.f, g.data(), 1.f, impl->grad.data(), g.numel(), nullptr);
  }
}

Tensor& grad_buffer(const Tensor& t, bool* fresh) {
  TensorImpl* impl = t.impl();
  *fresh = !impl->grad.defined();
  if (*fresh) impl->grad = Tensor::empty(impl->shape, t.device());
  return impl->grad;
}

void backward(const Tensor& loss, const Tensor& seed) {
  GENIE_CHECK(loss.defined() && loss.requires_grad(),
              "[backward] the loss does not require grad (no recorded op reaches it)");
  if (seed.defined()) {
    check_same_shape("backward", loss, seed);
    accumulate_grad(loss, seed.clone(), "backward");
  } else {
    GENIE_CHECK(loss.numel() == 1, "[backward] expected a scalar loss, got ",
                shape_str(loss.shape()), "; pass a seed gradient");
    accumulate_grad(loss, Tensor::full(loss.shape(), 1.f, loss.device()), "backward");
  }
  {
    NoGradGuard ng;  // backward closures never record
    for (size_t i = g_tape.size(); i-- > 0;) {
      Node& n = g_tape[i];
      Tensor g = n.out->grad;
      if (g.defined()) {
        n.fn(g);
        if (!n.out->is_leaf) n.out->grad = Tensor();  // intermediate gradients are freed eagerly
      }
      n.fn = nullptr;
      n.out.reset();
    }
  }
  clear_tape();
}

void clear_tape() { g_tape.clear(); }  // std::vector keeps its capacity
size_t tape_size() { return g_tape.size(); }

}  // namespace genie
