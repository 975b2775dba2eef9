// Graph: structural validation, expected parameters, shape inference, JSON round trip.
#include "models/graph.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace genie::models {

const std::vector<std::string>& known_ops() {
  static const std::vector<std::string> ops = {
      "conv",       "bn",       "linear",  "relu",      "relu6",
      "leaky_relu", "sigmoid",  "silu",    "hardswish", "hardsigmoid",
      "gelu",       "identity", "add",     "mul",       "concat",
      "slice",      "shuffle",  "maxpool", "avgpool2d", "adaptive_avgpool",
      "avgpool",    "pad",      "flatten"};
  return ops;
}

bool is_pointwise_op(const std::string& op) {
  return op == "relu" || op == "relu6" || op == "leaky_relu" || op == "sigmoid" || op == "silu" ||
         op == "hardswish" || op == "hardsigmoid" || op == "gelu" || op == "identity";
}

static std::string known_ops_list() {
  std::string s;
  for (const auto& o : known_ops()) s += (s.empty() ? "" : ", ") + o;
  return s;
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
  if (n.op == "conv" || n.op == "maxpool" || n.op == "avgpool2d") {
    check_range(tag, "kernel", n.kernel, 1, kMaxSpatial);
    check_range(tag, "stride", n.stride, 1, kMaxSpatial);
    check_range(tag, "pad", n.pad, 0, kMaxSpatial);
  }
  if (n.op == "maxpool" || n.op == "avgpool2d")
    GENIE_CHECK(2 * n.pad <= n.kernel, "[graph] ", tag,
                ": expected pad at most half the kernel, got pad ", n.pad, " for kernel ",
                n.kernel);
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
  } else if (n.op == "slice") {
    check_range(tag, "start", n.start, 0, kMaxChannels - 1);
    check_range(tag, "out channels", n.out_ch, 1, kMaxChannels);
  } else if (n.op == "shuffle") {
    check_range(tag, "groups", n.groups, 1, kMaxChannels);
  } else if (n.op == "adaptive_avgpool") {
    check_range(tag, "out_h", n.out_h, 1, kMaxSpatial);
    check_range(tag, "out_w", n.out_w, 1, kMaxSpatial);
  } else if (n.op == "pad") {
    for (int k = 0; k < 4; ++k) check_range(tag, "pads", n.pads[k], 0, kMaxSpatial);
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
                ": unknown op '", limits::clip(n.op), "' (known: ", known_ops_list(), ")");
    if (n.op == "concat") {
      GENIE_CHECK(!n.inputs.empty() && n.inputs.size() <= size_t(limits::kMaxChannels), "[graph] ",
                  tag, ": expected 1 to ", limits::kMaxChannels, " inputs, got ", n.inputs.size());
    } else {
      const size_t arity = n.op == "add" || n.op == "mul" ? 2 : 1;
      GENIE_CHECK(n.inputs.size() == arity, "[graph] ", tag, ": expected ", arity,
                  " input(s), got ", n.inputs.size());
    }
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

// Output length of a pooling window along one axis (PyTorch's rule: with ceil_mode the count
// rounds up, but the last window must start inside the input or its left padding).
static int64_t pooled_size(int64_t n, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t span = n + 2 * p - k;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= n + p) --out;
  return out;
}

