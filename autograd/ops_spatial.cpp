// Differentiable spatial ops on NCHW tensors: nearest x2 upsampling, reflect and zero padding,
// window crop, global, adaptive and k x k average pooling, max pooling. Each kernel works on (N*C)
// independent planes.
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_check.h"
#include "kernels/spatial.h"

namespace genie::ops {

using detail::need_f32_nd;

namespace {
struct Planes {
  int64_t NC, H, W;
};
Planes planes(const char* op, const Tensor& x) {
  need_f32_nd(op, "input (N, C, H, W)", x, 4);
  return Planes{x.dim(0) * x.dim(1), x.dim(2), x.dim(3)};
}
}  // namespace

Tensor upsample_nearest2x(const Tensor& x) {
  const char* op = "upsample_nearest2x";
  const Planes p = planes(op, x);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), 2 * p.H, 2 * p.W}, x.device());
  k::upsample2x_fwd(x.device(), x.data(), p.NC, p.H, p.W, y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::upsample2x_bwd(dy.device(), dy.data(), p.NC, p.H, p.W, dx.data(), !fresh, nullptr);
    });
  }
  return y;
}

Tensor reflect_pad(const Tensor& x, int64_t pad) {
  const char* op = "reflect_pad";
  const Planes p = planes(op, x);
  GENIE_CHECK(pad >= 0 && pad < p.H && pad < p.W, "[", op,
              "] expected 0 <= pad < H and pad < W, got pad ", pad, " for input ",
              shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), p.H + 2 * pad, p.W + 2 * pad}, x.device());
  k::reflect_pad_fwd(x.device(), x.data(), p.NC, p.H, p.W, pad, y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, pad](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::reflect_pad_bwd(dy.device(), dy.data(), p.NC, p.H, p.W, pad, dx.data(), !fresh, nullptr);
    });
  }
  return y;
}

Tensor crop(const Tensor& x, int64_t oy, int64_t ox, int64_t oh, int64_t ow) {
  const char* op = "crop";
  const Planes p = planes(op, x);
  GENIE_CHECK(oy >= 0 && ox >= 0 && oh >= 1 && ow >= 1 && oy + oh <= p.H && ox + ow <= p.W, "[", op,
              "] expected a window inside the input, got window (y ", oy, ", x ", ox, ", h ", oh,
              ", w ", ow, ") for input ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), oh, ow}, x.device());
  k::crop_fwd(x.device(), x.data(), p.NC, p.H, p.W, oy, ox, oh, ow, y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, oy, ox, oh, ow](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::crop_bwd(dy.device(), dy.data(), p.NC, p.H, p.W, oy, ox, oh, ow, dx.data(), !fresh,
                  nullptr);
    });
  }
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  const char* op = "global_avg_pool";
  const Planes p = planes(op, x);
  GENIE_CHECK(p.H * p.W > 0, "[", op, "] expected a non-empty plane, got input ",
              shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1)}, x.device());  // (N, C)
  k::gap_fwd(x.device(), x.data(), p.NC, p.H * p.W, y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::gap_bwd(dy.device(), dy.data(), p.NC, p.H * p.W, dx.data(), !fresh, nullptr);
    });
  }
  return y;
}

// Validation shared by the k x k pools: kernel, stride, pad <= k/2 and a window that fits; returns
// the output size {OH, OW} (PyTorch's rule, ceil_mode included).
static std::pair<int64_t, int64_t> check_pool(const char* op, const Tensor& x, const Planes& p,
                                              int64_t kk, int64_t stride, int64_t pad,
                                              bool ceil_mode) {
  GENIE_CHECK(kk >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= kk, "[", op,
              "] expected kernel >= 1, stride >= 1, 0 <= pad <= kernel/2, got kernel ", kk,
              ", stride ", stride, ", pad ", pad, " for input ", shape_str(x.shape()));
  GENIE_CHECK(p.H + 2 * pad >= kk && p.W + 2 * pad >= kk, "[", op, "] expected a ", kk, "x", kk,
              " window to fit the padded input, got input ", shape_str(x.shape()), " with pad ",
              pad);
  return {k::pool_out_size(p.H, kk, stride, pad, ceil_mode),
          k::pool_out_size(p.W, kk, stride, pad, ceil_mode)};
}

