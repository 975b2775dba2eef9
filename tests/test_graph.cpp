// Captured steps (kernels/graph.h): replay recomputes from the memory the capture saw, host
// transfers inside a capture are refused, the private pool keeps the step's memory reserved,
// Uploader writes device memory in stream order, and the device-read arguments (Philox offset,
// Adam schedule, β) equal their by-value forms. The Genie-M step itself: test_reconstruct.cpp.
#include <cstring>
#include <set>

#include "autograd/ops_quant.h"
#include "autograd/optim.h"
#include "kernels/graph.h"
#include "test_util.h"

using namespace genie;

namespace {

// y = relu(x · 2 + b), captured once; replays see new values written into x and b in place.
void check_replay(Device d) {
  Tensor x = Tensor::from_vector({-1.f, 0.5f, 2.f, -3.f}, {4}).to(d);
  Tensor b = Tensor::from_vector({1.f, 1.f, 1.f, 1.f}, {4}).to(d);
  k::StepGraph g(d);
  Tensor y;
  {
    NoGradGuard ng;
    k::Capture cap(g);
    CHECK(k::capturing());
    Tensor t = ops::mul_scalar(x, 2.f);  // a temporary freed inside the capture
    y = ops::relu(ops::add(t, b));
    cap.finish();
  }
  CHECK_FALSE(k::capturing());
  CHECK(g.ready());
  CHECK(g.kernels() >= 3);
  g.replay();
  CHECK(y.to(Device::CPU).to_vector() == std::vector<float>{0.f, 2.f, 5.f, 0.f});
  x.copy_(Tensor::from_vector({1.f, 2.f, -4.f, 0.f}, {4}).to(d));
  b.copy_(Tensor::from_vector({0.f, -5.f, 1.f, 2.f}, {4}).to(d));
  g.replay();
  CHECK(y.to(Device::CPU).to_vector() == std::vector<float>{2.f, 0.f, 0.f, 2.f});
  CHECK_THROWS_WITH(g.begin(), doctest::Contains("each captures once"));
}

// Host transfers are refused inside a capture, a failed capture leaves no capture open, and the
// next kernels run eagerly again.
void check_refusals(Device d) {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2}).to(d);
  k::StepGraph g(d);
  {
    k::Capture cap(g);
    Tensor s = ops::sum(x);
    CHECK_THROWS_WITH(s.item(),
                      doctest::Contains("[to_vector] host transfer during a graph capture"));
    CHECK_THROWS_WITH(Tensor::from_vector({1.f}, {1}, d), doctest::Contains("[from_vector]"));
    k::StepGraph other(d);
    CHECK_THROWS_WITH(other.begin(), doctest::Contains("another capture is in progress"));
  }  // no finish(): aborted
  CHECK_FALSE(k::capturing());
  CHECK_FALSE(g.ready());
  CHECK_THROWS_WITH(g.replay(), doctest::Contains("before a finished capture"));
  CHECK(ops::sum(x).item() == 3.f);  // eager again
}

// A block freed during the capture is not handed out again while the graph lives (a replay
// writes it); after the graph is gone the allocator has it back.
void check_pool(Device d) {
  const Shape s{64 * 1024};  // 256 KiB
  const void* freed = nullptr;
  auto g = std::make_unique<k::StepGraph>(d);
  Tensor x = Tensor::zeros(s, d), y;
  {
    k::Capture cap(*g);
    Tensor t = ops::add_scalar(x, 1.f);
    freed = t.raw();
    y = ops::mul_scalar(t, 3.f);
    cap.finish();
  }
  std::vector<Tensor> later;
  std::set<const void*> addrs;
  for (int i = 0; i < 8; ++i) {
    later.push_back(Tensor::empty(s, d));
    addrs.insert(later.back().raw());
  }
  CHECK(addrs.count(freed) == 0);
  for (auto& t : later) t.fill_(-7.f);  // would corrupt a replay that shared their memory
  g->replay();
  const auto v = y.to(Device::CPU).to_vector();
  CHECK(v.front() == 3.f);
  CHECK(v.back() == 3.f);
  later.clear();
  g.reset();
  bool reused = false;  // the pool's blocks are the allocator's again (same size class)
  for (int i = 0; i < 16 && !reused; ++i) {
    later.push_back(Tensor::empty(s, d));
    reused = later.back().raw() == freed;
  }
  if (d != Device::CPU || host_cache_enabled()) CHECK(reused);  // GENIE_HOST_CACHE=0: no reuse
}

