// CUDA instantiation of the composed baselines (bench/composed_impl.h): one grid-stride kernel
// launch per pass on the engine's stream — what an eager framework launches for the same formula.
#include "bench/composed_impl.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_launch.h"

namespace genie::bench::composed {

namespace {
// Adapts a host/device pass functor to cuda_for's __device__ body.
template <class F>
struct Body {
  F f;
  __device__ void operator()(int64_t i) const { f(i); }
};
struct CudaExec {
  template <class F>
  static void run(int64_t n, const F& f) {
    cuda::cuda_for(n, cuda::resolve(nullptr), Body<F>{f});
  }
};
}  // namespace

namespace cuda_entry {
void wquant_fwd(const Tensor& w_floor, const Tensor& v, const Tensor& step, const Tensor& zero,
                float qmax, bool hard, Tensor& w_hat, WQuantSaved& saved) {
  impl::wquant_fwd<CudaExec>(w_floor, v, step, zero, qmax, hard, w_hat, saved);
}
void wquant_bwd(const Tensor& dw_hat, const WQuantSaved& saved, const Tensor& step, float qmax,
                bool hard, Tensor& dv, Tensor& dstep) {
  impl::wquant_bwd<CudaExec>(dw_hat, saved, step, qmax, hard, dv, dstep);
}
void aquant_fwd(const Tensor& x, const Tensor& step, float qn, float qp, const Tensor& mask,
                Tensor& y, AQuantSaved& saved) {
  impl::aquant_fwd<CudaExec>(x, step, qn, qp, mask, y, saved);
}
void aquant_bwd(const Tensor& dy, const Tensor& x, const Tensor& step, float qn, float qp,
                const Tensor& mask, const AQuantSaved& saved, Tensor& dx, Tensor& dstep) {
  impl::aquant_bwd<CudaExec>(dy, x, step, qn, qp, mask, saved, dx, dstep);
}
void bnstat_fwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, Tensor& loss, BnStatSaved& saved) {
  impl::bnstat_fwd<CudaExec>(x, N, C, HW, mu, sigma, weight, loss, saved);
}
void bnstat_bwd(const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, const Tensor& dout, const BnStatSaved& saved,
                Tensor& dx) {
  impl::bnstat_bwd<CudaExec>(x, N, C, HW, mu, sigma, weight, dout, saved, dx);
}
}  // namespace cuda_entry

}  // namespace genie::bench::composed
