// Captured steps (kernels/graph.h): the CPU recorder, and the device-independent half of
// StepGraph and Uploader (the CUDA half is in device.cu behind cuda_runtime.h).
#include "kernels/graph.h"

#include <cstring>

#include "kernels/capture_pool.h"
#include "kernels/cuda_runtime.h"
#include "kernels/dispatch.h"

namespace genie::k {

namespace {
const StepGraph* g_open = nullptr;  // the capture in progress, if any
bool g_fail_captures = false;
}  // namespace

void StepGraph::fail_captures_for_testing(bool on) { g_fail_captures = on; }

bool capturing() { return g_open != nullptr; }

void check_not_capturing(const char* what) {
  GENIE_CHECK(g_open == nullptr, "[", what,
              "] host transfer during a graph capture: a replay would not repeat it (read or "
              "write the values before or after the captured step, or through an Uploader)");
}

StepGraph::StepGraph(Device d) : dev_(d) {}

StepGraph::~StepGraph() {
  abort();
  try {
    if (dev_ == Device::CUDA) {
      if (exec_) cuda_rt::synchronize();  // replays in flight still use the pool
      cuda_rt::graph_destroy(graph_, exec_);
      if (pool_) cuda_rt::pool_release(pool_);
    } else if (pool_) {
      host_pool_release(static_cast<CapturePools::Pool*>(pool_));
    }
  } catch (...) {
  }
}

void StepGraph::begin() {
  GENIE_CHECK(!ready_ && !pool_, "[StepGraph] expected a fresh graph (each captures once)");
  GENIE_CHECK(g_open == nullptr, "[StepGraph] another capture is in progress");
  if (dev_ == Device::CUDA) {
    pool_ = cuda_rt::pool_begin();
    try {
      cuda_rt::capture_begin();
    } catch (...) {
      cuda_rt::pool_end();
      throw;
    }
  } else {
    pool_ = host_pool_begin();
    cpu_recorder() = &ops_;
  }
  open_ = true;
  g_open = this;
}

void StepGraph::end() {
  GENIE_CHECK(open_, "[StepGraph] end() without begin()");
  if (g_fail_captures) {
    abort();
    GENIE_CHECK(false, "[StepGraph] capture failed (injected by fail_captures_for_testing)");
  }
  open_ = false;
  g_open = nullptr;
  if (dev_ == Device::CUDA) {
    cuda_rt::pool_end();
    exec_ = cuda_rt::capture_end(&graph_);
  } else {
    cpu_recorder() = nullptr;
    host_pool_end();
  }
  ready_ = true;
}

void StepGraph::abort() noexcept {
  if (!open_) return;
  open_ = false;
  g_open = nullptr;
  if (dev_ == Device::CUDA) {
    cuda_rt::capture_abort();
    try {
      cuda_rt::pool_end();
    } catch (...) {
    }
  } else {
    cpu_recorder() = nullptr;
    host_pool_end();
    ops_.clear();
  }
}

void StepGraph::replay() {
  GENIE_CHECK(ready_, "[StepGraph] replay() before a finished capture");
  if (dev_ == Device::CUDA) {
    cuda_rt::graph_launch(exec_);
  } else {
    for (auto& op : ops_) op();
  }
}

size_t StepGraph::kernels() const {
  return dev_ == Device::CUDA ? (graph_ ? cuda_rt::graph_nodes(graph_) : 0) : ops_.size();
}

Uploader::Uploader(Device d, size_t max_bytes) : dev_(d), max_(max_bytes) {
  if (dev_ != Device::CUDA) return;
  try {
    for (int i = 0; i < kSlots; ++i) {
      slot_[i] = cuda_rt::pinned_alloc(max_ == 0 ? 1 : max_);
      event_[i] = cuda_rt::event_create();
    }
  } catch (...) {
    release();
    throw;
  }
}

Uploader::~Uploader() { release(); }

void Uploader::release() noexcept {
  if (dev_ != Device::CUDA) return;
  for (int i = 0; i < kSlots; ++i) {
    if (event_[i]) {
      try {
        cuda_rt::event_sync(event_[i]);  // the copy from this slot has run
      } catch (...) {
      }
      cuda_rt::event_destroy(event_[i]);
      event_[i] = nullptr;
    }
    cuda_rt::pinned_free(slot_[i]);
    slot_[i] = nullptr;
  }
}

void Uploader::upload(void* dst, const void* src, size_t bytes) {
  GENIE_CHECK(bytes <= max_, "[Uploader] expected at most ", max_, " bytes, got ", bytes);
  if (bytes == 0) return;
  if (dev_ != Device::CUDA) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const int i = next_;
  next_ = (next_ + 1) % kSlots;
  cuda_rt::event_sync(event_[i]);  // its previous copy has read the slot
  std::memcpy(slot_[i], src, bytes);
  cuda_rt::upload_async(dst, slot_[i], bytes, event_[i]);
}

}  // namespace genie::k
