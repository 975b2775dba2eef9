// The end-to-end Genie pipeline behind `genie_run` and the library API (engine/genie.h):
//   FP32 teacher (HDF5) → calibration set (Genie-D, Gaussian noise or real images)
//   → Genie-M block reconstruction → quantized model file, report.json, evaluation.
//
// Its pieces, each in its own module: the settings and their conversions (engine/settings.h),
// validation of every input before anything is written (engine/prepare.h), the checkpoint
// (engine/checkpoint.h), progress events (engine/progress.h), the records and their JSON
// (engine/records.h) and report.json (engine/report.h). Bad input throws InputError (exit code 2
// in genie_run), whose message names the flag or file.
//
// Determinism and resume: every random stream is derived from (seed, batch index) in Genie-D and
// (seed, unit index) in Genie-M, never from state a restart would lose, so a run killed at any
// point and resumed from its checkpoint writes a quantized model file identical byte for byte
// (CPU) to an uninterrupted run's. Wall-clock times go to report.json only.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/evaluate.h"
#include "engine/progress.h"
#include "engine/records.h"
#include "engine/settings.h"

namespace genie::engine {

struct PipelineResult {
  std::string out_dir, quant_model_path, synthetic_path, contact_sheet_path, report_path;
  bool evaluated = false;
  EvalResult fp32, quant;
  std::vector<quant::UnitReport> units;  // every unit, resumed ones included
  DistillResult distill;                 // genie calibration only (images + losses)
  bool resumed = false;
  Json timings = Json::object();  // phase -> seconds (this process plus the checkpointed ones)
  Json report;                    // what report.json holds
};

// `genie_run quantize`: the whole pipeline, writing into cfg.out (checkpointing as it goes).
PipelineResult run_quantize(const PipelineConfig& cfg, const PipelineListener& listen = {});
// `genie_run distill`: Genie-D only (synthetic set HDF5, contact sheet, report.json).
PipelineResult run_distill(const PipelineConfig& cfg, const PipelineListener& listen = {});

}  // namespace genie::engine
