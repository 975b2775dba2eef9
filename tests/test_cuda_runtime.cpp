// The CUDA runtime layer: what every build reports (built/available), the clear errors when CUDA
// is requested but absent (CPU-only build, or CUDA build on a machine without GPU/driver), the
// checked-call message format (runs without a GPU: it only formats library status codes), and —
// with a GPU — the caching allocator's statistics and reuse, copies and memset.
#include <cstring>

#include "kernels/cuda_runtime.h"
#include "kernels/kernels_all.h"
#include "test_util.h"

#ifdef GENIE_WITH_CUDA
#include "kernels/cuda_check.h"
#endif

using namespace genie;

TEST_CASE("cuda runtime: built flag matches the build, no-GPU use fails with a clear error") {
#ifdef GENIE_WITH_CUDA
  CHECK(cuda_built());
#else
  CHECK_FALSE(cuda_built());
  CHECK_FALSE(cuda_available());
#endif
  CHECK_FALSE(cuda_device_string().empty());
  if (cuda_available()) return;  // the GPU cases below cover the working path
  // Tensors, kernels, copies and the stream on Device::CUDA all throw genie::Error naming CUDA.
  CHECK_THROWS_WITH_AS(Tensor::zeros({4}, Device::CUDA), doctest::Contains("CUDA"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({4}).to(Device::CUDA), doctest::Contains("CUDA"), Error);
  float buf[4] = {1, 2, 3, 4};
  CHECK_THROWS_WITH_AS(k::unary_fwd(Device::CUDA, k::UnaryOp::Relu, 0.f, buf, buf, 4, nullptr),
                       doctest::Contains("CUDA"), Error);
  CHECK_THROWS_WITH_AS(k::reduce_sum(Device::CUDA, buf, 4, buf, nullptr), doctest::Contains("CUDA"),
                       Error);
  CHECK_THROWS_AS(cuda_stream(), Error);
  CHECK_THROWS_WITH_AS(parse_device("cuda"), doctest::Contains("[--device] cuda requested"), Error);
  CHECK(parse_device("auto") == Device::CPU);
  // Harmless without a device.
  CHECK_NOTHROW(cuda_synchronize());
  CHECK_NOTHROW(cuda_empty_cache());
  CHECK_NOTHROW(cuda_reset_peak());
  const CudaMemStats st = cuda_mem_stats();
  CHECK(st.allocated == 0);
  CHECK(st.cached == 0);
#ifdef GENIE_WITH_CUDA
  // The CUDA build explains why no device is usable (driver/device probe result).
  CHECK(cuda_device_string().find("CUDA") != std::string::npos);
#else
  CHECK_THROWS_WITH_AS(
      k::gemm(Device::CUDA, false, false, 1, 1, 1, 1.f, buf, 1, buf, 1, 0.f, buf, 1, nullptr),
      doctest::Contains("[gemm] genie was built without CUDA"), Error);
#endif
}

#ifdef GENIE_WITH_CUDA
TEST_CASE("cuda runtime: checked calls throw with call text, status string and file:line") {
  // Status codes are passed directly, so this runs without a GPU or driver.
  try {
    GENIE_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL("GENIE_CUDA_CHECK did not throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("[cuda] cudaErrorInvalidValue failed: ") == 0);
    CHECK(m.find("invalid argument") != std::string::npos);
    CHECK(m.find("tests/test_cuda_runtime.cpp:") != std::string::npos);
  }
  try {
    GENIE_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM);
    FAIL("GENIE_CUDNN_CHECK did not throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("[cudnn] CUDNN_STATUS_BAD_PARAM failed: CUDNN_STATUS_BAD_PARAM") == 0);
    CHECK(m.find("tests/test_cuda_runtime.cpp:") != std::string::npos);
  }
  try {
    GENIE_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
    FAIL("GENIE_CUBLAS_CHECK did not throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("[cublas] CUBLAS_STATUS_INVALID_VALUE failed: ") == 0);
    CHECK(m.find("(CUBLAS_STATUS_INVALID_VALUE)") != std::string::npos);
    CHECK(m.find("tests/test_cuda_runtime.cpp:") != std::string::npos);
  }
  CHECK_NOTHROW(GENIE_CUDA_CHECK(cudaSuccess));
  CHECK_NOTHROW(GENIE_CUDNN_CHECK(CUDNN_STATUS_SUCCESS));
  CHECK_NOTHROW(GENIE_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
}
#endif

TEST_CASE("cuda runtime: caching allocator statistics, reuse and empty_cache [gpu]") {
  GENIE_REQUIRE_GPU();
  cuda_synchronize();
  cuda_empty_cache();
  const CudaMemStats s0 = cuda_mem_stats();
  CHECK(s0.cached == 0);
  void* p = device_alloc(Device::CUDA, 1000);
  const CudaMemStats s1 = cuda_mem_stats();
  CHECK(s1.allocated >= s0.allocated + 1000);
  CHECK(s1.allocated <= s0.allocated + 1250);  // rounded up by less than 25 % (+ minimum block)
  CHECK(s1.peak_allocated >= s1.allocated);
  device_free(Device::CUDA, p, 1000);
  const CudaMemStats s2 = cuda_mem_stats();
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.cached == s1.allocated - s0.allocated);
  // Same size class: the cached block comes back without a new cudaMalloc.
  void* q = device_alloc(Device::CUDA, 990);
  CHECK(q == p);
  CHECK(cuda_mem_stats().cached == 0);
  device_free(Device::CUDA, q, 990);
  // Big request: rounded to 2 MiB multiples.
  void* big = device_alloc(Device::CUDA, (size_t(33) << 20) + 1);
  CHECK(cuda_mem_stats().allocated - s0.allocated == size_t(34) << 20);
  device_free(Device::CUDA, big, 0);
  cuda_reset_peak();
  CHECK(cuda_mem_stats().peak_allocated == cuda_mem_stats().allocated);
  cuda_empty_cache();
  CHECK(cuda_mem_stats().cached == 0);
  CHECK(cuda_device_string().find("sm_") != std::string::npos);
}

TEST_CASE("cuda runtime: H2D, D2D, D2H copies and memset round-trip [gpu]") {
  GENIE_REQUIRE_GPU();
  std::vector<float> h(1027);
  for (size_t i = 0; i < h.size(); ++i) h[i] = float(i) * 0.5f - 7.f;
  const size_t bytes = h.size() * sizeof(float);
  void* a = device_alloc(Device::CUDA, bytes);
  void* b = device_alloc(Device::CUDA, bytes);
  copy_bytes(a, Device::CUDA, h.data(), Device::CPU, bytes);
  copy_bytes(b, Device::CUDA, a, Device::CUDA, bytes);
  std::vector<float> back(h.size(), 0.f);
  copy_bytes(back.data(), Device::CPU, b, Device::CUDA, bytes);
  CHECK(back == h);
  fill_bytes_zero(b, Device::CUDA, bytes);
  copy_bytes(back.data(), Device::CPU, b, Device::CUDA, bytes);
  CHECK(back == std::vector<float>(h.size(), 0.f));
  device_free(Device::CUDA, a, bytes);
  device_free(Device::CUDA, b, bytes);
  // A kernel launched on the engine stream, then read back: ordering through the same stream.
  Tensor t = Tensor::zeros({5000}, Device::CUDA);
  k::fill(Device::CUDA, t.data(), 3.f, 5000, nullptr);
  CHECK(t.to_vector() == std::vector<float>(5000, 3.f));
}
