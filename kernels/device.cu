// CUDA runtime of the engine (the CUDA half of kernels/device.h, declared in cuda_runtime.h):
// device probe, the engine stream, cuBLAS/cuDNN handles, the caching allocator, copies, and the
// checked-call error formatting of kernels/cuda_check.h.
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/capture_pool.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cuda_runtime.h"

namespace genie {

namespace cuda {

namespace {
// "/abs/path/kernels/device.cu" -> "kernels/device.cu" (the last two path components).
const char* short_path(const char* file) {
  const char* last = nullptr;
  const char* prev = nullptr;
  for (const char* p = file; *p; ++p)
    if (*p == '/') {
      prev = last;
      last = p;
    }
  return prev ? prev + 1 : file;
}
}  // namespace

void throw_call_error(const char* lib, const char* call, const std::string& status,
                      const char* file, int line) {
  throw Error(str("[", lib, "] ", call, " failed: ", status, " at ", short_path(file), ":", line));
}

std::string cuda_status(cudaError_t e) {
  return str(cudaGetErrorString(e), " (", cudaGetErrorName(e), ")");
}
std::string cudnn_status(cudnnStatus_t s) {
  return str(cudnnGetErrorString(s), " (cudnnStatus ", int(s), ")");
}
std::string cublas_status(cublasStatus_t s) {
  return str(cublasGetStatusString(s), " (", cublasGetStatusName(s), ")");
}

}  // namespace cuda

namespace cuda_rt {
namespace {

// ---- device probe (never throws: no driver / no device just means "not available") ----
struct Probe {
  bool ok = false;
  std::string why;  // reason when !ok
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // clear it: a missing driver must not poison later calls
      r.why = str("no usable CUDA device (cudaGetDeviceCount: ", cuda::cuda_status(e), ")");
      return r;
    }
    if (n <= 0) {
      r.why = "no CUDA device found";
      return r;
    }
    // Device 0 of the visible ones (select with CUDA_VISIBLE_DEVICES); cudaFree(nullptr) creates
    // the context now, so an unusable device is reported here rather than at the first kernel.
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaFree(nullptr);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      r.why = str("CUDA device 0 cannot be used (", cuda::cuda_status(e), ")");
      return r;
    }
    r.ok = true;
    return r;
  }();
  return p;
}

void require(const char* what) {
  if (!probe().ok)
    throw Error(str("[", what, "] a CUDA tensor or kernel was requested but ", probe().why,
                    "; use --device cpu"));
}

// ---- caching allocator ----
// Blocks are cudaMalloc'd at a rounded size and, when freed, kept in a free list for that exact
// size. Rounding: at least 512 B; up to 16 MiB, four size classes per power of two (waste below
// 25%); above, multiples of 2 MiB. Genie repeats the same shapes every step, so after the first
// iteration every request is served from the free lists without touching the driver.
class CachingAllocator {
 public:
  static size_t round_size(size_t b) {
    constexpr size_t kMin = 512, kBig = size_t(16) << 20, kBigStep = size_t(2) << 20;
    if (b <= kMin) return kMin;
    if (b > kBig) return (b + kBigStep - 1) / kBigStep * kBigStep;
    int msb = 63 - __builtin_clzll((unsigned long long)(b - 1));  // 2^msb < b <= 2^(msb+1)
    const size_t step = size_t(1) << (msb - 2);
    return (b + step - 1) / step * step;
  }

