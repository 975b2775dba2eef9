// CUDA convolution driver: cuDNN v9's legacy convolution API (cudnnConvolutionForward /
// BackwardData / BackwardFilter). For each ConvShape a plan — tensor/filter/convolution
// descriptors (groups via cudnnSetConvolutionGroupCount) and, per direction on first use, the
// algorithm and its workspace size — is built once and cached under the plain ConvShape key
// and the calling thread's precision (kernels/device.h). Workspaces come from the caching
// allocator. FP32 stays FP32: the convolution descriptor uses CUDNN_FMA_MATH (cuDNN's default math
// would allow TF32 tensor cores on Ampere and later), so results track the CPU im2col+GEMM path to
// float rounding. TF32 allows tensor-core math on the same FP32 buffers; BF16 converts the
// operands to bfloat16 scratch buffers, runs cuDNN with bfloat16 tensors and FP32 compute, and
// converts the result back (adding it to the FP32 output when accumulating).
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/elementwise.h"

namespace genie::k {
namespace {

// Largest workspace an algorithm may ask for; faster algorithms needing more are skipped.
constexpr size_t kMaxWorkspace = size_t(1) << 30;
// Workspace offered to the timed search (cudnnFind*AlgorithmEx).
constexpr size_t kSearchWorkspace = size_t(256) << 20;

// Algorithm choice per shape and direction, on first use: by default cuDNN times its candidates
// on the actual buffers (as PyTorch's cudnn.benchmark; outputs go to scratch memory, so nothing
// the caller holds is touched); GENIE_CUDNN_SEARCH=0 uses cuDNN's heuristic ranking instead (no
// timing runs, e.g. for one-off shapes).
bool timed_search() {
  static const bool on = [] {
    const char* e = std::getenv("GENIE_CUDNN_SEARCH");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

size_t elem_size(Precision p) { return p == Precision::BF16 ? sizeof(uint16_t) : sizeof(float); }

struct PlanKey {
  ConvShape cs;
  Precision prec;
  bool operator==(const PlanKey& o) const { return cs == o.cs && prec == o.prec; }
};
struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    const ConvShape& c = k.cs;
    size_t h = 1469598103934665603ull;
    for (int64_t v :
         {c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.stride, c.pad, c.groups, int64_t(k.prec)})
      h = (h ^ size_t(v)) * 1099511628211ull;
    return h;
  }
};

// RAII descriptors; destructors ignore the status (never throw).
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { GENIE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { GENIE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { GENIE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

template <class Algo>
struct Choice {
  bool chosen = false;
  Algo algo{};
  size_t workspace = 0;
};

struct ConvPlan {
  Precision prec = Precision::FP32;
  TensorDesc x, y, bias, y_f32;  // x, y, w in the operand type; y_f32: the FP32 output (bias add)
  FilterDesc w;
  ConvDesc conv;
  Choice<cudnnConvolutionFwdAlgo_t> fwd;
  Choice<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  Choice<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;
};

std::string shape_text(const ConvShape& cs) {
  return str("x (", cs.N, ", ", cs.C, ", ", cs.H, ", ", cs.W, "), w (", cs.K, ", ",
             cs.groups > 0 ? cs.C / cs.groups : 0, ", ", cs.R, ", ", cs.S, "), stride ", cs.stride,
             ", pad ", cs.pad, ", groups ", cs.groups);
}

int as_int(int64_t v, const ConvShape& cs) {
  GENIE_CHECK(v >= 0 && v <= INT_MAX, "[conv2d] expected every size below 2^31, got ",
              shape_text(cs));
  return int(v);
}

std::unique_ptr<ConvPlan> make_plan(const ConvShape& cs, Precision prec) {
  GENIE_CHECK(cs.groups >= 1 && cs.C % cs.groups == 0 && cs.K % cs.groups == 0,
              "[conv2d] expected C and K divisible by groups, got ", shape_text(cs));
  GENIE_CHECK(cs.P() > 0 && cs.Q() > 0 && cs.stride >= 1 && cs.pad >= 0,
              "[conv2d] expected a non-empty output, got ", shape_text(cs));
  auto p = std::make_unique<ConvPlan>();
  p->prec = prec;
  const cudnnDataType_t dt = prec == Precision::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  const int N = as_int(cs.N, cs), C = as_int(cs.C, cs), H = as_int(cs.H, cs), W = as_int(cs.W, cs);
  const int K = as_int(cs.K, cs), R = as_int(cs.R, cs), S = as_int(cs.S, cs);
  const int P = as_int(cs.P(), cs), Q = as_int(cs.Q(), cs), G = as_int(cs.groups, cs);
  const int st = as_int(cs.stride, cs), pad = as_int(cs.pad, cs);
  GENIE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x.d, CUDNN_TENSOR_NCHW, dt, N, C, H, W));
  GENIE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y.d, CUDNN_TENSOR_NCHW, dt, N, K, P, Q));
  GENIE_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->y_f32.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, K, P, Q));
  GENIE_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->bias.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 1, 1));
  GENIE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w.d, dt, CUDNN_TENSOR_NCHW, K, C / G, R, S));
  GENIE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv.d, pad, pad, st, st, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  GENIE_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv.d, G));
  GENIE_CUDNN_CHECK(cudnnSetConvolutionMathType(
      p->conv.d, prec == Precision::FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  // Our output-size formula and cuDNN's must agree, or the y descriptor is wrong.
  int on = 0, oc = 0, oh = 0, ow = 0;
  GENIE_CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(p->conv.d, p->x.d, p->w.d, &on, &oc, &oh, &ow));
  GENIE_CHECK(on == N && oc == K && oh == P && ow == Q, "[conv2d] cuDNN output (", on, ", ", oc,
              ", ", oh, ", ", ow, ") differs from the expected (", N, ", ", K, ", ", P, ", ", Q,
              ") for ", shape_text(cs));
  return p;
}

