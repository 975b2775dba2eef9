// Progress of a pipeline run, in one place: the events the pipeline sends to a listener (the
// library's callback, genie::Listener), the Progress object through which the pipeline sends them,
// and ProgressView, which renders them for people (a redrawn bar with ETA on a terminal, one line
// per step otherwise).
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

#include "engine/distill.h"
#include "engine/reconstruct.h"
#include "kernels/util.h"

namespace genie::engine {

struct PipelineEvent {
  enum Kind { PhaseBegin, PhaseEnd, DistillStep, UnitBegin, UnitStep, UnitEnd, Message };
  Kind kind = Message;
  std::string phase;  // "load", "distill", "reconstruct", "eval_fp32", "eval_quant", "write"
  std::string text;   // Message: a line; UnitBegin/UnitEnd: the unit's name
  int64_t step = 0, steps = 0;  // overall progress of the phase (e.g. iterations done / total)
  double eta_s = -1;            // < 0: unknown
  double seconds = 0;           // PhaseEnd / UnitEnd: duration
  // DistillStep details.
  DistillProgress distill;
  // UnitStep / UnitEnd details.
  int64_t unit = 0, units = 0, iter = 0, iters = 0;
  double loss = 0, rec = 0, reg = 0;  // UnitStep: total = reconstruction + weight · regulariser
  double loss_before = 0, loss_after = 0;
  bool kept_initial = false;  // UnitEnd: the guard kept the initial quantizer
};
using PipelineListener = std::function<void(const PipelineEvent&)>;

// The pipeline's side: builds each event and hands it to the listener (nothing without one).
class Progress {
 public:
  explicit Progress(PipelineListener listen) : listen_(std::move(listen)) {}
  void phase_begin(const std::string& phase, int64_t steps = 0) const;
  void phase_end(const std::string& phase, int64_t steps, double seconds) const;
  void message(const std::string& text) const;
  void distill_step(const DistillProgress& p) const;
  // ETA of the whole phase: this unit's rest plus the later units at the current rate.
  void unit_step(const quant::ReconProgress& p) const;
  void unit_end(int unit, int units, const quant::UnitReport& r) const;
  // For the phases' own `message` callbacks.
  std::function<void(const std::string&)> messages() const;

 private:
  void emit(const PipelineEvent& e) const {
    if (listen_) listen_(e);
  }
  PipelineListener listen_;
};

// One human-readable progress line of Genie-D: batch, iteration, losses, lrs, it/s, ETA.
std::string format_distill_progress(const DistillProgress& p);

// Renders events on `err`: a redrawn progress bar with ETA when `tty`, else one line per step.
class ProgressView {
 public:
  ProgressView(std::ostream& err, bool tty, bool quiet) : err_(err), tty_(tty), quiet_(quiet) {}
  void operator()(const PipelineEvent& e);
  void finish();  // clears a pending bar

 private:
  void line(const std::string& s);
  void bar(const std::string& phase, int64_t step, int64_t steps, const std::string& detail,
           double eta);

  std::ostream& err_;
  bool tty_, quiet_;
  bool bar_shown_ = false, drawn_ = false;
  Stopwatch since_draw_;  // redraws at most every 0.1 s
};

}  // namespace genie::engine
