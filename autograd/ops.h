// Differentiable ops on Tensors. Each validates its inputs (errors name the op and the shapes),
// calls the kernels of the tensor's device, and records a backward node when needed.
// Layout: NCHW activations, (K, C/groups, R, S) conv weights, (out, in) linear weights.
#pragma once
#include "autograd/tape.h"
#include "kernels/elementwise.h"

namespace genie::ops {

// ---- elementwise ----
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float slope);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor square(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor silu(const Tensor& x);         // x · sigmoid(x)
Tensor hardswish(const Tensor& x);    // x · relu6(x + 3) / 6
Tensor hardsigmoid(const Tensor& x);  // relu6(x + 3) / 6
Tensor gelu(const Tensor& x);         // x · Φ(x), the erf form (PyTorch approximate='none')
Tensor mul_scalar(const Tensor& x, float a);
Tensor add_scalar(const Tensor& x, float a);
Tensor add(const Tensor& a, const Tensor& b);  // same shape
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
// a · b with broadcasting over H, W: equal shapes, or one operand (N, C, H, W) and the other
// (N, C, 1, 1) (squeeze-and-excitation gating, either order). Gradients to both operands.
Tensor mul_bcast(const Tensor& a, const Tensor& b);
// out = mask ? a : b, mask uint8 of the same shape (QDrop); gradients routed by the mask.
Tensor select(const Tensor& mask, const Tensor& a, const Tensor& b);

// ---- shape ----
Tensor reshape(const Tensor& x, const Shape& s);  // shares storage; gradient reshaped back
Tensor flatten(const Tensor& x);                  // (N, ...) -> (N, prod)
// ---- channels (dim 1 of (N, C, ...) tensors; trailing dims equal) ----
Tensor concat_channels(const std::vector<Tensor>& xs);                // torch.cat(xs, 1)
Tensor channel_slice(const Tensor& x, int64_t start, int64_t count);  // x[:, start:start+count]
// torchvision's channel_shuffle: view (N, g, C/g, H, W), transpose(1, 2), view (N, C, H, W), i.e.
// output channel o reads input channel (o % g) · (C/g) + o / g.
Tensor channel_shuffle(const Tensor& x, int64_t groups);

// ---- layers ----
// x (N,C,H,W), w (K,C/groups,R,S), bias (K) or undefined
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t pad,
              int64_t groups = 1);
// conv2d(upsample_nearest2x(x), w, bias, stride 1, pad 1) for a 3x3 filter w (K, C, 3, 3), computed
// as four 2x2 convolutions of x (kernels/spatial_functors.h, ParityConvF): 4/9 of the work and no
// upsampled tensor. Equal to the composed form up to the order of floating-point sums.
Tensor upsample2x_conv3x3(const Tensor& x, const Tensor& w, const Tensor& bias);
// x (N, in), w (out, in), bias (out) or undefined
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
// Eval mode: running statistics (not differentiated), gamma/beta optional (differentiated).
Tensor batch_norm_eval(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
                       const Tensor& beta, float eps);
// Training mode: batch statistics, biased variance; gamma/beta optional (undefined = no affine).
Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
Tensor upsample_nearest2x(const Tensor& x);
Tensor reflect_pad(const Tensor& x, int64_t pad);
Tensor crop(const Tensor& x, int64_t oy, int64_t ox, int64_t oh, int64_t ow);
Tensor global_avg_pool(const Tensor& x);  // (N,C,H,W) -> (N,C)
// PyTorch MaxPool2d (dilation 1); ceil_mode as PyTorch: the output size rounds up, but the last
// window must start inside the input or its left padding.
Tensor max_pool2d(const Tensor& x, int64_t k, int64_t stride, int64_t pad, bool ceil_mode = false);
// PyTorch AvgPool2d (square kernel, pad <= k/2): count_include_pad divides by the window clipped
// to the padded input, otherwise by the window clipped to the input; ceil_mode as max_pool2d.
Tensor avg_pool2d(const Tensor& x, int64_t k, int64_t stride, int64_t pad, bool ceil_mode,
                  bool count_include_pad);
// PyTorch AdaptiveAvgPool2d((OH, OW)): output (i, j) averages rows [floor(i·H/OH),
// ceil((i+1)·H/OH)) and the same for columns.
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t OH, int64_t OW);
// Zero padding (nn.ZeroPad2d / F.pad with 4 values, each >= 0): (N, C, top+H+bottom, left+W+right).
Tensor zero_pad(const Tensor& x, int64_t left, int64_t right, int64_t top, int64_t bottom);

// ---- reductions ----
Tensor sum(const Tensor& x);   // scalar
Tensor mean(const Tensor& x);  // scalar
// Per-channel (over N,H,W) mean and variance of (N,C,H,W): returns {mean (C), var (C)}.
// Differentiable w.r.t. x.
std::pair<Tensor, Tensor> channel_mean_var(const Tensor& x, bool unbiased);
// Per-(n,c) (over H,W) mean and std: returns {mean (N,C), std (N,C)}. Differentiable.
std::pair<Tensor, Tensor> spatial_mean_std(const Tensor& x, bool unbiased);
std::pair<float, float> min_max(const Tensor& x);  // host values, not differentiable

// ---- losses (scalar outputs) ----
Tensor mse_loss(const Tensor& a, const Tensor& b);  // mean((a-b)^2), gradient to a (and b)
Tensor cross_entropy(const Tensor& logits, const Tensor& labels_i32);  // mean over the batch

// ---- random (Philox; same numbers on CPU and CUDA for the same seed/offset) ----
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // advanced by every draw
  // Replayed steps (kernels/graph.h): when set, draws that support it (QDrop and Bernoulli masks)
  // use counters from *offset_at + offset, with *offset_at in device memory, written by the host
  // before each replay; `offset` then counts from 0 within the step.
  const uint64_t* offset_at = nullptr;
  explicit Generator(uint64_t s = 0) : seed(s) {}
};
Tensor randn(const Shape& s, Generator& g, Device d = Device::CPU, float mean = 0.f,
             float std = 1.f);
Tensor rand(const Shape& s, Generator& g, Device d = Device::CPU);
Tensor bernoulli_mask(const Shape& s, float p, Generator& g, Device d = Device::CPU);  // uint8

}  // namespace genie::ops
