// CPU instantiation of the composed baselines (bench/composed_impl.h): every pass is one OpenMP
// loop, as an eager framework's CPU elementwise op would be. Also the device dispatch, and the
// throwing CUDA stand-ins of a CPU-only build.
#include "bench/composed_impl.h"
#include "kernels/cpu_loop.h"
#include "kernels/dispatch.h"

namespace genie::bench::composed {

namespace {
struct CpuExec {
  template <class F>
  static void run(int64_t n, const F& f) {
    k::cpu_for(n, f);
  }
};
}  // namespace

void wquant_fwd(Device dev, const Tensor& w_floor, const Tensor& v, const Tensor& step,
                const Tensor& zero, float qmax, bool hard, Tensor& w_hat, WQuantSaved& saved) {
  if (dev == Device::CPU)
    impl::wquant_fwd<CpuExec>(w_floor, v, step, zero, qmax, hard, w_hat, saved);
  else
    cuda_entry::wquant_fwd(w_floor, v, step, zero, qmax, hard, w_hat, saved);
}
void wquant_bwd(Device dev, const Tensor& dw_hat, const WQuantSaved& saved, const Tensor& step,
                float qmax, bool hard, Tensor& dv, Tensor& dstep) {
  if (dev == Device::CPU)
    impl::wquant_bwd<CpuExec>(dw_hat, saved, step, qmax, hard, dv, dstep);
  else
    cuda_entry::wquant_bwd(dw_hat, saved, step, qmax, hard, dv, dstep);
}
void aquant_fwd(Device dev, const Tensor& x, const Tensor& step, float qn, float qp,
                const Tensor& mask, Tensor& y, AQuantSaved& saved) {
  if (dev == Device::CPU)
    impl::aquant_fwd<CpuExec>(x, step, qn, qp, mask, y, saved);
  else
    cuda_entry::aquant_fwd(x, step, qn, qp, mask, y, saved);
}
void aquant_bwd(Device dev, const Tensor& dy, const Tensor& x, const Tensor& step, float qn,
                float qp, const Tensor& mask, const AQuantSaved& saved, Tensor& dx, Tensor& dstep) {
  if (dev == Device::CPU)
    impl::aquant_bwd<CpuExec>(dy, x, step, qn, qp, mask, saved, dx, dstep);
  else
    cuda_entry::aquant_bwd(dy, x, step, qn, qp, mask, saved, dx, dstep);
}
void bnstat_fwd(Device dev, const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, Tensor& loss, BnStatSaved& saved) {
  if (dev == Device::CPU)
    impl::bnstat_fwd<CpuExec>(x, N, C, HW, mu, sigma, weight, loss, saved);
  else
    cuda_entry::bnstat_fwd(x, N, C, HW, mu, sigma, weight, loss, saved);
}
void bnstat_bwd(Device dev, const Tensor& x, int64_t N, int64_t C, int64_t HW, const Tensor& mu,
                const Tensor& sigma, float weight, const Tensor& dout, const BnStatSaved& saved,
                Tensor& dx) {
  if (dev == Device::CPU)
    impl::bnstat_bwd<CpuExec>(x, N, C, HW, mu, sigma, weight, dout, saved, dx);
  else
    cuda_entry::bnstat_bwd(x, N, C, HW, mu, sigma, weight, dout, saved, dx);
}

#if !GENIE_WITH_CUDA
namespace cuda_entry {
void wquant_fwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, float, bool, Tensor&,
                WQuantSaved&) {
  throw_no_cuda("bench composed wquant_fwd");
}
void wquant_bwd(const Tensor&, const WQuantSaved&, const Tensor&, float, bool, Tensor&, Tensor&) {
  throw_no_cuda("bench composed wquant_bwd");
}
void aquant_fwd(const Tensor&, const Tensor&, float, float, const Tensor&, Tensor&, AQuantSaved&) {
  throw_no_cuda("bench composed aquant_fwd");
}
void aquant_bwd(const Tensor&, const Tensor&, const Tensor&, float, float, const Tensor&,
                const AQuantSaved&, Tensor&, Tensor&) {
  throw_no_cuda("bench composed aquant_bwd");
}
void bnstat_fwd(const Tensor&, int64_t, int64_t, int64_t, const Tensor&, const Tensor&, float,
                Tensor&, BnStatSaved&) {
  throw_no_cuda("bench composed bnstat_fwd");
}
void bnstat_bwd(const Tensor&, int64_t, int64_t, int64_t, const Tensor&, const Tensor&, float,
                const Tensor&, const BnStatSaved&, Tensor&) {
  throw_no_cuda("bench composed bnstat_bwd");
}
}  // namespace cuda_entry
#endif

}  // namespace genie::bench::composed
