// Weight files: load a Model from HDF5 (the format users write from PyTorch with h5py) and save
// one.
//
// Format: one float32 (or float64) dataset per state_dict tensor, named by its key
// ("layer1.0.conv1.weight", or nested groups "layer1/0/conv1/weight"); "*.num_batches_tracked" is
// ignored. Root attributes:
//   arch         built-in architecture name (models/archs.h), or any name when `graph` is present
//   input_shape  [C, H, W]
//   input_mean, input_std   per-channel normalisation, C values each (required: an unnormalised
//                model states [0, …] and [1, …])
//   num_classes  classifier outputs (default: taken from the graph's output shape)
//   bn_eps       BatchNorm eps for built-in archs when not 1e-5 (optional; in (0, 1])
//   graph        JSON graph description (models/graph.h; optional). When present it defines the
//                network instead of the arch builder — how exported non-built-in CNNs load.
// Loading is strict. Every size and constant is held to models/limits.h before anything is sized
// by it (input_shape, input_mean, input_std, num_classes, bn_eps, names; the graph's fields by
// Graph::from_json), so an absurd file is refused at load with a message naming the attribute.
// Integer-typed datasets are refused, not converted. models::check_params: missing, mis-shaped,
// unexpected, non-finite tensors and negative running variances are errors naming the tensor and
// the file; unknown archs list the known ones; non-HDF5, truncated or empty files are clear errors
// (from io::H5Reader).
#pragma once
#include <map>
#include <string>

#include "io/h5.h"
#include "models/model.h"

namespace genie::io {

models::Model load_model(const std::string& path);

struct SaveOptions {
  // Store the graph description. Always done when the model's arch is not built in.
  bool write_graph = false;
  // Extra root attributes (e.g. "dataset", "fp32_top1").
  std::map<std::string, std::string> string_attrs;
  std::map<std::string, double> number_attrs;
};

// Writes every parameter (from any device) and the attributes above; all-or-nothing (temporary
// file renamed onto `path`).
void save_model(const models::Model& model, const std::string& path, const SaveOptions& opts = {});

// The input description as root attributes: input_shape (C, H, W), input_mean and input_std (per
// channel; 0 and 1 when the model has none), num_classes. Model files and quantized files share it.
void write_input_attrs(H5Writer& w, const models::ModelInfo& info);

}  // namespace genie::io