// The output shape of node n (index i, tag for errors) given its inputs' shapes.
static Shape node_shape(const Node& n, const std::string& tag, const std::vector<Shape>& in) {
  const Shape& x = in[0];
  auto need4 = [&]() {
    GENIE_CHECK(x.size() == 4, "[graph] ", tag, ": expected a 4-d input, got ", shape_str(x));
  };
  auto window = [&]() {
    need4();
    GENIE_CHECK(x[2] + 2 * n.pad >= n.kernel && x[3] + 2 * n.pad >= n.kernel, "[graph] ", tag,
                ": input ", shape_str(x), " is too small for kernel ", n.kernel, " pad ", n.pad);
  };
  if (n.op == "conv") {
    window();
    GENIE_CHECK(x[1] == n.in_ch, "[graph] ", tag, ": expected ", n.in_ch, " input channels, got ",
                shape_str(x));
    return {x[0], n.out_ch, pooled_size(x[2], n.kernel, n.stride, n.pad, false),
            pooled_size(x[3], n.kernel, n.stride, n.pad, false)};
  }
  if (n.op == "bn") {
    GENIE_CHECK(x.size() >= 2 && x[1] == n.out_ch, "[graph] ", tag, ": expected ", n.out_ch,
                " channels, got ", shape_str(x));
    return x;
  }
  if (n.op == "linear") {
    GENIE_CHECK(x.size() == 2 && x[1] == n.in_ch, "[graph] ", tag, ": expected (N, ", n.in_ch,
                "), got ", shape_str(x));
    return {x[0], n.out_ch};
  }
  if (n.op == "add") {
    GENIE_CHECK(in[0] == in[1], "[graph] ", tag, ": expected equal shapes, got ", shape_str(in[0]),
                " and ", shape_str(in[1]));
    return x;
  }
  if (n.op == "mul") {
    if (in[0] == in[1]) return x;
    const bool big0 = in[0].size() == 4 && in[0][2] * in[0][3] > 1;
    const Shape& big = big0 ? in[0] : in[1];
    const Shape& small = big0 ? in[1] : in[0];
    GENIE_CHECK(big.size() == 4 && small == Shape({big[0], big[1], 1, 1}), "[graph] ", tag,
                ": expected equal shapes or (N, C, H, W) and (N, C, 1, 1), got ", shape_str(in[0]),
                " and ", shape_str(in[1]));
    return big;
  }
  if (n.op == "concat") {
    Shape out = x;
    GENIE_CHECK(x.size() >= 2, "[graph] ", tag, ": expected inputs (N, C, …), got ", shape_str(x));
    for (size_t k = 1; k < in.size(); ++k) {
      Shape a = in[k];
      if (a.size() == x.size()) a[1] = x[1];  // all but the channels must agree
      GENIE_CHECK(a == x, "[graph] ", tag, ": expected inputs that differ only in channels, got ",
                  shape_str(x), " and ", shape_str(in[k]));
      out[1] += in[k][1];
    }
    GENIE_CHECK(out[1] <= limits::kMaxChannels, "[graph] ", tag, ": expected at most ",
                limits::kMaxChannels, " channels, got ", out[1]);
    return out;
  }
  if (n.op == "slice") {
    GENIE_CHECK(x.size() >= 2 && n.start + n.out_ch <= x[1], "[graph] ", tag, ": channels [",
                n.start, ", ", n.start + n.out_ch, ") are outside the input ", shape_str(x));
    Shape out = x;
    out[1] = n.out_ch;
    return out;
  }
  if (n.op == "shuffle") {
    GENIE_CHECK(x.size() >= 2 && x[1] % n.groups == 0, "[graph] ", tag, ": expected channels ",
                "divisible by groups ", n.groups, ", got ", shape_str(x));
    return x;
  }
  if (n.op == "maxpool" || n.op == "avgpool2d") {
    window();
    return {x[0], x[1], pooled_size(x[2], n.kernel, n.stride, n.pad, n.ceil_mode),
            pooled_size(x[3], n.kernel, n.stride, n.pad, n.ceil_mode)};
  }
  if (n.op == "adaptive_avgpool") {
    need4();
    return {x[0], x[1], n.out_h, n.out_w};
  }
  if (n.op == "avgpool") {
    need4();
    return n.keepdim ? Shape{x[0], x[1], 1, 1} : Shape{x[0], x[1]};
  }
  if (n.op == "pad") {
    need4();
    return {x[0], x[1], x[2] + n.pads[2] + n.pads[3], x[3] + n.pads[0] + n.pads[1]};
  }
  if (n.op == "flatten") {
    GENIE_CHECK(!x.empty(), "[graph] ", tag, ": expected a batched input, got a scalar");
    return {x[0], numel_of(Shape(x.begin() + 1, x.end()))};
  }
  return x;  // pointwise activations, identity
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
  std::vector<Shape> in;
  for (int i = 0; i < int(nodes.size()); ++i) {
    const Node& n = nodes[size_t(i)];
    in.clear();
    for (int j : n.inputs) in.push_back(j < 0 ? input : out[size_t(j)]);
    const std::string tag = node_tag(*this, i);
    out[size_t(i)] = node_shape(n, tag, in);
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
    if (n.op == "conv" || n.op == "maxpool" || n.op == "avgpool2d") {
      j.set("kernel", n.kernel);
      j.set("stride", n.stride);
      j.set("pad", n.pad);
    }
    if ((n.op == "maxpool" || n.op == "avgpool2d") && n.ceil_mode) j.set("ceil_mode", true);
    if (n.op == "avgpool2d" && !n.count_include_pad) j.set("count_include_pad", false);
    if (n.op == "avgpool" && n.keepdim) j.set("keepdim", true);
    if (n.op == "conv" || n.op == "shuffle") j.set("groups", n.groups);
    if (n.op == "slice") {
      j.set("start", n.start);
      j.set("out", n.out_ch);
    }
    if (n.op == "adaptive_avgpool")
      j.set("size", Json::array_of(std::vector<int64_t>{n.out_h, n.out_w}));
    if (n.op == "pad") j.set("pads", Json::array_of(std::vector<int64_t>(n.pads, n.pads + 4)));
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

// An optional list of exactly `count` integers in [0, hi]; empty when the key is absent.
static std::vector<int64_t> int_list(const Json& j, const char* key, size_t count, int64_t hi) {
  std::vector<int64_t> out;
  const Json* v = j.find(key);
  if (v == nullptr || v->is_null()) return out;
  const auto& a = v->as_array(key);
  GENIE_CHECK(a.size() == count, "'", key, "' expected ", count, " integers, got ", a.size());
  for (const Json& e : a) {
    out.push_back(e.as_int(key));
    GENIE_CHECK(out.back() >= 0 && out.back() <= hi, "'", key, "' expected integers in [0, ", hi,
                "], got ", out.back());
  }
  return out;
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
  n.ceil_mode = nj.get_bool("ceil_mode", false);
  n.count_include_pad = nj.get_bool("count_include_pad", true);
  n.keepdim = nj.get_bool("keepdim", false);
  n.start = int_field(nj, "start", 0, 0, kMaxChannels);
  const std::vector<int64_t> size = int_list(nj, "size", 2, kMaxSpatial);
  if (!size.empty()) n.out_h = size[0], n.out_w = size[1];
  const std::vector<int64_t> pads = int_list(nj, "pads", 4, kMaxSpatial);
  std::copy(pads.begin(), pads.end(), n.pads);
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
