// Pipeline events (Progress) and their rendering for people (ProgressView).
#include "engine/progress.h"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace genie::engine {

// ---------------------------------------------------------------------------------------------
// The pipeline's side

void Progress::phase_begin(const std::string& phase, int64_t steps) const {
  PipelineEvent e;
  e.kind = PipelineEvent::PhaseBegin;
  e.phase = phase;
  e.steps = steps;
  emit(e);
}

void Progress::phase_end(const std::string& phase, int64_t steps, double seconds) const {
  PipelineEvent e;
  e.kind = PipelineEvent::PhaseEnd;
  e.phase = phase;
  e.steps = steps;
  e.seconds = seconds;
  emit(e);
}

void Progress::message(const std::string& text) const {
  PipelineEvent e;
  e.kind = PipelineEvent::Message;
  e.text = text;
  emit(e);
}

std::function<void(const std::string&)> Progress::messages() const {
  return [this](const std::string& text) { message(text); };
}

void Progress::distill_step(const DistillProgress& p) const {
  PipelineEvent e;
  e.kind = PipelineEvent::DistillStep;
  e.phase = "distill";
  // With several ranks, rank 0 reports its batch b; the batches b..b+ranks−1 run in parallel.
  e.step = std::min(p.batch * p.iters + p.iter * std::max(p.ranks, 1), p.num_batches * p.iters);
  e.steps = p.num_batches * p.iters;
  e.eta_s = p.eta_s;
  e.distill = p;
  emit(e);
}

void Progress::unit_step(const quant::ReconProgress& p) const {
  PipelineEvent e;
  e.kind = PipelineEvent::UnitStep;
  e.phase = "reconstruct";
  e.unit = p.unit;
  e.units = p.units;
  e.text = p.name;
  e.iter = p.iter;
  e.iters = p.iters;
  e.loss = p.loss;
  e.rec = p.rec;
  e.reg = p.reg;
  e.step = int64_t(p.unit) * p.iters + p.iter;
  e.steps = int64_t(p.units) * p.iters;
  e.eta_s = p.it_per_s > 0 ? double(e.steps - e.step) / p.it_per_s : -1;
  emit(e);
}

void Progress::unit_end(int unit, int units, const quant::UnitReport& r) const {
  PipelineEvent e;
  e.kind = PipelineEvent::UnitEnd;
  e.phase = "reconstruct";
  e.unit = unit;
  e.units = units;
  e.text = r.name;
  e.loss_before = r.loss_before;
  e.loss_after = r.loss_after;
  e.kept_initial = r.kept_initial;
  e.seconds = r.collect_s + r.optimize_s;
  emit(e);
}

// ---------------------------------------------------------------------------------------------
// Rendering

std::string format_distill_progress(const DistillProgress& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "[distill] batch %lld/%lld iter %lld/%lld  L_bn %.5g  L_in %.5g  lr_z %.3g  "
                "lr_g %.3g  %.2f it/s  ETA %s",
                (long long)(p.batch + 1), (long long)p.num_batches, (long long)p.iter,
                (long long)p.iters, double(p.bn_loss), double(p.input_loss), double(p.lr_z),
                double(p.lr_g), p.iters_per_s, format_duration(p.eta_s).c_str());
  return buf;
}

void ProgressView::line(const std::string& s) {
  if (quiet_) return;
  if (tty_ && bar_shown_) err_ << "\r\033[K";
  bar_shown_ = false;
  err_ << s << "\n" << std::flush;
}

void ProgressView::bar(const std::string& phase, int64_t step, int64_t steps,
                       const std::string& detail, double eta) {
  if (quiet_) return;
  if (!tty_) {
    err_ << detail << "\n" << std::flush;
    return;
  }
  if (step < steps && drawn_ && since_draw_.seconds() < 0.1) return;
  since_draw_.restart();
  drawn_ = true;
  const int width = 24;
  const double frac = steps > 0 ? std::min(1.0, double(step) / double(steps)) : 0.0;
  const int fill = int(frac * width + 0.5);
  std::string b = "\r\033[K[" + phase + "] [" + std::string(size_t(fill), '#') +
                  std::string(size_t(width - fill), '.') + "] ";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%3d%% ", int(frac * 100 + 0.5));
  b += buf + detail;
  if (eta >= 0) b += "  ETA " + format_duration(eta);
  err_ << b << std::flush;
  bar_shown_ = true;
}

void ProgressView::operator()(const PipelineEvent& e) {
  using K = PipelineEvent;
  char buf[512];
  switch (e.kind) {
    case K::Message:
      line(e.text);
      break;
    case K::PhaseBegin:
      if (e.phase == "eval_fp32" || e.phase == "eval_quant")
        line(str("[", e.phase, "] evaluating ", e.steps, " images"));
      break;
    case K::PhaseEnd:
      line(str("[", e.phase, "] done in ", format_duration(e.seconds)));
      break;
    case K::DistillStep: {
      const auto& p = e.distill;
      if (!tty_) {
        bar("distill", e.step, e.steps, format_distill_progress(p), e.eta_s);
        break;
      }
      std::snprintf(buf, sizeof buf,
                    "batch %lld/%lld it %lld/%lld  L_bn %.4g  L_in %.4g  lr %.2g/%.2g  %.1f it/s",
                    (long long)(p.batch + 1), (long long)p.num_batches, (long long)p.iter,
                    (long long)p.iters, double(p.bn_loss), double(p.input_loss), double(p.lr_z),
                    double(p.lr_g), p.iters_per_s);
      bar("distill", e.step, e.steps, buf, e.eta_s);
      break;
    }
    case K::UnitStep: {
      std::snprintf(buf, sizeof buf, "unit %lld/%lld %s it %lld/%lld  rec %.4g  reg %.4g",
                    (long long)(e.unit + 1), (long long)e.units, e.text.c_str(), (long long)e.iter,
                    (long long)e.iters, e.rec, e.reg);
      const std::string eta = e.eta_s >= 0 ? "  ETA " + format_duration(e.eta_s) : "";
      bar("reconstruct", e.step, e.steps, tty_ ? std::string(buf) : str("[reconstruct] ", buf, eta),
          e.eta_s);
      break;
    }
    case K::UnitEnd:
      std::snprintf(buf, sizeof buf, "[reconstruct] unit %lld/%lld %-14s loss %.5g -> %.5g  (%s)%s",
                    (long long)(e.unit + 1), (long long)e.units, e.text.c_str(), e.loss_before,
                    e.loss_after, format_duration(e.seconds).c_str(),
                    e.kept_initial ? "  worse: initial quantizer kept" : "");
      line(buf);
      break;
    case K::UnitBegin:
      break;
  }
}

void ProgressView::finish() {
  if (tty_ && bar_shown_ && !quiet_) err_ << "\r\033[K" << std::flush;
  bar_shown_ = false;
}

}  // namespace genie::engine
