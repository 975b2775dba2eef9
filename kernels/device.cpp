// Device-independent runtime: errors, CPU memory, host<->device copies, thread settings.
#include "kernels/device.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/capture_pool.h"
#include "kernels/cuda_runtime.h"
#include "kernels/dispatch.h"
#include "kernels/graph.h"

extern "C" void openblas_set_num_threads(int);

namespace genie {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

void throw_error(const std::string& msg, const char* file, int line) {
  (void)file;
  (void)line;
  throw Error(msg);
}

void throw_no_cuda(const char* what) {
  throw Error(str("[", what,
                  "] genie was built without CUDA (configure with -DGENIE_CUDA=ON and "
                  "a CUDA toolkit); use --device cpu"));
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "gpu") {
    GENIE_CHECK(cuda_available(), "[--device] cuda requested but ", cuda_device_string());
    return Device::CUDA;
  }
  if (s == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  GENIE_CHECK(false, "[--device] expected cpu, cuda or auto, got '", s, "'");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32:
      return "fp32";
    case Precision::TF32:
      return "tf32";
    case Precision::BF16:
      return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& s) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16})
    if (s == precision_name(p)) return p;
  GENIE_CHECK(false, "[--precision] expected fp32, tf32 or bf16, got '", s, "'");
}

double precision_operand_error(Precision p) {
  switch (p) {
    case Precision::TF32:
      return std::ldexp(1.0, -10);
    case Precision::BF16:
      return std::ldexp(1.0, -8);
    case Precision::FP32:
      break;
  }
  return std::ldexp(1.0, -24);
}

namespace {
thread_local Precision g_precision = Precision::FP32;
}
Precision current_precision() { return g_precision; }
PrecisionScope::PrecisionScope(Precision p) : prev_(g_precision) { g_precision = p; }
PrecisionScope::~PrecisionScope() { g_precision = prev_; }

bool cuda_built() { return cuda_rt::built(); }
bool cuda_available() {
  static const bool avail = cuda_rt::available();
  return avail;
}
Stream cuda_stream() { return cuda_rt::stream(); }
void cuda_synchronize() { cuda_rt::synchronize(); }
std::string cuda_device_string() { return cuda_rt::device_string(); }
CudaMemStats cuda_mem_stats() {
  return cuda_built() && cuda_available() ? cuda_rt::mem_stats() : CudaMemStats{};
}
void cuda_reset_peak() {
  if (cuda_available()) cuda_rt::reset_peak();
}
void cuda_empty_cache() {
  if (cuda_available()) cuda_rt::empty_cache();
}

// Host memory: large blocks (>= 64 KiB) are cached per size class and reused, like the CUDA
// allocator. malloc hands blocks this size back to the kernel on free (mmap/munmap, heap trim),
// so every Genie iteration page-faulted all its activations in again: 24 million minor faults
// in a 1000-iteration Genie-D run on the 2-core CPU. At most kHostCacheMax bytes stay cached.
namespace {
constexpr size_t kHostCacheMin = size_t(64) << 10;
constexpr size_t kHostCacheMax = size_t(2) << 30;

struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t cached = 0;
  k::CapturePools pools;  // private pools of CPU StepGraphs (kernels/capture_pool.h)
};
// GENIE_HOST_CACHE=0 turns the cache off (plain aligned_alloc/free: for memory checkers, A/B
// timing).
bool host_cache_on() {
  static const bool on = [] {
    const char* e = std::getenv("GENIE_HOST_CACHE");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}
std::atomic<size_t> g_host_allocated{0}, g_host_peak{0};
void host_note_alloc(size_t block) {
  const size_t now = g_host_allocated.fetch_add(block, std::memory_order_relaxed) + block;
  size_t peak = g_host_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_host_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
HostCache& host_cache() {
  static HostCache* c = new HostCache;  // never destroyed: tensors may outlive static teardown
  return *c;
}
// Four size classes per power of two (<= 25 % slack) above kHostCacheMin; 64-byte multiples below.
size_t host_block_size(size_t bytes) {
  if (bytes < kHostCacheMin) return (bytes + 63) / 64 * 64;
  size_t p = kHostCacheMin;
  while (p * 2 <= bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

// Gives a block to the size-class cache, or back to the system.
void host_give_back(HostCache& c, void* p, size_t block) {
  if (block >= kHostCacheMin && host_cache_on() && c.cached + block <= kHostCacheMax) {
    c.free[block].push_back(p);
    c.cached += block;
    return;
  }
  std::free(p);
}

// Pools alive (checked without the lock on every host allocation and free).
std::atomic<int> g_host_pools{0};
}  // namespace

namespace k {
CapturePools::Pool* host_pool_begin() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  g_host_pools.fetch_add(1);
  return c.pools.begin();
}
void host_pool_end() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  c.pools.end();
}
void host_pool_release(CapturePools::Pool* pool) {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  c.pools.release(pool, [&](void* p, size_t block) { host_give_back(c, p, block); });
  g_host_pools.fetch_sub(1);
}
}  // namespace k

void* device_alloc(Device d, size_t bytes) {
  if (bytes == 0) bytes = 1;
  // No machine has 2^48 bytes (256 TiB) to give, and the size classes below assume far less.
  GENIE_CHECK(bytes < (size_t(1) << 48), "[alloc] expected an allocation below 256 TiB, got ",
              bytes, " bytes");
  if (d == Device::CUDA) return cuda_rt::alloc(bytes);
  const size_t block = host_block_size(bytes);
  if (g_host_pools.load(std::memory_order_relaxed) > 0) {  // a pool must see every block
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lk(c.mu);
    void* p = c.pools.take(block);
    if (!p && block >= kHostCacheMin && host_cache_on()) {
      auto it = c.free.find(block);
      if (it != c.free.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        c.cached -= block;
      }
    }
    if (!p) p = std::aligned_alloc(64, block);
    GENIE_CHECK(p != nullptr, "[alloc] out of host memory allocating ", bytes, " bytes");
    c.pools.note_alloc(p);
    host_note_alloc(block);
    return p;
  }
  if (block >= kHostCacheMin && host_cache_on()) {
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.free.find(block);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= block;
      host_note_alloc(block);
      return p;
    }
  }
  void* p = std::aligned_alloc(64, block);
  GENIE_CHECK(p != nullptr, "[alloc] out of host memory allocating ", bytes, " bytes");
  host_note_alloc(block);
  return p;
}

