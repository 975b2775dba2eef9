// CPU drivers of the fused quantizer kernels (kernels/quant.h): loops around the functors in
// kernels/quant_functors.h. Reductions use fixed chunks (kQuantChunk) combined in order, so the
// step gradients do not depend on the OpenMP thread count.
// The functors are branch-free so these loops vectorize; GCC only if-converts and vectorizes them
// when FP operations may be assumed not to trap (results are unchanged: IEEE default rounding, no
// reassociation), hence the file-level option below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu_loop.h"
#include "kernels/quant.h"
#include "kernels/quant_functors.h"

namespace genie::k {

void check_bits(const char* what, int bits) {
  GENIE_CHECK(bits >= kMinBits && bits <= kMaxBits, "[", what, "] expected ", kMinBits, "..",
              kMaxBits, " bits, got ", bits);
}

namespace {
// Σ of float terms over [0, n) with fixed chunking, accumulated in double in index order:
// fill(b, m, buf) writes the terms of [b, b + m) into a buffer first, a loop with no reduction
// that vectorizes (with selects where a term picks by a random byte such as the QDrop code: as a
// branch that mispredicted half the time); the double sum then runs over plain floats.
template <class Fill>
double chunked_sum_staged(int64_t n, Fill&& fill) {
  const int64_t chunks = (n + kQuantChunk - 1) / kQuantChunk;
  std::vector<double> part(size_t(std::max<int64_t>(chunks, 1)), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1 && n > kCpuGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    alignas(64) float buf[kQuantChunk];
    const int64_t b = c * kQuantChunk, m = std::min(n, b + kQuantChunk) - b;
    fill(b, m, buf);
    double s = 0;
    for (int64_t j = 0; j < m; ++j) s += double(buf[j]);
    part[size_t(c)] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

// The same for term(i) returning float.
template <class Term>
double chunked_sum(int64_t n, Term&& term) {
  return chunked_sum_staged(n, [&](int64_t b, int64_t m, float* buf) {
    for (int64_t j = 0; j < m; ++j) buf[j] = term(b + j);
  });
}

// LSQ step-gradient terms of m elements (restrict: the loop vectorizes).
void act_ds_terms(const ActQuantF f, const float* __restrict dy, const float* __restrict x,
                  const uint8_t* __restrict code, float s, int64_t m, float* __restrict out) {
  for (int64_t j = 0; j < m; ++j) out[j] = f.ds_term(dy[j], x[j], s, code[j]);
}
}  // namespace

void wquant_fwd_cpu(const float* w_floor, const float* v, const float* step, const float* zero,
                    int64_t K, int64_t M, float qmax, bool hard, float* w_hat, uint8_t* mask,
                    Stream) {
  const WeightQuantF f{qmax, hard};
  cpu_for_outer(K, M, [=](int64_t k) {
    const float s = step[k], z = zero[k];
    for (int64_t m = k * M; m < (k + 1) * M; ++m) {
      uint8_t mk;
      w_hat[m] = f.fwd(w_floor[m], v[m], s, z, mk);
      if (mask) mask[m] = mk;
    }
  });
}

void wquant_bwd_cpu(const float* dw_hat, const float* w_floor, const float* v, const float* step,
                    const float* zero, const uint8_t* mask, int64_t K, int64_t M, float qmax,
                    bool hard, float* dv, float* dstep, bool acc, Stream) {
  const WeightQuantF f{qmax, hard};
  // One channel per task: the channel's step gradient is a serial (deterministic) sum.
  cpu_for_outer(K, M, [=](int64_t k) {
    const float s = step[k], z = zero[k];
    double ds = 0;
    for (int64_t m = k * M; m < (k + 1) * M; ++m) {
      float g, t;
      f.bwd(dw_hat[m], w_floor[m], v[m], s, z, mask ? mask[m] : uint8_t(0), g, t);
      ds += double(t);
      if (dv) dv[m] = acc ? dv[m] + g : g;
    }
    if (dstep) dstep[k] = acc ? dstep[k] + float(ds) : float(ds);
  });
}

void aquant_fwd_cpu(const float* x, const float* step, float qn, float qp, const uint8_t* qdrop,
                    int64_t n, float* y, uint8_t* code, Stream) {
  const ActQuantF f{qn, qp};
  const float s = step[0];
  // Pointer tests hoisted out of the loops (one specialised loop each) so that they vectorize.
  auto run = [&](auto with_mask, auto with_code) {
    cpu_for(n, [=](int64_t i) {
      uint8_t c;
      y[i] = f.fwd(x[i], s, decltype(with_mask)::value ? qdrop[i] != 0 : true, c);
      if constexpr (decltype(with_code)::value) code[i] = c;
    });
  };
  using T = std::true_type;
  using F = std::false_type;
  if (qdrop && code)
    run(T{}, T{});
  else if (qdrop)
    run(T{}, F{});
  else if (code)
    run(F{}, T{});
  else
    run(F{}, F{});
}

void aquant_bwd_cpu(const float* dy, const float* x, const float* step, const uint8_t* code,
                    float qn, float qp, int64_t n, float* dx, float* dstep, bool acc, Stream) {
  const ActQuantF f{qn, qp};
  const float s = step[0];
  if (dx) {
    if (acc)
      cpu_for(n, [=](int64_t i) { dx[i] += f.dx(dy[i], code[i]); });
    else
      cpu_for(n, [=](int64_t i) { dx[i] = f.dx(dy[i], code[i]); });
  }
  if (dstep) {
    const double ds = chunked_sum_staged(n, [=](int64_t b, int64_t m, float* buf) {
      act_ds_terms(f, dy + b, x + b, code + b, s, m, buf);
    });
    dstep[0] = acc ? dstep[0] + float(ds) : float(ds);
  }
}

void qdrop_mask_cpu(uint64_t seed, uint64_t offset, const uint64_t* offset_at, uint8_t* mask,
                    int64_t n, Stream) {
  const QDropWordF f{seed, offset + (offset_at ? *offset_at : 0)};
  const int64_t words = (n + 31) / 32;
  cpu_for(words, [=](int64_t w) {
    const uint32_t bits = f(w);
    const int64_t b = w * 32, e = std::min(n, b + 32);
    for (int64_t i = b; i < e; ++i) mask[i] = uint8_t((bits >> (i - b)) & 1u);
  });
}

void round_reg_fwd_cpu(const float* v, int64_t n, float beta, const float* beta_at, float* out,
                       Stream) {
  const RoundRegF f{beta_at ? *beta_at : beta};
  out[0] = float(chunked_sum(n, [&](int64_t i) { return f.fwd(v[i]); }));
}

void round_reg_bwd_cpu(const float* v, int64_t n, float beta, const float* beta_at,
                       const float* dout, float* dv, bool acc, Stream) {
  const RoundRegF f{beta_at ? *beta_at : beta};
  const float g = dout[0];
  cpu_for(n, [=](int64_t i) {
    const float d = f.bwd(v[i], g);
    dv[i] = acc ? dv[i] + d : d;
  });
}

void clip_search_scores_cpu(const float* x, int64_t rows, int64_t cols, int64_t ncand,
                            const float* delta, const float* zero, float qmax, double* score,
                            Stream) {
  // Parallel over (row, candidate) pairs; each pair is one serial pass over its row.
  cpu_for_outer(rows * ncand, cols, [&](int64_t rc) {
    const int64_t r = rc / ncand;
    const float d = delta[rc], z = zero[rc];
    const float* p = x + r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += double(ClipErrF::err(p[j], d, z, qmax));
    score[rc] = s;
  });
}

}  // namespace genie::k
