// genie_bench harness: timing on both devices, result bookkeeping, JSON document and stderr table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "autograd/ops.h"
#include "bench/bench.h"

#if GENIE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace genie::bench {

namespace {

#if GENIE_WITH_CUDA
void cuda_ok(cudaError_t e, const char* what) {
  GENIE_CHECK(e == cudaSuccess, "[bench] ", what, " failed: ", cudaGetErrorString(e));
}
#endif

}  // namespace

void sync(Device d) {
  if (d == Device::CUDA) cuda_synchronize();
}

Timing summarize(std::vector<double> s) {
  Timing t;
  t.samples_ms = s;
  t.reps = int(s.size());
  if (s.empty()) return t;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  t.median_ms = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  t.min_ms = s.front();
  t.max_ms = s.back();
  t.mean_ms = std::accumulate(s.begin(), s.end(), 0.0) / double(n);
  return t;
}

Timing time_fn(const Options& o, const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  sync(o.device);
  std::vector<double> ms;
  ms.reserve(size_t(reps));
  if (o.device == Device::CUDA) {
#if GENIE_WITH_CUDA
    auto stream = static_cast<cudaStream_t>(cuda_stream());
    std::vector<cudaEvent_t> ev(size_t(2 * reps));
    for (auto& e : ev) cuda_ok(cudaEventCreate(&e), "cudaEventCreate");
    for (int i = 0; i < reps; ++i) {
      cuda_ok(cudaEventRecord(ev[size_t(2 * i)], stream), "cudaEventRecord");
      fn();
      cuda_ok(cudaEventRecord(ev[size_t(2 * i + 1)], stream), "cudaEventRecord");
    }
    cuda_ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    for (int i = 0; i < reps; ++i) {
      float t = 0;
      cuda_ok(cudaEventElapsedTime(&t, ev[size_t(2 * i)], ev[size_t(2 * i + 1)]),
              "cudaEventElapsedTime");
      ms.push_back(double(t));
    }
    for (auto& e : ev) cudaEventDestroy(e);
#else
    throw_no_cuda("bench timing");
#endif
  } else {
    for (int i = 0; i < reps; ++i) {
      const Stopwatch t;
      fn();
      ms.push_back(t.seconds() * 1e3);
    }
  }
  return summarize(std::move(ms));
}

IterClock::IterClock(Device d) : dev_(d) {}

IterClock::~IterClock() {
#if GENIE_WITH_CUDA
  for (void* e : events_) cudaEventDestroy(static_cast<cudaEvent_t>(e));
#endif
}

void IterClock::mark() {
  if (dev_ == Device::CUDA) {
#if GENIE_WITH_CUDA
    cudaEvent_t e;
    cuda_ok(cudaEventCreate(&e), "cudaEventCreate");
    cuda_ok(cudaEventRecord(e, static_cast<cudaStream_t>(cuda_stream())), "cudaEventRecord");
    events_.push_back(e);
#else
    throw_no_cuda("bench timing");
#endif
  } else {
    host_s_.push_back(since_start_.seconds());
  }
}

std::vector<double> IterClock::deltas_ms(int skip) {
  std::vector<double> out;
  if (dev_ == Device::CUDA) {
#if GENIE_WITH_CUDA
    if (!events_.empty())
      cuda_ok(cudaEventSynchronize(static_cast<cudaEvent_t>(events_.back())),
              "cudaEventSynchronize");
    for (size_t i = size_t(skip) + 1; i < events_.size(); ++i) {
      float t = 0;
      cuda_ok(cudaEventElapsedTime(&t, static_cast<cudaEvent_t>(events_[i - 1]),
                                   static_cast<cudaEvent_t>(events_[i])),
              "cudaEventElapsedTime");
      out.push_back(double(t));
    }
#endif
  } else {
    for (size_t i = size_t(skip) + 1; i < host_s_.size(); ++i)
      out.push_back((host_s_[i] - host_s_[i - 1]) * 1e3);
  }
  return out;
}

