// ReplayedStep: one step of an optimisation loop, run many times — eagerly, or captured once and
// replayed (kernels/graph.h: a CUDA graph on the GPU, the recorded kernel calls on the CPU). The
// owner (Genie-D's batch, Genie-M's unit) writes only the step's body — forward, backward, the
// optimizer updates — and the values that change from one step to the next. Everything else of
// capture and replay lives here, once:
//
//   * per-step inputs: typed slots of one device buffer (StepSlot<T>, declared with input<T>(n)),
//     written on the host before each step and uploaded in one copy; the body's kernels read them
//     at device(slot);
//   * the optimizers the body steps: each Adam's per-step schedule {step size, sqrt bias
//     correction} gets a slot of its own (the update kernels read it there), and a replay
//     advances the host's step counts as an eager step does;
//   * the random stream, if any: the body draws from generator(), whose counters start at the
//     stream's position (uploaded in a slot); the stream advances by what one step draws;
//   * the capture state machine, per variant (steps whose structure differs — before and after a
//     loss term switches on — are captured separately): a variant's first step runs eagerly (cuDNN
//     plans, workspaces and caches are made outside the capture), its second is captured and
//     replayed, later ones are replayed;
//   * the fallback: a capture that fails has run nothing on the device; the host's bookkeeping is
//     rolled back (step counts, gradients, the tape), the step runs eagerly, `message` is told why,
//     and every later step runs eagerly.
//
// Without capture (Options::capture false) nothing is bound: the body reads its values from the
// host (device(slot) is null, generator() is the stream itself, the Adams compute their own
// schedules). Both ways compute the same values, bit for bit.
#pragma once
#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/tensor.h"

namespace genie {

namespace k {
class StepGraph;
class Uploader;
}  // namespace k

// A per-step input of `count` values of T at byte `offset` of a ReplayedStep's buffer.
template <class T>
struct StepSlot {
  size_t offset = 0, count = 0;
};

class ReplayedStep {
 public:
  struct Options {
    Device device = Device::CPU;
    bool capture = false;  // capture and replay; false: every step runs eagerly on host values
    std::string name;      // names the step in the fallback message ("Genie-D", "Genie-M conv1")
    std::vector<Adam*> adams;          // the optimizers the body steps
    ops::Generator* stream = nullptr;  // the random stream the body draws from, if any
    std::function<void(const std::string&)> message;  // told once why a capture failed
  };
  explicit ReplayedStep(Options opt);
  ~ReplayedStep();
  ReplayedStep(const ReplayedStep&) = delete;
  ReplayedStep& operator=(const ReplayedStep&) = delete;

  // Declares a per-step input of n values (before the first step).
  template <class T>
  StepSlot<T> input(size_t n) {
    return StepSlot<T>{reserve(n * sizeof(T)), n};
  }
  // The host copy of a slot: write it before each step.
  template <class T>
  T* host(StepSlot<T> s) {
    return reinterpret_cast<T*>(staging_.data() + s.offset);
  }
  // Where the step's kernels read the slot: device memory when bound(), else null.
  template <class T>
  const T* device(StepSlot<T> s) {
    return bound() ? reinterpret_cast<const T*>(buffer() + s.offset) : nullptr;
  }
  // Whether the body reads its per-step values from device memory (capture requested).
  bool bound() const { return opt_.capture; }
  // The generator the body draws from: the stream itself when not bound.
  ops::Generator& generator();

  // Runs one step of `variant` (0, 1, …): eagerly, captured, or replayed (see the file comment).
  void run(const std::function<void()>& body, int variant = 0);
  // Frees a variant's capture (after its last step); the body's outputs it wrote must be released
  // by the caller first.
  void drop(int variant);
  // Whether steps are replayed: capture on and no failed capture.
  bool replaying() const { return opt_.capture && !failed_; }
  bool failed() const { return failed_; }
  size_t captured_kernels() const;  // over the live captures

 private:
  struct Variant;
  size_t reserve(size_t bytes);
  char* buffer();  // allocates the device buffer and binds the Adams and the stream on first use
  void stage_schedules();
  void run_captured(const std::function<void()>& body, Variant& v);

  Options opt_;
  std::vector<char> staging_;
  Tensor buf_;  // the device copy of staging_
  std::unique_ptr<k::Uploader> up_;
  std::vector<StepSlot<float>> schedule_;  // per Adam: {step size, sqrt bias correction}
  StepSlot<uint64_t> offset_;              // the stream's position
  ops::Generator step_gen_;                // draws relative to *offset_
  std::vector<std::unique_ptr<Variant>> variants_;
  bool failed_ = false;
};

}  // namespace genie
