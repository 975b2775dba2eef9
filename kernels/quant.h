// Fused fake-quantization kernels of Genie-M (GENIE.md §2.2–2.3): the AdaRound weight quantizer
// with a learned per-channel step, the LSQ activation quantizer with QDrop, the rounding
// regulariser, and the clip-search error used to initialise both. The math of each is one functor
// in kernels/quant_functors.h; quant_cpu.cpp and quant.cu are loops around them.
//
// Every quantizer has exactly one forward and one backward kernel: the forward writes the output
// and a straight-through mask (u8), the backward writes the elementwise gradient and reduces the
// step gradient in the same pass (fixed-chunk partial sums in double, combined in a fixed order,
// so results are bit-identical run to run on each backend).
//
// Layout: weights are viewed as (K, M) = (output channels, elements per channel). Step sizes and
// zero points live on the same device as the data (the activation step is a 1-element array, so a
// learned step never needs a host round trip). `accumulate`: false overwrites outputs, true adds.
#pragma once
#include "kernels/dispatch.h"

namespace genie::k {

// w_hat[k, m] = s[k]·(clamp(w_floor + h(V) + z[k], 0, qmax) − z[k]), h = rectified sigmoid
// (soft) or [V ≥ 0] (hard). mask[k, m] = 1 where ∂ŵ/∂V ≠ 0 (always 0 when hard); may be null.
GENIE_DECLARE_KERNEL(wquant_fwd,
                     (const float* w_floor, const float* v, const float* step, const float* zero,
                      int64_t K, int64_t M, float qmax, bool hard, float* w_hat, uint8_t* mask,
                      Stream s),
                     (w_floor, v, step, zero, K, M, qmax, hard, w_hat, mask, s))
// dv[k, m] (+)= dŵ·s[k]·h'(V)·mask;  dstep[k] (+)= Σ_m dŵ·(clamp(…) − z[k]).
// dv or dstep may be null (not needed).
GENIE_DECLARE_KERNEL(wquant_bwd,
                     (const float* dw_hat, const float* w_floor, const float* v, const float* step,
                      const float* zero, const uint8_t* mask, int64_t K, int64_t M, float qmax,
                      bool hard, float* dv, float* dstep, bool accumulate, Stream s),
                     (dw_hat, w_floor, v, step, zero, mask, K, M, qmax, hard, dv, dstep, accumulate,
                      s))

// y = qdrop[i] ? s·round(clamp(x/s, qn, qp)) : x   (qdrop null = quantize everything);
// code[i] = ActCode (Keep / Inside / Below / Above), the straight-through state for backward.
GENIE_DECLARE_KERNEL(aquant_fwd,
                     (const float* x, const float* step, float qn, float qp, const uint8_t* qdrop,
                      int64_t n, float* y, uint8_t* code, Stream s),
                     (x, step, qn, qp, qdrop, n, y, code, s))
// dx (+)= dy where code is Keep/Inside;  dstep[0] (+)= Σ dy·(round(x/s) − x/s | qn | qp | 0).
// dx or dstep may be null.
GENIE_DECLARE_KERNEL(aquant_bwd,
                     (const float* dy, const float* x, const float* step, const uint8_t* code,
                      float qn, float qp, int64_t n, float* dx, float* dstep, bool accumulate,
                      Stream s),
                     (dy, x, step, code, qn, qp, n, dx, dstep, accumulate, s))

// QDrop mask: mask[i] = bit (i mod 128) of Philox block (seed, offset + i/128) — a fair coin per
// element (P(1) = 0.5 exactly). Consumes qdrop_counters(n) counters. With offset_at (device
// memory), the offset is *offset_at + offset, read when the kernel runs (replayed steps,
// kernels/graph.h).
GENIE_DECLARE_KERNEL(qdrop_mask,
                     (uint64_t seed, uint64_t offset, const uint64_t* offset_at, uint8_t* mask,
                      int64_t n, Stream s),
                     (seed, offset, offset_at, mask, n, s))
inline uint64_t qdrop_counters(int64_t n) { return (uint64_t(n) + 127) / 128; }

// out[0] = Σ_i 1 − |2h(v_i) − 1|^β   (β = *beta_at when given: device memory, read when the
// kernel runs, for replayed steps)
GENIE_DECLARE_KERNEL(round_reg_fwd,
                     (const float* v, int64_t n, float beta, const float* beta_at, float* out,
                      Stream s),
                     (v, n, beta, beta_at, out, s))
// dv (+)= dout[0] · ∂/∂v (1 − |2h(v) − 1|^β)   (dout is a device scalar; beta_at as above)
GENIE_DECLARE_KERNEL(round_reg_bwd,
                     (const float* v, int64_t n, float beta, const float* beta_at,
                      const float* dout, float* dv, bool accumulate, Stream s),
                     (v, n, beta, beta_at, dout, dv, accumulate, s))

// Clip-search scores: for each row r of x (rows, cols) and candidate c,
//   score[r, c] = Σ_j |x[r, j] − q(x[r, j]; delta[r, c], zero[r, c])|^2.4   (double)
// with q the asymmetric grid on [0, qmax] (ClipErrF). Used once per quantizer at initialisation.
GENIE_DECLARE_KERNEL(clip_search_scores,
                     (const float* x, int64_t rows, int64_t cols, int64_t ncand, const float* delta,
                      const float* zero, float qmax, double* score, Stream s),
                     (x, rows, cols, ncand, delta, zero, qmax, score, s))

}  // namespace genie::k
