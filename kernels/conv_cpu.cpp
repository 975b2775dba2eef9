// CPU convolution driver. Dense and grouped convolutions lower each (image, group) pair to one
// OpenBLAS GEMM over an im2col matrix; OpenMP runs the pairs in parallel with BLAS single-threaded
// inside (BLAS threads inside OpenMP threads would oversubscribe the cores). Depthwise convolutions
// (groups == C) use direct loops: their GEMMs would have a single row and waste the micro-kernel.
//
// Layouts: x (N, C, H, W), w (K, C/g, R, S), y (N, K, P, Q); per group the weight is the row-major
// matrix Wg (K/g, C/g*R*S) and the im2col matrix is col (C/g*R*S, P*Q) with row (c*R + r)*S + s.
//
// Workspaces are thread-local vectors that only ever grow, so steady-state training performs no
// heap allocation here. Gradients w.r.t. the filter are summed over fixed chunks of the batch whose
// partial sums are combined in chunk order: the result does not depend on the thread count or on
// scheduling (bit-for-bit reproducible runs).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu_blas.h"

namespace genie::k {

namespace {

// slot: 0 = im2col/col2im matrix, 1 = filter-gradient partials (caller thread only),
// 2 = zero-padded copy of one image's planes (stride-1 im2col / col2im),
// 3 = flipped, transposed filter for the stride-1 data gradient (caller thread only).
float* workspace(int slot, size_t n) {
  thread_local std::vector<float> buf[4];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

struct Geometry {
  int64_t N, C, H, W, K, R, S, stride, pad, groups, P, Q;
  int64_t Cg, Kg, HW, PQ, CRS;  // per-group channels, plane sizes, GEMM inner size C/g*R*S
  explicit Geometry(const ConvShape& cs)
      : N(cs.N),
        C(cs.C),
        H(cs.H),
        W(cs.W),
        K(cs.K),
        R(cs.R),
        S(cs.S),
        stride(cs.stride),
        pad(cs.pad),
        groups(cs.groups),
        P(cs.P()),
        Q(cs.Q()) {
    Cg = C / groups;
    Kg = K / groups;
    HW = H * W;
    PQ = P * Q;
    CRS = Cg * R * S;
  }
  int64_t Hp() const { return H + 2 * pad; }
  int64_t Wp() const { return W + 2 * pad; }
  // 1x1, stride 1, no padding: the input planes already are the im2col matrix.
  bool pointwise() const { return R == 1 && S == 1 && stride == 1 && pad == 0; }
  bool depthwise() const { return groups == C && groups > 1; }
  // Output columns q whose input column q*stride - pad + s lies inside [0, W): [q0, q1).
  void q_range(int64_t s, int64_t& q0, int64_t& q1) const {
    const int64_t lo = pad - s;  // need q*stride >= lo
    q0 = lo <= 0 ? 0 : (lo + stride - 1) / stride;
    const int64_t hi = W - 1 + pad - s;  // need q*stride <= hi
    q1 = hi < 0 ? 0 : std::min(Q, hi / stride + 1);
    if (q1 < q0) q1 = q0;
  }
};

// col (CRS, PQ) <- x planes (Cg, H, W).
// Stride 1 (most layers): copy the planes once into a zero-padded buffer, after which every row of
// col is a branch-free copy of Q contiguous floats; per-row bounds logic dominated the cost for
// the small planes of CIFAR/MNIST-sized nets (7x7 to 28x28).
// Other strides: rows are filled directly from the input with the valid column range computed
// once per (s) and zeros at the borders (the padded copy would cost more than it saves).
// P rows of Q floats from rows Wp apart into a contiguous P x Q block. Small feature maps make
// these rows short (7..56 floats), where loop control dominated im2col; a compile-time Q unrolls
// each row into a few vector moves.
template <int64_t Q>
void copy_rows_fixed(float* __restrict__ dst, const float* __restrict__ src, int64_t P,
                     int64_t Wp) {
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = 0; q < Q; ++q) dst[p * Q + q] = src[p * Wp + q];
}
void copy_rows(float* __restrict__ dst, const float* __restrict__ src, int64_t P, int64_t Q,
               int64_t Wp) {
  switch (Q) {
    case 7:
      return copy_rows_fixed<7>(dst, src, P, Wp);
    case 14:
      return copy_rows_fixed<14>(dst, src, P, Wp);
    case 28:
      return copy_rows_fixed<28>(dst, src, P, Wp);
    case 56:
      return copy_rows_fixed<56>(dst, src, P, Wp);
    default:
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) dst[p * Q + q] = src[p * Wp + q];
  }
}

void im2col(const Geometry& g, const float* x, float* col) {
  if (g.stride == 1) {
    const int64_t Hp = g.Hp(), Wp = g.Wp();
    float* xp = workspace(2, size_t(g.Cg * Hp * Wp));
    for (int64_t c = 0; c < g.Cg; ++c) {
      float* d = xp + c * Hp * Wp;
      const float* src = x + c * g.HW;
      std::memset(d, 0, size_t(g.pad * Wp) * sizeof(float));
      for (int64_t h = 0; h < g.H; ++h) {
        float* dr = d + (h + g.pad) * Wp;
        for (int64_t i = 0; i < g.pad; ++i) dr[i] = 0.f;
        for (int64_t w = 0; w < g.W; ++w) dr[g.pad + w] = src[h * g.W + w];
        for (int64_t i = g.pad + g.W; i < Wp; ++i) dr[i] = 0.f;
      }
      std::memset(d + (g.pad + g.H) * Wp, 0, size_t(g.pad * Wp) * sizeof(float));
    }
    for (int64_t c = 0; c < g.Cg; ++c)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          copy_rows(col + ((c * g.R + r) * g.S + s) * g.PQ, xp + (c * Hp + r) * Wp + s, g.P, g.Q,
                    Wp);
        }
    return;
  }
  for (int64_t c = 0; c < g.Cg; ++c) {
    const float* xc = x + c * g.HW;
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        float* dst = col + ((c * g.R + r) * g.S + s) * g.PQ;
        int64_t q0, q1;
        g.q_range(s, q0, q1);
        for (int64_t p = 0; p < g.P; ++p) {
          float* d = dst + p * g.Q;
          const int64_t ih = p * g.stride - g.pad + r;
          if (ih < 0 || ih >= g.H) {
            for (int64_t q = 0; q < g.Q; ++q) d[q] = 0.f;
            continue;
          }
          const float* xr = xc + ih * g.W - g.pad + s;  // xr[q*stride] = x[ih][q*stride - pad + s]
          for (int64_t q = 0; q < q0; ++q) d[q] = 0.f;
          for (int64_t q = q0; q < q1; ++q) d[q] = xr[q * g.stride];
          for (int64_t q = q1; q < g.Q; ++q) d[q] = 0.f;
        }
      }
    }
  }
}

