// Differentiable channel ops on (N, C, ...) tensors: broadcast multiplication by a per-channel
// (N, C, 1, 1) gate, concatenation along channels, channel slices and the ShuffleNet shuffle.
// Kernels see every tensor as (N, C, inner) with inner the product of the trailing dimensions.
#include <string>

#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/channel.h"

namespace genie::ops {

namespace {
// (N, C, inner) view of a defined f32 tensor with at least 2 dimensions.
struct Planes {
  int64_t N, C, inner;
};
Planes channel_view(const char* op, const char* what, const Tensor& x) {
  GENIE_CHECK(x.defined(), "[", op, "] expected a defined ", what, ", got an undefined tensor");
  GENIE_CHECK(x.dtype() == DType::F32, "[", op, "] expected ", what, " f32, got ", x.describe());
  GENIE_CHECK(x.ndim() >= 2, "[", op, "] expected ", what,
              " (N, C, ...) with at least 2 dimensions, got ", shape_str(x.shape()));
  return Planes{x.dim(0), x.dim(1), numel_of(Shape(x.shape().begin() + 2, x.shape().end()))};
}
}  // namespace

Tensor mul_bcast(const Tensor& a, const Tensor& b) {
  const char* op = "mul_bcast";
  check_f32(op, a);
  check_f32(op, b);
  check_same_device(op, a, b);
  if (a.shape() == b.shape()) return mul(a, b);
  // Which operand is the (N, C, H, W) one and which the (N, C, 1, 1) gate.
  const bool a_big = a.ndim() == 4 && b.ndim() == 4 && b.dim(2) == 1 && b.dim(3) == 1;
  const Tensor& x = a_big ? a : b;
  const Tensor& s = a_big ? b : a;
  GENIE_CHECK(x.ndim() == 4 && s.ndim() == 4 && s.dim(2) == 1 && s.dim(3) == 1 &&
                  s.dim(0) == x.dim(0) && s.dim(1) == x.dim(1),
              "[", op,
              "] expected equal shapes, or (N, C, H, W) and (N, C, 1, 1) in either order, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  const Device dev = x.device();
  const int64_t P = x.dim(0) * x.dim(1), inner = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty(x.shape(), dev);
  k::bcast_mul_fwd(dev, x.data(), s.data(), P, inner, y.data(), nullptr);
  if (needs_grad({&x, &s})) {
    // Each gradient needs the other operand's values; keep only those that are needed.
    Tensor xv = s.requires_grad() ? x.detach() : Tensor();
    Tensor sv = x.requires_grad() ? s.detach() : Tensor();
    record(op, y, [xr = GradRef(x), sr = GradRef(s), xv, sv, P, inner](const Tensor& dy) {
      const Device d = dy.device();
      if (xr.requires_grad() && sv.defined()) {
        bool fresh;
        Tensor& dx = grad_buffer(xr, &fresh);
        k::bcast_mul_bwd_x(d, dy.data(), sv.data(), P, inner, dx.data(), !fresh, nullptr);
      }
      if (sr.requires_grad() && xv.defined()) {
        bool fresh;
        Tensor& ds = grad_buffer(sr, &fresh);
        k::bcast_mul_bwd_s(d, dy.data(), xv.data(), P, inner, ds.data(), !fresh, nullptr);
      }
    });
  }
  return y;
}

Tensor concat_channels(const std::vector<Tensor>& xs) {
  const char* op = "concat_channels";
  GENIE_CHECK(!xs.empty(), "[", op, "] expected at least one input, got none");
  const Tensor& x0 = xs[0];
  channel_view(op, "input 0", x0);
  int64_t C = 0;
  bool grads = false;
  std::vector<int64_t> cs;
  cs.reserve(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = "input " + std::to_string(i);
    const Planes p = channel_view(op, what.c_str(), xs[i]);
    bool same = xs[i].ndim() == x0.ndim() && p.N == x0.dim(0);
    for (int d = 2; same && d < x0.ndim(); ++d) same = xs[i].dim(d) == x0.dim(d);
    GENIE_CHECK(same, "[", op, "] expected inputs equal in every dimension but 1, got ",
                shape_str(x0.shape()), " (input 0) and ", shape_str(xs[i].shape()), " (input ", i,
                ")");
    detail::need_device(op, what.c_str(), xs[i], x0.device());
    cs.push_back(p.C);
    C += p.C;
    grads = grads || needs_grad({&xs[i]});
  }
  Shape shape = x0.shape();
  shape[1] = C;
  const Device dev = x0.device();
  const int64_t N = x0.dim(0), inner = channel_view(op, "input 0", x0).inner;
  Tensor y = Tensor::empty(shape, dev);
  for (size_t i = 0, off = 0; i < xs.size(); off += size_t(cs[i]), ++i)
    k::channel_copy(dev, xs[i].data(), cs[i], 0, y.data(), C, int64_t(off), N, cs[i], inner, false,
                    nullptr);
  if (grads) {
    std::vector<GradRef> refs;
    refs.reserve(xs.size());
    for (const Tensor& x : xs) refs.emplace_back(x);
    record(op, y, [refs = std::move(refs), cs = std::move(cs), N, C, inner](const Tensor& dy) {
      // The same tensor twice (cat([x, x])): the second part adds to the first's gradient.
      int64_t off = 0;
      for (size_t i = 0; i < refs.size(); off += cs[i], ++i) {
        if (!refs[i].requires_grad()) continue;
        bool fresh;
        Tensor& dx = grad_buffer(refs[i], &fresh);
        k::channel_copy(dy.device(), dy.data(), C, off, dx.data(), cs[i], 0, N, cs[i], inner,
                        !fresh, nullptr);
      }
    });
  }
  return y;
}

Tensor channel_slice(const Tensor& x, int64_t start, int64_t count) {
  const char* op = "channel_slice";
  const Planes p = channel_view(op, "input", x);
  GENIE_CHECK(start >= 0 && count >= 1 && start <= p.C - count, "[", op,
              "] expected 0 <= start, 1 <= count, start + count <= C, got start ", start,
              ", count ", count, " for input ", shape_str(x.shape()));
  Shape shape = x.shape();
  shape[1] = count;
  Tensor y = Tensor::empty(shape, x.device());
  k::channel_copy(x.device(), x.data(), p.C, start, y.data(), count, 0, p.N, count, p.inner, false,
                  nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, start, count](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::channel_slice_bwd(dy.device(), dy.data(), p.N, p.C, p.inner, start, count, dx.data(),
                           !fresh, nullptr);
    });
  }
  return y;
}

Tensor channel_shuffle(const Tensor& x, int64_t groups) {
  const char* op = "channel_shuffle";
  const Planes p = channel_view(op, "input", x);
  GENIE_CHECK(groups >= 1 && p.C % groups == 0, "[", op,
              "] expected groups >= 1 dividing the channels, got groups ", groups, " for input ",
              shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.device());
  k::channel_shuffle(x.device(), x.data(), p.N, p.C, p.inner, groups, y.data(), false, nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, groups](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      // The inverse permutation: the shuffle with C / groups groups (ChannelShuffleF).
      k::channel_shuffle(dy.device(), dy.data(), p.N, p.C, p.inner, p.C / groups, dx.data(), !fresh,
                         nullptr);
    });
  }
  return y;
}

}  // namespace genie::ops
