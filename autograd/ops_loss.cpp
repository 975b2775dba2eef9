// Differentiable losses with scalar (shape ()) outputs: mean squared error and mean softmax
// cross-entropy over a batch of logits with int32 labels.
#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/loss.h"

namespace genie::ops {

Tensor mse_loss(const Tensor& a, const Tensor& b) {
  const char* op = "mse_loss";
  check_f32(op, a);
  check_f32(op, b);
  check_same_shape(op, a, b);
  check_same_device(op, a, b);
  const int64_t n = a.numel();
  GENIE_CHECK(n > 0, "[", op, "] expected non-empty inputs, got ", shape_str(a.shape()));
  Tensor y = Tensor::empty({}, a.device());
  k::mse_fwd(a.device(), a.data(), b.data(), n, y.data(), nullptr);
  if (needs_grad({&a, &b})) {
    record(op, y, [a, b, n](const Tensor& dy) {
      bool fresh;
      if (a.requires_grad()) {
        Tensor& da = grad_buffer(a, &fresh);
        k::mse_bwd(dy.device(), a.data(), b.data(), n, dy.data(), da.data(), !fresh, nullptr);
      }
      if (b.requires_grad()) {  // d/db = -d/da: the same kernel with the operands swapped
        Tensor& db = grad_buffer(b, &fresh);
        k::mse_bwd(dy.device(), b.data(), a.data(), n, dy.data(), db.data(), !fresh, nullptr);
      }
    });
  }
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "cross_entropy";
  detail::need_f32_nd(op, "logits (N, K)", logits, 2);
  GENIE_CHECK(labels.defined() && labels.dtype() == DType::I32, "[", op,
              "] expected labels i32, got ", labels.describe());
  const int64_t N = logits.dim(0), K = logits.dim(1);
  GENIE_CHECK(labels.ndim() == 1 && labels.dim(0) == N, "[", op, "] expected labels (", N,
              ") for logits ", shape_str(logits.shape()), ", got ", shape_str(labels.shape()));
  check_same_device(op, logits, labels);
  GENIE_CHECK(N > 0 && K > 0, "[", op, "] expected non-empty logits, got ",
              shape_str(logits.shape()));
  // Labels are few; checking them on the host keeps the kernels free of error paths.
  const std::vector<int32_t> lv = labels.to_i32();
  for (int64_t i = 0; i < N; ++i)
    GENIE_CHECK(lv[size_t(i)] >= 0 && lv[size_t(i)] < K, "[", op, "] expected labels in [0, ", K,
                "), got ", lv[size_t(i)], " at row ", i);
  const Device dev = logits.device();
  Tensor prob = Tensor::empty({N, K}, dev);
  Tensor y = Tensor::empty({}, dev);
  k::cross_entropy_fwd(dev, logits.data(), labels.data_as<int32_t>(), N, K, prob.data(), y.data(),
                       nullptr);
  if (needs_grad({&logits})) {
    record(op, y, [logits, labels, prob, N, K](const Tensor& dy) {
      bool fresh;
      Tensor& dl = grad_buffer(logits, &fresh);
      k::cross_entropy_bwd(dy.device(), prob.data(), labels.data_as<int32_t>(), N, K, dy.data(),
                           dl.data(), !fresh, nullptr);
    });
  }
  return y;
}

}  // namespace genie::ops