// dx planes (Cg, H, W) (+)= col2im(dcol (CRS, PQ)); the exact adjoint of im2col. Stride 1
// accumulates into a zeroed padded buffer without bounds checks, then copies its interior out.
void col2im(const Geometry& g, const float* dcol, float* dx, bool accumulate) {
  if (g.stride == 1) {
    const int64_t Hp = g.Hp(), Wp = g.Wp();
    float* xp = workspace(2, size_t(g.Cg * Hp * Wp));
    std::memset(xp, 0, size_t(g.Cg * Hp * Wp) * sizeof(float));
    for (int64_t c = 0; c < g.Cg; ++c)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          const float* src = dcol + ((c * g.R + r) * g.S + s) * g.PQ;
          float* dst = xp + (c * Hp + r) * Wp + s;
          for (int64_t p = 0; p < g.P; ++p) {
            const float* sr = src + p * g.Q;
            float* dr = dst + p * Wp;
            for (int64_t q = 0; q < g.Q; ++q) dr[q] += sr[q];
          }
        }
    for (int64_t c = 0; c < g.Cg; ++c)
      for (int64_t h = 0; h < g.H; ++h) {
        const float* sr = xp + (c * Hp + h + g.pad) * Wp + g.pad;
        float* dr = dx + c * g.HW + h * g.W;
        if (accumulate)
          for (int64_t w = 0; w < g.W; ++w) dr[w] += sr[w];
        else
          for (int64_t w = 0; w < g.W; ++w) dr[w] = sr[w];
      }
    return;
  }
  if (!accumulate) std::memset(dx, 0, size_t(g.Cg * g.HW) * sizeof(float));
  for (int64_t c = 0; c < g.Cg; ++c) {
    float* dxc = dx + c * g.HW;
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const float* src = dcol + ((c * g.R + r) * g.S + s) * g.PQ;
        int64_t q0, q1;
        g.q_range(s, q0, q1);
        for (int64_t p = 0; p < g.P; ++p) {
          const int64_t ih = p * g.stride - g.pad + r;
          if (ih < 0 || ih >= g.H) continue;
          const float* sr = src + p * g.Q;
          float* xr = dxc + ih * g.W - g.pad + s;
          for (int64_t q = q0; q < q1; ++q) xr[q * g.stride] += sr[q];
        }
      }
    }
  }
}

