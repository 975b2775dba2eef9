// The settings of a genie run, by the name of their command-line flag ("distill-iters", "wbits",
// …), in one table (settings.cpp) that holds, for each: its kind, the commands that take it,
// whether it decides the results, its range, and its help text. From that table come the flag
// parser, config files, the checkpoint's settings, report.json's "settings", the comparison of a
// resumed run's settings, and genie_run's --help (with each default read from PipelineConfig{},
// whose initialisers come from engine/defaults.h). Every range is checked here, at the boundary:
// a bad value throws InputError "--<name> expects …, got '<value>'" (exit code 2 in genie_run).
// The conversions to the phase configurations (Genie-D, the quantizer layout, Genie-M) are
// written once, below.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/defaults.h"
#include "engine/distill.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "kernels/error.h"
#include "kernels/json.h"

namespace genie::engine {

using ::genie::InputError;  // kernels/error.h: bad user input, nothing written

struct PipelineConfig {
  // ---- inputs and outputs ----
  std::string model;            // --model: FP32 teacher HDF5
  std::string out;              // --out: output directory
  std::string calib = "genie";  // --calib: genie | noise | real:PATH | FILE.h5 (a synthetic set)
  std::string eval;             // --eval: fashion-mnist | DIR | FILE.h5; empty = no evaluation
  int64_t eval_limit = -1;      // --eval-limit: first N evaluation images (-1 = all)
  std::string resume;           // --resume: directory of an interrupted run to continue
  // ---- Genie-D (GENIE.md §1) ----
  int64_t samples = defaults::kSamples;             // --samples: calibration images S
  int64_t batch = defaults::kBatch;                 // --batch: images per Genie-D batch B
  int64_t distill_iters = defaults::kDistillIters;  // --distill-iters
  double distill_lr_z = defaults::kDistillLrZ;      // --distill-lr-z: Adam on the latents
  double distill_lr_g = defaults::kDistillLrG;      // --distill-lr-g: Adam on the generator
  std::string distill_mode = "genie";  // --distill-mode: genie | latents_only | generator_only
  bool swing = true;                   // --no-swing turns swing convolution off
  // ---- Genie-M (GENIE.md §2) ----
  int wbits = defaults::kWeightBits, abits = defaults::kActBits;  // --wbits, --abits
  int first_bits = defaults::kFirstBits;        // --first-bits: first layer's weights, 2nd's input
  int last_bits = defaults::kLastBits;          // --last-bits: last layer's weights and input
  int64_t recon_iters = defaults::kReconIters;  // --recon-iters per unit
  int64_t recon_batch = defaults::kReconBatch;  // --recon-batch
  int recon_shards = 0;  // --recon-shards: Genie-M batch shards summed in order (0: one per rank)
  double lr_wstep = defaults::kLrWeightStep;          // --lr-wstep: weight steps
  double lr_astep = defaults::kLrActStep;             // --lr-astep: activation steps
  double max_step_change = defaults::kMaxStepChange;  // --max-step-change
  double lr_round = defaults::kLrRound;               // --lr-round: rounding logits
  double qdrop_p = defaults::kQDropP;                 // --qdrop-p: P(keep the FP value), 0..1
  double round_weight = defaults::kRoundWeight;       // --round-weight: rounding regulariser weight
  bool fold_bn = false;                               // --fold-bn
  bool symmetric_weights = false;                     // --symmetric-weights
  // ---- run ----
  std::string device = "auto";  // --device cpu | cuda | auto
  // --precision fp32 | tf32 | bf16: convolutions and GEMMs on the GPU (kernels/device.h); the CPU
  // accepts fp32 only.
  std::string precision = "fp32";
  bool graph = false;  // --graph: replay captured Genie-D / Genie-M steps (the same results)
  int threads = 0;     // --threads (0 = library default)
  uint64_t seed = 0;   // --seed
  bool quiet = false;  // --quiet
};

// ---- settings by flag name ----
// The settings that decide the results (compared when resuming, stored in report.json and the
// quantized file): everything except paths, evaluation, threads, quiet and resume (and
// --recon-shards while it does not shard: 0 or 1; --precision while it is fp32).
Json result_settings_json(const PipelineConfig& c);
// All settings with a value (result settings plus model/out/calib/eval/eval-limit/device/threads).
Json settings_json(const PipelineConfig& c);
// Sets one setting from its flag name and textual value (a switch takes "1"/"true"/"0"/"false").
// `source` = "" for the command line, or "config FILE" to say where the value came from.
void apply_setting(PipelineConfig& c, const std::string& name, const std::string& value,
                   const std::string& source = "");
// Applies a config file's JSON object (keys = flag names, without "--"; '_' accepted for '-').
void apply_config_json(PipelineConfig& c, const Json& j, const std::string& where);
// Range checks of every setting with a value (the messages of the command line).
void check_ranges(const PipelineConfig& c);

// The flags of `command` ("quantize": all; "distill": all but the Genie-M, calibration and
// evaluation ones): names of settings that take a value, and of switches.
std::vector<std::string> value_flags(const std::string& command);
std::vector<std::string> switch_flags(const std::string& command);
// One help line per setting, in table order: "  --name ARG   text (default …)".
std::string settings_help();

// ---- the phase configurations, each conversion written once ----
DistillConfig distill_config(const PipelineConfig& c, Device device);
quant::QuantConfig quant_config(const PipelineConfig& c);
quant::ReconOptions recon_options(const PipelineConfig& c);

// ---- flag values shared with the commands outside the pipeline (eval, info) ----
// "cpu" | "cuda" | "auto" as a device; InputError naming --device when the value is unknown or
// CUDA is asked for and not available.
Device resolve_device(const std::string& d);
// An integer flag value in [lo, hi]: InputError "--name expects an integer …, got 'v'".
int64_t parse_int(const std::string& name, const std::string& v, int64_t lo, int64_t hi,
                  const std::string& source = "");

}  // namespace genie::engine
