// ReplayedStep (autograd/replay.h), the one capture/replay seam of Genie-D and Genie-M, on a toy
// optimisation step that has everything theirs have: an Adam with a per-step learning rate, QDrop-
// like random masks from a stream, a per-step input read on the device (β of the rounding
// regulariser), and two variants (the regulariser switches on half way). Eager, captured-and-
// replayed and fallen-back runs must give the same parameters, losses and stream position, bit for
// bit.
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/ops_quant.h"
#include "autograd/optim.h"
#include "autograd/replay.h"
#include "autograd/tape.h"
#include "kernels/graph.h"
#include "test_util.h"

using namespace genie;

namespace {

constexpr int kIters = 12, kSwitch = 6;  // the regulariser joins the loss at iteration kSwitch

struct Toy {
  Tensor p, t;
  ops::Generator stream{42};
  std::unique_ptr<Adam> adam;
  std::unique_ptr<ReplayedStep> step;
  StepSlot<float> beta;
  Tensor loss[2];  // per variant: the step's output (a replay rewrites it)

  Toy(Device d, bool capture, std::function<void(const std::string&)> message = {}) {
    p = test::randn_cpu({64}, 1).to(d);
    p.set_requires_grad();
    t = test::randn_cpu({64}, 2).to(d);
    adam = std::make_unique<Adam>(std::vector<Tensor>{p}, 0.05f);
    ReplayedStep::Options o;
    o.device = d;
    o.capture = capture;
    o.name = "toy";
    o.adams = {adam.get()};
    o.stream = &stream;
    o.message = std::move(message);
    step = std::make_unique<ReplayedStep>(std::move(o));
    beta = step->input<float>(1);
  }

  // Iteration `it`: loss = mean((mask ? p : t) − t)² [+ 0.01 · rounding_reg(p, β_it)].
  float run(int it) {
    adam->lr = cosine_lr(0.05f, it, kIters);
    const float b = 20.f - float(it);
    *step->host(beta) = b;
    const int variant = it >= kSwitch ? 1 : 0;
    if (variant == 1 && loss[0].defined()) {  // the first variant is over: free its capture
      loss[0] = Tensor();
      step->drop(0);
    }
    step->run(
        [&] {
          adam->zero_grad();
          Tensor m = ops::bernoulli_mask({64}, 0.7f, step->generator(), p.device());
          Tensor l = ops::mse_loss(ops::select(m, p, t), t);
          if (variant == 1)
            l = ops::add(l, ops::mul_scalar(ops::rounding_reg(p, b, step->device(beta)), 0.01f));
          backward(l);
          adam->step();
          loss[variant] = l;
        },
        variant);
    return loss[variant].item();
  }
};

struct Trace {
  std::vector<float> losses, p;
  uint64_t offset = 0;
  int64_t adam_steps = 0;
};

Trace run_toy(Toy& toy) {
  Trace tr;
  for (int it = 0; it < kIters; ++it) tr.losses.push_back(toy.run(it));
  tr.p = toy.p.detach().to_vector();
  tr.offset = toy.stream.offset;
  tr.adam_steps = toy.adam->steps();
  return tr;
}

void check_same(const Trace& a, const Trace& b) {
  CHECK(a.losses == b.losses);
  CHECK(a.p == b.p);
  CHECK(a.offset == b.offset);
  CHECK(a.adam_steps == b.adam_steps);
}

void check_replay_matches_eager(Device d) {
  Toy eager(d, false);
  const Trace e = run_toy(eager);
  CHECK(e.adam_steps == kIters);
  CHECK(e.offset > 0);
  CHECK_FALSE(eager.step->replaying());
  CHECK(eager.step->captured_kernels() == 0);

  Toy graph(d, true);
  const Trace g = run_toy(graph);
  check_same(e, g);
  CHECK(graph.step->replaying());
  CHECK(graph.step->captured_kernels() > 0);  // the second variant's capture (the first dropped)
  CHECK_FALSE(k::capturing());
}

}  // namespace

TEST_CASE("replayed step: captured and replayed steps equal eager ones (CPU)") {
  check_replay_matches_eager(Device::CPU);
}

TEST_CASE("replayed step: replayed CUDA graphs equal eager steps (GPU)") {
  GENIE_REQUIRE_GPU();
  check_replay_matches_eager(Device::CUDA);
}

TEST_CASE("replayed step: a failed capture rolls back, says why once, and runs eagerly") {
  Toy eager(Device::CPU, false);
  const Trace e = run_toy(eager);
  std::vector<std::string> notes;
  Toy failing(Device::CPU, true, [&](const std::string& m) { notes.push_back(m); });
  k::StepGraph::fail_captures_for_testing(true);
  Trace f;
  try {
    f = run_toy(failing);
  } catch (...) {
    k::StepGraph::fail_captures_for_testing(false);
    throw;
  }
  k::StepGraph::fail_captures_for_testing(false);
  check_same(e, f);            // the rolled-back Adam step count and stream position included
  REQUIRE(notes.size() == 1);  // not again for the second variant
  CHECK(notes[0].find("toy: the step could not be captured") != std::string::npos);
  CHECK(failing.step->failed());
  CHECK_FALSE(failing.step->replaying());
  CHECK_FALSE(k::capturing());
}

TEST_CASE("replayed step: inputs are declared before the first step; no stream, no generator") {
  ReplayedStep::Options o;
  o.capture = true;
  o.name = "bare";
  ReplayedStep s(o);
  const StepSlot<int32_t> rows = s.input<int32_t>(3);
  const StepSlot<uint64_t> pos = s.input<uint64_t>(1);
  CHECK(pos.offset % 8 == 0);  // every slot aligned for its type
  CHECK(pos.offset >= rows.offset + 3 * sizeof(int32_t));
  s.host(rows)[2] = 7;
  s.run([] {});
  CHECK(s.device(rows)[2] ==
        7);  // uploaded before the step (the CPU's device memory is the host's)
  CHECK_THROWS_WITH_AS(s.input<float>(1), doctest::Contains("before the first step"), Error);
  CHECK_THROWS_WITH_AS(s.generator(), doctest::Contains("no random stream"), Error);
}
