// The quantized model: quantizer placement and bit conventions, the fake-quant forward hooks, and
// the integer model file.
#include "engine/qmodel.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "io/h5.h"
#include "io/model_file.h"

namespace genie::quant {

namespace {

bool is_layer(const models::Node& n) { return n.op == "conv" || n.op == "linear"; }

bool joins_paths(const std::string& op) {
  return op == "add" || op == "concat" || op == "slice" || op == "mul";
}

// A float dataset as float32; an integer-typed one is refused (converting it would silently give
// a different model), as io::load_model refuses them.
Tensor read_float(const io::H5Reader& r, const std::string& key) {
  GENIE_CHECK(r.stored_dtype(key) == DType::F32, "[qmodel] ", r.path(), ": dataset '", key,
              "' expected a floating-point type, got ", dtype_name(r.stored_dtype(key)));
  return r.read_f32(key);
}

bool finite(const Tensor& t) {
  const std::vector<float> v = t.detach().to_vector();
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// Quantizer steps read from a file must be finite and positive (Genie-M's steps cannot leave
// (0, inf); a file whose steps did was written by a genie before issue 16 and flips weights'
// signs).
void check_steps(const Tensor& steps, const std::string& path, const std::string& key) {
  for (float s : steps.to_vector())
    GENIE_CHECK(std::isfinite(s) && s > 0.f, "[qmodel] ", path, ": dataset '", key,
                "' expected finite positive steps, got ", s);
}

struct Layout {
  std::vector<int> wq_node, wq_bits, aq_value, aq_bits;
  std::vector<int> node_wq;
  std::vector<std::vector<int>> node_aq;
};

// Where the quantizers go and their bit widths (GENIE.md §2.1; see qmodel.h).
Layout make_layout(const models::Model& m, const QuantConfig& cfg) {
  k::check_bits("qmodel: wbits", cfg.wbits);
  k::check_bits("qmodel: abits", cfg.abits);
  k::check_bits("qmodel: first_bits", cfg.first_bits);
  k::check_bits("qmodel: last_bits", cfg.last_bits);
  const models::Graph& g = m.graph();
  Layout L;
  L.node_wq.assign(size_t(g.size()), -1);
  L.node_aq.resize(size_t(g.size()));
  for (int i = 0; i < g.size(); ++i)
    L.node_aq[size_t(i)].assign(g.nodes[size_t(i)].inputs.size(), -1);
  std::vector<int> layers;
  for (int i = 0; i < g.size(); ++i)
    if (is_layer(g.nodes[size_t(i)])) layers.push_back(i);
  GENIE_CHECK(!layers.empty(), "[qmodel] expected at least one conv or linear layer");
  std::map<int, int> value_aq;
  auto want = [&](int value, int bits) {
    auto it = value_aq.find(value);
    if (it != value_aq.end()) {
      int& b = L.aq_bits[size_t(it->second)];
      b = std::max(b, bits);
      return it->second;
    }
    L.aq_value.push_back(value);
    L.aq_bits.push_back(bits);
    const int idx = int(L.aq_value.size()) - 1;
    value_aq[value] = idx;
    return idx;
  };
  const size_t last = layers.size() - 1;
  for (size_t li = 0; li < layers.size(); ++li) {
    const int node = layers[li];
    const bool edge = li == 0 || li == last;
    L.node_wq[size_t(node)] = int(L.wq_node.size());
    L.wq_node.push_back(node);
    L.wq_bits.push_back(edge ? (li == 0 ? cfg.first_bits : cfg.last_bits) : cfg.wbits);
    if (li == 0) continue;  // the image is already 8-bit: the first layer's input stays FP
    const int value = g.nodes[size_t(node)].inputs[0];
    L.node_aq[size_t(node)][0] = want(value, li == last ? cfg.last_bits
                                             : li == 1  ? cfg.first_bits
                                                        : cfg.abits);
  }
  // Pass-through paths: the unit's input where it is joined into the output without a layer — an
  // identity shortcut's add, a concatenation, a channel split (ShuffleNet's untouched half), a
  // gating multiply.
  for (const auto& u : m.units())
    for (int i = u.first; i <= u.last; ++i) {
      const models::Node& n = g.nodes[size_t(i)];
      if (!joins_paths(n.op) || u.input < 0) continue;
      for (size_t k = 0; k < n.inputs.size(); ++k)
        if (n.inputs[k] == u.input) L.node_aq[size_t(i)][k] = want(u.input, cfg.abits);
    }
  return L;
}

}  // namespace

QModel::QModel(models::Model model, const QuantConfig& cfg) : model_(std::move(model)), cfg_(cfg) {
  build_maps();
  for (size_t i = 0; i < wq_node.size(); ++i)
    wq[i] = WeightQuantizer::from_weight(model_.node_param(wq_node[i], "weight"), wq[i].bits(),
                                         cfg_.symmetric_weights);
}

void QModel::build_maps() {
  Layout L = make_layout(model_, cfg_);
  wq_node = L.wq_node;
  aq_value = L.aq_value;
  node_wq_ = L.node_wq;
  node_aq_ = L.node_aq;
  wq.clear();
  aq.clear();
  // Placeholders carrying the bit widths; the constructor or load() fills them in.
  for (int b : L.wq_bits) wq.emplace_back(b);
  for (int b : L.aq_bits) aq.emplace_back(b);
}

int QModel::node_wq(int node) const { return node_wq_.at(size_t(node)); }

std::vector<int64_t> QModel::consumers_of(int a) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < node_aq_.size(); ++i)
    for (size_t k = 0; k < node_aq_[i].size(); ++k)
      if (node_aq_[i][k] == a) out.insert(out.end(), {int64_t(i), int64_t(k)});
  return out;
}
int QModel::node_aq(int node, int slot) const { return node_aq_.at(size_t(node)).at(size_t(slot)); }

