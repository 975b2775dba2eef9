// The quantized model of Genie-M: an FP32 model (optionally BN-folded) whose every Conv2d/Linear
// has a weight quantizer and an input-activation quantizer, and whose residual identity shortcuts
// are quantized too (GENIE.md §2.1). Evaluation is simulated (fake-quant) inference through the
// model's forward hooks; save()/load() write and read the integer model.
//
// Bit conventions (§2.1): the first conv/linear layer in graph order has 8-bit weights and an
// unquantized input (the image); the second layer's input is 8-bit; the last layer (classifier)
// is W8A8; all others use wbits/abits. BatchNorm stays a separate FP32 op unless the model was
// folded (engine/fold_bn.h).
//
// Activation quantizers belong to tensors, not to layers: one tensor read by several quantized
// consumers (a block input feeding conv1 and the identity shortcut, or conv1 and the downsample
// conv) has ONE quantizer, with the largest bit width any consumer asks for. As in the reference,
// each consumer applies it separately, so under QDrop each consumer draws its own mask. Besides the
// conv/linear inputs, the unit's input is quantized where it joins the unit's output without
// passing a layer: an `add` input (the identity shortcut), a `concat` or `mul` input, a `slice`
// of it (ShuffleNet's untouched half). A downsample branch is a conv output and is added as is;
// a BatchNorm or activation reading the unit's input (DenseNet's pre-activation) is not a joining
// path — the conv after it has its own quantizer.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/defaults.h"
#include "engine/quantizer.h"
#include "models/model.h"

namespace genie::quant {

struct QuantConfig {
  int wbits = engine::defaults::kWeightBits, abits = engine::defaults::kActBits;
  bool fold_bn = false;  // recorded in the file; the model given to QModel is already folded
  // Weight grids with zero point 2^(b−1) (signed codes, zero point 0 once exported): TensorRT.
  bool symmetric_weights = false;
  // The entry and exit of the network (GENIE.md §2.1 defaults 8): first_bits for the first
  // layer's weights and the second layer's input, last_bits for the last layer's weights and input.
  int first_bits = engine::defaults::kFirstBits, last_bits = engine::defaults::kLastBits;
};

class QModel {
 public:
  QModel() = default;
  // Wraps `model` (its parameters are shared, not copied): weight quantizers initialised by the
  // clip search, activation quantizers created uninitialised (reconstruction initialises them).
  QModel(models::Model model, const QuantConfig& cfg);

  const models::Model& model() const { return model_; }
  const QuantConfig& config() const { return cfg_; }
  Device device() const { return model_.device(); }
  void to(Device d);

  // ---- quantizers ----
  std::vector<WeightQuantizer> wq;  // one per conv/linear node, graph order
  std::vector<ActQuantizer> aq;     // one per quantized tensor
  std::vector<int> wq_node;         // node of each weight quantizer
  std::vector<int> aq_value;        // producing node of each quantized tensor (-1 = image)
  int node_wq(int node) const;      // weight quantizer index of a node, or -1
  // Activation quantizer index applied to input `slot` of `node`, or -1.
  int node_aq(int node, int slot) const;
  // The inputs activation quantizer `a` is applied to: node, slot, node, slot, … in graph order.
  std::vector<int64_t> consumers_of(int a) const;
  // Quantizers used by the nodes [first, last] (indices into wq / aq).
  std::vector<int> wq_in(int first, int last) const;
  std::vector<int> aq_in(int first, int last) const;

  // ---- forward ----
  struct Run {
    bool act_quant = true;          // apply activation quantizers
    bool init_acts = false;         // initialise uninitialised quantizers on what reaches them
    ops::Generator* gen = nullptr;  // QDrop masks for quantizers with qdrop on
    float qdrop_p = 0.5f;           // QDrop: probability that an element keeps its FP value
    // Optional injected QDrop mask for (activation quantizer, consuming node, its input): return
    // an undefined tensor to quantize everything. Overrides `gen` (used by tests/goldens).
    std::function<Tensor(int aq, int node, const Tensor& x)> qdrop_mask;
  };
  // Forward hooks implementing the quantized nodes under `run` (which must outlive the hooks).
  models::ForwardHooks hooks(const Run& run);
  // Simulated quantized inference: weights as they are (hard after reconstruction), activations
  // quantized, no QDrop. Every activation quantizer must be initialised.
  Tensor forward(const Tensor& x);
  Tensor forward_range(int first, int last, const std::map<int, Tensor>& feeds, const Run& run);

  // ---- the integer model file (HDF5, all-or-nothing) ----
  // Per conv/linear `<name>`: `<name>.weight_codes` int8 (code − 2^(b−1), code ∈ [0, 2^b − 1]),
  // `<name>.weight_step` / `<name>.weight_zero` (K) float32 (zero point as an integer-valued
  // float on the code grid), attribute `bits`; `act.<i>.step` float32 (1) with attributes bits,
  // signed, value (producing node, -1 = the image) and consumers (node, input slot, … pairs: the
  // inputs it quantizes, each one separately); every other parameter (biases, BN) as FP32
  // `param.<key>`; root attributes: format "genie-qmodel-1", graph (JSON), input description,
  // settings (JSON), plus caller-supplied string/number attributes. Weights must be hard-rounded
  // and every activation quantizer initialised — unless `checkpoint`: then the FP32 weights are
  // stored too, codes only for the layers already hard, steps only for initialised activation
  // quantizers (a partly reconstructed model, resumable with ReconOptions::start_unit).
  void save(const std::string& path, const std::map<std::string, std::string>& string_attrs = {},
            const std::map<std::string, double>& number_attrs = {}, bool checkpoint = false) const;
  // Loads a file written by save() onto `device`; forward() then gives bit-identical results.
  // Layers without codes (checkpoints) are re-initialised from their FP32 weights.
  static QModel load(const std::string& path, Device device = Device::CPU);

 private:
  Tensor quantize_input(int node, int slot, const Tensor& x, const Run& run);
  void build_maps();

  models::Model model_;
  QuantConfig cfg_;
  std::vector<int> node_wq_;               // per node
  std::vector<std::vector<int>> node_aq_;  // per node, per input slot
};

}  // namespace genie::quant
