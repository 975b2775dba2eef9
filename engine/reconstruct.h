// Genie-M block reconstruction (GENIE.md §2.4–2.5): units in network order; for each, the
// teacher's input X and output Y and the partly quantized student's input X_q are collected over
// the whole calibration set (kept on the host; batches are copied to the device per iteration),
// the unit's activation quantizers are initialised on the first collection batch, and the unit's
// weight steps, rounding logits and activation steps are optimised:
//   x = mask ? X_q : X (p = 0.5);  loss = Σ_channels (unit(x) − Y)², averaged over batch and space
//   + weight · Σ (1 − |2h(V) − 1|^β) once it ≥ warmup·iters (β linear 20 → 2 from warmup to the
//   end) Adam (weight steps lr 1e-4, activation steps lr 4e-5, both cosine-annealed to 0) and Adam
//   (rounding logits, lr 1e-3, constant); then hard rounding, QDrop off, frozen.
// Iterations are numbered 1..iters as in the reference (the regulariser starts at it ≥ 0.2·iters).
// Runs are deterministic for a seed on the CPU (Philox QDrop masks, seeded permutations,
// fixed-order reductions); each unit's randomness depends only on (seed, unit index), so a resumed
// run matches.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/comm.h"
#include "engine/defaults.h"
#include "engine/qmodel.h"

