// Resumable pipeline state in <out>/checkpoint/, saved atomically after every synthesized batch and
// every reconstructed unit, so that `genie_run … --resume <out>` continues a run killed at any
// point.
//
// Layout:
//   state.json          settings (flag names), model path + fingerprint, finished batch records,
//                       finished unit records, accumulated phase timings
//   batch_<k>.h5        images of finished Genie-D batch k (dataset "images", (n, C, H, W) f32)
//   unit_<u>.h5         quantizer state of finished reconstruction unit u (named tensors)
// Each data file is written (temporary file + rename) BEFORE the state.json that lists it, and
// state.json itself is replaced atomically, so the state never refers to a missing or partial
// file; files beyond what state.json lists (from a kill between the two writes) are overwritten
// when the work is redone. Leftover temporary files of a killed writer are removed on open.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "engine/distill.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "kernels/json.h"

namespace genie::engine {

class Checkpoint {
 public:
  // Path of the checkpoint directory of an output directory.
  static std::string dir_of(const std::string& out_dir);
  // True when `out_dir` holds a checkpoint (its state.json).
  static bool exists(const std::string& out_dir);
  // The state of the checkpoint in `out_dir`; throws InputError naming the file when it is
  // missing or unreadable.
  static Json read_state(const std::string& out_dir);
  // Why a checkpoint cannot be resumed with these settings/model: "" when compatible, otherwise
  // one line per difference ("seed: checkpoint 1, now 2", "model: fingerprint …").
  static std::string differences(const Json& state, const std::string& command,
                                 const Json& result_settings, const std::string& fingerprint);

  Checkpoint() = default;
  // Starts a fresh checkpoint (resume = false: any earlier checkpoint in the directory is cleared)
  // or continues the one there (resume = true: its records are loaded; the caller has checked
  // compatibility with differences()).
  // `settings`: all settings (for the record); `result_settings`: those compared by differences().
  Checkpoint(const std::string& out_dir, const std::string& command, const Json& settings,
             const Json& result_settings, const std::string& model_path,
             const std::string& fingerprint, bool resume);

  const std::string& dir() const { return dir_; }

  // ---- Genie-D ----
  int64_t batches_done() const { return int64_t(batches_.size()); }
  const std::vector<DistillBatch>& batches() const { return batches_; }
  // Saves batch `rec` (images = its (count, C, H, W) rows), then the state.
  void save_batch(const DistillBatch& rec, const Tensor& images);
  // The finished batches' images placed into a zero (S, C, H, W) tensor, with their records.
  DistillResume distill_resume(const Shape& all_images) const;

  // ---- Genie-M ----
  int64_t units_done() const { return int64_t(units_.size()); }
  const std::vector<quant::UnitReport>& units() const { return units_; }
  // Saves unit `index` (must be units_done()): the quantizer state of its node range (every weight
  // quantizer's step and rounding logits, every activation quantizer's step and sign), then the
  // state with its record.
  void save_unit(int64_t index, const quant::UnitReport& rec, const quant::QModel& qm,
                 const models::Unit& u);
  // Restores finished unit `index` into qm (hard rounding, QDrop off), checking that the record
  // names the same unit and that every tensor is there with the quantizer's shape.
  void restore_unit(int64_t index, quant::QModel& qm, const models::Unit& u) const;

  // ---- timings (seconds, accumulated across resumed processes) ----
  // Adds `seconds` to phase `name`; stored with the next state write (or flush()).
  void add_time(const std::string& name, double seconds);
  const Json& timings() const { return timings_; }
  // Writes the state now.
  void flush();
  // Removes the checkpoint directory (after a finished run).
  void remove();

 private:
  void write_state();
  std::string batch_path(int64_t k) const;
  std::string unit_path(int64_t u) const;

  std::string dir_, command_, model_path_, fingerprint_;
  Json settings_ = Json::object(), result_settings_ = Json::object();
  Json timings_ = Json::object();
  std::vector<DistillBatch> batches_;
  std::vector<quant::UnitReport> units_;
};

}  // namespace genie::engine
