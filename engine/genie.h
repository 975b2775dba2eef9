// genie: the public library API — zero-shot post-training quantization of a CNN in three calls.
//
//   #include <genie/engine/genie.h>          // installed; "engine/genie.h" in the source tree
//   genie::Config cfg;
//   cfg.model = "resnet20_fmnist.h5";  cfg.out = "out";  cfg.wbits = cfg.abits = 4;
//   cfg.samples = 256;  cfg.eval = "fashion-mnist";
//   genie::Result r = genie::quantize(cfg);     // Genie-D data → Genie-M → out/quantized.h5
//   std::printf("%.2f %% -> %.2f %%\n", 100 * r.fp32.top1, 100 * r.quant.top1);
//   genie::FileEval e = genie::evaluate("out/quantized.h5", "fashion-mnist");
//
// The settings are those of genie_run (engine/settings.h: PipelineConfig, field names follow the
// flags, defaults from the paper). Bad input throws genie::InputError (a genie::Error) before
// anything is written; other failures throw genie::Error. Progress arrives through an optional
// listener (engine/progress.h: PipelineEvent).
// Link with the CMake package: find_package(genie) and target_link_libraries(...
// genie::genie_engine).
#pragma once
#include <string>

#include "engine/export.h"
#include "engine/pipeline.h"
#include "engine/report.h"

namespace genie {

using Config = engine::PipelineConfig;
using Result = engine::PipelineResult;
using Listener = engine::PipelineListener;
using Event = engine::PipelineEvent;
using FileEval = engine::FileEval;

// Genie-D only: cfg.samples synthetic images from the teacher's BN statistics, written to cfg.out
// (images.h5, contact_sheet.png, report.json). Result::distill holds the images.
inline Result distill(const Config& cfg, const Listener& listen = {}) {
  return engine::run_distill(cfg, listen);
}

// The whole pipeline: calibration data (cfg.calib: Genie-D by default), Genie-M reconstruction,
// the quantized model file cfg.out/quantized.h5 and report.json; evaluated when cfg.eval is set.
inline Result quantize(const Config& cfg, const Listener& listen = {}) {
  return engine::run_quantize(cfg, listen);
}

// Top-1/top-5 of an FP32 or quantized model file on fashion-mnist | an image folder | an HDF5 set.
inline FileEval evaluate(const std::string& model_file, const std::string& data, int64_t limit = -1,
                         Device device = Device::CPU) {
  return engine::evaluate_file(model_file, data, limit, device);
}

// The quantized model file (quantize's out/quantized.h5) as an ONNX QuantizeLinear/
// DequantizeLinear model (engine/export.h): integer weight codes, the activation quantizers as
// Q/DQ pairs; o.encodings adds the AIMET/QNN-style encodings JSON. Throws genie::InputError.
using ExportOptions = engine::ExportOptions;
inline engine::ExportSummary export_model(const std::string& quantized_file,
                                          const ExportOptions& o) {
  return engine::export_model(quantized_file, o);
}

inline const char* version() { return engine::genie_version(); }

}  // namespace genie
