// Graph: structural validation, expected parameters, shape inference, JSON round trip.
#include "models/graph.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace genie::models {

const std::vector<std::string>& known_ops() {
  static const std::vector<std::string> ops = {"conv",    "bn",         "linear",  "relu",
                                               "relu6",   "leaky_relu", "add",     "maxpool",
                                               "avgpool", "flatten",    "identity"};
  return ops;
}

static bool has_params(const std::string& op) {
  return op == "conv" || op == "bn" || op == "linear";
}

static std::string node_tag(const Graph& g, int i) {
  const Node& n = g.nodes[size_t(i)];
  return str("node ", i, " (", n.name.empty() ? std::string("-") : limits::clip(n.name), ", ",
             limits::clip(n.op), ")");
}

// "[graph] node 3 (conv1, conv): expected stride in [1, 16384], got 0".
static void check_range(const std::string& tag, const char* field, int64_t v, int64_t lo,
                        int64_t hi) {
  GENIE_CHECK(v >= lo && v <= hi, "[graph] ", tag, ": expected ", field, " in [", lo, ", ", hi,
              "], got ", v);
}

static void check_name(const std::string& tag, const char* field, const std::string& s) {
  GENIE_CHECK(s.size() <= limits::kMaxName, "[graph] ", tag, ": expected a ", field, " of at most ",
              limits::kMaxName, " characters, got ", s.size(), " ('", limits::clip(s), "')");
}

// The sizes and constants of node n (its op's fields only), against models/limits.h.
static void check_sizes(const Node& n, const std::string& tag) {
  using limits::kMaxChannels;
  using limits::kMaxElements;
  using limits::kMaxSpatial;
  if (n.op == "conv" || n.op == "maxpool") {
    check_range(tag, "kernel", n.kernel, 1, kMaxSpatial);
    check_range(tag, "stride", n.stride, 1, kMaxSpatial);
    check_range(tag, "pad", n.pad, 0, kMaxSpatial);
  }
  if (n.op == "conv") {
    check_range(tag, "in channels", n.in_ch, 1, kMaxChannels);
    check_range(tag, "out channels", n.out_ch, 1, kMaxChannels);
    check_range(tag, "groups", n.groups, 1, kMaxChannels);
    GENIE_CHECK(n.in_ch % n.groups == 0 && n.out_ch % n.groups == 0, "[graph] ", tag,
                ": expected groups dividing in/out channels, got groups ", n.groups, " for ",
                n.in_ch, " -> ", n.out_ch);
  } else if (n.op == "bn") {
    check_range(tag, "channels", n.out_ch, 1, kMaxChannels);
    GENIE_CHECK(std::isfinite(n.eps) && n.eps > 0.f && n.eps <= limits::kMaxEps, "[graph] ", tag,
                ": expected eps in (0, ", limits::kMaxEps, "], got ", n.eps);
  } else if (n.op == "linear") {
    check_range(tag, "in features", n.in_ch, 1, kMaxElements);
    check_range(tag, "out features", n.out_ch, 1, kMaxElements);
  } else if (n.op == "leaky_relu") {
    GENIE_CHECK(std::isfinite(n.slope), "[graph] ", tag, ": expected a finite slope, got ",
                n.slope);
  }
}

int Graph::add(Node n) {
  if (n.inputs.empty()) n.inputs = {int(nodes.size()) - 1};
  nodes.push_back(std::move(n));
  return int(nodes.size()) - 1;
}

