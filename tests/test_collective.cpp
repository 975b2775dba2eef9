// The NCCL collectives of kernels/collective.h: the fixed-order host reference on values where the
// order shows in float, the build flag, the argument checks, and — with a GPU and NCCL — a
// one-rank communicator whose all_reduce_ordered matches the host reference bit for bit.
// Several ranks need one GPU each and one process each (NCCL refuses two ranks on one device), so
// the multi-rank paths are exercised by the engine's mpirun runs, not here.
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/collective.h"
#include "test_util.h"

using namespace genie;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// S shards of n floats whose magnitudes differ by up to 10^6 between shards, so that rounding
// depends on the order of the adds; element 0 of every shard is -0.f (the sum of S = 1 must keep
// the sign).
std::vector<float> mixed_shards(int64_t S, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(size_t(S * n));
  for (int64_t s = 0; s < S; ++s)
    for (int64_t e = 0; e < n; ++e)
      v[size_t(s * n + e)] = e == 0 ? -0.f : normal(rng) * std::pow(10.f, float((s * 3) % 7));
  return v;
}

}  // namespace

TEST_CASE("collective: ordered_sum_host adds shards in order starting from shard 0") {
  // Column 0: 1e8 + 1 rounds back to 1e8 (float spacing there is 8), so ((1e8 + 1) - 1e8) = 0,
  // while (1e8 - 1e8) + 1 = 1: the order is part of the result. Column 1: exact small integers.
  const std::vector<float> shards = {1e8f,  2.f,  // shard 0
                                     1.f,   3.f,  // shard 1
                                     -1e8f, 4.f};
  std::vector<float> out(2, -1.f);
  k::ordered_sum_host(shards.data(), 3, 2, out.data());
  CHECK(out[0] == 0.f);
  CHECK(out[1] == 9.f);
  CHECK((1e8f + -1e8f) + 1.f == 1.f);  // the other order really differs

  // One shard: a copy, -0.f included (a sum started from 0.f would give +0.f).
  const std::vector<float> one = {-0.f, 1.5f, -2.f};
  std::vector<float> copy(3, 7.f);
  k::ordered_sum_host(one.data(), 1, 3, copy.data());
  CHECK(same_bits(copy, one));
  CHECK(std::signbit(copy[0]));

  // -0 + -0 = -0, but -0 + +0 = +0 under round-to-nearest.
  const std::vector<float> zeros = {-0.f, -0.f,  // shard 0
                                    -0.f, 0.f};
  std::vector<float> z(2);
  k::ordered_sum_host(zeros.data(), 2, 2, z.data());
  CHECK(std::signbit(z[0]));
  CHECK_FALSE(std::signbit(z[1]));

  // n = 0 writes nothing; S = 0 has no defined sum.
  k::ordered_sum_host(shards.data(), 3, 0, nullptr);
  CHECK_THROWS_WITH_AS(k::ordered_sum_host(shards.data(), 0, 2, out.data()),
                       doctest::Contains("[ordered_sum] expected S >= 1"), Error);
}

TEST_CASE("collective: nccl_built matches the build; misuse fails with a clear error") {
#ifdef GENIE_WITH_NCCL
  CHECK(k::nccl_built());
  CHECK(cuda_built());
  // Argument checks come before any CUDA or NCCL call, so they run without a GPU.
  CHECK_THROWS_WITH_AS(k::NcclComm(std::vector<uint8_t>(3), 0, 1),
                       doctest::Contains("expected a unique id of 128 bytes, got 3"), Error);
  CHECK_THROWS_WITH_AS(k::NcclComm(std::vector<uint8_t>(128), 1, 1),
                       doctest::Contains("expected 0 <= rank < size"), Error);
#else
  CHECK_FALSE(k::nccl_built());
  CHECK_THROWS_WITH_AS(k::nccl_unique_id(), doctest::Contains("genie was built without"), Error);
  CHECK_THROWS_WITH_AS(k::NcclComm(std::vector<uint8_t>(128), 0, 1),
                       doctest::Contains("genie was built without"), Error);
#endif
  if (cuda_available()) return;
  CHECK_THROWS_AS(k::cuda_device_bus_id(), Error);
  CHECK_THROWS_AS(k::NcclComm(std::vector<uint8_t>(128), 0, 1), Error);
}

TEST_CASE("collective: one-rank all_reduce_ordered is bit-identical to the host sum [gpu]") {
  GENIE_REQUIRE_GPU();
  if (!k::nccl_built()) {  // a CUDA build without libnccl: nothing to run the collective on
    ++test::gpu_skipped();
    return;
  }
  const std::string bus = k::cuda_device_bus_id();
  INFO("bus id " << bus);
  CHECK(bus.size() >= 12);
  CHECK(bus.find(':') != std::string::npos);

  const std::vector<uint8_t> id = k::nccl_unique_id();
  REQUIRE(id.size() == 128);
  k::NcclComm comm(id, 0, 1);
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);

  for (int64_t S : {1, 3, 5})
    for (int64_t n : {1, 7, 1000}) {
      INFO("S = " << S << ", n = " << n);
      const std::vector<float> host = mixed_shards(S, n, uint64_t(S * 7919 + n));
      std::vector<float> want(static_cast<size_t>(n));
      k::ordered_sum_host(host.data(), S, n, want.data());
      const Tensor local = Tensor::from_vector(host, {S, n}, Device::CUDA);
      Tensor out = Tensor::full({n}, std::nanf(""), Device::CUDA);  // every element must be written
      comm.all_reduce_ordered(local.data(), {int(S)}, n, out.data());
      const std::vector<float> got = out.to_vector();
      CHECK(same_bits(got, want));
      if (S == 1) CHECK(std::signbit(got[0]));
      CHECK(same_bits(local.to_vector(), host));  // the input is left alone
    }

  // broadcast from the only rank keeps the data.
  const std::vector<float> v = mixed_shards(1, 33, 5);
  Tensor buf = Tensor::from_vector(v, {33}, Device::CUDA);
  comm.broadcast(buf.data(), 33, 0);
  CHECK(same_bits(buf.to_vector(), v));

  // Argument checks, the same on every rank, before any transfer.
  Tensor out = Tensor::zeros({4}, Device::CUDA);
  CHECK_THROWS_WITH_AS(comm.all_reduce_ordered(buf.data(), {1, 1}, 4, out.data()),
                       doctest::Contains("expected counts for 1 ranks, got 2"), Error);
  CHECK_THROWS_WITH_AS(comm.all_reduce_ordered(buf.data(), {-1}, 4, out.data()),
                       doctest::Contains("expected shard counts >= 0"), Error);
  CHECK_THROWS_WITH_AS(comm.all_reduce_ordered(buf.data(), {0}, 4, out.data()),
                       doctest::Contains("at least one shard"), Error);
  CHECK_THROWS_WITH_AS(comm.all_reduce_ordered(buf.data(), {1}, -1, out.data()),
                       doctest::Contains("expected n >= 0"), Error);
  CHECK_THROWS_WITH_AS(comm.broadcast(buf.data(), 4, 1), doctest::Contains("expected 0 <= root"),
                       Error);
  CHECK_NOTHROW(comm.all_reduce_ordered(nullptr, {1}, 0, nullptr));  // n = 0: nothing to do
}
