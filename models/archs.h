// Built-in architectures as graph builders with torchvision state_dict naming, so that weights
// saved from torchvision (or from the CIFAR-style ResNet-20 in models/data/README.md) load as is.
// The first convolution takes info.C input channels and the classifier has info.num_classes
// outputs; spatial size is free (global pooling before the classifier).
#pragma once
#include <string>
#include <vector>

#include "models/graph.h"
#include "models/model.h"

namespace genie::models {

// resnet20 (CIFAR-style), resnet18, resnet50, mobilenet_v2, regnet_x_400mf, regnet_x_600mf,
// regnet_x_3_2gf, mnasnet1_0.
const std::vector<std::string>& known_archs();
bool is_known_arch(const std::string& name);
// Throws "[make_arch] unknown architecture 'x' (known: resnet20, …)".
// bn_eps applies to every BatchNorm (PyTorch default 1e-5).
Graph make_arch(const std::string& name, const ModelInfo& info, float bn_eps = 1e-5f);

// RegNet stage parameters derived from (depth, w0, wa, wm, group width) with torchvision's
// quantization formulas (BlockParams.from_init_params + width/group compatibility adjustment).
struct RegNetStages {
  std::vector<int64_t> widths, depths, group_widths;
};
RegNetStages regnet_stages(int depth, double w0, double wa, double wm, int64_t group_width);

}  // namespace genie::models
