// Model: strict parameter checks, the hookable eval-mode forward, units and layer queries.
#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "kernels/util.h"

namespace genie::models {

// ---------------------------------------------------------------------------------------------
// Parameter checks

static std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void check_params(const Graph& g, const std::map<std::string, Tensor>& params,
                  const std::string& where) {
  const std::vector<ParamSpec> specs = g.param_specs();
  std::vector<std::string> present;
  for (const auto& kv : params) {
    // Before any key is compared (edit distances) or printed.
    GENIE_CHECK(kv.first.size() <= limits::kMaxKey, "[model] ", where, ": tensor name of ",
                kv.first.size(), " characters, expected at most ", limits::kMaxKey, " ('",
                limits::clip(kv.first), "')");
    if (!ends_with(kv.first, "num_batches_tracked")) present.push_back(kv.first);
  }

  // Missing keys first: they are the most common mistake (wrong arch, renamed modules).
  std::vector<std::string> missing;
  for (const auto& s : specs)
    if (!params.count(s.key)) missing.push_back(s.key);
  if (!missing.empty()) {
    const auto near = closest_keys(missing[0], present);
    std::string more;
    if (missing.size() > 1) {
      std::vector<std::string> head(
          missing.begin() + 1, missing.begin() + std::min<ptrdiff_t>(ptrdiff_t(missing.size()), 4));
      more = str("; ", missing.size() - 1, " more missing: ", join(head),
                 missing.size() > 4 ? ", …" : "");
    }
    GENIE_CHECK(false, "[model] ", where, ": missing tensor '", missing[0],
                "' (closest keys present: ", near.empty() ? std::string("none") : join(near), ")",
                more);
  }

  std::set<std::string> expected;
  for (const auto& s : specs) {
    expected.insert(s.key);
    const Tensor& t = params.at(s.key);
    GENIE_CHECK(t.defined() && t.dtype() == DType::F32, "[model] ", where, ": tensor '", s.key,
                "' expected float32, got ", t.defined() ? dtype_name(t.dtype()) : "undefined");
    GENIE_CHECK(t.shape() == s.shape, "[model] ", where, ": tensor '", s.key, "' expected shape ",
                shape_str(s.shape), ", found ", shape_str(t.shape()));
  }

  std::vector<std::string> extra;
  for (const auto& k : present)
    if (!expected.count(k)) extra.push_back(k);
  if (!extra.empty()) {
    std::vector<std::string> head(extra.begin(),
                                  extra.begin() + std::min<ptrdiff_t>(ptrdiff_t(extra.size()), 6));
    GENIE_CHECK(false, "[model] ", where, ": ", extra.size(),
                " unexpected tensor(s) not used by the architecture: ", join(head),
                extra.size() > 6 ? ", …" : "");
  }

  for (const auto& s : specs) {
    const Tensor& t = params.at(s.key);
    std::vector<float> host;  // only for tensors off the CPU
    const float* v = t.device() == Device::CPU ? t.data() : (host = t.to_vector()).data();
    const bool is_var = ends_with(s.key, ".running_var");
    for (size_t i = 0; i < size_t(t.numel()); ++i) {
      GENIE_CHECK(std::isfinite(v[i]), "[model] ", where, ": tensor '", s.key,
                  "' expected finite values, got ", v[i], " at flat index ", i);
      GENIE_CHECK(!is_var || v[i] >= 0.f, "[model] ", where, ": tensor '", s.key,
                  "' expected a non-negative running variance, got ", v[i], " at channel ", i);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The input description

void check_info(const ModelInfo& info, const std::string& where) {
  using namespace limits;
  GENIE_CHECK(info.C >= 1 && info.C <= kMaxChannels && info.H >= 1 && info.H <= kMaxSpatial &&
                  info.W >= 1 && info.W <= kMaxSpatial,
              "[model] ", where, ": input_shape expected [C, H, W] with C in [1, ", kMaxChannels,
              "] and H, W in [1, ", kMaxSpatial, "], got (", info.C, ", ", info.H, ", ", info.W,
              ")");
  GENIE_CHECK(info.C * info.H * info.W <= kMaxElements, "[model] ", where,
              ": input_shape expected at most ", kMaxElements, " values per image (C·H·W), got (",
              info.C, ", ", info.H, ", ", info.W, ")");
  GENIE_CHECK(info.mean.empty() || int64_t(info.mean.size()) == info.C, "[model] ", where,
              ": input_mean expected ", info.C, " values (input_shape C), got ", info.mean.size());
  GENIE_CHECK(info.std.empty() || int64_t(info.std.size()) == info.C, "[model] ", where,
              ": input_std expected ", info.C, " values (input_shape C), got ", info.std.size());
  for (size_t c = 0; c < info.mean.size(); ++c)
    GENIE_CHECK(std::isfinite(info.mean[c]) && std::fabs(info.mean[c]) <= kMaxAbsMean, "[model] ",
                where, ": input_mean[", c, "] expected a finite value in [-", kMaxAbsMean, ", ",
                kMaxAbsMean, "], got ", info.mean[c]);
  for (size_t c = 0; c < info.std.size(); ++c)
    GENIE_CHECK(std::isfinite(info.std[c]) && info.std[c] >= kMinStd, "[model] ", where,
                ": input_std[", c, "] expected a finite value >= ", kMinStd, ", got ", info.std[c]);
  GENIE_CHECK(info.num_classes >= 0 && info.num_classes <= kMaxElements, "[model] ", where,
              ": num_classes expected a value in [1, ", kMaxElements, "] (0: from the graph), got ",
              info.num_classes);
  GENIE_CHECK(info.arch.size() <= kMaxName, "[model] ", where, ": arch expected at most ", kMaxName,
              " characters, got ", info.arch.size(), " ('", clip(info.arch), "')");
}

// ---------------------------------------------------------------------------------------------
// Units

static bool absorbable(const std::string& op) { return op == "bn" || is_pointwise_op(op); }

std::vector<Unit> derive_units(const Graph& g) {
  const int n = g.size();
  const auto cons = g.consumers();
  std::vector<Unit> units;
  std::set<std::string> seen_blocks;
  int i = 0;
  while (i < n) {
    const Node& nd = g.nodes[size_t(i)];
    if (!nd.block.empty()) {
      int j = i;
      while (j + 1 < n && g.nodes[size_t(j + 1)].block == nd.block) ++j;
      GENIE_CHECK(seen_blocks.insert(nd.block).second, "[units] block '", nd.block,
                  "' expected contiguous nodes, got a second run starting at node ", i);
      std::set<int> ext;
      for (int k = i; k <= j; ++k)
        for (int in : g.nodes[size_t(k)].inputs)
          if (in < i) ext.insert(in);
      GENIE_CHECK(ext.size() == 1, "[units] block '", nd.block, "' expected one input tensor, got ",
                  ext.size());
      for (int k = i; k < j; ++k)
        for (int c : cons[size_t(k)])
          GENIE_CHECK(c <= j, "[units] block '", nd.block, "': node ", k,
                      " is read outside the block (by node ", c, ")");
      units.push_back(
          {nd.block, nd.block_kind.empty() ? "block" : nd.block_kind, i, j, *ext.begin()});
      i = j + 1;
    } else if (nd.op == "conv" || nd.op == "linear") {
      int j = i;
      while (j + 1 < n) {
        const Node& nx = g.nodes[size_t(j + 1)];
        if (!nx.block.empty() || !absorbable(nx.op) || nx.inputs != std::vector<int>{j} ||
            cons[size_t(j)] != std::vector<int>{j + 1} || j == g.output_node())
          break;
        ++j;
      }
      units.push_back({nd.name, nd.op, i, j, nd.inputs[0]});
      i = j + 1;
    } else {
      ++i;
    }
  }
  return units;
}

// ---------------------------------------------------------------------------------------------
// Model

Model::Model(Graph graph, ModelInfo info, std::map<std::string, Tensor> params,
             const std::string& where)
    : graph_(std::move(graph)), info_(std::move(info)) {
  graph_.validate();
  check_info(info_, where);
  // Shapes must chain for the declared input (catches a wrong input_shape early).
  const std::vector<Shape> shapes = graph_.infer_shapes({1, info_.C, info_.H, info_.W});
  const Shape& out = shapes[size_t(graph_.output_node())];
  // A classifier built without num_classes takes it from its output, so that a file written from
  // this model states it (io::load_model requires a stated num_classes to be >= 1).
  if (info_.num_classes == 0 && out.size() == 2) info_.num_classes = out[1];
  if (info_.num_classes > 0)
    GENIE_CHECK(out.size() == 2 && out[1] == info_.num_classes, "[model] ", where,
                ": expected the output to have num_classes = ", info_.num_classes,
                " columns, got shape ", shape_str(out));
  // Drop num_batches_tracked and friends before the strict check.
  for (auto it = params.begin(); it != params.end();)
    it = ends_with(it->first, "num_batches_tracked") ? params.erase(it) : std::next(it);
  check_params(graph_, params, where);
  params_ = std::move(params);
  device_ = params_.empty() ? Device::CPU : params_.begin()->second.device();
  for (auto& kv : params_) kv.second = kv.second.to(device_);
  for (int i = 0; i < graph_.size(); ++i) {
    if (graph_.nodes[size_t(i)].op == "bn") bn_nodes_.push_back(i);
    if (graph_.nodes[size_t(i)].op == "add") add_nodes_.push_back(i);
  }
  units_ = derive_units(graph_);
  consumers_ = graph_.consumers();
}

const Tensor& Model::param(const std::string& key) const {
  auto it = params_.find(key);
  if (it == params_.end()) {
    std::vector<std::string> keys;
    for (const auto& kv : params_) keys.push_back(kv.first);
    GENIE_CHECK(false, "[model] no parameter '", key, "' (closest: ", join(closest_keys(key, keys)),
                ")");
  }
  return it->second;
}

Tensor Model::node_param(int i, const std::string& suffix) const {
  auto it = params_.find(node(i).name + "." + suffix);
  return it == params_.end() ? Tensor() : it->second;
}

void Model::to(Device d) {
  for (auto& kv : params_) kv.second = kv.second.to(d);
  device_ = d;
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (const auto& kv : params_)
    if (!ends_with(kv.first, ".running_mean") && !ends_with(kv.first, ".running_var"))
      n += kv.second.numel();
  return n;
}

std::vector<int> Model::strided_convs() const {
  std::vector<int> v;
  for (int i = 0; i < graph_.size(); ++i)
    if (graph_.nodes[size_t(i)].op == "conv" && graph_.nodes[size_t(i)].stride != 1) v.push_back(i);
  return v;
}

std::vector<Shape> Model::node_shapes(int64_t n) const {
  return graph_.infer_shapes({n, info_.C, info_.H, info_.W});
}

Tensor Model::run_node(int i, const std::vector<Tensor>& in) const {
  const Node& n = node(i);
  const Tensor& x = in.at(0);
  if (n.op == "conv")
    return ops::conv2d(x, node_param(i, "weight"), node_param(i, "bias"), n.stride, n.pad,
                       n.groups);
  if (n.op == "bn")
    return ops::batch_norm_eval(x, node_param(i, "running_mean"), node_param(i, "running_var"),
                                node_param(i, "weight"), node_param(i, "bias"), n.eps);
  if (n.op == "linear") return ops::linear(x, node_param(i, "weight"), node_param(i, "bias"));
  if (n.op == "relu") return ops::relu(x);
  if (n.op == "relu6") return ops::relu6(x);
  if (n.op == "leaky_relu") return ops::leaky_relu(x, n.slope);
  if (n.op == "sigmoid") return ops::sigmoid(x);
  if (n.op == "silu") return ops::silu(x);
  if (n.op == "hardswish") return ops::hardswish(x);
  if (n.op == "hardsigmoid") return ops::hardsigmoid(x);
  if (n.op == "gelu") return ops::gelu(x);
  if (n.op == "add") return ops::add(x, in.at(1));
  if (n.op == "mul") return ops::mul_bcast(x, in.at(1));
  if (n.op == "concat") return in.size() == 1 ? x : ops::concat_channels(in);
  if (n.op == "slice") return ops::channel_slice(x, n.start, n.out_ch);
  if (n.op == "shuffle") return ops::channel_shuffle(x, n.groups);
  if (n.op == "maxpool") return ops::max_pool2d(x, n.kernel, n.stride, n.pad, n.ceil_mode);
  if (n.op == "avgpool2d")
    return ops::avg_pool2d(x, n.kernel, n.stride, n.pad, n.ceil_mode, n.count_include_pad);
  if (n.op == "adaptive_avgpool") return ops::adaptive_avg_pool2d(x, n.out_h, n.out_w);
  if (n.op == "avgpool") {
    Tensor y = ops::global_avg_pool(x);
    return n.keepdim ? ops::reshape(y, {x.dim(0), x.dim(1), 1, 1}) : y;
  }
  if (n.op == "pad") return ops::zero_pad(x, n.pads[0], n.pads[1], n.pads[2], n.pads[3]);
  if (n.op == "flatten") return ops::flatten(x);
  if (n.op == "identity") return x;
  GENIE_CHECK(false, "[model] node ", i, ": unknown op '", n.op, "'");
  return Tensor();
}

Tensor Model::run_nodes(int first, int last, const std::map<int, Tensor>& feeds,
                        const ForwardHooks* hooks) const {
  GENIE_CHECK(first >= 0 && first <= last && last < graph_.size(),
              "[forward_range] expected 0 <= first <= last < ", graph_.size(), ", got first ",
              first, " last ", last);
  // Remaining readers of each value inside the range, so intermediates are freed early.
  std::vector<int> uses(size_t(last - first + 1), 0);
  for (int i = first; i <= last; ++i)
    for (int c : consumers_[size_t(i)])
      if (c <= last) ++uses[size_t(i - first)];
  std::vector<Tensor> vals(size_t(last - first + 1));
  std::vector<Tensor> in;
  for (int i = first; i <= last; ++i) {
    const Node& n = node(i);
    in.clear();
    for (int j : n.inputs) {
      if (j >= first) {
        in.push_back(vals[size_t(j - first)]);
      } else {
        auto it = feeds.find(j);
        GENIE_CHECK(it != feeds.end(), "[forward_range] node ", i, " (", n.name, ", ", n.op,
                    ") reads ", j < 0 ? std::string("the image") : str("node ", j),
                    ", which is outside [", first, ", ", last, "] and not in the feeds");
        in.push_back(it->second);
      }
    }
    Tensor out;
    if (!(hooks && hooks->override_node && hooks->override_node(i, in, out))) out = run_node(i, in);
    if (hooks && hooks->observe) hooks->observe(i, in, out);
    vals[size_t(i - first)] = out;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const int j = n.inputs[k];
      if (std::find(n.inputs.begin(), n.inputs.begin() + ptrdiff_t(k), j) !=
          n.inputs.begin() + ptrdiff_t(k))
        continue;  // add(x, x), concat(x, …, x): one reader
      if (j >= first && --uses[size_t(j - first)] == 0 && j != last)
        vals[size_t(j - first)] = Tensor();
    }
  }
  return vals.back();
}

Tensor Model::forward(const Tensor& x, const ForwardHooks* hooks) const {
  GENIE_CHECK(x.ndim() == 4 && x.dim(1) == info_.C, "[forward] expected input (N, ", info_.C,
              ", H, W), got ", x.describe());
  GENIE_CHECK(x.device() == device_, "[forward] expected the input on ", device_name(device_),
              " (the model's device), got ", x.describe());
  return run_nodes(0, graph_.output_node(), {{-1, x}}, hooks);
}

Tensor Model::forward_range(int first, int last, const std::map<int, Tensor>& feeds,
                            const ForwardHooks* hooks) const {
  return run_nodes(first, last, feeds, hooks);
}

}  // namespace genie::models
