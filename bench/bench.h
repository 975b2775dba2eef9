// genie_bench harness: options, timing (std::chrono on the CPU, CUDA events on the GPU), results
// and their JSON / table output. Every case checks its result against the CPU reference before it
// is timed; a failed check is recorded (and makes genie_bench exit non-zero) rather than timed.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "kernels/json.h"
#include "kernels/util.h"

namespace genie::bench {

struct Options {
  Device device = Device::CPU;
  int threads = 0;                        // 0 = library default
  std::string filter;                     // substring of case names; empty = all
  std::string exclude;                    // substrings of case names left out (after filter)
  bool quick = false;                     // smaller sizes and fewer repetitions (smoke runs, CI)
  std::string json_path;                  // also write the JSON document here
  std::string model_path;                 // resnet20_fmnist.h5
  int reps = 0;                           // 0 = per-case default
  bool list = false;                      // print case names only
  Precision precision = Precision::FP32;  // GPU convolutions and GEMMs (kernels/device.h)
  // Tolerance of the checks of a device result against the CPU (FP32) reference: 1e-3, widened
  // for a reduced precision in proportion to its operand rounding.
  double device_tol() const { return std::max(1e-3, 16 * precision_operand_error(precision)); }
};

// Timing statistics of one case, in milliseconds.
struct Timing {
  double median_ms = 0, min_ms = 0, mean_ms = 0, max_ms = 0;
  int reps = 0;
  std::vector<double> samples_ms;
};
Timing summarize(std::vector<double> samples_ms);

// Times `fn` on the options' device: `warmup` untimed calls, then `reps` timed calls (each call
// bracketed by CUDA events on the engine's stream on the GPU, by steady_clock on the CPU).
Timing time_fn(const Options& o, const std::function<void()>& fn, int warmup, int reps);

// Per-iteration timestamps taken from inside a loop the benchmark does not own (the Genie-D
// engine's progress callback): mark() after every iteration; deltas() = per-iteration times.
class IterClock {
 public:
  explicit IterClock(Device d);
  ~IterClock();
  IterClock(const IterClock&) = delete;
  IterClock& operator=(const IterClock&) = delete;
  void mark();
  // Times between consecutive marks, skipping the first `skip` iterations after the first mark.
  std::vector<double> deltas_ms(int skip);

 private:
  Device dev_;
  std::vector<double> host_s_;  // CPU: seconds since construction at each mark()
  Stopwatch since_start_;
  std::vector<void*> events_;
};

// Synchronises the device (no-op on the CPU).
void sync(Device d);

struct Result {
  std::string name;     // unique: "<group>/<variant>"
  std::string group;    // what is computed ("wquant_soft", "genie_d/resnet20_fmnist/B128", …)
  std::string variant;  // "fused", "composed", "fwd", "iter", …
  Timing t;
  double bytes = 0;   // minimum memory traffic of one call (for GB/s); 0 = n/a
  double flops = 0;   // floating-point operations of one call (for GFLOP/s); 0 = n/a
  std::string check;  // "ok (max err …)" | "FAIL: …" | "n/a: …"
  bool failed = false;
  std::string note;
  Json params = Json::object();  // shapes and settings
  double peak_mem_mb = -1;       // peak tensor memory (CUDA caching allocator / host), -1 = n/a
};

class Bench {
 public:
  explicit Bench(Options o) : opt(std::move(o)) {}
  Options opt;
  bool selected(const std::string& name) const;
  // Whether any of "<group><suffix>" is selected.
  bool selected_any(const std::string& group, std::initializer_list<const char*> suffixes) const;
  void add(Result r);
  // Case failed before timing (setup error or check failure).
  void fail(const std::string& name, const std::string& why);
  const std::vector<Result>& results() const { return results_; }
  Json to_json() const;
  void print_table() const;  // stderr
  bool any_failed() const;

 private:
  std::vector<Result> results_;
};

// Case groups (bench_kernels.cpp, bench_iters.cpp).
void run_kernel_cases(Bench& b);
void run_conv_cases(Bench& b);
void run_genie_d_cases(Bench& b);
// Writes a built-in architecture (models/archs.h) at R x R with 3 channels and 1000 classes, with
// the benchmark's seeded random weights, as a genie model file (bench/paper_scale.py's models on
// a machine without PyTorch's exporter).
void save_random_model(const std::string& arch, int64_t R, const std::string& path);
void run_genie_m_cases(Bench& b);

// Shared helpers.
Tensor random_normal(const Shape& s, uint64_t seed, Device d, float mean = 0.f, float std = 1.f);
Tensor random_uniform(const Shape& s, uint64_t seed, Device d, float lo, float hi);
// max |a − b| / (max |b| + tiny) over all elements (host copies).
double max_rel_err(const Tensor& a, const Tensor& b);
std::string fmt(double v, int prec = 3);

}  // namespace genie::bench