namespace {

// Whether `name` contains any of the comma-separated substrings of `list`.
bool matches_any(const std::string& name, const std::string& list) {
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string part = list.substr(pos, comma - pos);
    if (!part.empty() && name.find(part) != std::string::npos) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

bool Bench::selected(const std::string& name) const {
  if (!opt.exclude.empty() && matches_any(name, opt.exclude)) return false;
  return opt.filter.empty() || matches_any(name, opt.filter);
}

bool Bench::selected_any(const std::string& group,
                         std::initializer_list<const char*> suffixes) const {
  for (const char* s : suffixes)
    if (selected(group + s)) return true;
  return false;
}

void Bench::add(Result r) {
  if (r.name.empty()) r.name = r.group + "/" + r.variant;
  std::fprintf(stderr, "  %-58s %10s ms  %s\n", r.name.c_str(),
               r.failed ? "-" : fmt(r.t.median_ms).c_str(), r.check.c_str());
  results_.push_back(std::move(r));
}

void Bench::fail(const std::string& name, const std::string& why) {
  Result r;
  r.name = name;
  const auto slash = name.rfind('/');
  r.group = slash == std::string::npos ? name : name.substr(0, slash);
  r.variant = slash == std::string::npos ? "" : name.substr(slash + 1);
  r.failed = true;
  r.check = "FAIL: " + why;
  add(std::move(r));
}

bool Bench::any_failed() const {
  for (const auto& r : results_)
    if (r.failed) return true;
  return false;
}

namespace {

double rate(double amount, double ms) { return ms > 0 ? amount / (ms * 1e-3) : 0; }

// Median time of the sibling variant `variant` in the same group, or 0.
double sibling_ms(const std::vector<Result>& rs, const Result& r, const std::string& variant) {
  for (const auto& o : rs)
    if (o.group == r.group && o.variant == variant && !o.failed) return o.t.median_ms;
  return 0;
}

double copy_gbps(const std::vector<Result>& rs) {
  for (const auto& o : rs)
    if (o.group == "copy" && !o.failed && o.t.median_ms > 0)
      return rate(o.bytes, o.t.median_ms) / 1e9;
  return 0;
}

}  // namespace

Json Bench::to_json() const {
  Json doc = Json::object();
  doc.set("format", "genie-bench-1");
  doc.set("device", device_name(opt.device));
  doc.set("precision", precision_name(opt.precision));
  doc.set("device_string", opt.device == Device::CUDA ? cuda_device_string() : std::string("cpu"));
  doc.set("threads", cpu_threads());
  doc.set("quick", opt.quick);
  const double copy = copy_gbps(results_);
  Json arr = Json::array();
  for (const auto& r : results_) {
    Json j = Json::object();
    j.set("name", r.name);
    j.set("group", r.group);
    j.set("variant", r.variant);
    j.set("ok", !r.failed);
    j.set("check", r.check);
    if (!r.failed) {
      j.set("median_ms", r.t.median_ms);
      j.set("min_ms", r.t.min_ms);
      j.set("mean_ms", r.t.mean_ms);
      j.set("max_ms", r.t.max_ms);
      j.set("reps", r.t.reps);
      if (r.bytes > 0) {
        const double gbps = rate(r.bytes, r.t.median_ms) / 1e9;
        j.set("bytes", r.bytes);
        j.set("gb_per_s", gbps);
        if (copy > 0 && r.group != "copy") j.set("fraction_of_copy_bw", gbps / copy);
      }
      if (r.flops > 0) {
        j.set("flops", r.flops);
        j.set("gflop_per_s", rate(r.flops, r.t.median_ms) / 1e9);
      }
      if (r.variant == "fused") {
        const double c = sibling_ms(results_, r, "composed");
        if (c > 0 && r.t.median_ms > 0) j.set("speedup_vs_composed", c / r.t.median_ms);
      }
      if (r.peak_mem_mb >= 0) j.set("peak_mem_mb", r.peak_mem_mb);
    }
    if (!r.note.empty()) j.set("note", r.note);
    j.set("params", r.params);
    arr.push_back(j);
  }
  doc.set("results", arr);
  return doc;
}

void Bench::print_table() const {
  const double copy = copy_gbps(results_);
  std::fprintf(stderr, "\n%-58s %10s %10s %12s %9s  %s\n", "case", "median ms", "min ms", "rate",
               "speedup", "check");
  for (const auto& r : results_) {
    if (r.failed) {
      std::fprintf(stderr, "%-58s %10s %10s %12s %9s  %s\n", r.name.c_str(), "-", "-", "-", "-",
                   r.check.c_str());
      continue;
    }
    std::string rt = "";
    if (r.flops > 0)
      rt = fmt(rate(r.flops, r.t.median_ms) / 1e9, 1) + " GF/s";
    else if (r.bytes > 0) {
      rt = fmt(rate(r.bytes, r.t.median_ms) / 1e9, 1) + " GB/s";
      if (copy > 0 && r.group != "copy")
        rt += str(" (", int(std::lround(100 * rate(r.bytes, r.t.median_ms) / 1e9 / copy)), "%)");
    }
    std::string sp = "";
    if (r.variant == "fused") {
      const double c = sibling_ms(results_, r, "composed");
      if (c > 0) sp = fmt(c / r.t.median_ms, 2) + "x";
    }
    std::string chk = r.check;
    if (r.peak_mem_mb >= 0) chk += str("  peak ", fmt(r.peak_mem_mb, 1), " MB");
    std::fprintf(stderr, "%-58s %10s %10s %12s %9s  %s\n", r.name.c_str(),
                 fmt(r.t.median_ms).c_str(), fmt(r.t.min_ms).c_str(), rt.c_str(), sp.c_str(),
                 chk.c_str());
  }
}

Tensor random_normal(const Shape& s, uint64_t seed, Device d, float mean, float std) {
  ops::Generator g(seed);
  return ops::randn(s, g, d, mean, std);
}

Tensor random_uniform(const Shape& s, uint64_t seed, Device d, float lo, float hi) {
  ops::Generator g(seed);
  Tensor u = ops::rand(s, g, Device::CPU);
  float* p = u.data();
  for (int64_t i = 0; i < u.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  return u.to(d);
}

double max_rel_err(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  GENIE_CHECK(va.size() == vb.size(), "[bench] comparing ", va.size(), " with ", vb.size(),
              " elements");
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::fabs(double(va[i]) - double(vb[i]));
    if (std::isnan(d)) return d;  // a NaN anywhere fails every tolerance
    num = std::max(num, d);
    den = std::max(den, std::fabs(double(vb[i])));
  }
  return num / (den + 1e-30);
}

std::string fmt(double v, int prec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

}  // namespace genie::bench
