// Genie-M's quantizers (GENIE.md §2.2–2.3): the per-output-channel weight quantizer (AdaRound soft
// rounding with learned logits AND a learned step) and the per-tensor activation quantizer (LSQ
// with QDrop), with their clip-search initialisation. Built on the fused ops of
// autograd/ops_quant.h.
#pragma once
#include <vector>

#include "autograd/ops_quant.h"
#include "kernels/quant_functors.h"

namespace genie::quant {

// Candidate grids of the clip search: r = 1.00, 0.99, …, 0.01 (kClipCandidates of them).
constexpr int kClipCandidates = 100;

// Grid (Δ, z) for the clipped range [new_min, new_max] = [r·x_min, r·x_max], computed in float32
// in the reference's operation order: Δ = (new_max − new_min)/(2^b − 1), z = round(−new_min/Δ).
void clip_grid(float x_max, float x_min, double r, int bits, float& delta, float& zero);
// Symmetric grid (zero point 2^(b−1), so code − zero ∈ [−2^(b−1), 2^(b−1) − 1]): Δ =
// r·max(|x_max|, |x_min|)/2^(b−1) — what runtimes that take only zero-point-0 weights (TensorRT)
// need.
void clip_grid_symmetric(float x_max, float x_min, double r, int bits, float& delta, float& zero);

// The |err|^2.4 clip search over each row of x (rows, cols) (any device): the row's grid is
// searched over r for the row's [r·lo, r·hi] (lo/hi given per row), keeping the best mean
// |x − q(x)|^2.4 — the first, i.e. largest r, on ties. Returns host (delta, zero) per row.
struct ClipSearch {
  std::vector<float> delta, zero;
};
ClipSearch clip_search(const Tensor& x2d, const std::vector<float>& hi,
                       const std::vector<float>& lo, int bits, bool symmetric = false);

// Whether every value of `steps` is a usable quantizer step: finite and > 0 (host copy).
bool valid_steps(const Tensor& steps);

// A learned quantizer step s (per channel or per tensor) as s = s0·exp(c·φ), φ = 0 at the start:
// positive whatever φ becomes. With Adam on φ at learning rate lr, each iteration changes log s by
// about c·lr; c = min(1/s0, max_change/lr) makes that lr/s0 — the paper's absolute move of about
// lr — while lr is at most max_change·s0, and max_change (a fraction of the step) below. An
// absolute learning rate alone moved the small steps of depthwise layers across zero (issue 16).
struct StepParam {
  Tensor phi, c;  // undefined unless the step is learned
  bool learned() const { return phi.defined(); }
  void start(const Tensor& s0, float lr, float max_change);  // φ = 0 (learnable), c as above
  Tensor apply(const Tensor& s0) const;  // s0·exp(c·φ) (s0 itself when not learned)
  void fold(Tensor& s0);                 // s0 ← apply(s0), then not learned
  void to(Device d);
};

// Weight quantizer, per output channel, asymmetric (GENIE.md §2.2).
class WeightQuantizer {
 public:
  WeightQuantizer() = default;
  explicit WeightQuantizer(int bits) : bits_(bits) {}  // uninitialised, bit width only
  // Initialises from FP weights w (K, …): step/zero point per channel by the clip search,
  // W_floor = floor(w/s_init) fixed, V such that h(V) = w/s_init − W_floor. Same device as w.
  // symmetric: every channel's zero point is 2^(b−1) (clip_grid_symmetric).
  static WeightQuantizer from_weight(const Tensor& w, int bits, bool symmetric = false);
  // A hard quantizer holding given integer codes (0 … 2^b−1, any integer dtype or f32 of the
  // weight's shape): Ŵ = step·(code − zero) exactly (used when loading a quantized model).
  static WeightQuantizer from_codes(const Tensor& codes_f32, const Tensor& step, const Tensor& zero,
                                    int bits);

  // A quantizer with the given state (W_floor, V of the weight's shape; step, zero (K)).
  static WeightQuantizer from_state(const Tensor& w_floor, const Tensor& v, const Tensor& step,
                                    const Tensor& zero, int bits, bool hard = false);

  // Ŵ: soft (h(V)) while training, [V ≥ 0] once hard. Differentiable w.r.t. step and V.
  Tensor forward() const;
  // The integer grid values clamp(W_floor + [V ≥ 0] + z, 0, 2^b − 1) as a float tensor (host or
  // device) — what Ŵ = step·(code − zero) is made of after hard rounding.
  Tensor codes() const;
  // Parameters to learn (GENIE.md §2.5): the step (weight-step group) and V (rounding logits).
  // The step is learned as s = s0·exp(c·φ) (learn_step; see StepParam below): it stays positive
  // and Adam moves it by about its learning rate per iteration, as the paper's bare step, but
  // never by more than max_change of its size. While φ is learned, step() is the initial step s0
  // and effective_step() what the forward uses; fix_step() folds φ into step().
  void learn_step(float lr, float max_change);
  Tensor& step_param() { return param_.phi; }  // φ (K); undefined unless learned
  Tensor effective_step() const;               // s0·exp(c·φ), differentiable w.r.t. φ
  void fix_step();
  Tensor& step() { return step_; }
  Tensor& logits() { return v_; }
  const Tensor& step() const { return step_; }
  const Tensor& logits() const { return v_; }
  const Tensor& zero() const { return zero_; }
  const Tensor& w_floor() const { return w_floor_; }
  int bits() const { return bits_; }
  bool hard() const { return hard_; }
  void set_hard(bool h) { hard_ = h; }
  bool defined() const { return step_.defined(); }
  void to(Device d);

 private:
  int bits_ = 8;
  bool hard_ = false;
  Tensor w_floor_, v_, step_, zero_;  // step_/zero_ (K)
  StepParam param_;
};

// Activation quantizer, per tensor (GENIE.md §2.3): signed/unsigned from the calibration data,
// step from the clip search on the first calibration batch, LSQ training, QDrop.
class ActQuantizer {
 public:
  ActQuantizer() = default;
  explicit ActQuantizer(int bits) : bits_(bits) {}

  // Decides the sign (any negative value) and the initial step from this batch.
  void init(const Tensor& a);
  bool initialized() const { return step_.defined(); }
  // Restores a saved state (loading a quantized model).
  void set_state(bool is_signed, float step, Device d);

  // â = s·round(clamp(x/s, Qn, Qp)); with QDrop on and a generator, each element keeps its FP
  // value with probability 0.5 (mask drawn from the generator; out = mask ? â : x).
  Tensor forward(const Tensor& x, ops::Generator* gen = nullptr) const;
  // Same, with a caller-supplied QDrop mask (u8, 1 = quantize; undefined = quantize all).
  Tensor forward_masked(const Tensor& x, const Tensor& mask) const;

  int bits() const { return bits_; }
  bool is_signed() const { return signed_; }
  float qn() const { return k::grid_qn(bits_, signed_); }
  float qp() const { return k::grid_qp(bits_, signed_); }
  // The step (1) is learned as for the weights: s0·exp(c·φ), φ (1) from learn_step() on.
  void learn_step(float lr, float max_change);
  Tensor& step_param() { return param_.phi; }
  Tensor effective_step() const;
  void fix_step();
  Tensor& step() { return step_; }  // (1)
  const Tensor& step() const { return step_; }
  bool qdrop = false;
  void to(Device d);

 private:
  int bits_ = 8;
  bool signed_ = false;
  Tensor step_;
  StepParam param_;
};

}  // namespace genie::quant