void device_free(Device d, void* p, size_t bytes) {
  if (!p) return;
  if (d == Device::CUDA) {
    cuda_rt::free(p, bytes);
    return;
  }
  const size_t block = host_block_size(bytes == 0 ? 1 : bytes);
  g_host_allocated.fetch_sub(block, std::memory_order_relaxed);
  if (g_host_pools.load(std::memory_order_relaxed) > 0 ||
      (block >= kHostCacheMin && host_cache_on())) {
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lk(c.mu);
    if (!c.pools.keep(p, block)) host_give_back(c, p, block);
    return;
  }
  std::free(p);
}

bool host_cache_enabled() { return host_cache_on(); }

size_t host_cached_bytes() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.cached;
}

void host_empty_cache() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  for (auto& kv : c.free)
    for (void* p : kv.second) std::free(p);
  c.free.clear();
  c.cached = 0;
}

HostMemStats host_mem_stats() {
  HostMemStats s;
  s.allocated = g_host_allocated.load(std::memory_order_relaxed);
  s.peak_allocated = std::max(s.allocated, g_host_peak.load(std::memory_order_relaxed));
  return s;
}

void host_reset_peak() { g_host_peak.store(g_host_allocated.load(std::memory_order_relaxed)); }

void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  if (bytes == 0) return;
  if (dd != sd) k::check_not_capturing("copy");
  if (dd == Device::CPU && sd == Device::CPU) {
    if (auto* rec = k::cpu_recorder()) {
      rec->push_back([=] { std::memcpy(dst, src, bytes); });
      return;
    }
    std::memcpy(dst, src, bytes);
  } else if (dd == Device::CUDA && sd == Device::CPU) {
    cuda_rt::copy(dst, src, bytes, cuda_rt::Copy::H2D);
  } else if (dd == Device::CPU && sd == Device::CUDA) {
    cuda_rt::copy(dst, src, bytes, cuda_rt::Copy::D2H);
  } else {
    cuda_rt::copy(dst, src, bytes, cuda_rt::Copy::D2D);
  }
}

void fill_bytes_zero(void* dst, Device d, size_t bytes) {
  if (bytes == 0) return;
  if (d == Device::CUDA)
    cuda_rt::zero(dst, bytes);
  else if (auto* rec = k::cpu_recorder())
    rec->push_back([=] { std::memset(dst, 0, bytes); });
  else
    std::memset(dst, 0, bytes);
}

static int g_threads = 0;
void set_cpu_threads(int n) {
  g_threads = n;
  if (n > 0) omp_set_num_threads(n);
  // BLAS calls are made from inside our OpenMP loops (one image per thread), so BLAS itself runs
  // single-threaded; large single GEMMs parallelise through the OpenMP loop over row blocks.
  openblas_set_num_threads(1);
}
int cpu_threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

}  // namespace genie
