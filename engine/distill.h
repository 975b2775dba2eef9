// Genie-D: synthesis of a calibration set from the teacher's BatchNorm statistics alone
// (GENIE.md §1). For each batch of B images (the last batch may be smaller):
//
//   fresh generator G (models/generator.h) and fresh latents z ~ N(0,1) (B×256);
//   for it in 0..iters-1:
//     x = G(z); teacher forward in eval mode with swing convolution on every stride≠1 conv
//     (reflect-pad 1, random (dx,dy) ∈ {0,1,2}² per layer per forward, crop H×W, conv);
//     L = L_bn + L_in  (ops::bn_stat_loss on every BN input, ops::input_stat_loss on x);
//     backward; Adam step on z (lr 0.1) and on G (lr 0.01); ReduceLROnPlateau(L) for z's lr;
//     G's lr ×0.95 after every 100 iterations;
//   the batch's images are x of the last forward (normalized input space).
//
// Ablations: latents_only (no generator; the images themselves are optimized by the "z" Adam
// with its schedule, initialised N(0,1)), generator_only (z fixed), swing off.
//
// Randomness: everything comes from Philox keyed by streams derived from (seed, batch index), so a
// run is bit-for-bit deterministic on the CPU and any batch can be recomputed alone (resume).
// Validation happens before any work: the teacher must have BatchNorm layers, and the image size
// must be divisible by 4 in genie and generator_only modes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"
#include "engine/comm.h"
#include "engine/defaults.h"
#include "models/generator.h"
#include "models/model.h"

namespace genie::engine {

enum class DistillMode { Genie, LatentsOnly, GeneratorOnly };
const char* distill_mode_name(DistillMode m);  // "genie" | "latents_only" | "generator_only"
DistillMode parse_distill_mode(const std::string& s);  // throws listing the names

struct DistillConfig {
  int64_t samples = defaults::kSamples;       // S: images to synthesise
  int64_t batch = defaults::kBatch;           // B: images per independent batch
  int64_t iters = defaults::kDistillIters;    // iterations per batch
  float lr_z = float(defaults::kDistillLrZ);  // Adam on the latents (latents_only: on the images)
  float lr_g = float(defaults::kDistillLrG);  // Adam on the generator's parameters
  uint64_t seed = 0;
  bool swing = true;
  DistillMode mode = DistillMode::Genie;
  Device device = Device::CPU;
  // Arithmetic of the convolutions and GEMMs (kernels/device.h); anything but FP32 needs CUDA.
  Precision precision = Precision::FP32;
  // Schedules (spec defaults).
  float plateau_factor = 0.1f;
  int plateau_patience = 100;
  float plateau_threshold = 1e-4f;  // relative
  float plateau_min_lr = 1e-4f;
  float g_lr_gamma = 0.95f;
  int64_t g_lr_step = 100;
  // Progress callback cadence (iterations); the last iteration of each batch is always reported.
  int64_t progress_every = 50;
  // Run each batch's iterations as replays of a captured step (autograd/replay.h): the first runs
  // eagerly, the second is captured, the rest replay it, with the swing offsets and both Adams'
  // step sizes uploaded before each; the losses are read after the replay. The same results bit
  // for bit. Not with after_backward (it reads the gradient mid-step). A step that cannot be
  // captured runs eagerly from then on (later batches too), and `message` (if set) is told why.
  bool graph = false;
  std::function<void(const std::string&)> message;
  // The processes sharing the work (engine/comm.h; null or one rank: this process does every
  // batch). Batch b is computed by rank (b − first batch) mod size, in rounds of `size` batches;
  // after each round every rank has every image and record of the round, in batch order, and
  // on_batch is called for each on every rank. A batch's randomness depends only on (seed, b),
  // so the images are the same bits for any number of ranks.
  const Comm* comm = nullptr;