std::mutex g_plans_mu;

// The cache lives as long as the process and is never destroyed (like the cuDNN handle, see
// device.cu): descriptors must not be torn down after cuDNN's own exit-time cleanup.
ConvPlan& plan_for(const ConvShape& cs) {
  using Plans = std::unordered_map<PlanKey, std::unique_ptr<ConvPlan>, PlanKeyHash>;
  static Plans* plans = new Plans();
  const PlanKey key{cs, current_precision()};
  std::lock_guard<std::mutex> lk(g_plans_mu);
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, make_plan(cs, key.prec)).first;
  return *it->second;
}

// From cuDNN's ranking (fastest first when timed, heuristic order otherwise), the first algorithm
// within the workspace limit whose math the precision allows (FP32: FMA math only; TF32, BF16:
// tensor cores too, never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which may compute FP32 data in
// FP16), preferring deterministic ones so runs are reproducible.
template <class Perf>
int pick(const std::vector<Perf>& perf, int count, Precision prec) {
  auto ok = [&](const Perf& r) {
    return r.status == CUDNN_STATUS_SUCCESS && r.memory <= kMaxWorkspace &&
           (r.mathType == CUDNN_FMA_MATH || r.mathType == CUDNN_DEFAULT_MATH ||
            (prec != Precision::FP32 && r.mathType == CUDNN_TENSOR_OP_MATH));
  };
  for (int i = 0; i < count; ++i)
    if (ok(perf[size_t(i)]) && perf[size_t(i)].determinism == CUDNN_DETERMINISTIC) return i;
  for (int i = 0; i < count; ++i)
    if (ok(perf[size_t(i)])) return i;
  return -1;
}

void choose_fwd(cudnnHandle_t h, ConvPlan& p, const ConvShape& cs, const void* x, const void* w) {
  if (p.fwd.chosen) return;
  int max = 0, count = 0;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(max > 0 ? max : 1));
  if (timed_search()) {
    cuda::Scratch out(size_t(cs.N * cs.K * cs.P() * cs.Q()) * elem_size(p.prec));
    cuda::Scratch ws(kSearchWorkspace);
    GENIE_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p.x.d, x, p.w.d, w, p.conv.d, p.y.d,
                                                             out.get(), max, &count, perf.data(),
                                                             ws.get(), ws.bytes()));
  } else {
    GENIE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.d, p.w.d, p.conv.d, p.y.d, max,
                                                             &count, perf.data()));
  }
  const int i = pick(perf, count, p.prec);
  GENIE_CHECK(i >= 0, "[conv2d] cuDNN offers no ", precision_name(p.prec),
              " forward algorithm for ", shape_text(cs));
  p.fwd.algo = perf[size_t(i)].algo;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p.x.d, p.w.d, p.conv.d, p.y.d,
                                                            p.fwd.algo, &p.fwd.workspace));
  p.fwd.chosen = true;
}

