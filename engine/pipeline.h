// The end-to-end Genie pipeline behind `genie_run` and the library API (engine/genie.h):
//   FP32 teacher (HDF5) → calibration set (Genie-D, Gaussian noise or real images)
//   → Genie-M block reconstruction → quantized model file, report.json, evaluation.
//
// Every setting lives in PipelineConfig under the name of its command-line flag ("distill-iters",
// "wbits", …); settings_json() / apply_setting() convert by those names, so the config file, the
// checkpoint's settings and report.json's "settings" all use the flag names.
//
// Validation happens before anything is written (prepare()): every value's range, the model file,
// the calibration and evaluation data, the output directory (creatable and writable), the device,
// and a checkpoint's compatibility when resuming. Bad input throws InputError (exit code 2 in
// genie_run), whose message names the flag or file.
//
// Determinism and resume: every random stream is derived from (seed, batch index) in Genie-D and
// (seed, unit index) in Genie-M, never from state a restart would lose, so a run killed at any
// point and resumed from its checkpoint (engine/checkpoint.h) writes a quantized model file
// identical byte for byte (CPU) to an uninterrupted run's. Wall-clock times go to report.json only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/distill.h"
#include "engine/evaluate.h"
#include "kernels/json.h"
#include "models/model.h"

namespace genie::engine {

// Bad user input (flags, config, files, data, output directory): genie_run exits with code 2.
using ::genie::InputError;

struct PipelineConfig {
  // ---- inputs and outputs ----
  std::string model;            // --model: FP32 teacher HDF5
  std::string out;              // --out: output directory
  std::string calib = "genie";  // --calib: genie | noise | real:PATH | FILE.h5 (a synthetic set)
  std::string eval;             // --eval: fashion-mnist | DIR | FILE.h5; empty = no evaluation
  int64_t eval_limit = -1;      // --eval-limit: first N evaluation images (-1 = all)
  std::string resume;           // --resume: directory of an interrupted run to continue
  // ---- Genie-D (GENIE.md §1) ----
  int64_t samples = 1024;              // --samples: calibration images S
  int64_t batch = 128;                 // --batch: images per Genie-D batch B
  int64_t distill_iters = 4000;        // --distill-iters
  double distill_lr_z = 0.1;           // --distill-lr-z: Adam on the latents
  double distill_lr_g = 0.01;          // --distill-lr-g: Adam on the generator
  std::string distill_mode = "genie";  // --distill-mode: genie | latents_only | generator_only
  bool swing = true;                   // --no-swing turns swing convolution off
  // ---- Genie-M (GENIE.md §2) ----
  int wbits = 4, abits = 4;     // --wbits, --abits: 2..8
  int first_bits = 8;           // --first-bits: first layer's weights, second layer's input
  int last_bits = 8;            // --last-bits: last layer's weights and input
  int64_t recon_iters = 20000;  // --recon-iters per unit
  int64_t recon_batch = 32;     // --recon-batch
  double lr_wstep = 1e-4;       // --lr-wstep: weight steps
  double lr_astep = 4e-5;       // --lr-astep: activation steps
  double lr_round = 1e-3;       // --lr-round: rounding logits
  double qdrop_p = 0.5;         // --qdrop-p: QDrop probability of keeping the FP value (0..1)
  double round_weight = 1.0;    // --round-weight: rounding regulariser weight
  bool fold_bn = false;         // --fold-bn
  // ---- run ----
  std::string device = "auto";  // --device cpu | cuda | auto
  bool graph = false;  // --graph: replay captured Genie-D / Genie-M steps (the same results)
  int threads = 0;     // --threads (0 = library default)
  uint64_t seed = 0;   // --seed
  bool quiet = false;  // --quiet
};

// ---- settings by flag name ----
// The settings that decide the results (compared when resuming, stored in report.json and the
// quantized file): everything except paths, evaluation, threads, quiet and resume.
Json result_settings_json(const PipelineConfig& c);
// All settings (result settings plus model/out/calib/eval/eval-limit/device/threads/seed).
Json settings_json(const PipelineConfig& c);
// Sets one setting from its flag name and textual value (a switch takes "1"/"true"/"0"/"false").
// Throws InputError "--<name> expects …, got '<value>'" (`source` = "" for the command line, or
// "config FILE" to say where the value came from).
void apply_setting(PipelineConfig& c, const std::string& name, const std::string& value,
                   const std::string& source = "");
// Applies a config file's JSON object (keys = flag names, without "--"; '_' accepted for '-').
void apply_config_json(PipelineConfig& c, const Json& j, const std::string& where);
// Names of all settings with a value and of all switches (the flag tables of the CLI).
const std::vector<std::string>& value_setting_names();
const std::vector<std::string>& switch_setting_names();
// Range checks of every numeric setting (InputError naming the flag).
void check_ranges(const PipelineConfig& c);

// ---- progress ----
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
};
using PipelineListener = std::function<void(const PipelineEvent&)>;

// ---- results ----
struct UnitRecord {
  std::string name, kind;
  double loss_before = 0, loss_after = 0;  // reconstruction loss on the calibration set
  double time_s = 0;
};

struct PipelineResult {
  std::string out_dir, quant_model_path, synthetic_path, contact_sheet_path, report_path;
  bool evaluated = false;
  EvalResult fp32, quant;
  std::vector<UnitRecord> units;
  DistillResult distill;  // genie calibration only (images + losses)
  bool resumed = false;
  Json timings = Json::object();  // phase -> seconds (this process plus the checkpointed ones)
  Json report;                    // what report.json holds
};

// Validates everything (see the file comment) and returns the loaded inputs; writes nothing.
struct Prepared;
std::shared_ptr<Prepared> prepare_quantize(const PipelineConfig& cfg);
std::shared_ptr<Prepared> prepare_distill(const PipelineConfig& cfg);

// `genie_run quantize`: the whole pipeline, writing into cfg.out (checkpointing as it goes).
PipelineResult run_quantize(const PipelineConfig& cfg, const PipelineListener& listen = {});
// `genie_run distill`: Genie-D only (synthetic set HDF5, contact sheet, report.json).
PipelineResult run_distill(const PipelineConfig& cfg, const PipelineListener& listen = {});

// Accuracy of a model file on `source` (fashion-mnist | DIR | FILE.h5, see
// io::load_labeled_images): an FP32 weight file (io::load_model) or a quantized file written by
// quantize (simulated integer inference). Unreadable files and data throw InputError naming them.
struct FileEval {
  EvalResult result;
  bool quantized = false;
  std::string bits;             // "W4A4" for quantized files
  std::vector<int32_t> labels;  // with keep_logits
};
bool is_quantized_file(const std::string& path);
// keep_logits: also every image's logits and predicted class (EvalResult).
FileEval evaluate_file(const std::string& model_path, const std::string& source, int64_t limit = -1,
                       Device device = Device::CPU, int batch = 256, bool keep_logits = false);

// 64-bit FNV-1a of a file's bytes as 16 hex digits (the model fingerprint in checkpoints).
std::string file_fingerprint(const std::string& path);

// Output file names inside --out.
inline constexpr const char* kQuantModelFile = "quantized.h5";
inline constexpr const char* kSyntheticFile = "images.h5";
inline constexpr const char* kContactSheetFile = "contact_sheet.png";
inline constexpr const char* kReportFile = "report.json";
inline constexpr const char* kCheckpointDir = "checkpoint";

}  // namespace genie::engine
