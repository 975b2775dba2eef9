// Graph: structural validation, expected parameters, shape inference, JSON round trip.
#include "models/graph.h"

#include <algorithm>
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
  return str("node ", i, " (", n.name.empty() ? std::string("-") : n.name, ", ", n.op, ")");
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
    GENIE_CHECK(std::find(ops.begin(), ops.end(), n.op) != ops.end(), "[graph] ", tag,
                ": unknown op '", n.op,
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
      GENIE_CHECK(n.out_ch > 0, "[graph] ", tag, ": expected out channels > 0, got ", n.out_ch);
    }
    if (n.op == "conv" || n.op == "linear")
      GENIE_CHECK(n.in_ch > 0, "[graph] ", tag, ": expected in channels > 0, got ", n.in_ch);
    if (n.op == "conv" || n.op == "maxpool") {
      GENIE_CHECK(n.kernel > 0 && n.stride > 0 && n.pad >= 0, "[graph] ", tag,
                  ": expected kernel > 0, stride > 0, pad >= 0, got kernel ", n.kernel, " stride ",
                  n.stride, " pad ", n.pad);
    }
    if (n.op == "conv")
      GENIE_CHECK(n.groups > 0 && n.in_ch % n.groups == 0 && n.out_ch % n.groups == 0, "[graph] ",
                  tag, ": expected groups dividing in/out channels, got groups ", n.groups, " for ",
                  n.in_ch, " -> ", n.out_ch);
    if (n.op == "bn") GENIE_CHECK(n.eps > 0.f, "[graph] ", tag, ": expected eps > 0, got ", n.eps);
  }
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
      const int64_t P = (x[2] + 2 * n.pad - n.kernel) / n.stride + 1;
      const int64_t Q = (x[3] + 2 * n.pad - n.kernel) / n.stride + 1;
      GENIE_CHECK(P > 0 && Q > 0, "[graph] ", tag, ": input ", shape_str(x),
                  " is too small for kernel ", n.kernel);
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
      const int64_t P = (x[2] + 2 * n.pad - n.kernel) / n.stride + 1;
      const int64_t Q = (x[3] + 2 * n.pad - n.kernel) / n.stride + 1;
      GENIE_CHECK(P > 0 && Q > 0 && 2 * n.pad <= n.kernel, "[graph] ", tag, ": input ",
                  shape_str(x), " does not fit kernel ", n.kernel, " pad ", n.pad);
      out[size_t(i)] = {x[0], x[1], P, Q};
    } else if (n.op == "avgpool") {
      need4();
      out[size_t(i)] = {x[0], x[1]};
    } else if (n.op == "flatten") {
      GENIE_CHECK(!x.empty(), "[graph] ", tag, ": expected a batched input, got a scalar");
      int64_t p = 1;
      for (size_t d = 1; d < x.size(); ++d) p *= x[d];
      out[size_t(i)] = {x[0], p};
    } else {  // relu, relu6, leaky_relu, identity
      out[size_t(i)] = x;
    }
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

Graph Graph::from_json(const Json& j, const std::string& where) {
  GENIE_CHECK(j.is_object(), "[graph] ", where, ": expected a JSON object, got ", j.type_name());
  const std::string fmt = j.get_string("format", "genie-graph-1");
  GENIE_CHECK(fmt == "genie-graph-1", "[graph] ", where, ": expected format 'genie-graph-1', got '",
              fmt, "'");
  const Json* nodes_j = j.find("nodes");
  GENIE_CHECK(nodes_j != nullptr && nodes_j->is_array(), "[graph] ", where,
              ": expected a 'nodes' array");
  Graph g;
  for (size_t i = 0; i < nodes_j->size(); ++i) {
    const Json& nj = (*nodes_j)[i];
    try {
      GENIE_CHECK(nj.is_object(), "expected an object, got ", nj.type_name());
      Node n;
      n.op = nj.at("op").as_string("op");
      n.name = nj.get_string("name", "");
      const Json* ins = nj.find("inputs");
      if (ins == nullptr) {
        n.inputs = {int(i) - 1};
      } else {
        for (const Json& v : ins->as_array("inputs")) n.inputs.push_back(int(v.as_int("inputs")));
      }
      n.in_ch = nj.get_int("in", 0);
      n.out_ch = nj.get_int("out", 0);
      if (n.op == "bn" && n.in_ch == 0) n.in_ch = n.out_ch;
      n.kernel = nj.get_int("kernel", 0);
      n.stride = nj.get_int("stride", 1);
      n.pad = nj.get_int("pad", 0);
      n.groups = nj.get_int("groups", 1);
      n.eps = float(nj.get_number("eps", 1e-5));
      n.slope = float(nj.get_number("slope", 0.0));
      n.has_bias = nj.get_bool("bias", false);
      n.affine = nj.get_bool("affine", true);
      n.block = nj.get_string("block", "");
      n.block_kind = nj.get_string("block_kind", n.block.empty() ? "" : "block");
      g.nodes.push_back(std::move(n));
    } catch (const Error& e) {
      throw Error(str("[graph] ", where, ": node ", i, ": ", e.what()));
    }
  }
  g.output = int(j.get_int("output", -1));
  try {
    g.validate();
  } catch (const Error& e) {
    throw Error(str(e.what(), " (in ", where, ")"));
  }
  return g;
}

}  // namespace genie::models
