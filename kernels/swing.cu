// CUDA driver of the swing shift (math in kernels/swing.h): one thread per output element, the
// backward a gather as well (no atomics, deterministic).
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"
#include "kernels/swing.h"

namespace genie::k {

namespace {
// The offsets of a replayed step (kernels/graph.h) from device memory {dy, dx}.
__device__ SwingF with_offsets(SwingF f, const int32_t* at) {
  if (at) f.oy = at[0] - 1, f.ox = at[1] - 1;
  return f;
}
struct SwingFwdBody {
  const float* x;
  float* y;
  SwingF f;
  const int32_t* at;
  __device__ void operator()(int64_t idx) const {
    const int64_t hw = f.H * f.W, p = idx / hw, r = idx - p * hw, i = r / f.W, j = r - i * f.W;
    y[idx] = with_offsets(f, at).fwd(x + p * hw, i, j);
  }
};
struct SwingBwdBody {
  const float* dy;
  float* dx;
  SwingF f;
  const int32_t* at;
  bool accumulate;
  __device__ void operator()(int64_t idx) const {
    const int64_t hw = f.H * f.W, p = idx / hw, r = idx - p * hw, a = r / f.W, b = r - a * f.W;
    const float v = with_offsets(f, at).bwd(dy + p * hw, a, b);
    dx[idx] = accumulate ? dx[idx] + v : v;
  }
};
}  // namespace

void swing_shift_fwd_cuda(const float* x, int64_t NC, int64_t H, int64_t W, int dy, int dx,
                          const int32_t* at, float* y, Stream s) {
  cuda::cuda_for(NC * H * W, cuda::resolve(s),
                 SwingFwdBody{x, y, SwingF{H, W, dy - 1, dx - 1}, at});
}

void swing_shift_bwd_cuda(const float* dy, int64_t NC, int64_t H, int64_t W, int sy, int sx,
                          const int32_t* at, float* dx, bool accumulate, Stream s) {
  cuda::cuda_for(NC * H * W, cuda::resolve(s),
                 SwingBwdBody{dy, dx, SwingF{H, W, sy - 1, sx - 1}, at, accumulate});
}

}  // namespace genie::k