// Uploads land in device memory in order with the work around them.
void check_uploader(Device d) {
  k::Uploader up(d, 16);
  Tensor t = Tensor::zeros({4}, d);
  for (int i = 0; i < 10; ++i) {  // more uploads than ring slots
    const float v[4] = {float(i), float(i) + 0.5f, -float(i), 1.f};
    up.upload(t.raw(), v, sizeof(v));
    Tensor u = ops::mul_scalar(t, 2.f);  // queued after the upload
    CHECK(u.to(Device::CPU).to_vector() ==
          std::vector<float>{2.f * float(i), 2.f * float(i) + 1.f, -2.f * float(i), 2.f});
  }
  const float big[5] = {};
  CHECK_THROWS_WITH(up.upload(t.raw(), big, sizeof(big)), doctest::Contains("at most 16 bytes"));
}

// Device-read arguments give the same values as the by-value ones.
void check_device_args(Device d) {
  Tensor at = Tensor::zeros({8}, d, DType::I32);  // [offset u64 | β | adam step size, bc]
  std::vector<int32_t> host(8, 0);
  const uint64_t off = 1234567;
  std::memcpy(host.data(), &off, 8);
  const float beta = 7.5f;
  std::memcpy(&host[2], &beta, 4);
  // QDrop and Bernoulli masks: offset 1234567 + 5 by value, or 5 on top of *offset_at.
  ops::Generator a(77), b(77);
  a.offset = off + 5;
  b.offset = 5;
  b.offset_at = reinterpret_cast<const uint64_t*>(at.data_as<int32_t>());
  // Adam: the step after 3 with lr 0.01.
  Tensor p1 = test::randn_cpu({100}, 3).to(d), p2 = p1.clone();
  Adam o1({p1}, 0.01f), o2({p2}, 0.01f);
  o1.set_steps(3);
  o2.set_steps(3);
  const auto sched = o2.schedule(4);
  std::memcpy(&host[3], sched.data(), 8);
  at.copy_(Tensor::from_i32(host, {8}, d));
  o2.bind_schedule(reinterpret_cast<const float*>(at.data_as<int32_t>() + 3));
  CHECK(ops::qdrop_mask({1000}, b, d).to_i8() == ops::qdrop_mask({1000}, a, d).to_i8());
  CHECK(ops::bernoulli_mask({999}, 0.3f, b, d).to_i8() ==
        ops::bernoulli_mask({999}, 0.3f, a, d).to_i8());
  CHECK(b.offset == a.offset - off);
  CHECK_THROWS_WITH(ops::randn({4}, b, d), doctest::Contains("without a device offset"));
  Tensor g = test::randn_cpu({100}, 4).to(d);
  p1.set_requires_grad(true);
  p2.set_requires_grad(true);
  backward(ops::sum(ops::mul(p1, g)));
  backward(ops::sum(ops::mul(p2, g)));
  o1.step();
  o2.step();
  CHECK(p1.to(Device::CPU).to_vector() == p2.to(Device::CPU).to_vector());
  // Rounding regulariser: β by value vs from memory, forward and gradient.
  Tensor v1 = test::randn_cpu({300}, 5).to(d), v2 = v1.clone();
  v1.set_requires_grad(true);
  v2.set_requires_grad(true);
  Tensor r1 = ops::rounding_reg(v1, beta);
  backward(r1);  // (each backward clears the tape)
  Tensor r2 =
      ops::rounding_reg(v2, 99.f, reinterpret_cast<const float*>(at.data_as<int32_t>() + 2));
  backward(r2);
  CHECK(r1.item() == r2.item());
  CHECK(v1.grad().to_vector() == v2.grad().to(Device::CPU).to_vector());
}

}  // namespace

TEST_CASE("graph: a captured step replays on new data (CPU)") { check_replay(Device::CPU); }
TEST_CASE("graph: host transfers are refused inside a capture, aborts leave none open (CPU)") {
  check_refusals(Device::CPU);
}
TEST_CASE("graph: the capture's memory stays reserved until the graph is dropped (CPU)") {
  check_pool(Device::CPU);
}
TEST_CASE("graph: Uploader (CPU)") { check_uploader(Device::CPU); }
TEST_CASE("graph: Philox offset, Adam schedule and beta read from memory equal by-value (CPU)") {
  check_device_args(Device::CPU);
}

TEST_CASE("graph: a captured CUDA graph replays on new data (GPU)") {
  GENIE_REQUIRE_GPU();
  check_replay(Device::CUDA);
}
TEST_CASE("graph: CUDA capture refusals and abort (GPU)") {
  GENIE_REQUIRE_GPU();
  check_refusals(Device::CUDA);
}
TEST_CASE("graph: the CUDA capture's memory stays reserved (GPU)") {
  GENIE_REQUIRE_GPU();
  check_pool(Device::CUDA);
}
TEST_CASE("graph: Uploader through pinned buffers (GPU)") {
  GENIE_REQUIRE_GPU();
  check_uploader(Device::CUDA);
}
TEST_CASE("graph: device-read arguments on CUDA (GPU)") {
  GENIE_REQUIRE_GPU();
  check_device_args(Device::CUDA);
}
