// Philox-backed random tensors; the generator's offset advances by the counters each draw uses,
// so a sequence of draws is reproducible and identical on CPU and CUDA.
#include "autograd/ops.h"
#include "kernels/philox.h"

namespace genie::ops {

Tensor randn(const Shape& s, Generator& g, Device d, float mean, float std) {
  GENIE_CHECK(!g.offset_at, "[randn] expected a generator without a device offset (offset_at)");
  Tensor y = Tensor::empty(s, d);
  k::philox_normal(d, g.seed, g.offset, mean, std, y.data(), y.numel(), nullptr);
  g.offset += k::philox_counters(y.numel());
  return y;
}

Tensor rand(const Shape& s, Generator& g, Device d) {
  GENIE_CHECK(!g.offset_at, "[rand] expected a generator without a device offset (offset_at)");
  Tensor y = Tensor::empty(s, d);
  k::philox_uniform(d, g.seed, g.offset, y.data(), y.numel(), nullptr);
  g.offset += k::philox_counters(y.numel());
  return y;
}

Tensor bernoulli_mask(const Shape& s, float p, Generator& g, Device d) {
  Tensor m = Tensor::empty(s, d, DType::U8);
  k::philox_bernoulli(d, g.seed, g.offset, g.offset_at, p, m.data_as<uint8_t>(), m.numel(),
                      nullptr);
  g.offset += k::philox_counters(m.numel());
  return m;
}

}  // namespace genie::ops