  void* alloc(size_t bytes) {
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    void* p = pools_.take(size);  // a capture in progress reuses its own blocks first
    if (p) {
      cached_ -= size;
      live_[p] = size;
      allocated_ += size;
      if (allocated_ > peak_) peak_ = allocated_;
      return p;
    }
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
    } else {
      cudaError_t e = cudaMalloc(&p, size);
      if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        release_cached_locked();  // give cached blocks of other sizes back, then retry once
        e = cudaMalloc(&p, size);
      }
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        throw Error(str("[cuda_alloc] cudaMalloc of ", size, " bytes failed: ",
                        cuda::cuda_status(e), " (in use by genie: ", allocated_, " bytes)"));
      }
    }
    live_[p] = size;
    allocated_ += size;
    if (allocated_ > peak_) peak_ = allocated_;
    pools_.note_alloc(p);
    return p;
  }

  // Never throws (called from destructors).
  void free(void* p) noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {
      std::fprintf(stderr, "[genie] warning: freeing unknown CUDA pointer %p (ignored)\n", p);
      return;
    }
    const size_t size = it->second;
    live_.erase(it);
    allocated_ -= size;
    try {
      if (pools_.keep(p, size)) {  // reserved for a captured step's replays
        cached_ += size;
        return;
      }
      free_[size].push_back(p);
      cached_ += size;
    } catch (...) {  // no memory for the list entry: return the block to the driver instead
      (void)cudaFree(p);
    }
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cached_locked();
  }

  CudaMemStats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    CudaMemStats s;
    s.allocated = allocated_;
    s.cached = cached_;
    s.peak_allocated = peak_;
    return s;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lk(mu_);
    peak_ = allocated_;
  }

  // Private pools of captured steps (kernels/capture_pool.h); pool blocks count as cached.
  void* pool_begin() {
    std::lock_guard<std::mutex> lk(mu_);
    return pools_.begin();
  }
  void pool_end() {
    std::lock_guard<std::mutex> lk(mu_);
    pools_.end();
  }
  void pool_release(void* pool) {
    std::lock_guard<std::mutex> lk(mu_);
    pools_.release(static_cast<k::CapturePools::Pool*>(pool),
                   [&](void* p, size_t size) { free_[size].push_back(p); });
  }

 private:
  // cudaFree synchronises the device, so blocks still referenced by queued work are safe to drop.
  void release_cached_locked() {
    for (auto& [size, list] : free_) {
      for (void* p : list) (void)cudaFree(p);
      cached_ -= size * list.size();
      list.clear();
    }
    free_.clear();
    (void)cudaGetLastError();
  }

  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  std::unordered_map<void*, size_t> live_;               // block -> rounded size
  k::CapturePools pools_;
  size_t allocated_ = 0, cached_ = 0, peak_ = 0;
};

// Deliberately never destroyed: Tensors with static storage may free memory during exit.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

// ---- engine stream and library handles ----
// RAII owners (destructors ignore errors and never throw). The process-wide Context holding them
// is deliberately never destroyed: cuBLAS/cuDNN (and the cuDNN sub-libraries they load lazily)
// register their own exit-time teardown after our objects are built, so destroying handles from a
// static destructor would run against already-dismantled library state. The driver reclaims the
// stream and handles when the process exits.
struct StreamOwner {
  cudaStream_t s = nullptr;
  ~StreamOwner() {
    if (s) (void)cudaStreamDestroy(s);
  }
};
struct CublasOwner {
  cublasHandle_t h = nullptr;
  ~CublasOwner() {
    if (h) (void)cublasDestroy(h);
  }
};
struct CudnnOwner {
  cudnnHandle_t h = nullptr;
  ~CudnnOwner() {
    if (h) (void)cudnnDestroy(h);
  }
};

struct Context {
  std::mutex mu;
  StreamOwner stream;
  CublasOwner cublas;
  CudnnOwner cudnn;
};

Context& context() {
  static Context* c = new Context();
  return *c;
}

cudaStream_t engine_stream() {
  require("cuda_stream");
  Context& c = context();
  std::lock_guard<std::mutex> lk(c.mu);
  if (!c.stream.s) GENIE_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream.s, cudaStreamNonBlocking));
  return c.stream.s;
}

}  // namespace

bool built() { return true; }
bool available() { return probe().ok; }

void* alloc(size_t bytes) {
  require("cuda_alloc");
  return allocator().alloc(bytes);
}

void free(void* p, size_t) {
  if (!p || !probe().ok) return;
  allocator().free(p);
}

void copy(void* dst, const void* src, size_t bytes, Copy kind) {
  require("cuda_copy");
  if (bytes == 0) return;
  cudaStream_t s = engine_stream();
  switch (kind) {
    case Copy::H2D:
      // Ordered after the kernels already queued on the engine stream, and complete on return
      // (the host buffer may be reused or freed right after).
      GENIE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
      GENIE_CUDA_CHECK(cudaStreamSynchronize(s));
      break;
    case Copy::D2H:
      GENIE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
      GENIE_CUDA_CHECK(cudaStreamSynchronize(s));
      break;
    case Copy::D2D:
      GENIE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
      break;
  }
}

void zero(void* p, size_t bytes) {
  require("cuda_memset");
  if (bytes == 0) return;
  GENIE_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, engine_stream()));
}

Stream stream() { return engine_stream(); }

void synchronize() {
  if (!probe().ok) return;
  GENIE_CUDA_CHECK(cudaStreamSynchronize(engine_stream()));
}