std::vector<int> QModel::wq_in(int first, int last) const {
  std::vector<int> out;
  for (int i = first; i <= last; ++i)
    if (node_wq_[size_t(i)] >= 0) out.push_back(node_wq_[size_t(i)]);
  return out;
}

std::vector<int> QModel::aq_in(int first, int last) const {
  std::set<int> s;
  for (int i = first; i <= last; ++i)
    for (int a : node_aq_[size_t(i)])
      if (a >= 0) s.insert(a);
  return std::vector<int>(s.begin(), s.end());
}

void QModel::to(Device d) {
  model_.to(d);
  for (auto& q : wq) q.to(d);
  for (auto& q : aq) q.to(d);
}

Tensor QModel::quantize_input(int node, int slot, const Tensor& x, const Run& run) {
  const int a = node_aq_[size_t(node)][size_t(slot)];
  ActQuantizer& q = aq[size_t(a)];
  if (!q.initialized()) {
    GENIE_CHECK(run.init_acts, "[qmodel] activation quantizer ", a, " (input of node ", node, ", ",
                model_.node(node).name,
                ") is not initialised; reconstruct or load the model first");
    NoGradGuard ng;
    q.init(x.detach());
  }
  Tensor mask;
  if (run.qdrop_mask)
    mask = run.qdrop_mask(a, node, x);
  else if (q.qdrop && run.gen)
    mask = run.qdrop_p == 0.5f
               ? ops::qdrop_mask(x.shape(), *run.gen, x.device())
               : ops::bernoulli_mask(x.shape(), 1.f - run.qdrop_p, *run.gen, x.device());
  return q.forward_masked(x, mask);
}

