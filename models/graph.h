// The model graph: one representation for built-in architectures and for networks exported from
// PyTorch (tools/export_pytorch.py). Nodes are stored in topological order; each node names the
// state_dict prefix of its parameters ("layer1.0.conv1" → "layer1.0.conv1.weight", …).
//
// Ops and their parameters (all tensors float32, PyTorch layouts):
//   conv        x (N,C,H,W) → (N,K,P,Q); weight (K, C/groups, k, k), bias (K) when has_bias.
//               Fields: in_ch=C, out_ch=K, kernel, stride, pad, groups. Dilation 1.
//   bn          eval-mode BatchNorm2d over out_ch channels: weight, bias, running_mean,
//               running_var (C) [weight/bias absent when affine == false]; eps.
//   linear      x (N, in_ch) → (N, out_ch); weight (out_ch, in_ch), bias (out_ch) when has_bias.
//   relu, relu6, leaky_relu (slope), sigmoid, silu, hardswish, hardsigmoid, gelu (erf form),
//   identity (e.g. Dropout in eval mode)
//   add         elementwise sum of its two inputs (residual shortcut)
//   mul         product of its two inputs: equal shapes, or (N,C,H,W) and (N,C,1,1) in either
//               order (squeeze-and-excitation gating)
//   concat      its inputs (one or more, equal except in dim 1) joined along channels (torch.cat)
//   slice       channels [start, start + out_ch) of its input (torch.chunk / split)
//   shuffle     torchvision's channel_shuffle with `groups` groups
//   maxpool     kernel, stride, pad, ceil_mode (PyTorch MaxPool2d)
//   avgpool2d   kernel, stride, pad, ceil_mode, count_include_pad (PyTorch AvgPool2d)
//   adaptive_avgpool  (N,C,H,W) → (N,C,out_h,out_w) (PyTorch AdaptiveAvgPool2d)
//   avgpool     global average pool (N,C,H,W) → (N,C), or (N,C,1,1) with keepdim
//               (AdaptiveAvgPool2d(1), x.mean([2,3]))
//   pad         zero padding (pads = left, right, top, bottom; nn.ZeroPad2d, F.pad)
//   flatten     (N, …) → (N, prod)
// Block annotations: `block` is the module path of the residual/inverted-residual block the node
// belongs to ("layer1.0"; "" = none) and `block_kind` its kind ("basic_block", "bottleneck",
// "inverted_residual", "regnet_block", "mnas_block", or any name an exporter chooses). The
// reconstruction units (models/model.h) are derived from them.
//
// JSON form (the `graph` attribute of a weight file):
//   {"format": "genie-graph-1", "output": <node index>, "nodes": [
//     {"op": "conv", "name": "conv1", "inputs": [-1], "in": 3, "out": 16, "kernel": 3,
//      "stride": 1, "pad": 1, "groups": 1, "bias": false, "block": "", "block_kind": ""}, …]}
//   Other fields: "eps", "affine" (bn), "slope" (leaky_relu), "ceil_mode", "count_include_pad"
//   (pools), "keepdim" (avgpool), "start" (slice), "size": [out_h, out_w] (adaptive_avgpool),
//   "pads": [left, right, top, bottom] (pad).
// Fields that an op does not use may be omitted; omitted fields take the defaults below. Every
// field is range-checked against models/limits.h whether or not its op uses it (integers exactly,
// before any narrowing; floats finite); names are at most limits::kMaxName characters.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"
#include "kernels/json.h"
#include "models/limits.h"

namespace genie::models {

struct Node {
  std::string op;                 // one of known_ops() (see above)
  std::string name;               // state_dict prefix of the parameters ("" for parameterless ops)
  std::vector<int> inputs;        // node indices (all < this node's index); -1 = the graph input
  int64_t in_ch = 0, out_ch = 0;  // conv/linear channels; bn: out_ch = in_ch = C
  int64_t kernel = 0, stride = 1, pad = 0, groups = 1;  // conv, pools; groups: conv, shuffle
  bool ceil_mode = false;                               // maxpool, avgpool2d
  bool count_include_pad = true;                        // avgpool2d
  bool keepdim = false;                                 // avgpool
  int64_t start = 0;                                    // slice (out_ch channels from start)
  int64_t out_h = 0, out_w = 0;                         // adaptive_avgpool
  int64_t pads[4] = {0, 0, 0, 0};                       // pad: left, right, top, bottom
  float eps = 1e-5f;                                    // bn
  float slope = 0.f;                                    // leaky_relu
  bool has_bias = false;                                // conv, linear
  bool affine = true;                                   // bn
  std::string block;                                    // enclosing block path, "" = none
  std::string block_kind;                               // kind of that block
};

// Ops a graph may contain.
const std::vector<std::string>& known_ops();
// Elementwise activations and identity: one input, output of the same shape, no parameters.
bool is_pointwise_op(const std::string& op);

struct ParamSpec {
  std::string key;  // full state_dict key
  Shape shape;
  int node;  // owning node
};

class Graph {
 public:
  std::vector<Node> nodes;
  int output = -1;  // node whose output is the model output; -1 = the last node

  int size() const { return int(nodes.size()); }
  int output_node() const { return output < 0 ? int(nodes.size()) - 1 : output; }

  // Appends a node and returns its index (convenience for builders). Inputs default to the
  // previous node (or the graph input for the first node) when `inputs` is empty.
  int add(Node n);

  // Structural checks: known ops, inputs in range and topologically earlier, arity (add, mul: 2,
  // concat: 1 to kMaxChannels, others: 1), names within limits::kMaxName, the sizes each op uses
  // within models/limits.h (channels, kernel, stride, pad, groups dividing the channels, linear
  // features, parameter tensors of at most kMaxElements values), bn eps in (0, kMaxEps], a finite
  // leaky_relu slope, unique parameter-owner names. Throws "[graph] node 12 (layer1.0.conv1, conv):
  // expected …, got …".
  void validate() const;

  // Every parameter the graph expects, in node order: conv/linear weight[, bias]; bn weight,
  // bias, running_mean, running_var (weight/bias only if affine).
  std::vector<ParamSpec> param_specs() const;

  // consumers[i] = nodes that read node i's output; index size() holds readers of the graph input.
  std::vector<std::vector<int>> consumers() const;

  // Output shape of every node for an input of shape (N, C, H, W); checks channel agreement and
  // that the input and every node's output hold at most limits::kMaxElements values per image.
  // Call on a validated graph.
  std::vector<Shape> infer_shapes(const Shape& input) const;

  Json to_json() const;
  // Accepts the format above; `where` names the source in errors.
  static Graph from_json(const Json& j, const std::string& where = "graph");
};

}  // namespace genie::models