void Graph::validate() const {
  GENIE_CHECK(!nodes.empty(), "[graph] expected at least one node, got none");
  GENIE_CHECK(output >= -1 && output < int(nodes.size()), "[graph] expected output in [-1, ",
              nodes.size(), "), got ", output);
  const auto& ops = known_ops();
  std::set<std::string> owners;
  for (int i = 0; i < int(nodes.size()); ++i) {
    const Node& n = nodes[size_t(i)];
    const std::string tag = node_tag(*this, i);
    check_name(tag, "name", n.name);
    check_name(tag, "op", n.op);
    check_name(tag, "block", n.block);
    check_name(tag, "block_kind", n.block_kind);
    GENIE_CHECK(std::find(ops.begin(), ops.end(), n.op) != ops.end(), "[graph] ", tag,
                ": unknown op '", limits::clip(n.op),
                "' (known: conv, bn, linear, relu, relu6, leaky_relu, add, "
                "maxpool, avgpool, flatten, identity)");
    const size_t arity = n.op == "add" ? 2 : 1;
    GENIE_CHECK(n.inputs.size() == arity, "[graph] ", tag, ": expected ", arity, " input(s), got ",
                n.inputs.size());
    for (int in : n.inputs)
      GENIE_CHECK(in >= -1 && in < i, "[graph] ", tag,
                  ": expected inputs from earlier nodes (-1 = graph input), got ", in);
    if (has_params(n.op)) {
      GENIE_CHECK(!n.name.empty(), "[graph] ", tag, ": expected a parameter name, got ''");
      GENIE_CHECK(owners.insert(n.name).second, "[graph] ", tag, ": parameter name '", n.name,
                  "' used by two nodes");
    }
    check_sizes(n, tag);
  }
  // Parameter tensors (sizes bounded above, so the counts cannot overflow).
  for (const ParamSpec& p : param_specs())
    GENIE_CHECK(numel_of(p.shape) <= limits::kMaxElements, "[graph] ", node_tag(*this, p.node),
                ": expected at most ", limits::kMaxElements, " values in '", p.key, "', got shape ",
                shape_str(p.shape));
}

std::vector<ParamSpec> Graph::param_specs() const {
  std::vector<ParamSpec> specs;
  for (int i = 0; i < int(nodes.size()); ++i) {
    const Node& n = nodes[size_t(i)];
    const std::string p = n.name + ".";
    if (n.op == "conv") {
      specs.push_back({p + "weight", {n.out_ch, n.in_ch / n.groups, n.kernel, n.kernel}, i});
      if (n.has_bias) specs.push_back({p + "bias", {n.out_ch}, i});
    } else if (n.op == "linear") {
      specs.push_back({p + "weight", {n.out_ch, n.in_ch}, i});
      if (n.has_bias) specs.push_back({p + "bias", {n.out_ch}, i});
    } else if (n.op == "bn") {
      if (n.affine) {
        specs.push_back({p + "weight", {n.out_ch}, i});
        specs.push_back({p + "bias", {n.out_ch}, i});
      }
      specs.push_back({p + "running_mean", {n.out_ch}, i});
      specs.push_back({p + "running_var", {n.out_ch}, i});
    }
  }
  return specs;
}

std::vector<std::vector<int>> Graph::consumers() const {
  std::vector<std::vector<int>> c(nodes.size() + 1);
  for (int i = 0; i < int(nodes.size()); ++i)
    for (int in : nodes[size_t(i)].inputs) {
      auto& v = c[in < 0 ? nodes.size() : size_t(in)];
      if (v.empty() || v.back() != i) v.push_back(i);
    }
  return c;
}

