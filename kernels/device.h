// Devices, streams and device memory. CPU memory is 64-byte aligned; CUDA memory comes from a
// caching allocator (freed blocks are kept per size and reused, like PyTorch's).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace genie {

enum class Device : uint8_t { CPU = 0, CUDA = 1 };
const char* device_name(Device d);
Device parse_device(const std::string& s);  // "cpu" | "cuda" | "auto" (cuda when available)

// Opaque cudaStream_t so that CPU-only code never includes CUDA headers. nullptr = the engine's
// default stream (a non-blocking stream created on first use).
using Stream = void*;

bool cuda_built();      // compiled with the CUDA backend
bool cuda_available();  // compiled with CUDA AND a usable device/driver is present
Stream cuda_stream();   // the engine's stream (throws without CUDA)
void cuda_synchronize();
std::string cuda_device_string();  // "NVIDIA H100 80GB HBM3 (sm_90)" or why none

// Arithmetic of convolutions and GEMMs on the GPU; accumulation is FP32 in every case, and
// everything else (BN statistics, losses, quantizers, optimizer state) is FP32 always.
//   FP32  FP32 multiplies (cuDNN FMA math, cuBLAS SGEMM): the CPU reference to float rounding.
//   TF32  tensor cores on FP32 data: operands rounded to a 10-bit mantissa inside cuDNN/cuBLAS.
//   BF16  operands converted to bfloat16 (8-bit mantissa, round to nearest even), outputs in
//         FP32 (GEMM) or converted back from bfloat16 (convolutions).
// The CPU backend computes FP32 whatever the precision (the engine refuses the others there).
enum class Precision : uint8_t { FP32 = 0, TF32 = 1, BF16 = 2 };
const char* precision_name(Precision p);  // "fp32" | "tf32" | "bf16"
// "fp32" | "tf32" | "bf16"; throws "[--precision] expected fp32, tf32 or bf16, got '…'".
Precision parse_precision(const std::string& s);
// Relative error bound of one operand's rounding to the format: 2^-24 (FP32), 2^-10 (TF32, which
// the hardware may truncate), 2^-8 (BF16, rounded to nearest). Parity tests derive their
// tolerances from it.
double precision_operand_error(Precision p);
// The precision the calling thread's CUDA convolutions and GEMMs use: FP32 unless a
// PrecisionScope says otherwise. Read when a kernel is queued (a captured CUDA graph keeps it).
Precision current_precision();
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision prev_;
};

void* device_alloc(Device d, size_t bytes);
void device_free(Device d, void* p, size_t bytes);
// Host blocks >= 64 KiB are cached per size class for reuse (up to 2 GiB): bytes cached now, and
// a way to hand them all back to the system.
size_t host_cached_bytes();
void host_empty_cache();
// Whether the cache is on (GENIE_HOST_CACHE=0 turns it off: memory checkers see every block).
bool host_cache_enabled();
// Host tensor memory in use (bytes of the blocks handed out, cached ones not counted) and its peak
// since the last reset: the CPU counterpart of CudaMemStats::allocated / peak_allocated.
struct HostMemStats {
  size_t allocated = 0, peak_allocated = 0;
};
HostMemStats host_mem_stats();
void host_reset_peak();
// Copies bytes between any two devices (synchronous with respect to the host).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
void fill_bytes_zero(void* dst, Device d, size_t bytes);

// CUDA caching allocator statistics (bytes). Zero on CPU-only builds.
struct CudaMemStats {
  size_t allocated = 0, cached = 0, peak_allocated = 0;
};
CudaMemStats cuda_mem_stats();
void cuda_reset_peak();
void cuda_empty_cache();

// Threads for the CPU backend (OpenMP and BLAS). 0 = library default.
void set_cpu_threads(int n);
int cpu_threads();

}  // namespace genie
