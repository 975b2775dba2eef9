// CUDA driver of the swing shift (math in kernels/swing.h): one thread per output element, the
// backward a gather as well (no atomics, deterministic).
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/swing.h"

namespace genie::k {

namespace {
struct SwingFwdBody {
  const float* x;
  float* y;
  SwingF f;
  __device__ void operator()(int64_t idx) const {
    const int64_t hw = f.H * f.W, p = idx / hw, r = idx - p * hw, i = r / f.W, j = r - i * f.W;
    y[idx] = f.fwd(x + p * hw, i, j);
  }
};
struct SwingBwdBody {
  const float* dy;
  float* dx;
  SwingF f;
  bool accumulate;
  __device__ void operator()(int64_t idx) const {
    const int64_t hw = f.H * f.W, p = idx / hw, r = idx - p * hw, a = r / f.W, b = r - a * f.W;
    const float v = f.bwd(dy + p * hw, a, b);
    dx[idx] = accumulate ? dx[idx] + v : v;
  }
};
}  // namespace

void swing_shift_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int dy, int dx,
                          float* y, Stream s) {
  cuda::cuda_for(NC * H * W, cuda::resolve(s), SwingFwdBody{x, y, SwingF{H, W, dy - 1, dx - 1}});
}

void swing_shift_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int sy, int sx,
                          float* dx, bool accumulate, Stream s) {
  cuda::cuda_for(NC * H * W, cuda::resolve(s),
                 SwingBwdBody{dy, dx, SwingF{H, W, sy - 1, sx - 1}, accumulate});
}

}  // namespace genie::k