// ---- depthwise (groups == C): output channel k reads input channel k / (K / C) ----

void dw_fwd_plane(const Geometry& g, const float* x, const float* w, float b, float* y) {
  for (int64_t i = 0; i < g.PQ; ++i) y[i] = b;
  for (int64_t p = 0; p < g.P; ++p) {
    float* yr = y + p * g.Q;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t ih = p * g.stride - g.pad + r;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        int64_t q0, q1;
        g.q_range(s, q0, q1);
        const float wv = w[r * g.S + s];
        const float* xr = x + ih * g.W - g.pad + s;
        for (int64_t q = q0; q < q1; ++q) yr[q] += wv * xr[q * g.stride];
      }
    }
  }
}

void dw_bwd_data_plane(const Geometry& g, const float* dy, const float* w, float* dx) {
  for (int64_t p = 0; p < g.P; ++p) {
    const float* dyr = dy + p * g.Q;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t ih = p * g.stride - g.pad + r;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        int64_t q0, q1;
        g.q_range(s, q0, q1);
        const float wv = w[r * g.S + s];
        float* xr = dx + ih * g.W - g.pad + s;
        for (int64_t q = q0; q < q1; ++q) xr[q * g.stride] += wv * dyr[q];
      }
    }
  }
}

// part[r*S + s] += sum_{p,q} dy[p][q] * x[p*stride - pad + r][q*stride - pad + s]
void dw_bwd_filter_plane(const Geometry& g, const float* x, const float* dy, float* part) {
  for (int64_t r = 0; r < g.R; ++r) {
    for (int64_t s = 0; s < g.S; ++s) {
      int64_t q0, q1;
      g.q_range(s, q0, q1);
      float acc = 0.f;
      for (int64_t p = 0; p < g.P; ++p) {
        const int64_t ih = p * g.stride - g.pad + r;
        if (ih < 0 || ih >= g.H) continue;
        const float* dyr = dy + p * g.Q;
        const float* xr = x + ih * g.W - g.pad + s;
        for (int64_t q = q0; q < q1; ++q) acc += dyr[q] * xr[q * g.stride];
      }
      part[r * g.S + s] += acc;
    }
  }
}

// ---- few output channels (K <= 3, groups 1, stride 1): a 3x3 convolution to an image ----
// A GEMM with 1-3 rows wastes the micro-kernel, and im2col writes 9x the input for it; direct
// shifted-row multiply-adds (vectorised over q) are 2-3x faster for these shapes (bench/:
// conv/resnet20_B128/gen.conv2.3x3.*). Not for the generator as the engine runs it: its fused 2x2
// form (ops::upsample2x_conv3x3, 4 stacked filters) is 3x faster through the GEMM than through
// these loops (conv/resnet20_B128/gen.conv2.fused2x2.*: 3.8 against 12 ms forward).
bool few_outputs(const Geometry& g) {
  return g.groups == 1 && g.stride == 1 && g.K <= 3 && !g.pointwise() && !g.depthwise();
}

