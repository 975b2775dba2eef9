// Model: a Graph plus its parameters (full state_dict keys) and the input description, with an
// eval-mode forward pass (BatchNorm uses running statistics) that Genie-D and Genie-M can hook.
//
// Hooks: `override_node` lets a caller replace a node's computation (Genie-D's swing convolution,
// Genie-M's quantized conv/linear/add); `observe` sees every node's inputs and output (Genie-D
// reads BN inputs, Genie-M collects unit inputs/outputs). The forward is differentiable: with grad
// mode on and parameters or the input requiring grad, a backward through it works as usual.
//
// Reconstruction units (spec §2.4), derived from the graph's block annotations: consecutive nodes
// of one block form a unit of that block's kind; any conv/linear outside blocks is a unit on its
// own together with the bn / relu / relu6 / leaky_relu / identity nodes that directly and solely
// follow it ("conv" / "linear" units). Parameterless nodes outside blocks (max pool of the ResNet
// stem, global pooling, flatten) belong to no unit — they run between units. Every unit reads
// exactly one tensor: the output of node `input` (-1 = the image).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/graph.h"

namespace genie::models {

struct ModelInfo {
  std::string arch;              // "resnet20", …, or "graph" for exported non-built-in networks
  int64_t C = 0, H = 0, W = 0;   // input shape
  std::vector<float> mean, std;  // per-channel input normalisation (size C; empty: none)
  int64_t num_classes = 0;       // 0: the Model takes it from a (N, K) output
};

// The input description against models/limits.h: C, H, W and C·H·W; mean and std empty or C
// values each, finite, |mean| <= kMaxAbsMean, std >= kMinStd; num_classes in [0, kMaxElements];
// the arch name's length. Errors name the field and `where` ("[model] f.h5: input_std[0] expected
// a finite value >= 1e-06, got 1.4013e-45"). The Model constructor calls it; io::load_model calls
// it before anything is sized by the input shape.
void check_info(const ModelInfo& info, const std::string& where);

struct ForwardHooks {
  // If set and returning true, `out` replaces the node's normal computation.
  std::function<bool(int node, const std::vector<Tensor>& in, Tensor& out)> override_node;
  // Called after each node with its inputs and output.
  std::function<void(int node, const std::vector<Tensor>& in, const Tensor& out)> observe;
};

struct Unit {
  std::string name;  // block path ("layer1.0") or the conv/linear node's name ("conv1", "fc")
  std::string kind;  // "conv", "linear", or the block kind ("basic_block", "bottleneck", …)
  int first = 0, last = 0;  // node range, inclusive
  int input = -1;           // node whose output feeds the unit; -1 = the image
};

class Model {
 public:
  Model() = default;
  // Validates the graph, the input description (check_info) and the parameters strictly (see
  // check_params); `where` names the source (a file path) in error messages.
  Model(Graph graph, ModelInfo info, std::map<std::string, Tensor> params,
        const std::string& where = "model");

  const Graph& graph() const { return graph_; }
  const ModelInfo& info() const { return info_; }
  const Node& node(int i) const { return graph_.nodes.at(size_t(i)); }

  // Parameters by full state_dict key ("layer1.0.bn1.running_var").
  const std::map<std::string, Tensor>& params() const { return params_; }
  // Mutable access (e.g. for requires_grad or in-place edits); shapes must stay as they are.
  std::map<std::string, Tensor>& mutable_params() { return params_; }
  const Tensor& param(const std::string& key) const;  // throws naming the key
  // Parameter `suffix` ("weight", "bias", "running_mean", "running_var") of node i, or an
  // undefined Tensor when the node has none (conv without bias, bn without affine).
  Tensor node_param(int i, const std::string& suffix) const;

  Device device() const { return device_; }
  void to(Device d);           // moves every parameter
  int64_t num_params() const;  // sum of parameter sizes (excluding BN running statistics)

  // Full forward pass on a (N, C, H, W) input on the model's device; returns the output node's
  // value (logits (N, num_classes) for classifiers).
  Tensor forward(const Tensor& x, const ForwardHooks* hooks = nullptr) const;
  // Runs nodes [first, last] and returns node `last`'s output. Every input of those nodes that
  // comes from outside the range (an index < first, or -1 for the image) must be in `feeds`.
  Tensor forward_range(int first, int last, const std::map<int, Tensor>& feeds,
                       const ForwardHooks* hooks = nullptr) const;
  Tensor forward_unit(const Unit& u, const Tensor& x, const ForwardHooks* hooks = nullptr) const {
    return forward_range(u.first, u.last, {{u.input, x}}, hooks);
  }
  // The node's normal computation (what forward runs when no hook overrides it).
  Tensor run_node(int i, const std::vector<Tensor>& in) const;

  const std::vector<int>& bn_nodes() const { return bn_nodes_; }  // execution order
  std::vector<int> strided_convs() const;                         // conv nodes with stride != 1
  const std::vector<Unit>& units() const { return units_; }
  // Residual shortcuts: add nodes, each with its two input nodes (graph order).
  const std::vector<int>& add_nodes() const { return add_nodes_; }
  // Output shape of every node for a batch of n inputs of the model's input shape.
  std::vector<Shape> node_shapes(int64_t n = 1) const;

 private:
  Tensor run_nodes(int first, int last, const std::map<int, Tensor>& feeds,
                   const ForwardHooks* hooks) const;

  Graph graph_;
  ModelInfo info_;
  std::map<std::string, Tensor> params_;
  Device device_ = Device::CPU;
  std::vector<int> bn_nodes_, add_nodes_;
  std::vector<Unit> units_;
  std::vector<std::vector<int>> consumers_;
};

// Strict parameter check against the graph: every expected key present (a missing one names the
// key, `where`, and the closest keys present), exact shapes (expected and found), no unexpected
// keys (named), finite values (the tensor is named), running_var >= 0.
void check_params(const Graph& g, const std::map<std::string, Tensor>& params,
                  const std::string& where);
// Reconstruction units of a graph (see the file comment).
std::vector<Unit> derive_units(const Graph& g);

}  // namespace genie::models
