// BatchNorm folding (GENIE.md §2.1, `--fold-bn`): the deployable setting, where each eval-mode BN
// that directly and solely follows a convolution is merged into it before quantization:
//   a = γ / sqrt(σ² + eps);  W' = W · a[k];  b' = (b − μ) · a + β   (b = 0 without a conv bias)
// The folded model keeps the graph's node indices (each folded BN becomes an `identity` node), so
// units, hooks and reports line up with the unfolded model.
#pragma once
#include "models/model.h"

namespace genie::quant {

// Returns a folded copy of `m` (same device); `folded` (optional) receives the folded BN node
// indices. BNs whose input is not a conv read only by that BN are kept as they are.
models::Model fold_bn(const models::Model& m, std::vector<int>* folded = nullptr);

}  // namespace genie::quant