Tensor max_pool2d(const Tensor& x, int64_t kk, int64_t stride, int64_t pad, bool ceil_mode) {
  const char* op = "max_pool2d";
  const Planes p = planes(op, x);
  const std::pair<int64_t, int64_t> out = check_pool(op, x, p, kk, stride, pad, ceil_mode);
  const int64_t OH = out.first, OW = out.second;
  const Device dev = x.device();
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), OH, OW}, dev);
  Tensor arg = Tensor::empty({x.dim(0), x.dim(1), OH, OW}, dev, DType::I32);
  k::maxpool_out_fwd(dev, x.data(), p.NC, p.H, p.W, kk, stride, pad, OH, OW, y.data(),
                     arg.data_as<int32_t>(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), arg, p, OH, OW](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::maxpool_bwd(dy.device(), dy.data(), arg.data_as<int32_t>(), p.NC, p.H, p.W, OH, OW,
                     dx.data(), !fresh, nullptr);
    });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t kk, int64_t stride, int64_t pad, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool2d";
  const Planes p = planes(op, x);
  const std::pair<int64_t, int64_t> out = check_pool(op, x, p, kk, stride, pad, ceil_mode);
  const int64_t OH = out.first, OW = out.second;
  const Device dev = x.device();
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), OH, OW}, dev);
  k::avgpool_fwd(dev, x.data(), p.NC, p.H, p.W, kk, stride, pad, OH, OW, count_include_pad,
                 y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y,
           [x = GradRef(x), p, kk, stride, pad, OH, OW, count_include_pad](const Tensor& dy) {
             bool fresh;
             Tensor& dx = grad_buffer(x, &fresh);
             k::avgpool_bwd(dy.device(), dy.data(), p.NC, p.H, p.W, kk, stride, pad, OH, OW,
                            count_include_pad, dx.data(), !fresh, nullptr);
           });
  }
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t OH, int64_t OW) {
  const char* op = "adaptive_avg_pool2d";
  const Planes p = planes(op, x);
  GENIE_CHECK(OH >= 1 && OW >= 1, "[", op, "] expected an output size >= 1, got (", OH, ", ", OW,
              ") for input ", shape_str(x.shape()));
  GENIE_CHECK(p.H >= 1 && p.W >= 1, "[", op, "] expected a non-empty plane, got input ",
              shape_str(x.shape()));
  if (OH == 1 && OW == 1) {
    // The global average (PyTorch, too, takes the mean for (1, 1)): the same double-sum kernel as
    // global_avg_pool, so both spellings of the classifier's pooling give identical results.
    return reshape(global_avg_pool(x), {x.dim(0), x.dim(1), 1, 1});
  }
  const Device dev = x.device();
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), OH, OW}, dev);
  k::adaptive_avgpool_fwd(dev, x.data(), p.NC, p.H, p.W, OH, OW, y.data(), nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, OH, OW](const Tensor& dy) {
      bool fresh;
      Tensor& dx = grad_buffer(x, &fresh);
      k::adaptive_avgpool_bwd(dy.device(), dy.data(), p.NC, p.H, p.W, OH, OW, dx.data(), !fresh,
                              nullptr);
    });
  }
  return y;
}

Tensor zero_pad(const Tensor& x, int64_t left, int64_t right, int64_t top, int64_t bottom) {
  const char* op = "zero_pad";
  const Planes p = planes(op, x);
  GENIE_CHECK(left >= 0 && right >= 0 && top >= 0 && bottom >= 0, "[", op,
              "] expected paddings >= 0, got (left ", left, ", right ", right, ", top ", top,
              ", bottom ", bottom, ") for input ", shape_str(x.shape()));
  const int64_t OH = top + p.H + bottom, OW = left + p.W + right;
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), OH, OW}, x.device());
  // Zero padding is the adjoint of a crop: its forward is crop's backward (the input placed at
  // (top, left) in a zeroed plane), its backward crop's forward (the window of dy).
  k::crop_bwd(x.device(), x.data(), p.NC, OH, OW, top, left, p.H, p.W, y.data(), false, nullptr);
  if (needs_grad({&x})) {
    record(op, y, [x = GradRef(x), p, OH, OW, top, left](const Tensor& dy) {
      // crop_fwd overwrites: crop into a fresh tensor, which accumulate_grad adopts or adds.
      Tensor g = Tensor::empty(x.shape(), dy.device());
      k::crop_fwd(dy.device(), dy.data(), p.NC, OH, OW, top, left, p.H, p.W, g.data(), nullptr);
      accumulate_grad(x, g, "zero_pad");
    });
  }
  return y;
}

}  // namespace genie::ops