std::vector<Shape> Graph::infer_shapes(const Shape& input) const {
  GENIE_CHECK(input.size() == 4, "[graph] expected an input shape (N, C, H, W), got ",
              shape_str(input));
  // Values per image (numel_of throws rather than wraps); bounding the input and every output
  // keeps the size arithmetic below far inside int64.
  auto per_image = [](const Shape& s) { return numel_of(Shape(s.begin() + 1, s.end())); };
  GENIE_CHECK(input[0] >= 0 && per_image(input) <= limits::kMaxElements,
              "[graph] expected an input of at most ", limits::kMaxElements,
              " values per image, got ", shape_str(input));
  std::vector<Shape> out(nodes.size());
  for (int i = 0; i < int(nodes.size()); ++i) {
    const Node& n = nodes[size_t(i)];
    auto in_shape = [&](int k) -> const Shape& {
      const int j = n.inputs[size_t(k)];
      return j < 0 ? input : out[size_t(j)];
    };
    const Shape& x = in_shape(0);
    const std::string tag = node_tag(*this, i);
    auto need4 = [&]() {
      GENIE_CHECK(x.size() == 4, "[graph] ", tag, ": expected a 4-d input, got ", shape_str(x));
    };
    if (n.op == "conv") {
      need4();
      GENIE_CHECK(x[1] == n.in_ch, "[graph] ", tag, ": expected ", n.in_ch, " input channels, got ",
                  shape_str(x));
      GENIE_CHECK(x[2] + 2 * n.pad >= n.kernel && x[3] + 2 * n.pad >= n.kernel, "[graph] ", tag,
                  ": input ", shape_str(x), " is too small for kernel ", n.kernel, " pad ", n.pad);
      const int64_t P = (x[2] + 2 * n.pad - n.kernel) / n.stride + 1;
      const int64_t Q = (x[3] + 2 * n.pad - n.kernel) / n.stride + 1;
      out[size_t(i)] = {x[0], n.out_ch, P, Q};
    } else if (n.op == "bn") {
      GENIE_CHECK(x.size() >= 2 && x[1] == n.out_ch, "[graph] ", tag, ": expected ", n.out_ch,
                  " channels, got ", shape_str(x));
      out[size_t(i)] = x;
    } else if (n.op == "linear") {
      GENIE_CHECK(x.size() == 2 && x[1] == n.in_ch, "[graph] ", tag, ": expected (N, ", n.in_ch,
                  "), got ", shape_str(x));
      out[size_t(i)] = {x[0], n.out_ch};
    } else if (n.op == "add") {
      GENIE_CHECK(in_shape(0) == in_shape(1), "[graph] ", tag, ": expected equal shapes, got ",
                  shape_str(in_shape(0)), " and ", shape_str(in_shape(1)));
      out[size_t(i)] = x;
    } else if (n.op == "maxpool") {
      need4();
      GENIE_CHECK(
          x[2] + 2 * n.pad >= n.kernel && x[3] + 2 * n.pad >= n.kernel && 2 * n.pad <= n.kernel,
          "[graph] ", tag, ": input ", shape_str(x), " does not fit kernel ", n.kernel, " pad ",
          n.pad);
      const int64_t P = (x[2] + 2 * n.pad - n.kernel) / n.stride + 1;
      const int64_t Q = (x[3] + 2 * n.pad - n.kernel) / n.stride + 1;
      out[size_t(i)] = {x[0], x[1], P, Q};
    } else if (n.op == "avgpool") {
      need4();
      out[size_t(i)] = {x[0], x[1]};
    } else if (n.op == "flatten") {
      GENIE_CHECK(!x.empty(), "[graph] ", tag, ": expected a batched input, got a scalar");
      out[size_t(i)] = {x[0], per_image(x)};
    } else {  // relu, relu6, leaky_relu, identity
      out[size_t(i)] = x;
    }
    GENIE_CHECK(per_image(out[size_t(i)]) <= limits::kMaxElements, "[graph] ", tag,
                ": expected at most ", limits::kMaxElements, " values per image, got output ",
                shape_str(out[size_t(i)]));
  }
  return out;
}

Json Graph::to_json() const {
  Json nodes_j = Json::array();
  for (const Node& n : nodes) {
    Json j = Json::object();
    j.set("op", n.op);
    j.set("name", n.name);
    j.set("inputs", Json::array_of(n.inputs));
    if (n.op == "conv" || n.op == "linear") {
      j.set("in", n.in_ch);
      j.set("out", n.out_ch);
    } else if (n.op == "bn") {
      j.set("out", n.out_ch);
    }
    if (n.op == "conv" || n.op == "maxpool") {
      j.set("kernel", n.kernel);
      j.set("stride", n.stride);
      j.set("pad", n.pad);
    }
    if (n.op == "conv") j.set("groups", n.groups);
    if (n.op == "conv" || n.op == "linear") j.set("bias", n.has_bias);
    if (n.op == "bn") {
      j.set("eps", n.eps);
      if (!n.affine) j.set("affine", false);
    }
    if (n.op == "leaky_relu") j.set("slope", n.slope);
    if (!n.block.empty()) {
      j.set("block", n.block);
      j.set("block_kind", n.block_kind);
    }
    nodes_j.push_back(std::move(j));
  }
  Json g = Json::object();
  g.set("format", "genie-graph-1");
  g.set("output", output);
  g.set("nodes", std::move(nodes_j));
  return g;
}

// Fields of a node object, checked on the parsed value before anything narrows it (Json::as_int
// already requires an integral value below 2^53 in magnitude). Errors name the key; from_json
// adds the source and the node.
static int64_t int_field(const Json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  const int64_t v = j.get_int(key, def);
  GENIE_CHECK(v >= lo && v <= hi, "'", key, "' expected an integer in [", lo, ", ", hi, "], got ",
              v);
  return v;
}