models::ForwardHooks QModel::hooks(const Run& run) {
  models::ForwardHooks h;
  h.override_node = [this, &run](int i, const std::vector<Tensor>& in, Tensor& out) {
    const int w = node_wq_[size_t(i)];
    const std::vector<int>& slots = node_aq_[size_t(i)];
    const bool any_act = std::any_of(slots.begin(), slots.end(), [](int a) { return a >= 0; });
    if (w < 0 && !any_act) return false;
    std::vector<Tensor> x(in);
    if (run.act_quant)
      for (size_t k = 0; k < slots.size(); ++k)
        if (slots[k] >= 0) x[k] = quantize_input(i, int(k), in[k], run);
    const models::Node& n = model_.node(i);
    if (n.op == "conv")
      out = ops::conv2d(x[0], wq[size_t(w)].forward(), model_.node_param(i, "bias"), n.stride,
                        n.pad, n.groups);
    else if (n.op == "linear")
      out = ops::linear(x[0], wq[size_t(w)].forward(), model_.node_param(i, "bias"));
    else
      out = model_.run_node(i, x);
    return true;
  };
  return h;
}

Tensor QModel::forward(const Tensor& x) {
  Run run;
  models::ForwardHooks h = hooks(run);
  return model_.forward(x, &h);
}

Tensor QModel::forward_range(int first, int last, const std::map<int, Tensor>& feeds,
                             const Run& run) {
  models::ForwardHooks h = hooks(run);
  return model_.forward_range(first, last, feeds, &h);
}

// ---------------------------------------------------------------------------------------------
// The integer model file

void QModel::save(const std::string& path, const std::map<std::string, std::string>& string_attrs,
                  const std::map<std::string, double>& number_attrs, bool checkpoint) const {
  io::H5Writer w(path);
  const models::ModelInfo& info = model_.info();
  w.set_attr_string("format", "genie-qmodel-1");
  w.set_attr_string("arch", info.arch);
  w.set_attr_string("graph", model_.graph().to_json().dump());
  io::write_input_attrs(w, info);
  Json settings = Json::object();
  settings.set("wbits", cfg_.wbits);
  settings.set("abits", cfg_.abits);
  settings.set("fold_bn", cfg_.fold_bn);
  if (cfg_.symmetric_weights) settings.set("symmetric_weights", true);
  settings.set("first_layer", str("W", cfg_.first_bits, ", input not quantized"));
  settings.set("second_layer_input_bits", cfg_.first_bits);
  settings.set("last_layer", str("W", cfg_.last_bits, "A", cfg_.last_bits));
  settings.set("first_bits", cfg_.first_bits);
  settings.set("last_bits", cfg_.last_bits);
  settings.set("residual_shortcut_quantized", true);
  w.set_attr_string("settings", settings.dump());
  w.set_attr_i64("checkpoint", checkpoint ? 1 : 0);
  std::set<std::string> weight_keys;
  for (size_t i = 0; i < wq.size(); ++i) {
    const WeightQuantizer& q = wq[i];
    const std::string name = model_.node(wq_node[i]).name;
    if (checkpoint && !q.hard()) continue;
    GENIE_CHECK(q.hard(), "[qmodel] save: layer ", name,
                " is not hard-rounded yet (finish the reconstruction first)");
    GENIE_CHECK(valid_steps(q.step()) && finite(q.zero()), "[qmodel] save: layer ", name,
                " has non-positive or non-finite weight steps or zero points; nothing is written");
    if (!checkpoint) weight_keys.insert(name + ".weight");
    const std::vector<float> c = q.codes().to_vector();
    Tensor codes = Tensor::empty(q.w_floor().shape(), Device::CPU, DType::I8);
    int8_t* cp = codes.data_as<int8_t>();
    const int off = 1 << (q.bits() - 1);
    for (size_t j = 0; j < c.size(); ++j) cp[j] = int8_t(int(c[j]) - off);
    w.write(name + ".weight_codes", codes);
    w.set_attr_i64("bits", q.bits(), name + ".weight_codes");
    w.set_attr_i64("code_offset", off, name + ".weight_codes");
    w.write(name + ".weight_step", q.step().detach());
    w.write(name + ".weight_zero", q.zero());
  }
  for (size_t i = 0; i < aq.size(); ++i) {
    const ActQuantizer& q = aq[i];
    if (checkpoint && !q.initialized()) continue;
    GENIE_CHECK(q.initialized(), "[qmodel] save: activation quantizer ", i, " is not initialised");
    GENIE_CHECK(valid_steps(q.step()), "[qmodel] save: activation quantizer ", i,
                " has a non-positive or non-finite step; nothing is written");
    const std::string key = str("act.", i, ".step");
    w.write(key, q.step().detach());
    w.set_attr_i64("bits", q.bits(), key);
    w.set_attr_i64("signed", q.is_signed() ? 1 : 0, key);
    w.set_attr_i64("value", aq_value[i], key);
    w.set_attr_i64_vec("consumers", consumers_of(int(i)), key);
  }
  for (const auto& kv : model_.params())
    if (!weight_keys.count(kv.first)) w.write("param." + kv.first, kv.second);
  for (const auto& kv : string_attrs) w.set_attr_string(kv.first, kv.second);
  for (const auto& kv : number_attrs) w.set_attr_f64(kv.first, kv.second);
  w.commit();
}

