// What a run records, each in one JSON form: a finished Genie-D batch, a reconstructed unit, and
// Genie-D's totals. The checkpoint (engine/checkpoint.h) and report.json (engine/report.h) both
// use these serializers, so a record reads back the way it was written. Also the names of the
// files a run leaves in its output folder.
#pragma once
#include "engine/distill.h"
#include "engine/reconstruct.h"
#include "kernels/json.h"

namespace genie::engine {

// {"index", "first", "count", "iters", "bn_loss", "input_loss", "bn_loss_noise", "time_s"}
Json to_json(const DistillBatch& b);
DistillBatch distill_batch_from_json(const Json& j);  // throws naming a missing or mistyped field

// {"name", "kind", "first", "last", "iters", "loss_before", "loss_after", "kept_initial",
//  "loss_final", "collect_s", "optimize_s", "time_s"} (time_s = collect_s + optimize_s;
//  loss_final = loss_before when the guard kept the initial quantizer, else loss_after)
Json to_json(const quant::UnitReport& u);
quant::UnitReport unit_report_from_json(const Json& j);

// Genie-D's results: {"bn_loss_final", "input_loss_final", "bn_loss_noise", "iters_per_s",
// "batches": [to_json(batch), …]}.
Json distill_json(const DistillResult& d);

// The files of an output directory (--out).
inline constexpr const char* kQuantModelFile = "quantized.h5";
inline constexpr const char* kSyntheticFile = "images.h5";
inline constexpr const char* kContactSheetFile = "contact_sheet.png";
inline constexpr const char* kReportFile = "report.json";
inline constexpr const char* kCheckpointDir = "checkpoint";
// dir/name, with or without a trailing '/' on dir.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace genie::engine