void choose_bwd_data(cudnnHandle_t h, ConvPlan& p, const ConvShape& cs, const void* dy,
                     const void* w) {
  if (p.bwd_data.chosen) return;
  int max = 0, count = 0;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(max > 0 ? max : 1));
  if (timed_search()) {
    cuda::Scratch out(size_t(cs.N * cs.C * cs.H * cs.W) * elem_size(p.prec));
    cuda::Scratch ws(kSearchWorkspace);
    GENIE_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, p.w.d, w, p.y.d, dy, p.conv.d, p.x.d, out.get(), max, &count, perf.data(), ws.get(),
        ws.bytes()));
  } else {
    GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.d, p.y.d, p.conv.d, p.x.d,
                                                                  max, &count, perf.data()));
  }
  const int i = pick(perf, count, p.prec);
  GENIE_CHECK(i >= 0, "[conv2d] cuDNN offers no ", precision_name(p.prec),
              " backward-data algorithm for ", shape_text(cs));
  p.bwd_data.algo = perf[size_t(i)].algo;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      h, p.w.d, p.y.d, p.conv.d, p.x.d, p.bwd_data.algo, &p.bwd_data.workspace));
  p.bwd_data.chosen = true;
}

void choose_bwd_filter(cudnnHandle_t h, ConvPlan& p, const ConvShape& cs, const void* x,
                       const void* dy) {
  if (p.bwd_filter.chosen) return;
  int max = 0, count = 0;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(size_t(max > 0 ? max : 1));
  if (timed_search()) {
    cuda::Scratch out(size_t(cs.K * (cs.C / cs.groups) * cs.R * cs.S) * elem_size(p.prec));
    cuda::Scratch ws(kSearchWorkspace);
    GENIE_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, p.x.d, x, p.y.d, dy, p.conv.d, p.w.d, out.get(), max, &count, perf.data(), ws.get(),
        ws.bytes()));
  } else {
    GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h, p.x.d, p.y.d, p.conv.d, p.w.d, max, &count, perf.data()));
  }
  const int i = pick(perf, count, p.prec);
  GENIE_CHECK(i >= 0, "[conv2d] cuDNN offers no ", precision_name(p.prec),
              " backward-filter algorithm for ", shape_text(cs));
  p.bwd_filter.algo = perf[size_t(i)].algo;
  GENIE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
      h, p.x.d, p.y.d, p.conv.d, p.w.d, p.bwd_filter.algo, &p.bwd_filter.workspace));
  p.bwd_filter.chosen = true;
}

bool empty(const ConvShape& cs) { return cs.N <= 0 || cs.K <= 0 || cs.C <= 0; }

// An operand in the plan's type: the FP32 buffer itself, or a bfloat16 copy in scratch memory.
class Operand {
 public:
  Operand(const ConvPlan& p, const float* x, int64_t n, cudaStream_t st) : ptr_(x) {
    if (p.prec != Precision::BF16) return;
    copy_ = std::make_unique<cuda::Scratch>(size_t(n) * sizeof(uint16_t));
    f32_to_bf16_cuda(x, copy_->as<uint16_t>(), n, st);
    ptr_ = copy_->get();
  }
  const void* get() const { return ptr_; }

 private:
  const void* ptr_;
  std::unique_ptr<cuda::Scratch> copy_;
};

// An output in the plan's type: FP32 results land in `out` directly (beta 0 or 1 as
// `accumulate` says); bfloat16 ones in scratch, then finish() converts them into `out`.
class Result {
 public:
  Result(const ConvPlan& p, float* out, int64_t n, bool accumulate)
      : out_(out), n_(n), acc_(accumulate) {
    if (p.prec == Precision::BF16)
      copy_ = std::make_unique<cuda::Scratch>(size_t(n) * sizeof(uint16_t));
  }
  void* get() const { return copy_ ? copy_->get() : out_; }
  float beta() const { return acc_ && !copy_ ? 1.f : 0.f; }
  void finish(cudaStream_t st) const {
    if (copy_) bf16_to_f32_cuda(copy_->as<uint16_t>(), out_, n_, acc_, st);
  }