// y (P, Q) += conv of one input plane with one (R, S) filter (stride 1).
void few_fwd_plane(const Geometry& g, const float* x, const float* w, float* y) {
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t p0 = std::max<int64_t>(0, g.pad - r), p1 = std::min(g.P, g.H + g.pad - r);
    for (int64_t s = 0; s < g.S; ++s) {
      int64_t q0, q1;
      g.q_range(s, q0, q1);
      const float wv = w[r * g.S + s];
      for (int64_t p = p0; p < p1; ++p) {
        float* yr = y + p * g.Q;
        const float* xr = x + (p - g.pad + r) * g.W - g.pad + s;
        for (int64_t q = q0; q < q1; ++q) yr[q] += wv * xr[q];
      }
    }
  }
}

// lanes[(r*S + s)*Q + q] += dy[p][q] * x[p - pad + r][q - pad + s] over p (stride 1): the filter
// gradient's taps kept as Q partial sums each, so the inner loop is a vectorisable multiply-add.
void few_bwd_filter_plane(const Geometry& g, const float* x, const float* dy, float* lanes) {
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t p0 = std::max<int64_t>(0, g.pad - r), p1 = std::min(g.P, g.H + g.pad - r);
    for (int64_t s = 0; s < g.S; ++s) {
      int64_t q0, q1;
      g.q_range(s, q0, q1);
      float* a = lanes + (r * g.S + s) * g.Q;
      for (int64_t p = p0; p < p1; ++p) {
        const float* d = dy + p * g.Q;
        const float* xr = x + (p - g.pad + r) * g.W - g.pad + s;
        for (int64_t q = q0; q < q1; ++q) a[q] += d[q] * xr[q];
      }
    }
  }
}

// Fixed partition of the batch for filter gradients: depends on N only, never on threads.
int64_t filter_chunks(int64_t N) { return std::min<int64_t>(N, 16); }

// Work items (an image, or an image and a group) are handed out dynamically: on a shared machine
// one OpenMP thread is often descheduled, and a static split would make the other wait for it.
// Every item writes its own output (or its own chunk partial), so the result does not depend on
// which thread ran it.
// Below ~128K multiply-adds a convolution runs serially: an OpenMP fork/join (and, on a loaded
// machine, waiting for the second thread to be scheduled) costs more than it saves.
bool go_parallel(const Geometry& g) {
  return double(g.N) * double(g.K) * double(g.CRS) * double(g.PQ) > double(1 << 17);
}

}  // namespace

void conv2d_fwd_cpu(const ConvShape& cs, const float* x, const float* w, const float* bias,
                    float* y, Stream) {
  blas_single_thread_once();
  const Geometry g(cs);
  if (g.depthwise()) {
    const int64_t mult = g.Kg;  // output channels per input channel
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
    for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
      const int64_t n = nk / g.K, k = nk % g.K, c = k / mult;
      dw_fwd_plane(g, x + (n * g.C + c) * g.HW, w + k * g.R * g.S, bias ? bias[k] : 0.f,
                   y + nk * g.PQ);
    }
    return;
  }
  if (few_outputs(g)) {
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
    for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
      const int64_t n = nk / g.K, k = nk % g.K;
      float* yp = y + nk * g.PQ;
      const float b = bias ? bias[k] : 0.f;
      for (int64_t i = 0; i < g.PQ; ++i) yp[i] = b;
      for (int64_t c = 0; c < g.C; ++c)
        few_fwd_plane(g, x + (n * g.C + c) * g.HW, w + (k * g.C + c) * g.R * g.S, yp);
    }
    return;
  }
  const bool direct = g.pointwise();
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
  for (int64_t ng = 0; ng < g.N * g.groups; ++ng) {
    const int64_t n = ng / g.groups, gi = ng % g.groups;
    const float* xg = x + (n * g.C + gi * g.Cg) * g.HW;
    float* yg = y + (n * g.K + gi * g.Kg) * g.PQ;
    const float* B = xg;
    if (!direct) {
      float* col = workspace(0, size_t(g.CRS * g.PQ));
      im2col(g, xg, col);
      B = col;
    }
    sgemm_serial(false, false, g.Kg, g.PQ, g.CRS, 1.f, w + gi * g.Kg * g.CRS, g.CRS, B, g.PQ, 0.f,
                 yg, g.PQ);
    if (bias) {
      for (int64_t k = 0; k < g.Kg; ++k) {
        const float b = bias[gi * g.Kg + k];
        float* yr = yg + k * g.PQ;
        for (int64_t i = 0; i < g.PQ; ++i) yr[i] += b;
      }
    }
  }
}

