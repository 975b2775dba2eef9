// The math of Genie-M's quantizers (GENIE.md §2.2–2.3), written once as __host__ __device__
// functors shared by kernels/quant_cpu.cpp and kernels/quant.cu.
//
// Rounding is rintf (round half to even, as torch.round) and is exact on both backends; the
// rectified sigmoid uses expf, whose CPU and CUDA results may differ in the last bit (the
// CPU-vs-CUDA parity test allows for that). Clamp boundaries are inclusive where the spec says so.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/functors.h"  // Philox4x32

namespace genie::k {

// ---- Integer grids (GENIE.md §2.1–2.3) ----
// Genie-M quantizes weights and activations to 2..8 bits: the bit width every layer accepts, and
// weight codes are stored as int8. check_bits (quant_cpu.cpp) is the one range check.
inline constexpr int kMinBits = 2, kMaxBits = 8;
void check_bits(const char* what, int bits);  // throws "[what] expected 2..8 bits, got b"
// A b-bit grid: unsigned levels 0 .. 2^b − 1, signed −2^(b−1) .. 2^(b−1) − 1.
GENIE_HD constexpr float grid_max(int bits) { return float((1 << bits) - 1); }
GENIE_HD constexpr float grid_qn(int bits, bool is_signed) {
  return is_signed ? -float(1 << (bits - 1)) : 0.f;
}
GENIE_HD constexpr float grid_qp(int bits, bool is_signed) {
  return is_signed ? float((1 << (bits - 1)) - 1) : grid_max(bits);
}

// ---- AdaRound's rectified sigmoid h(V) = clamp(sigmoid(V)·(ζ−γ) + γ, 0, 1), ζ = 1.1, γ = −0.1
// ----
struct RectSigmoid {
  static constexpr float kScale = 1.2f;   // ζ − γ
  static constexpr float kShift = -0.1f;  // γ
  GENIE_HD static float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }
  // Unclamped stretched sigmoid t = σ(V)·1.2 − 0.1 (written as PyTorch's reference evaluates it).
  GENIE_HD static float stretched(float sig) { return sig * kScale + kShift; }
  GENIE_HD static float clamp01(float t) { return t < 0.f ? 0.f : (t > 1.f ? 1.f : t); }
  // The gradient passes only strictly inside (0, 1) (GENIE.md §2.2).
  GENIE_HD static bool interior(float t) { return t > 0.f && t < 1.f; }
  // h'(V) before masking: 1.2·σ(1−σ)
  GENIE_HD static float slope(float sig) { return kScale * sig * (1.f - sig); }
};

// ---- Weight fake-quant, per output channel (AdaRound + learned step) ----
//   soft: Ŵ = s·(clamp(W_floor + h(V) + z, 0, qmax) − z)
//   hard: Ŵ = s·(clamp(W_floor + [V ≥ 0] + z, 0, qmax) − z)
//   ∂Ŵ/∂s = clamp(…) − z;  ∂Ŵ/∂V = s·h'(V) where the clamp passes (inclusive) and 0 < t < 1.
// The straight-through mask written by the forward is 1 exactly where ∂Ŵ/∂V is non-zero.
struct WeightQuantF {
  float qmax;  // 2^b − 1
  bool hard;

  // The integer grid value clamp(W_floor + h + z, 0, qmax); `mask` is set as described above.
  GENIE_HD float level(float wf, float v, float z, uint8_t& mask, float& sig) const {
    float h;
    bool inner;
    if (hard) {
      h = v >= 0.f ? 1.f : 0.f;
      inner = false;
      sig = 0.f;
    } else {
      sig = RectSigmoid::sigmoid(v);
      const float t = RectSigmoid::stretched(sig);
      inner = RectSigmoid::interior(t);
      h = RectSigmoid::clamp01(t);
    }
    const float q = (wf + h) + z;  // PyTorch order: (x_floor + h) + zero_point
    const bool in_range = q >= 0.f && q <= qmax;
    mask = (inner && in_range) ? 1 : 0;
    return q < 0.f ? 0.f : (q > qmax ? qmax : q);
  }
  GENIE_HD float fwd(float wf, float v, float s, float z, uint8_t& mask) const {
    float sig;
    const float q = level(wf, v, z, mask, sig);
    return (q - z) * s;
  }
  // dŴ → (dV, this element's term of dS)
  GENIE_HD void bwd(float dy, float wf, float v, float s, float z, uint8_t mask, float& dv,
                    float& ds_term) const {
    uint8_t m;
    float sig;
    const float q = level(wf, v, z, m, sig);
    ds_term = dy * (q - z);
    dv = mask ? (dy * s * RectSigmoid::kScale) * (1.f - sig) * sig : 0.f;
  }
};

