// The autograd tape: recording, gradient accumulation and the reverse sweep.
#include "autograd/tape.h"

#include "kernels/elementwise.h"

namespace genie {

namespace {
struct Node {
  const char* name;
  std::shared_ptr<AutogradMeta> out;  // whose grad feeds the closure (not the output's data)
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

GradRef::GradRef(const Tensor& t) {
  if (!t.defined()) return;
  meta_ = t.impl()->meta;
  if (!meta_) {  // a tensor that does not require grad: share a (fresh) state all the same
    t.impl()->autograd();
    meta_ = t.impl()->meta;
  }
  shape_ = t.shape();
  device_ = t.device();
}

void record(const char* name, Tensor& out, std::function<void(const Tensor&)> fn) {
  AutogradMeta& m = out.impl()->autograd();
  m.requires_grad = true;
  m.is_leaf = false;
  g_tape.push_back(Node{name, out.impl()->meta, std::move(fn)});
}

namespace {
void accumulate_into(AutogradMeta* m, const Shape& shape, Device dev, const Tensor& g,
                     const char* op) {
  if (!m || !m->requires_grad) return;
  GENIE_CHECK(g.shape() == shape, "[", op, "] gradient shape ", shape_str(g.shape()),
              " does not match tensor shape ", shape_str(shape));
  GENIE_CHECK(g.device() == dev, "[", op, "] gradient on ", device_name(g.device()),
              " for a tensor on ", device_name(dev));
  if (!m->grad.defined()) {
    // Adopt g only when nobody else can see it (a fresh buffer made by the backward closure);
    // otherwise later in-place accumulation would write through into another tensor's gradient.
    const bool exclusive = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1;
    m->grad = exclusive ? g : g.clone();
  } else {
    k::axpby(dev, 1.f, g.data(), 1.f, m->grad.data(), g.numel(), nullptr);
  }
}
Tensor& buffer_of(AutogradMeta& m, const Shape& shape, Device dev, bool* fresh) {
  *fresh = !m.grad.defined();
  if (*fresh) m.grad = Tensor::empty(shape, dev);
  return m.grad;
}
}  // namespace

void accumulate_grad(const Tensor& t, const Tensor& g, const char* op) {
  accumulate_into(t.impl()->meta.get(), t.shape(), t.device(), g, op);
}
void accumulate_grad(const GradRef& t, const Tensor& g, const char* op) {
  accumulate_into(t.meta(), t.shape(), t.device(), g, op);
}

Tensor& grad_buffer(const Tensor& t, bool* fresh) {
  return buffer_of(t.impl()->autograd(), t.shape(), t.device(), fresh);
}
Tensor& grad_buffer(const GradRef& t, bool* fresh) {
  GENIE_CHECK(t.defined(), "[grad_buffer] undefined gradient reference");
  return buffer_of(*t.meta(), t.shape(), t.device(), fresh);
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
      // An intermediate's gradient is handed to its closure and dropped from the tensor (freed
      // eagerly); the closure then holds the only reference, so an input may adopt it without a
      // copy (accumulate_grad's exclusivity test).
      Tensor g;
      if (n.out->is_leaf) {
        g = n.out->grad;
      } else {
        g = std::move(n.out->grad);
        n.out->grad = Tensor();
      }
      if (g.defined()) n.fn(g);
      n.fn = nullptr;
      n.out.reset();
    }
  }
  clear_tape();
}

void clear_tape() { g_tape.clear(); }  // std::vector keeps its capacity
size_t tape_size() { return g_tape.size(); }

}  // namespace genie
