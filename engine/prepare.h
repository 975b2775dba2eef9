// Validation of a run's inputs before anything is written: every setting's range, the model file,
// the Genie-D settings against the model, the calibration and evaluation data, the quantizer
// layout, the output directory (creatable and writable), the device, and a checkpoint's
// compatibility when resuming. Bad input throws InputError naming the flag or file.
#pragma once
#include <string>

#include "engine/settings.h"
#include "io/datasets.h"
#include "models/model.h"

namespace genie::engine {

// The loaded, checked inputs of a run.
struct Prepared {
  PipelineConfig cfg;
  std::string command;  // "quantize" | "distill"
  Device device = Device::CPU;
  models::Model model;
  std::string fingerprint;      // of the model file (io::file_fingerprint)
  io::LabeledImages eval_data;  // when cfg.eval is set
  Tensor calib_images;          // real / file calibration (host); genie/noise: made later
  bool resume = false;
  double load_s = 0;
};

Prepared prepare_quantize(const PipelineConfig& cfg);
Prepared prepare_distill(const PipelineConfig& cfg);

}  // namespace genie::engine