// ---- Activation fake-quant, per tensor (LSQ) with QDrop ----
//   â = s·round(clamp(a/s, Qn, Qp))   where the QDrop mask is 1 (or no mask); else â = a.
// Straight-through codes written by the forward (what backward needs besides x and s):
enum ActCode : uint8_t { kActKeep = 0, kActInside = 1, kActBelow = 2, kActAbove = 3 };
//   ∂â/∂a = 1 for Keep and Inside (Qn ≤ a/s ≤ Qp, inclusive), 0 outside;
//   ∂â/∂s = round(a/s) − a/s inside, Qn below, Qp above, 0 for Keep.
struct ActQuantF {
  float qn, qp;
  // Written without branches (selects only) so that the CPU loops vectorize: the QDrop mask is
  // random, and a branch on it mispredicts half the time.
  GENIE_HD float fwd(float x, float s, bool quantize, uint8_t& code) const {
    const float t = x / s;
    const bool below = t<qn, above = t> qp;  // inclusive boundaries count as inside
    const float c = below ? qn : (above ? qp : t);
    const float y = rintf(c) * s;
    code = uint8_t(quantize ? 1 + int(below) + 2 * int(above) : 0);  // ActCode
    return quantize ? y : x;
  }
  GENIE_HD float dx(float dy, uint8_t code) const { return code <= kActInside ? dy : 0.f; }
  GENIE_HD float ds_term(float dy, float x, float s, uint8_t code) const {
    const float t = x / s;
    const float inside = rintf(t) - t;
    // Selects over all four codes (the same values as nested branches, but no branch on the
    // random QDrop code, which mispredicted half the time on the CPU).
    float v = 0.f;
    v = code == kActAbove ? qp : v;
    v = code == kActBelow ? qn : v;
    v = code == kActInside ? inside : v;
    return dy * v;
  }
};

// ---- Rounding regulariser (AdaRound): f(V) = 1 − |2h(V) − 1|^β, summed over the weights ----
// Written as the reference does: 1 − (|h − 0.5|·2)^β. df/dV = −β·a^(β−1)·2·sign(h − .5)·h'(V)
// with a = |h − .5|·2, zero where h is clamped (t ∉ (0, 1)) and where a = 0.
struct RoundRegF {
  float beta;
  GENIE_HD float fwd(float v) const {
    const float h = RectSigmoid::clamp01(RectSigmoid::stretched(RectSigmoid::sigmoid(v)));
    return 1.f - powf(fabsf(h - 0.5f) * 2.f, beta);
  }
  GENIE_HD float bwd(float v, float dout) const {
    const float sig = RectSigmoid::sigmoid(v);
    const float t = RectSigmoid::stretched(sig);
    if (!RectSigmoid::interior(t)) return 0.f;
    const float d = t - 0.5f;
    const float a = fabsf(d) * 2.f;
    if (a == 0.f) return 0.f;
    const float da = -dout * beta * powf(a, beta - 1.f);  // ∂/∂a of −a^β
    const float dh = da * 2.f * (d > 0.f ? 1.f : -1.f);
    return dh * RectSigmoid::kScale * (1.f - sig) * sig;
  }
};

// ---- Clip search error: |x − q(x)|^2.4 for the grid (Δ, z) on [0, qmax] (GENIE.md §2.2/2.3) ----
//   q(x) = (clamp(round(x/Δ) + z, 0, qmax) − z)·Δ
struct ClipErrF {
  GENIE_HD static float quantize(float x, float delta, float z, float qmax) {
    float xi = rintf(x / delta) + z;
    xi = xi < 0.f ? 0.f : (xi > qmax ? qmax : xi);
    return (xi - z) * delta;
  }
  GENIE_HD static float err(float x, float delta, float z, float qmax) {
    return powf(fabsf(x - quantize(x, delta, z, qmax)), 2.4f);
  }
};

// ---- QDrop masks: fair coin flips, one Philox bit each ----
// Element i is bit (i mod 128) of the Philox-4x32-10 block with counter offset + i/128 (key =
// seed): 128 masks per block instead of one uniform per element, so the masks cost next to
// nothing; the same bits on CPU and CUDA. 1 = quantize (QDrop) / take X_q (input mixing).
constexpr int64_t kQDropBitsPerCounter = 128;
struct QDropWordF {  // the 32 mask bits of word w (elements 32w … 32w+31)
  uint64_t seed, offset;
  GENIE_HD uint32_t operator()(int64_t w) const {
    const Philox4x32 r(seed, offset + uint64_t(w) / 4);
    return r.c[w & 3];
  }
};

// Fixed-size chunks for deterministic reductions: partial sums per chunk (in double) are combined
// in chunk order, so the result does not depend on the thread or block count.
constexpr int64_t kQuantChunk = 1 << 13;

}  // namespace genie::k