void conv2d_bwd_data_cpu(const ConvShape& cs, const float* dy, const float* w, float* dx,
                         bool accumulate, Stream) {
  blas_single_thread_once();
  const Geometry g(cs);
  if (g.depthwise()) {
    const int64_t mult = g.Kg;
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
    for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
      const int64_t n = nc / g.C, c = nc % g.C;
      float* dxp = dx + nc * g.HW;
      if (!accumulate) std::memset(dxp, 0, size_t(g.HW) * sizeof(float));
      for (int64_t j = 0; j < mult; ++j) {
        const int64_t k = c * mult + j;
        dw_bwd_data_plane(g, dy + (n * g.K + k) * g.PQ, w + k * g.R * g.S, dxp);
      }
    }
    return;
  }
  const bool direct = g.pointwise();
  // (Needs a few input channels per group: the GEMM below has C/g rows.)
  if (!direct && g.stride == 1 && g.Cg >= 8 && g.pad <= g.R - 1 && g.pad <= g.S - 1) {
    // Stride 1: the data gradient is itself a stride-1 convolution of dy (padding R-1-pad) with
    // the spatially flipped, transposed filter Wt[c][k][r][s] = W[k][c][R-1-r][S-1-s]. This
    // turns the GEMM's inner dimension from K/g into K/g*R*S (much better BLAS efficiency at
    // 16-64 channels) and replaces the scatter-add col2im by a plain im2col.
    ConvShape ts;
    ts.N = g.N;
    ts.C = g.K;
    ts.H = g.P;
    ts.W = g.Q;
    ts.K = g.C;
    ts.R = g.R;
    ts.S = g.S;
    ts.stride = 1;
    ts.pad = g.R - 1 - g.pad;
    ts.groups = g.groups;
    if (g.S - 1 - g.pad != ts.pad) ts.pad = -1;  // non-square kernel with R != S: fall through
    if (ts.pad >= 0) {
      const Geometry gt(ts);  // gt.P == H, gt.Q == W, gt.CRS == Kg*R*S
      const int64_t RS = g.R * g.S;
      float* wt = workspace(3, size_t(g.groups * g.Cg * gt.CRS));
      for (int64_t gi = 0; gi < g.groups; ++gi)
        for (int64_t c = 0; c < g.Cg; ++c)
          for (int64_t k = 0; k < g.Kg; ++k) {
            const float* src = w + ((gi * g.Kg + k) * g.Cg + c) * RS;
            float* dst = wt + (gi * g.Cg + c) * gt.CRS + k * RS;
            for (int64_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
          }
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
      for (int64_t ng = 0; ng < g.N * g.groups; ++ng) {
        const int64_t n = ng / g.groups, gi = ng % g.groups;
        float* col = workspace(0, size_t(gt.CRS * gt.PQ));
        im2col(gt, dy + (n * g.K + gi * g.Kg) * g.PQ, col);
        // dx (Cg x HW) (+)= Wt (Cg x Kg*R*S) * col (Kg*R*S x HW)
        sgemm_serial(false, false, g.Cg, g.HW, gt.CRS, 1.f, wt + gi * g.Cg * gt.CRS, gt.CRS, col,
                     g.HW, accumulate ? 1.f : 0.f, dx + (n * g.C + gi * g.Cg) * g.HW, g.HW);
      }
      return;
    }
  }
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
  for (int64_t ng = 0; ng < g.N * g.groups; ++ng) {
    const int64_t n = ng / g.groups, gi = ng % g.groups;
    const float* dyg = dy + (n * g.K + gi * g.Kg) * g.PQ;
    const float* wg = w + gi * g.Kg * g.CRS;
    float* dxg = dx + (n * g.C + gi * g.Cg) * g.HW;
    if (direct) {  // dx (Cg, HW) (+)= Wg^T (Cg x Kg) * dy (Kg x HW)
      sgemm_serial(true, false, g.Cg, g.HW, g.Kg, 1.f, wg, g.CRS, dyg, g.PQ, accumulate ? 1.f : 0.f,
                   dxg, g.HW);
      continue;
    }
    float* dcol = workspace(0, size_t(g.CRS * g.PQ));
    sgemm_serial(true, false, g.CRS, g.PQ, g.Kg, 1.f, wg, g.CRS, dyg, g.PQ, 0.f, dcol, g.PQ);
    col2im(g, dcol, dxg, accumulate);
  }
}

