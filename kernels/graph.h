// Captured steps: record the kernels of one iteration once, then replay them. On CUDA a StepGraph
// is a CUDA graph (stream capture of the engine stream, cudaGraphLaunch per replay), which turns
// a launch-bound step of ~60 kernels into one launch. On the CPU it is the list of recorded kernel
// calls (GENIE_DISPATCH records instead of running while a capture is active), replayed in order —
// the same contract, so a step that replays correctly on the CPU has no hidden host work left.
//
// The contract of a captured step:
//   * its kernels run on the addresses and the arguments they had when captured; everything that
//     changes between iterations (batch rows, random offsets, learning rates, …) must be read
//     from device memory that the host writes before each replay (Uploader);
//   * no host transfers inside the capture (check_not_capturing() throws for them: item(),
//     to_vector(), from_vector(), cross-device copies);
//   * the memory the step uses stays reserved for it until the StepGraph is destroyed (a private
//     pool, kernels/capture_pool.h), so tensors freed during the capture are not handed to other
//     work while replays still write them.
// One capture at a time per process.
#pragma once
#include <functional>
#include <vector>

#include "kernels/device.h"

namespace genie::k {

// Whether a capture is active (on any device).
bool capturing();
// Throws "[what] … during a graph capture" when a capture is active: for host transfers and other
// work a replay would not repeat.
void check_not_capturing(const char* what);

class StepGraph {
 public:
  explicit StepGraph(Device d);
  ~StepGraph();  // never throws; waits for replays in flight, then frees the pool
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Between begin() and end(), kernel calls on this device are recorded, not run. abort() ends a
  // capture without keeping it (after a failure inside it; see Capture below).
  void begin();
  void end();
  void abort() noexcept;
  // Runs the recorded kernels (on CUDA: one graph launch on the engine stream).
  void replay();
  bool ready() const { return ready_; }
  // Fault injection for tests of callers' fallbacks: while on, end() aborts the capture and
  // throws as a failed capture would.
  static void fail_captures_for_testing(bool on);
  Device device() const { return dev_; }
  size_t kernels() const;  // recorded kernel calls (CPU) / graph nodes (CUDA)

 private:
  Device dev_;
  bool open_ = false, ready_ = false;
  void* pool_ = nullptr;                    // the allocator's CapturePools::Pool
  std::vector<std::function<void()>> ops_;  // CPU
  void* graph_ = nullptr;                   // CUDA: cudaGraph_t
  void* exec_ = nullptr;                    // CUDA: cudaGraphExec_t
};

// RAII capture: begin() now; finish() keeps it; leaving the scope without finish() (an exception
// in the captured code) aborts it, so no capture stays open.
class Capture {
 public:
  explicit Capture(StepGraph& g) : g_(g) { g_.begin(); }
  ~Capture() {
    if (!done_) g_.abort();
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  void finish() {
    done_ = true;
    g_.end();
  }

 private:
  StepGraph& g_;
  bool done_ = false;
};

// Host-to-device uploads that are ordered on the engine stream without waiting for it: the
// per-iteration values of a replayed step. On CUDA the bytes go through a ring of pinned host
// buffers (a slot is reused only after its copy has run); on the CPU it is a memcpy.
class Uploader {
 public:
  Uploader(Device d, size_t max_bytes);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;
  // Copies `bytes` (≤ max_bytes) from host memory `src` to device memory `dst` before any work
  // queued after this call; src may be reused on return.
  void upload(void* dst, const void* src, size_t bytes);

 private:
  void release() noexcept;
  static constexpr int kSlots = 4;
  Device dev_;
  size_t max_;
  void* slot_[kSlots] = {};
  void* event_[kSlots] = {};
  int next_ = 0;
};

}  // namespace genie::k
