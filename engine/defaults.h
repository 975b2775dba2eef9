// The defaults of the settings that Genie-D, Genie-M and the pipeline share, each written once:
// the paper's values (../shared/spec/GENIE.md §1.5, §2.1, §2.5). The phase configurations
// (DistillConfig, ReconOptions, QuantConfig) and the pipeline's settings (engine/settings.h, from
// which genie_run's --help is generated) all initialise from these.
#pragma once
#include <cstdint>

namespace genie::engine::defaults {

// ---- Genie-D (§1) ----
inline constexpr int64_t kSamples = 1024;       // calibration images S
inline constexpr int64_t kBatch = 128;          // images per Genie-D batch B
inline constexpr int64_t kDistillIters = 4000;  // iterations per batch
inline constexpr double kDistillLrZ = 0.1;      // Adam on the latents
inline constexpr double kDistillLrG = 0.01;     // Adam on the generator

// ---- Genie-M (§2) ----
inline constexpr int kWeightBits = 4, kActBits = 4;
inline constexpr int kFirstBits = 8;           // first layer's weights, second layer's input
inline constexpr int kLastBits = 8;            // last layer's weights and input
inline constexpr int64_t kReconIters = 20000;  // per unit
inline constexpr int64_t kReconBatch = 32;
inline constexpr double kLrWeightStep = 1e-4;
inline constexpr double kLrActStep = 4e-5;
// Not in the paper: the most a learned step moves per iteration, relative to its initial size
// (issue 16: the absolute rates above moved small depthwise steps across zero).
inline constexpr double kMaxStepChange = 0.02;
inline constexpr double kLrRound = 1e-3;
inline constexpr double kQDropP = 0.5;       // probability that an element keeps its FP value
inline constexpr double kRoundWeight = 1.0;  // weight of the rounding regulariser

}  // namespace genie::engine::defaults