  // ---- injection points for tests and experiments (unset = the normal random behaviour) ----
  // Swing offsets: returns (dy, dx) ∈ {0,1,2}² for (batch, iteration, index of the strided conv
  // among Model::strided_convs()). Replaces the Philox draw.
  std::function<std::pair<int, int>(int64_t batch, int64_t iter, int layer)> swing_offsets;
  // Called once per batch after G and z were drawn, before the first iteration: may overwrite G's
  // weights (GenieGenerator::load) and z in place (latents_only: z holds the images).
  std::function<void(int64_t batch, models::GenieGenerator* g, Tensor& z)> init_batch;
  // Called after every backward, before the optimizer steps (iteration is 1-based): the total loss
  // and the gradient of the optimized latents (z, or the images in latents_only mode).
  std::function<void(int64_t batch, int64_t iter, float loss, const Tensor& z_grad)> after_backward;
};

// One finished batch.
struct DistillBatch {
  int64_t index = 0, first = 0, count = 0;  // images [first, first + count)
  float bn_loss = 0, input_loss = 0;        // at the last iteration (the returned images)
  float bn_loss_noise = 0;                  // L_bn of N(0,1) images of the batch's shape
  double time_s = 0;                        // wall time of the batch
  int64_t iters = 0;
};

struct DistillResult {
  Tensor images;  // (S, C, H, W) float32 on the CPU, normalized input space
  // Means over batches, weighted by batch size. bn_loss_final / input_loss_final: L_bn / L_in of
  // each batch's last forward (the returned images, under that iteration's swing offsets);
  // bn_loss_noise: L_bn of N(0,1) images of the same shape through the same hooks (swing as
  // configured) — the yardstick a successful run beats by a wide margin.
  float bn_loss_final = 0, input_loss_final = 0, bn_loss_noise = 0;
  double time_s = 0;       // wall time of the batches computed by this call
  double iters_per_s = 0;  // iterations computed by this call / time_s
  std::vector<DistillBatch> batches;
};

struct DistillProgress {
  int64_t batch = 0, num_batches = 0;
  int64_t iter = 0, iters = 0;  // iter is 1-based
  float bn_loss = 0, input_loss = 0, lr_z = 0, lr_g = 0;
  double iters_per_s = 0;  // over this call so far, all ranks together
  double eta_s = 0;        // remaining iterations of the whole run / iters_per_s
  int ranks = 1;           // ranks working in parallel (each at `iter` of its own batch)
};
using DistillProgressFn = std::function<void(const DistillProgress&)>;
// After each finished batch, with the result so far (images of unfinished batches are zero):
// lets a pipeline checkpoint (resume with DistillResume).
using DistillBatchFn = std::function<void(const DistillResult& so_far, const DistillBatch& done)>;

// Resuming: batches [0, next_batch) are taken from `previous` (its images and batch records) and
// not recomputed; the remaining batches are identical to those of an uninterrupted run.
struct DistillResume {
  int64_t next_batch = 0;
  DistillResult previous;
};

// Throws "[distill] expected ..., got ..." before any work for: a teacher without BatchNorm layers;
// a non-square input or an input size not divisible by 4 (genie / generator_only); samples, batch
// or iters < 1; non-positive learning rates; a teacher on another device than cfg.device; with
// swing on, a strided conv whose input is smaller than 2×2 (reflect padding needs 2).
void validate_distill(const models::Model& teacher, const DistillConfig& cfg);

DistillResult distill(const models::Model& teacher, const DistillConfig& cfg,
                      const DistillProgressFn& progress = {}, const DistillBatchFn& on_batch = {},
                      const DistillResume* resume = nullptr);

// The swing-convolution and BN-statistics hooks of one teacher forward, for reuse (baselines,
// tests): L_bn of `x` through the teacher (swing on when `offsets` is non-empty: one (dy, dx) per
// strided conv in Model::strided_convs() order). Differentiable w.r.t. x.
Tensor teacher_bn_loss(const models::Model& teacher, const Tensor& x,
                       const std::vector<std::pair<int, int>>& offsets);

// ---- outputs (written by the pipeline, engine/pipeline.h) ----
// images HDF5: dataset "images" (N, C, H, W) float32 in the normalized input space; root attributes
// hold every setting (samples, batch, iters, lr_z, lr_g, seed, swing, mode, device, model
// arch/shape/mean/std) and the final losses — no timings, so equal runs give byte-identical files.
void write_distill_h5(const std::string& path, const DistillResult& r, const DistillConfig& cfg,
                      const models::Model& teacher);
// PNG contact sheet of the first `max_images` images, de-normalized to 0–255 with the model's
// input mean/std (0/1 when the model has none), each tile upscaled `scale`×.
void write_distill_contact_sheet(const std::string& path, const DistillResult& r,
                                 const models::Model& teacher, int64_t max_images = 64,
                                 int scale = 2);

}  // namespace genie::engine