 private:
  float* out_;
  int64_t n_;
  bool acc_;
  std::unique_ptr<cuda::Scratch> copy_;
};

int64_t x_count(const ConvShape& cs) { return cs.N * cs.C * cs.H * cs.W; }
int64_t y_count(const ConvShape& cs) { return cs.N * cs.K * cs.P() * cs.Q(); }
int64_t w_count(const ConvShape& cs) { return cs.K * (cs.C / cs.groups) * cs.R * cs.S; }

}  // namespace

void conv2d_fwd_cuda(const ConvShape& cs, const float* x, const float* w, const float* bias,
                     float* y, Stream s) {
  if (empty(cs)) return;
  const cudaStream_t st = cuda::resolve(s);
  const cudnnHandle_t h = cuda::cudnn(st);
  ConvPlan& p = plan_for(cs);
  const Operand xo(p, x, x_count(cs), st), wo(p, w, w_count(cs), st);
  const Result yo(p, y, y_count(cs), false);
  {
    std::lock_guard<std::mutex> lk(g_plans_mu);
    choose_fwd(h, p, cs, xo.get(), wo.get());
  }
  cuda::Scratch ws(p.fwd.workspace);
  const float one = 1.f, beta = yo.beta();
  GENIE_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x.d, xo.get(), p.w.d, wo.get(), p.conv.d,
                                            p.fwd.algo, ws.get(), ws.bytes(), &beta, p.y.d,
                                            yo.get()));
  yo.finish(st);
  if (bias) GENIE_CUDNN_CHECK(cudnnAddTensor(h, &one, p.bias.d, bias, &one, p.y_f32.d, y));
}

void conv2d_bwd_data_cuda(const ConvShape& cs, const float* dy, const float* w, float* dx,
                          bool accumulate, Stream s) {
  if (empty(cs)) return;
  const cudaStream_t st = cuda::resolve(s);
  const cudnnHandle_t h = cuda::cudnn(st);
  ConvPlan& p = plan_for(cs);
  const Operand dyo(p, dy, y_count(cs), st), wo(p, w, w_count(cs), st);
  const Result dxo(p, dx, x_count(cs), accumulate);
  {
    std::lock_guard<std::mutex> lk(g_plans_mu);
    choose_bwd_data(h, p, cs, dyo.get(), wo.get());
  }
  cuda::Scratch ws(p.bwd_data.workspace);
  const float one = 1.f, beta = dxo.beta();
  GENIE_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w.d, wo.get(), p.y.d, dyo.get(),
                                                 p.conv.d, p.bwd_data.algo, ws.get(), ws.bytes(),
                                                 &beta, p.x.d, dxo.get()));
  dxo.finish(st);
}

void conv2d_bwd_filter_cuda(const ConvShape& cs, const float* x, const float* dy, float* dw,
                            bool accumulate, Stream s) {
  if (empty(cs)) return;
  const cudaStream_t st = cuda::resolve(s);
  const cudnnHandle_t h = cuda::cudnn(st);
  ConvPlan& p = plan_for(cs);
  const Operand xo(p, x, x_count(cs), st), dyo(p, dy, y_count(cs), st);
  const Result dwo(p, dw, w_count(cs), accumulate);
  {
    std::lock_guard<std::mutex> lk(g_plans_mu);
    choose_bwd_filter(h, p, cs, xo.get(), dyo.get());
  }
  cuda::Scratch ws(p.bwd_filter.workspace);
  const float one = 1.f, beta = dwo.beta();
  GENIE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x.d, xo.get(), p.y.d, dyo.get(),
                                                   p.conv.d, p.bwd_filter.algo, ws.get(),
                                                   ws.bytes(), &beta, p.w.d, dwo.get()));
  dwo.finish(st);
}

}  // namespace genie::k