static float float_field(const Json& j, const char* key, double def) {
  const double v = j.get_number(key, def);
  GENIE_CHECK(std::isfinite(v) && std::isfinite(float(v)), "'", key,
              "' expected a finite float32 value, got ", v);
  return float(v);
}

static const std::string& check_length(const char* key, const std::string& s) {
  GENIE_CHECK(s.size() <= limits::kMaxName, "'", key, "' expected at most ", limits::kMaxName,
              " characters, got ", s.size(), " ('", limits::clip(s), "')");
  return s;
}

static std::string name_field(const Json& j, const char* key, const std::string& def) {
  const Json* v = j.find(key);
  return (v == nullptr || v->is_null()) ? def : check_length(key, v->as_string(key));
}

// One node object; `i` is its index (inputs must name earlier nodes).
static Node node_from_json(const Json& nj, int64_t i) {
  using limits::kMaxChannels;
  using limits::kMaxElements;
  using limits::kMaxSpatial;
  GENIE_CHECK(nj.is_object(), "expected an object, got ", nj.type_name());
  Node n;
  n.op = check_length("op", nj.at("op").as_string("op"));
  n.name = name_field(nj, "name", "");
  const Json* ins = nj.find("inputs");
  if (ins == nullptr) {
    n.inputs = {int(i) - 1};
  } else {
    for (const Json& v : ins->as_array("inputs")) {
      const int64_t in = v.as_int("inputs");
      GENIE_CHECK(in >= -1 && in < i,
                  "'inputs' expected inputs from earlier nodes (-1 = graph "
                  "input), got ",
                  in);
      n.inputs.push_back(int(in));
    }
  }
  // The widest range any op allows; validate() then holds each op to its own.
  n.in_ch = int_field(nj, "in", 0, 0, kMaxElements);
  n.out_ch = int_field(nj, "out", 0, 0, kMaxElements);
  if (n.op == "bn" && n.in_ch == 0) n.in_ch = n.out_ch;
  n.kernel = int_field(nj, "kernel", 0, 0, kMaxSpatial);
  n.stride = int_field(nj, "stride", 1, 1, kMaxSpatial);
  n.pad = int_field(nj, "pad", 0, 0, kMaxSpatial);
  n.groups = int_field(nj, "groups", 1, 1, kMaxChannels);
  n.eps = float_field(nj, "eps", 1e-5);
  n.slope = float_field(nj, "slope", 0.0);
  n.has_bias = nj.get_bool("bias", false);
  n.affine = nj.get_bool("affine", true);
  n.block = name_field(nj, "block", "");
  n.block_kind = name_field(nj, "block_kind", n.block.empty() ? "" : "block");
  return n;
}

Graph Graph::from_json(const Json& j, const std::string& where) {
  GENIE_CHECK(j.is_object(), "[graph] ", where, ": expected a JSON object, got ", j.type_name());
  const std::string fmt = j.get_string("format", "genie-graph-1");
  GENIE_CHECK(fmt == "genie-graph-1", "[graph] ", where, ": expected format 'genie-graph-1', got '",
              limits::clip(fmt), "'");
  const Json* nodes_j = j.find("nodes");
  GENIE_CHECK(nodes_j != nullptr && nodes_j->is_array(), "[graph] ", where,
              ": expected a 'nodes' array");
  Graph g;
  for (size_t i = 0; i < nodes_j->size(); ++i) {
    try {
      g.nodes.push_back(node_from_json((*nodes_j)[i], int64_t(i)));
    } catch (const Error& e) {
      throw Error(str("[graph] ", where, ": node ", i, ": ", e.what()));
    }
  }
  const int64_t output = j.get_int("output", -1);
  GENIE_CHECK(output >= -1 && output < int64_t(g.nodes.size()), "[graph] ", where,
              ": 'output' expected a node index in [-1, ", g.nodes.size(), "), got ", output);
  g.output = int(output);
  try {
    g.validate();
  } catch (const Error& e) {
    throw Error(str(e.what(), " (in ", where, ")"));
  }
  return g;
}

}  // namespace genie::models