std::string device_string() {
  if (!probe().ok) return probe().why;
  int dev = 0, drv = 0, rt = 0;
  GENIE_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  GENIE_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  (void)cudaDriverGetVersion(&drv);
  (void)cudaRuntimeGetVersion(&rt);
  int cb[3] = {0, 0, 0};  // cuBLAS version without creating a handle
  (void)cublasGetProperty(MAJOR_VERSION, &cb[0]);
  (void)cublasGetProperty(MINOR_VERSION, &cb[1]);
  (void)cublasGetProperty(PATCH_LEVEL, &cb[2]);
  const size_t cudnn_ver = cudnnGetVersion();  // e.g. 91900 = 9.19.0
  return str(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
             (prop.totalGlobalMem >> 20), " MiB; driver ", drv / 1000, ".", (drv % 1000) / 10,
             ", runtime ", rt / 1000, ".", (rt % 1000) / 10, ", cuDNN ", cudnn_ver / 10000, ".",
             (cudnn_ver % 10000) / 100, ".", cudnn_ver % 100, ", cuBLAS ", cb[0], ".", cb[1], ".",
             cb[2], ")");
}

CudaMemStats mem_stats() { return probe().ok ? allocator().stats() : CudaMemStats{}; }

// ---- captured steps (kernels/graph.h) ----
void* pool_begin() {
  require("cuda_graph");
  return allocator().pool_begin();
}
void pool_end() { allocator().pool_end(); }
void pool_release(void* pool) { allocator().pool_release(pool); }

void capture_begin() {
  // Relaxed: the caching allocator may call cudaMalloc while a capture is open (the block then
  // belongs to the capture's pool); nothing else outside the stream is called.
  GENIE_CUDA_CHECK(cudaStreamBeginCapture(engine_stream(), cudaStreamCaptureModeRelaxed));
}

void* capture_end(void** graph) {
  cudaGraph_t g = nullptr;
  GENIE_CUDA_CHECK(cudaStreamEndCapture(engine_stream(), &g));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
  if (e != cudaSuccess) {
    (void)cudaGraphDestroy(g);
    GENIE_CUDA_CHECK(e);
  }
  *graph = g;
  return exec;
}

void capture_abort() noexcept {
  cudaGraph_t g = nullptr;
  if (cudaStreamEndCapture(engine_stream(), &g) == cudaSuccess && g) (void)cudaGraphDestroy(g);
  (void)cudaGetLastError();
}

void graph_launch(void* exec) {
  GENIE_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), engine_stream()));
}

size_t graph_nodes(void* graph) {
  size_t n = 0;
  GENIE_CUDA_CHECK(cudaGraphGetNodes(static_cast<cudaGraph_t>(graph), nullptr, &n));
  return n;
}

void graph_destroy(void* graph, void* exec) noexcept {
  if (exec) (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
  if (graph) (void)cudaGraphDestroy(static_cast<cudaGraph_t>(graph));
}

void* pinned_alloc(size_t bytes) {
  require("cuda_pinned");
  void* p = nullptr;
  GENIE_CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}
void pinned_free(void* p) noexcept {
  if (p) (void)cudaFreeHost(p);
}

void* event_create() {
  require("cuda_event");
  cudaEvent_t ev = nullptr;
  GENIE_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  return ev;
}
void event_destroy(void* ev) noexcept {
  if (ev) (void)cudaEventDestroy(static_cast<cudaEvent_t>(ev));
}
void event_sync(void* ev) { GENIE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(ev))); }

void upload_async(void* dst, const void* src, size_t bytes, void* ev) {
  const cudaStream_t s = engine_stream();
  GENIE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  GENIE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(ev), s));
}
void reset_peak() {
  if (probe().ok) allocator().reset_peak();
}
void empty_cache() {
  if (probe().ok) allocator().empty_cache();
}

}  // namespace cuda_rt

namespace cuda {

cudaStream_t resolve(Stream s) {
  return s ? static_cast<cudaStream_t>(s) : cuda_rt::engine_stream();
}

cublasHandle_t cublas(cudaStream_t s) {
  auto& c = cuda_rt::context();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (!c.cublas.h) {
      cuda_rt::require("cublas");
      cublasHandle_t h = nullptr;
      GENIE_CUBLAS_CHECK(cublasCreate(&h));
      c.cublas.h = h;
      // FP32 stays FP32: no TF32 tensor-core math, so results track the CPU (OpenBLAS) path.
      GENIE_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    }
  }
  GENIE_CUBLAS_CHECK(cublasSetStream(c.cublas.h, s));
  return c.cublas.h;
}

cudnnHandle_t cudnn(cudaStream_t s) {
  auto& c = cuda_rt::context();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (!c.cudnn.h) {
      cuda_rt::require("cudnn");
      cudnnHandle_t h = nullptr;
      GENIE_CUDNN_CHECK(cudnnCreate(&h));
      c.cudnn.h = h;
    }
  }
  GENIE_CUDNN_CHECK(cudnnSetStream(c.cudnn.h, s));
  return c.cudnn.h;
}

Scratch::Scratch(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) ptr_ = cuda_rt::alloc(bytes);
}
Scratch::~Scratch() { cuda_rt::free(ptr_, bytes_); }

}  // namespace cuda
}  // namespace genie
