// Internal: the private memory pools of captured steps (kernels/graph.h), shared by the host and
// the CUDA caching allocators. A captured step replays its kernels on the addresses it had while
// it was captured, so every block the step touched must stay reserved until the capture is
// dropped — including the temporaries that were freed during the capture and the outputs freed
// after it. A pool therefore owns:
//   * every block allocated while it is active (and reuses its own freed blocks for later
//     allocations of the same capture, as the eager run would), and
//   * every block freed while it is active, even if it was allocated before (a captured kernel
//     may have read it).
// Blocks a pool owns go back to the allocator only when the pool is released; a block still in
// use then (an output tensor the caller holds) goes back normally when it is freed.
// Not thread-safe: the allocators call it under their own lock.
#pragma once
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

namespace genie::k {

class CapturePools {
 public:
  struct Pool {
    std::unordered_map<size_t, std::vector<void*>> free;  // block size -> blocks free in the pool
    size_t free_bytes = 0;
  };

  Pool* begin() {
    pools_.push_back(std::make_unique<Pool>());
    active_ = pools_.back().get();
    return active_;
  }
  void end() { active_ = nullptr; }
  bool any() const { return !pools_.empty(); }

  // A free block of exactly `size` bytes from the active pool, or null.
  void* take(size_t size) {
    if (!active_) return nullptr;
    auto it = active_->free.find(size);
    if (it == active_->free.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    active_->free_bytes -= size;
    return p;
  }
  // Called for every block handed out while a pool is active.
  void note_alloc(void* p) {
    if (active_) owner_[p] = active_;
  }
  // Called for every freed block: true when a pool keeps it (then the allocator must not reuse
  // it); false when it goes back to the allocator as usual.
  bool keep(void* p, size_t size) {
    if (pools_.empty()) return false;
    Pool* pool = nullptr;
    auto it = owner_.find(p);
    if (it != owner_.end()) {
      pool = it->second;
    } else if (active_) {
      pool = active_;
      owner_[p] = pool;
    } else {
      return false;
    }
    pool->free[size].push_back(p);
    pool->free_bytes += size;
    return true;
  }
  // Drops a pool: give(p, size) for each of its free blocks; its live blocks lose their owner.
  template <class Give>
  void release(Pool* pool, Give give) {
    if (active_ == pool) active_ = nullptr;
    for (auto it = owner_.begin(); it != owner_.end();)
      it = it->second == pool ? owner_.erase(it) : std::next(it);
    for (auto& [size, blocks] : pool->free)
      for (void* p : blocks) give(p, size);
    for (auto it = pools_.begin(); it != pools_.end(); ++it)
      if (it->get() == pool) {
        pools_.erase(it);
        break;
      }
  }
  size_t free_bytes() const {
    size_t b = 0;
    for (const auto& p : pools_) b += p->free_bytes;
    return b;
  }

 private:
  std::vector<std::unique_ptr<Pool>> pools_;
  Pool* active_ = nullptr;
  std::unordered_map<void*, Pool*> owner_;
};

// The host allocator's pools (kernels/device.cpp); the CUDA allocator's are in cuda_runtime.h.
CapturePools::Pool* host_pool_begin();
void host_pool_end();
void host_pool_release(CapturePools::Pool* pool);

}  // namespace genie::k
