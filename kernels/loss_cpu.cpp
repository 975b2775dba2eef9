// CPU loss drivers: fixed-order double sums (deterministic); the math is in loss_functors.h.
#include <algorithm>
#include <vector>

#include "kernels/cpu_loop.h"
#include "kernels/loss.h"
#include "kernels/loss_functors.h"

namespace genie::k {

void mse_fwd_cpu(const float* a, const float* b, int64_t n, float* out, Stream) {
  // Fixed chunks (independent of the thread count), partials added in chunk order.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = std::max<int64_t>(1, (n + kChunk - 1) / kChunk);
  std::vector<double> part(size_t(chunks), 0.0);
  const SqDiffF f;
  cpu_for_outer(chunks, kChunk, [&](int64_t c) {
    double s = 0;
    const int64_t e = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < e; ++i) s += f(a[i], b[i]);
    part[size_t(c)] = s;
  });
  double s = 0;
  for (double p : part) s += p;
  out[0] = float(s / double(n));
}

void mse_bwd_cpu(const float* a, const float* b, int64_t n, const float* dout, float* da, bool acc,
                 Stream) {
  const MseBwdF f = MseBwdF::make(dout[0], n);
  if (acc)
    cpu_for(n, [=](int64_t i) { da[i] += f(a[i], b[i]); });
  else
    cpu_for(n, [=](int64_t i) { da[i] = f(a[i], b[i]); });
}

void cross_entropy_fwd_cpu(const float* logits, const int32_t* labels, int64_t N, int64_t K,
                           float* prob, float* out, Stream) {
  std::vector<float> row(static_cast<size_t>(N));
  cpu_for_outer(N, K, [&](int64_t i) {
    row[size_t(i)] = XentRowF::row(logits + i * K, labels[i], K, prob + i * K);
  });
  double s = 0;
  for (float v : row) s += double(v);
  out[0] = float(s / double(N));
}

void cross_entropy_bwd_cpu(const float* prob, const int32_t* labels, int64_t N, int64_t K,
                           const float* dout, float* dlogits, bool acc, Stream) {
  const XentBwdF f = XentBwdF::make(dout[0], N);
  cpu_for_outer(N, K, [&](int64_t i) {
    const float* p = prob + i * K;
    float* d = dlogits + i * K;
    for (int64_t j = 0; j < K; ++j) {
      const float g = f(p[j], j == labels[i]);
      d[j] = acc ? d[j] + g : g;
    }
  });
}

}  // namespace genie::k