// One layer's stored integer codes, steps and zero points, each checked before use.
static WeightQuantizer read_codes(const io::H5Reader& r, const std::string& path,
                                  const std::string& layer) {
  const std::string cname = layer + ".weight_codes";
  const int64_t bits64 = r.attr_i64("bits", cname), off64 = r.attr_i64("code_offset", cname);
  GENIE_CHECK(bits64 >= k::kMinBits && bits64 <= k::kMaxBits, "[qmodel] ", path, ": dataset '",
              cname, "' expected bits in ", k::kMinBits, "..", k::kMaxBits, ", got ", bits64);
  const int bits = int(bits64);
  GENIE_CHECK(off64 == int64_t(1) << (bits - 1), "[qmodel] ", path, ": dataset '", cname,
              "' expected code_offset ", int64_t(1) << (bits - 1), " for ", bits, " bits, got ",
              off64);
  const int off = int(off64);
  Tensor codes = r.read_i8(cname);
  std::vector<float> c(size_t(codes.numel()));
  const int8_t* cp = codes.data_as<int8_t>();
  for (size_t j = 0; j < c.size(); ++j) c[j] = float(int(cp[j]) + off);
  const Tensor step = read_float(r, layer + ".weight_step");
  const Tensor zero = read_float(r, layer + ".weight_zero");
  check_steps(step, path, layer + ".weight_step");
  GENIE_CHECK(finite(zero), "[qmodel] ", path, ": dataset '", layer,
              ".weight_zero' expected finite zero points");
  try {
    return WeightQuantizer::from_codes(Tensor::from_vector(c, codes.shape()), step, zero, bits);
  } catch (const Error& e) {
    throw Error(str("[qmodel] ", path, ": layer ", layer, ": ", e.what()));
  }
}

