// The bounds on every size and constant a model description may declare, in one place. Graph
// validation (models/graph.h: from_json, validate, infer_shapes) and the input description check
// (models::check_info, models/model.h) hold built-in graphs, weight files and quantized files to
// them, so an absurd file is refused when it is loaded, with a message naming the attribute or the
// node's field, instead of overflowing size arithmetic or asking for terabytes halfway through a
// run. Each bound is far beyond any real CNN; together they keep every size product the engine
// forms (batch × values per image, K·C·k², a generator's 128·(H/4)²·256) well inside int64. They
// bound arithmetic and absurd files, not memory: a model near them can still need more than a
// machine has (Genie-D's generator alone holds 2048·H² weights).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace genie::models::limits {

// Channels: the image's C, conv and BatchNorm channels, conv groups. The widest torchvision CNN
// (regnet_y_128gf) has 7,392 channels.
inline constexpr int64_t kMaxChannels = int64_t(1) << 16;

// Spatial sizes: the image's H and W, kernel sizes, strides and paddings. ImageNet models take
// 224–600 pixels, detection and segmentation backbones up to a few thousand.
inline constexpr int64_t kMaxSpatial = int64_t(1) << 14;

// Values per image: the image (C·H·W), every node's output for one image, every parameter tensor,
// a linear layer's input and output features and num_classes. 2^28 float32 values are 1 GiB; the
// largest tensor of VGG-16 (fc6.weight, 4096 × 25088) has 1.03e8, ResNet-50's largest activation
// at 224² (256 × 56 × 56) 8.0e5, and ImageNet-21k has 21,843 classes.
inline constexpr int64_t kMaxElements = int64_t(1) << 28;

// BatchNorm eps in (0, kMaxEps]: PyTorch's default is 1e-5, TensorFlow ports use 1e-3; an eps
// beyond 1 would swamp the variance it regularises.
inline constexpr double kMaxEps = 1.0;

// input_mean in [−kMaxAbsMean, kMaxAbsMean] and input_std >= kMinStd (both finite): images enter
// as pixel/255 or 0–255, so (pixel − mean) / std stays below 1e13 in magnitude, finite in float32,
// and a denormal std (1e-45) cannot turn every image into ±inf.
inline constexpr double kMaxAbsMean = 1e6;
inline constexpr double kMinStd = 1e-6;

// Names (node names, ops, block paths and kinds, arch) of at most kMaxName characters, checked
// before they are compared or printed; torchvision's longest module paths have about 40.
// State-dict keys (a node name, '.', and a suffix such as "running_mean") get kMaxKey.
inline constexpr size_t kMaxName = 256;
inline constexpr size_t kMaxKey = kMaxName + 32;

// A user-supplied string for an error message: whole when short, otherwise its first 40
// characters, "…" and its length, so a megabyte-long bad value is never echoed whole.
inline std::string clip(const std::string& s) {
  constexpr size_t kShown = 40;
  if (s.size() <= 2 * kShown) return s;
  size_t n = kShown;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // whole UTF-8 chars
  return s.substr(0, n) + "… (" + std::to_string(s.size()) + " characters)";
}

}  // namespace genie::models::limits