namespace genie::quant {

struct ReconOptions {
  int64_t iters = engine::defaults::kReconIters;  // per unit
  // Optimisation batch (random permutations of the calibration set).
  int64_t batch = engine::defaults::kReconBatch;
  int64_t collect_batch = 32;  // batch of the collection passes (the act. init uses the first)
  float round_weight = float(engine::defaults::kRoundWeight);
  // QDrop: probability that an element keeps its FP value (0: none).
  float qdrop_p = float(engine::defaults::kQDropP);
  float lr_w_step = float(engine::defaults::kLrWeightStep);
  float lr_a_step = float(engine::defaults::kLrActStep);
  float lr_logits = float(engine::defaults::kLrRound);
  // The most a learned step moves per iteration, as a fraction of its initial size (StepParam in
  // quantizer.h): the learning rates above are the paper's absolute ones where they are smaller.
  float max_step_change = float(engine::defaults::kMaxStepChange);
  float beta_start = 20.f, beta_end = 2.f;
  double warmup = 0.2;  // fraction of iters before the regulariser starts (double, as in Python)
  uint64_t seed = 0;
  int start_unit = 0;       // resume: units before this are already reconstructed and hard
  int64_t log_every = 100;  // progress callback period (iterations)
  // On CUDA, a unit's collected X, X_q and Y (3·N samples) are kept on the GPU when together they
  // take at most this many bytes, and each batch is gathered there; otherwise they stay on the
  // host and each batch is gathered on the host and copied (a large model's activations never
  // need the whole calibration set on the GPU). The results are the same either way.
  int64_t device_cache_bytes = int64_t(4) << 30;
  // Run each unit's iterations as replays of captured steps (autograd/replay.h): the first
  // iteration before and the first after the regulariser switches on run eagerly, the second is
  // captured, every later one replays its phase's capture; the host only uploads the iteration's
  // batch rows, random offset, Adam step sizes and β. Same results as eager, bit for bit. Needs
  // the unit's cache on the model's device (always so on the CPU; on CUDA see
  // device_cache_bytes); otherwise the unit runs eagerly.
  bool graph = false;
  // Data parallelism (engine/comm.h). Each iteration's batch is cut into `shards` contiguous
  // pieces of rows (shard s: rows ⌊s·B/S⌋ .. ⌊(s+1)·B/S⌋ of the batch; 1 ≤ S ≤ B); each shard's
  // loss (its reconstruction term weighted by its share of the batch, plus the regulariser on
  // shard 0) is back-propagated alone, and the gradients are summed in shard order — so the
  // update is the full batch's up to the order of that sum, and the same bits whichever ranks of
  // `comm` computed the shards (shards are spread over the ranks in contiguous blocks). QDrop masks
  // of shard 0 come from the unit's stream, those of shard s > 0 from a stream keyed by (unit, s).
  // shards = 1 on one rank is the plain loop (no cut); a sharded step is never captured (graph).
  int shards = 1;
  const engine::Comm* comm = nullptr;  // null: this process alone
  // Arithmetic of the convolutions and GEMMs of the collection passes and the steps
  // (kernels/device.h); anything but FP32 needs the model on CUDA.
  Precision precision = Precision::FP32;
};

// A batch order over a reconstruction cache of `rows` rows: the row numbers as an I32 tensor on
// device d (each checked to lie in [0, rows) here, so gathers need no checks). reconstruct() makes
// one per shuffle of the cache, so the GPU sees one small upload per pass over the cache, not one
// per batch.
Tensor row_order(const std::vector<int64_t>& row_numbers, int64_t rows, Device d);
// Rows order[first .. first+n) of t (a cache on the host or on device d; `order` from row_order
// on t's device, for t's row count) as one batch on d: one gather kernel on t's device, then one
// transfer when t is on the host and d is not.
Tensor gather_rows(const Tensor& t, const Tensor& order, int64_t first, int64_t n, Device d);
// The same for host row numbers idx[0..n) (checked).
Tensor gather_rows(const Tensor& t, const int64_t* idx, int64_t n, Device d);

// Whether a unit's cache of `bytes` (X, X_q and Y together) stays on device d (see
// ReconOptions::device_cache_bytes).
bool cache_on_device(int64_t bytes, Device d, const ReconOptions& opt);

struct ReconProgress {
  int unit = 0, units = 0;
  std::string name;
  int64_t iter = 0, iters = 0;
  float loss = 0, rec = 0, reg = 0, beta = 0;
  double it_per_s = 0, eta_s = 0;  // ETA of this unit
};

struct UnitReport {
  std::string name, kind;
  int first = 0, last = 0;
  int64_t iters = 0;
  // Reconstruction loss over the calibration set (X_q input, hard, no QDrop) before and after the
  // optimisation. When the optimised quantizer is worse (loss_after > loss_before, or a step that
  // underflowed to 0), the unit keeps its initial quantizer: kept_initial, and its loss is
  // loss_before (final_loss()).
  double loss_before = 0, loss_after = 0;
  bool kept_initial = false;
  double final_loss() const { return kept_initial ? loss_before : loss_after; }
  double collect_s = 0, optimize_s = 0;
};

struct ReconCallbacks {
  std::function<void(const ReconProgress&)> progress;
  // After each unit is frozen: checkpoint here (QModel::save) and resume with start_unit.
  std::function<void(int unit, const UnitReport&, QModel&)> unit_done;
  // Notes for the user (e.g. a step that could not be captured and runs eagerly instead).
  std::function<void(const std::string&)> message;
};

// The reconstruction units of GENIE.md §2.4: the model's blocks, and every Conv2d/Linear outside
// blocks on its own — just that layer (the reference reconstructs the bare nn.Conv2d/nn.Linear,
// so its target is the layer's output before any BN/activation that follows it).
std::vector<models::Unit> recon_units(const models::Model& m);

// β at iteration `it` (1-based): beta_start until warmup·iters, then linear down to beta_end.
float round_beta(int64_t it, const ReconOptions& opt);
bool round_reg_on(int64_t it, const ReconOptions& opt);

// The objective of one iteration on a batch (on the model's device): input mixing by `mix_mask`
// (u8, 1 = take X_q; undefined = X_q everywhere), the unit forward under `run`, the channel-summed
// squared error, and the regulariser when active at `it` (with β read from device memory
// `beta_at` when given: replayed steps).
struct Objective {
  Tensor total, rec, reg;  // scalars; reg undefined while inactive
  float beta = 0;
};
Objective unit_objective(QModel& qm, const models::Unit& u, const Tensor& x, const Tensor& xq,
                         const Tensor& y, const Tensor& mix_mask, const QModel::Run& run,
                         int64_t it, const ReconOptions& opt, const float* beta_at = nullptr);

// The optimisation of one unit (GENIE.md §2.5), one iteration at a time: the loop body of
// reconstruct() and what the benchmarks time. The constructor makes the unit's weight steps,
// rounding logits and activation steps learnable and creates their three Adams; the quantizers
// must already be in training mode (soft rounding, QDrop on) with activations initialised.
// x, xq, y: the unit's cache (rows = samples), on the model's device or on the host. Batches are
// drawn from seeded permutations of the rows (perm_seed); QDrop masks from `gen`, which must
// outlive the optimizer and advances as the eager loop would advance it.
class UnitOptimizer {
 public:
  // A step that cannot be captured (opt.graph) runs eagerly from then on, with the same results;
  // `message` (optional) is told why.
  UnitOptimizer(QModel& qm, const models::Unit& u, const Tensor& x, const Tensor& xq,
                const Tensor& y, const ReconOptions& opt, ops::Generator& gen, uint64_t perm_seed,
                std::function<void(const std::string&)> message = {});
  ~UnitOptimizer();
  UnitOptimizer(const UnitOptimizer&) = delete;
  UnitOptimizer& operator=(const UnitOptimizer&) = delete;

  struct Losses {
    float total = 0, rec = 0, reg = 0, beta = 0;
  };
  // Iteration `it` (1-based; call with 1, 2, … in order). With `losses`, also the objective's
  // values (a host sync).
  void step(int64_t it, Losses* losses = nullptr);
  // Whether iterations replay captured steps (opt.graph, a cache on the model's device, and no
  // failed capture so far), and how many kernels the live captures hold (the first phase's
  // capture is dropped when the regulariser switches on).
  bool graphed() const;
  size_t captured_kernels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reconstructs every unit from opt.start_unit on; calib (N, C, H, W) on the host. Returns one
// report per reconstructed unit.
std::vector<UnitReport> reconstruct(QModel& qm, const Tensor& calib, const ReconOptions& opt,
                                    const ReconCallbacks& cb = {});

}  // namespace genie::quant