QModel QModel::load(const std::string& path, Device device) {
  io::H5Reader r(path);
  GENIE_CHECK(r.has_attr("format") && r.attr_string("format") == "genie-qmodel-1", "[qmodel] ",
              path, ": expected a quantized model file (format genie-qmodel-1)");
  models::Graph g = models::Graph::from_json(Json::parse(r.attr_string("graph"), path + ": graph"),
                                             path + ": graph");
  models::ModelInfo info;
  info.arch = r.attr_string("arch");
  const auto shp = r.attr_i64_vec("input_shape");
  GENIE_CHECK(shp.size() == 3, "[qmodel] ", path, ": expected input_shape [C, H, W]");
  info.C = shp[0], info.H = shp[1], info.W = shp[2];
  info.mean = r.attr_f32_vec("input_mean");
  info.std = r.attr_f32_vec("input_std");
  info.num_classes = r.attr_i64("num_classes");
  const Json settings = Json::parse(r.attr_string("settings"), path + ": settings");
  QuantConfig cfg;
  cfg.wbits = int(settings.at("wbits").as_int());
  cfg.abits = int(settings.at("abits").as_int());
  cfg.first_bits = int(settings.get_int("first_bits", 8));
  cfg.last_bits = int(settings.get_int("last_bits", 8));
  cfg.fold_bn = settings.at("fold_bn").as_bool();
  cfg.symmetric_weights = settings.get_bool("symmetric_weights", false);
  // Parameters: the FP32 ones as stored, the layer weights dequantized from their codes.
  std::map<std::string, Tensor> params;
  for (const std::string& key : r.list_datasets())
    if (key.rfind("param.", 0) == 0) params[key.substr(6)] = read_float(r, key);
  std::vector<std::pair<std::string, WeightQuantizer>> wqs;
  for (int i = 0; i < g.size(); ++i) {
    const models::Node& n = g.nodes[size_t(i)];
    if (!is_layer(n)) continue;
    const std::string cname = n.name + ".weight_codes";
    if (!r.has(cname)) {  // checkpoint: not reconstructed yet; the FP32 weight is in the params
      GENIE_CHECK(params.count(n.name + ".weight"), "[qmodel] ", path, ": layer ", n.name,
                  " has neither integer codes nor an FP32 weight");
      wqs.emplace_back(n.name, WeightQuantizer());
      continue;
    }
    const WeightQuantizer q = read_codes(r, path, n.name);
    if (!params.count(n.name + ".weight")) {  // final files: the weight is its dequantized codes
      NoGradGuard ng;
      params[n.name + ".weight"] = q.forward();
    }
    wqs.emplace_back(n.name, q);
  }
  QModel qm;
  qm.model_ = models::Model(std::move(g), info, std::move(params), path);
  qm.cfg_ = cfg;
  qm.build_maps();
  GENIE_CHECK(wqs.size() == qm.wq.size(), "[qmodel] ", path, ": expected ", qm.wq.size(),
              " quantized layers, got ", wqs.size());
  for (size_t i = 0; i < wqs.size(); ++i) {
    if (!wqs[i].second.defined()) {
      qm.wq[i] = WeightQuantizer::from_weight(qm.model_.node_param(qm.wq_node[i], "weight"),
                                              qm.wq[i].bits(), cfg.symmetric_weights);
      continue;
    }
    GENIE_CHECK(wqs[i].second.bits() == qm.wq[i].bits(), "[qmodel] ", path, ": layer ",
                wqs[i].first, " expected ", qm.wq[i].bits(), " bits, got ", wqs[i].second.bits());
    qm.wq[i] = wqs[i].second;
  }
  const bool checkpoint = r.has_attr("checkpoint") && r.attr_i64("checkpoint") != 0;
  for (size_t i = 0; i < qm.aq.size(); ++i) {
    const std::string key = str("act.", i, ".step");
    if (checkpoint && !r.has(key)) continue;
    GENIE_CHECK(r.has(key), "[qmodel] ", path, ": missing activation quantizer '", key, "'");
    GENIE_CHECK(
        r.attr_i64("value", key) == qm.aq_value[i] && r.attr_i64("bits", key) == qm.aq[i].bits(),
        "[qmodel] ", path, ": activation quantizer ", i, " expected value ", qm.aq_value[i],
        " with ", qm.aq[i].bits(), " bits, got value ", r.attr_i64("value", key), " with ",
        r.attr_i64("bits", key), " bits");
    if (r.has_attr("consumers", key))  // files before 2026-11-26 lack it
      GENIE_CHECK(r.attr_i64_vec("consumers", key) == qm.consumers_of(int(i)), "[qmodel] ", path,
                  ": activation quantizer ", i, " is applied to other inputs than this graph's");
    const Tensor step = read_float(r, key);
    GENIE_CHECK(step.numel() == 1, "[qmodel] ", path, ": dataset '", key,
                "' expected one step, got shape ", shape_str(step.shape()));
    check_steps(step, path, key);
    qm.aq[i].set_state(r.attr_i64("signed", key) != 0, step.item(), Device::CPU);
  }
  qm.to(device);
  return qm;
}

}  // namespace genie::quant