void conv2d_bwd_filter_cpu(const ConvShape& cs, const float* x, const float* dy, float* dw,
                           bool accumulate, Stream) {
  blas_single_thread_once();
  const Geometry g(cs);
  const int64_t wsize = g.K * g.CRS;  // == K * R * S for depthwise
  const int64_t chunks = filter_chunks(g.N);
  float* part = workspace(1, size_t(chunks * wsize));
  std::memset(part, 0, size_t(chunks * wsize) * sizeof(float));
  const bool direct = g.pointwise();
  const bool few = few_outputs(g);
  // Few outputs: one work item per (chunk, k, c), writing the (R, S) taps of its own partial.
  const int64_t units = chunks * (few ? g.K * g.C : (g.depthwise() ? 1 : g.groups));
#pragma omp parallel for schedule(dynamic) if (go_parallel(g))
  for (int64_t u = 0; u < units; ++u) {
    if (few) {
      const int64_t ch = u / (g.K * g.C), kc = u % (g.K * g.C), k = kc / g.C, c = kc % g.C;
      const int64_t n0 = ch * g.N / chunks, n1 = (ch + 1) * g.N / chunks, RS = g.R * g.S;
      float* lanes = workspace(0, size_t(RS * g.Q));
      std::memset(lanes, 0, size_t(RS * g.Q) * sizeof(float));
      for (int64_t n = n0; n < n1; ++n)
        few_bwd_filter_plane(g, x + (n * g.C + c) * g.HW, dy + (n * g.K + k) * g.PQ, lanes);
      float* pc = part + ch * wsize + (k * g.C + c) * RS;
      for (int64_t rs = 0; rs < RS; ++rs) {
        float t = 0.f;
        for (int64_t q = 0; q < g.Q; ++q) t += lanes[rs * g.Q + q];
        pc[rs] = t;
      }
      continue;
    }
    const int64_t ch = g.depthwise() ? u : u / g.groups;
    const int64_t gi = g.depthwise() ? 0 : u % g.groups;
    const int64_t n0 = ch * g.N / chunks, n1 = (ch + 1) * g.N / chunks;
    float* pc = part + ch * wsize;
    for (int64_t n = n0; n < n1; ++n) {
      if (g.depthwise()) {
        const int64_t mult = g.Kg;
        for (int64_t k = 0; k < g.K; ++k)
          dw_bwd_filter_plane(g, x + (n * g.C + k / mult) * g.HW, dy + (n * g.K + k) * g.PQ,
                              pc + k * g.R * g.S);
        continue;
      }
      const float* xg = x + (n * g.C + gi * g.Cg) * g.HW;
      const float* dyg = dy + (n * g.K + gi * g.Kg) * g.PQ;
      const float* B = xg;
      if (!direct) {
        float* col = workspace(0, size_t(g.CRS * g.PQ));
        im2col(g, xg, col);
        B = col;
      }
      // dWg (Kg x CRS) += dy (Kg x PQ) * col^T (PQ x CRS)
      sgemm_serial(false, true, g.Kg, g.CRS, g.PQ, 1.f, dyg, g.PQ, B, g.PQ, 1.f,
                   pc + gi * g.Kg * g.CRS, g.CRS);
    }
  }
  // Combine the chunk partials in chunk order (fixed summation order).
#pragma omp parallel for schedule(static) if (wsize > (1 << 14))
  for (int64_t i = 0; i < wsize; ++i) {
    float s = accumulate ? dw[i] : 0.f;
    for (int64_t c = 0; c < chunks; ++c) s += part[c * wsize + i];
    dw[i] = s;
  }
}

}  // namespace genie::k
