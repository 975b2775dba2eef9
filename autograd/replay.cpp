// ReplayedStep: per-step inputs, the warm → capture → replay state machine and its eager fallback.
#include "autograd/replay.h"

#include <cstring>

#include "autograd/tape.h"
#include "kernels/graph.h"

namespace genie {

struct ReplayedStep::Variant {
  bool warm = false;  // its first step ran eagerly
  std::unique_ptr<k::StepGraph> graph;
  uint64_t counters = 0;  // stream counters one step draws
};

ReplayedStep::ReplayedStep(Options opt) : opt_(std::move(opt)) {
  for (size_t i = 0; i < opt_.adams.size(); ++i) schedule_.push_back(input<float>(2));
  if (opt_.stream) {
    offset_ = input<uint64_t>(1);
    step_gen_.seed = opt_.stream->seed;
  }
}

ReplayedStep::~ReplayedStep() = default;

size_t ReplayedStep::reserve(size_t bytes) {
  GENIE_CHECK(!buf_.defined(), "[replayed_step] inputs are declared before the first step");
  const size_t off = (staging_.size() + 7) / 8 * 8;  // every slot 8-byte aligned
  staging_.resize(off + bytes, 0);
  return off;
}

char* ReplayedStep::buffer() {
  if (!buf_.defined()) {
    const size_t words = (staging_.size() + 3) / 4 + 1;
    buf_ = Tensor::zeros({int64_t(words)}, opt_.device, DType::I32);
    up_ = std::make_unique<k::Uploader>(opt_.device, staging_.size());
    char* base = static_cast<char*>(buf_.raw());
    for (size_t i = 0; i < opt_.adams.size(); ++i)
      opt_.adams[i]->bind_schedule(reinterpret_cast<const float*>(base + schedule_[i].offset));
    if (opt_.stream) step_gen_.offset_at = reinterpret_cast<const uint64_t*>(base + offset_.offset);
  }
  return static_cast<char*>(buf_.raw());
}

ops::Generator& ReplayedStep::generator() {
  GENIE_CHECK(opt_.stream, "[replayed_step] ", opt_.name, ": no random stream was given");
  return bound() ? step_gen_ : *opt_.stream;
}

void ReplayedStep::stage_schedules() {
  for (size_t i = 0; i < opt_.adams.size(); ++i) {
    const Adam& a = *opt_.adams[i];
    const std::array<float, 2> s = a.schedule(a.steps() + 1);
    std::memcpy(host(schedule_[i]), s.data(), sizeof(s));
  }
  if (opt_.stream) *host(offset_) = opt_.stream->offset;
}

void ReplayedStep::run(const std::function<void()>& body, int variant) {
  if (!bound()) {  // the Adams and the stream count for themselves
    body();
    return;
  }
  GENIE_CHECK(variant >= 0, "[replayed_step] expected a variant >= 0, got ", variant);
  if (size_t(variant) >= variants_.size()) variants_.resize(size_t(variant) + 1);
  if (!variants_[size_t(variant)]) variants_[size_t(variant)] = std::make_unique<Variant>();
  Variant& v = *variants_[size_t(variant)];
  stage_schedules();
  char* dev = buffer();
  if (!staging_.empty()) up_->upload(dev, staging_.data(), staging_.size());
  step_gen_.offset = 0;
  if (!v.warm || failed_) {
    body();
    v.warm = true;
  } else if (!v.graph) {
    run_captured(body, v);
  } else {
    for (Adam* a : opt_.adams) a->set_steps(a->steps() + 1);
    v.graph->replay();
    step_gen_.offset = v.counters;
  }
  if (opt_.stream) opt_.stream->offset += step_gen_.offset;
}

void ReplayedStep::run_captured(const std::function<void()>& body, Variant& v) {
  std::vector<int64_t> steps;
  for (Adam* a : opt_.adams) steps.push_back(a->steps());
  auto g = std::make_unique<k::StepGraph>(opt_.device);
  try {
    k::Capture cap(*g);
    body();  // recorded, not run; the Adams count the step
    cap.finish();
  } catch (const std::exception& e) {
    // Nothing ran on the device: undo the host's bookkeeping and run the step eagerly. The eager
    // body replaces the outputs the capture left behind before their memory (g's pool) goes.
    clear_tape();
    for (size_t i = 0; i < opt_.adams.size(); ++i) {
      opt_.adams[i]->set_steps(steps[i]);
      opt_.adams[i]->zero_grad();
    }
    failed_ = true;
    if (opt_.message)
      opt_.message(str(opt_.name, ": the step could not be captured (", e.what(),
                       "); running it eagerly (same results)"));
    step_gen_.offset = 0;
    body();
    return;
  }
  v.graph = std::move(g);
  v.counters = step_gen_.offset;
  v.graph->replay();
}

void ReplayedStep::drop(int variant) {
  if (variant >= 0 && size_t(variant) < variants_.size() && variants_[size_t(variant)])
    variants_[size_t(variant)]->graph.reset();
}

size_t ReplayedStep::captured_kernels() const {
  size_t n = 0;
  for (const auto& v : variants_)
    if (v && v->graph) n += v->graph->kernels();
  return n;
}

}  // namespace genie
