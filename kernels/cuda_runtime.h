// Internal: the CUDA half of kernels/device.h, implemented in device.cu (CUDA builds) or
// no_cuda.cpp (CPU-only builds, where available() is false and everything else throws).
#pragma once
#include <string>

#include "kernels/device.h"

namespace genie::cuda_rt {

enum class Copy { H2D, D2H, D2D };
bool built();
bool available();
void* alloc(size_t bytes);
void free(void* p, size_t bytes);
void copy(void* dst, const void* src, size_t bytes, Copy kind);
void zero(void* p, size_t bytes);
Stream stream();
void synchronize();
std::string device_string();
CudaMemStats mem_stats();
void reset_peak();
void empty_cache();
// Captured steps (kernels/graph.h): the allocator's private pools, stream capture of the engine
// stream into a graph (relaxed mode: the allocator may still cudaMalloc while capturing), and the
// pinned buffers and events of Uploader.
void* pool_begin();
void pool_end();
void pool_release(void* pool);
void capture_begin();
void* capture_end(void** graph);  // returns the instantiated graph; *graph the graph itself
void capture_abort() noexcept;
void graph_launch(void* exec);
size_t graph_nodes(void* graph);
void graph_destroy(void* graph, void* exec) noexcept;
void* pinned_alloc(size_t bytes);
void pinned_free(void* p) noexcept;
void* event_create();
void event_destroy(void* ev) noexcept;
void event_sync(void* ev);
// Async host-to-device copy on the engine stream, then ev recorded after it.
void upload_async(void* dst, const void* src, size_t bytes, void* ev);

}  // namespace genie::cuda_rt
