// report.json of a pipeline run and the human-readable summary table printed at its end.
//
// report.json (quantize), top level:
//   fp32_top1, fp32_top5, quant_top1, quant_top5   fractions in [0, 1], present when evaluated
//   eval            {"source", "n"} when evaluated
//   timings_s       seconds per phase: load, distill, write_synthetic, reconstruct, write_model,
//                   eval_fp32, eval_quant, total (distill / reconstruct sum the finished batches /
//                   units, across resumed processes; total is wall time across processes)
//   settings        every setting by flag name (model, out, calib, samples, wbits, …)
//   units           one record per unit in network order (engine/records.h: name, kind, nodes,
//                   reconstruction loss on the calibration set before and after optimisation,
//                   times)
//   distill         Genie-D's results (engine/records.h: losses, rate, batch records) when
//                   calib = genie
//   model           {"path", "arch", "params", "fingerprint"}; files {"quantized_model", …}
//   bits, resumed, genie_version
#pragma once
#include <string>

#include "engine/pipeline.h"

namespace genie::engine {

// The version string of the engine ("0.1.0").
const char* genie_version();

Json quantize_report(const PipelineConfig& c, const models::Model& teacher,
                     const std::string& fingerprint, const PipelineResult& r);
Json distill_report(const PipelineConfig& c, const models::Model& teacher,
                    const std::string& fingerprint, const PipelineResult& r);
// Pretty-printed JSON, written atomically.
void write_report(const std::string& path, const Json& report);

// The end-of-run table (plain text, one row per phase, then the accuracies and the output files).
std::string summary_table(const Json& report);

}  // namespace genie::engine
