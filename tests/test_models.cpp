// Models: JSON, graph round trip, built-in architectures against torchvision / PyTorch logits
// (tests/golden/make_model_goldens.py), graphs traced by tools/export_pytorch.py against the
// builders, units, hooks, and an exported non-built-in network.
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "io/model_file.h"
#include "kernels/cpu_loop.h"
#include "models/archs.h"
#include "models/generator.h"
#include "models/model.h"
#include "test_util.h"

using namespace genie;
using namespace genie::models;
using test::contains;
using test::det_values;
using test::json_floats;
using test::json_shape;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open ", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const Json& goldens() {
  static const Json j = Json::parse(read_text(test::source_path("tests/golden/model_goldens.json")),
                                    "model_goldens.json");
  return j;
}

// Builds the golden entry's model from genie's builder with deterministic parameters.
Model golden_model(const std::string& arch, const Json& e) {
  const Shape in = json_shape(e.at("input_shape"));
  ModelInfo info;
  info.arch = arch;
  info.C = in[1];
  info.H = in[2];
  info.W = in[3];
  info.num_classes = e.at("num_classes").as_int();
  Graph g = make_arch(arch, info);
  std::map<std::string, Tensor> params;
  for (const auto& s : g.param_specs()) params[s.key] = det_values(s.key, s.shape);
  return Model(std::move(g), info, std::move(params), arch);
}

// Field-by-field graph comparison; returns "" when equal, else the first difference.
std::string graph_diff(const Graph& a, const Graph& b) {
  if (a.size() != b.size()) return str("node count ", a.size(), " vs ", b.size());
  if (a.output_node() != b.output_node())
    return str("output ", a.output_node(), " vs ", b.output_node());
  for (int i = 0; i < a.size(); ++i) {
    const Node &x = a.nodes[size_t(i)], &y = b.nodes[size_t(i)];
    const std::string tag =
        str("node ", i, " (", x.op, " ", x.name, " vs ", y.op, " ", y.name, "): ");
    if (x.op != y.op || x.name != y.name) return tag + "op/name";
    if (x.inputs != y.inputs) return tag + "inputs";
    if (x.op == "conv" || x.op == "linear" || x.op == "bn" || x.op == "slice") {
      if (x.out_ch != y.out_ch) return tag + "out channels";
      if ((x.op == "conv" || x.op == "linear") && x.in_ch != y.in_ch) return tag + "in channels";
    }
    if (x.kernel != y.kernel || x.stride != y.stride || x.pad != y.pad)
      return tag + "kernel/stride/pad";
    if (x.groups != y.groups) return tag + "groups";
    if (x.ceil_mode != y.ceil_mode || x.count_include_pad != y.count_include_pad ||
        x.keepdim != y.keepdim)
      return tag + "ceil_mode/count_include_pad/keepdim";
    if (x.start != y.start || x.out_h != y.out_h || x.out_w != y.out_w ||
        !std::equal(x.pads, x.pads + 4, y.pads))
      return tag + "start/size/pads";
    if ((x.op == "conv" || x.op == "linear") && x.has_bias != y.has_bias) return tag + "bias";
    if (x.op == "bn" && (x.eps != y.eps || x.affine != y.affine)) return tag + "eps/affine";
    if (x.block != y.block || x.block_kind != y.block_kind)
      return tag + "block '" + x.block + "'/" + x.block_kind + " vs '" + y.block + "'/" +
             y.block_kind;
  }
  return "";
}

double logit_err(const Tensor& out, const Json& e) {
  const std::vector<float> want = json_floats(e.at("logits"));
  const std::vector<float> got = out.to_vector();
  REQUIRE(got.size() == want.size());
  return test::max_abs_diff(got, want) / e.at("max_abs_logit").as_number();
}

}  // namespace

TEST_CASE("json: parse, typed access, stable dump, errors with line:col") {
  const std::string text =
      "{\n  \"b\": [1, 2.5, -3e2, true, null],\n  \"a\": {\"s\": \"x\\n\\u00e9\\\"\"}\n}";
  Json j = Json::parse(text);
  CHECK(j.at("b")[0].as_int() == 1);
  CHECK(j.at("b")[1].as_number() == 2.5);
  CHECK(j.at("b")[2].as_number() == -300.0);
  CHECK(j.at("b")[3].as_bool());
  CHECK(j.at("b")[4].is_null());
  CHECK(j.at("a").at("s").as_string() == "x\n\xc3\xa9\"");
  // Insertion order is kept ("b" before "a") and dump/parse round-trips.
  CHECK(j.dump() == "{\"b\":[1,2.5,-300,true,null],\"a\":{\"s\":\"x\\n\xc3\xa9\\\"\"}}");
  CHECK(Json::parse(j.dump(2)) == j);
  CHECK(Json::parse(Json(0.1).dump()).as_number() == 0.1);
  CHECK(Json(1e-5f).dump() == "1e-05");
  CHECK(Json(0.4f).dump() == "0.4");
  CHECK(float(Json::parse(Json(0.1f + 1e-8f).dump()).as_number()) == 0.1f + 1e-8f);

  auto err = [](const std::string& s) {
    try {
      Json::parse(s, "cfg.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err("{\n  \"a\": 1,\n  \"b\" 2\n}") == "[json] cfg.json:3:7: expected ':', got '2'");
  CHECK(err("[1, 2") == "[json] cfg.json:1:6: expected ',' or ']', got end of input");
  CHECK(err("{\"a\":1,\"a\":2}").find("duplicate key 'a'") != std::string::npos);
  CHECK(err("01").find("expected end of input") != std::string::npos);
  CHECK(err("[1,]").find("1:4: expected a value") != std::string::npos);
  CHECK_THROWS_WITH_AS(j.at("b").as_string("b"), "[json] b: expected string, got array", Error);
  CHECK_THROWS_WITH_AS(j.at("zz"), "[json] missing key 'zz'", Error);
}

TEST_CASE("graph: JSON round trip, validation and shape inference") {
  ModelInfo info{"resnet18", 3, 64, 64, {}, {}, 16};
  const Graph g = make_arch("resnet18", info);
  const Graph back = Graph::from_json(Json::parse(g.to_json().dump()));
  CHECK(graph_diff(g, back) == "");
  const auto shapes = g.infer_shapes({2, 3, 64, 64});
  CHECK(shapes.back() == Shape{2, 16});
  CHECK(shapes[3] == Shape{2, 64, 16, 16});  // after the stem max pool

  Graph bad = g;
  bad.nodes[5].inputs = {7};
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("expected inputs from earlier nodes"),
                       Error);
  bad = g;
  bad.nodes[0].op = "swish";
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("unknown op 'swish' (known: conv, bn,"),
                       Error);
  bad = g;
  bad.nodes[0].in_ch = 4;
  CHECK_THROWS_WITH_AS(
      bad.infer_shapes({1, 3, 64, 64}),
      doctest::Contains("node 0 (conv1, conv): expected 4 input channels, got (1, 3, 64, 64)"),
      Error);
  CHECK_THROWS_WITH_AS(
      Graph::from_json(Json::parse("{\"nodes\":[{\"op\":\"relu\",\"inputs\":[3]}]}"), "g.json"),
      doctest::Contains("expected inputs from earlier nodes"), Error);
}

// Issue 15: the graph's sizes and constants against models/limits.h, in graphs built in code
// (validate, infer_shapes) as well as parsed ones (from_json; the file-level cases are in
// test_models_file.cpp). Before, every graph below validated, and the shapes were inferred.
TEST_CASE("graph: sizes, constants and names beyond models/limits.h are refused") {
  const int64_t big = int64_t(1) << 31;
  auto conv_graph = [](int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad) {
    Graph g;
    Node n;
    n.op = "conv";
    n.name = "conv";
    n.in_ch = cin;
    n.out_ch = cout;
    n.kernel = k;
    n.stride = stride;
    n.pad = pad;
    g.add(n);
    return g;
  };
  auto validate_error = [](const Graph& g) {
    try {
      g.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("validated");
  };
  CHECK(validate_error(conv_graph(3, 70000, 3, 1, 1)) ==
        "[graph] node 0 (conv, conv): expected out channels in [1, 65536], got 70000");
  CHECK(contains(validate_error(conv_graph(3, 8, 3, 1, int64_t(1) << 40)),
                 "expected pad in [0, 16384], got 1099511627776"));
  CHECK(contains(validate_error(conv_graph(3, 8, big, 1, 0)),
                 "expected kernel in [1, 16384], got 2147483648"));
  // Each size in range, the weight beyond 2^28 values (65536 · 65536 · 3 · 3).
  CHECK(contains(validate_error(conv_graph(65536, 65536, 3, 1, 1)),
                 "expected at most 268435456 values in 'conv.weight', got shape (65536, 65536, 3, "
                 "3)"));
  Graph g;
  Node fc;
  fc.op = "linear";
  fc.name = "fc";
  fc.in_ch = fc.out_ch = int64_t(1) << 20;
  g.add(fc);
  CHECK(contains(validate_error(g),
                 "expected at most 268435456 values in 'fc.weight', got shape (1048576, 1048576)"));
  Graph bn_g;
  Node bn;
  bn.op = "bn";
  bn.name = "bn";
  bn.in_ch = bn.out_ch = 4;
  for (float eps : {std::numeric_limits<float>::infinity(), 2.f, 0.f}) {
    bn.eps = eps;
    bn_g.nodes.clear();
    bn_g.add(bn);
    const std::string e = validate_error(bn_g);
    INFO(e);
    CHECK(contains(e, "node 0 (bn, bn): expected eps in (0, 1], got "));
  }
  Graph act;
  Node leaky;
  leaky.op = "leaky_relu";
  leaky.slope = std::numeric_limits<float>::quiet_NaN();
  act.add(leaky);
  CHECK(validate_error(act) == "[graph] node 0 (-, leaky_relu): expected a finite slope, got nan");

  // Names: refused by length, and a bad value is clipped in every message.
  Graph named = conv_graph(3, 8, 3, 1, 1);
  named.nodes[0].name = std::string(1 << 20, 'n');
  std::string msg = validate_error(named);
  CHECK(contains(msg, "expected a name of at most 256 characters, got 1048576 ('nnnn"));
  CHECK(msg.size() < 300);
  named = conv_graph(3, 8, 3, 1, 1);
  named.nodes[0].op = std::string(1 << 20, 'o');
  msg = validate_error(named);
  CHECK(contains(msg, "… (1048576 characters)"));
  CHECK(msg.size() < 300);
  msg = "";
  try {
    Graph::from_json(
        Json::parse(str("{\"format\":\"", std::string(100000, 'f'), "\",\"nodes\":[]}")));
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(contains(msg, "expected format 'genie-graph-1', got 'ffff"));
  CHECK(msg.size() < 300);

  // infer_shapes: the input and every output at most 2^28 values per image; a kernel must fit the
  // padded input (before, (2 − 3) / 2 + 1 truncated to an output of 1).
  const Graph ok = conv_graph(1, 8, 3, 2, 0);
  CHECK_THROWS_WITH_AS(ok.infer_shapes({1, 1, big, big}),
                       "[graph] expected an input of at most 268435456 values per image, got (1, "
                       "1, 2147483648, 2147483648)",
                       Error);
  CHECK_THROWS_WITH_AS(ok.infer_shapes({1, 1, 2, 2}),
                       doctest::Contains("input (1, 1, 2, 2) is too small for kernel 3 pad 0"),
                       Error);
  const Graph wide = conv_graph(1, 65536, 1, 1, 0);
  CHECK_THROWS_WITH_AS(wide.infer_shapes({2, 1, 4096, 4096}),
                       "[graph] node 0 (conv, conv): expected at most 268435456 values per image, "
                       "got output (2, 65536, 4096, 4096)",
                       Error);
  CHECK(wide.infer_shapes({2, 1, 64, 64})[0] == Shape{2, 65536, 64, 64});
}

// Integer fields of the JSON form are range-checked on the parsed value, before narrowing to int
// (before: 4294967295 read as -1, the graph input; 4294967296 as 0).
TEST_CASE("graph: JSON integers beyond their range are refused, not wrapped") {
  auto err = [](const std::string& text) {
    try {
      Graph::from_json(Json::parse(text), "g.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  CHECK(err(R"({"nodes":[{"op":"relu","inputs":[4294967295]}]})") ==
        "[graph] g.json: node 0: 'inputs' expected inputs from earlier nodes (-1 = graph input), "
        "got 4294967295");
  CHECK(contains(err(R"({"nodes":[{"op":"relu"},{"op":"relu","inputs":[4294967296]}]})"),
                 "node 1: 'inputs' expected inputs from earlier nodes (-1 = graph input), got "
                 "4294967296"));
  CHECK(err(R"({"output":4294967295,"nodes":[{"op":"relu"}]})") ==
        "[graph] g.json: 'output' expected a node index in [-1, 1), got 4294967295");
  CHECK(err(R"({"nodes":[{"op":"maxpool","kernel":2,"stride":4294967298}]})") ==
        "[graph] g.json: node 0: 'stride' expected an integer in [1, 16384], got 4294967298");
  CHECK(contains(err(R"({"nodes":[{"op":"relu","in":-5}]})"),
                 "node 0: 'in' expected an integer in [0, 268435456], got -5"));
  CHECK(contains(err(R"({"nodes":[{"op":"bn","name":"b","out":4,"eps":1e400}]})"),
                 "node 0: 'eps' expected a finite float32 value, got inf"));
  CHECK(err(R"({"nodes":[{"op":"relu","inputs":[-1]}],"output":-1})") == "parsed");
}

// Element counts (numel_of, Tensor::empty, reshape), the generator's sizes and the CPU loop's
// grain test throw or stay exact instead of wrapping (before: numel_of((2^31)^3) wrapped to 0,
// numel_of((-2, -3)) gave 6 and reshape accepted it, the generator for a 2^31-pixel image
// overflowed 128·(R/4)² and quantize crashed).
TEST_CASE(
    "graph: the element counts behind a graph's shapes and the generator's sizes are checked") {
  const int64_t big = int64_t(1) << 31;
  CHECK_THROWS_WITH_AS(numel_of({big, big, big}),
                       "[tensor] expected an element count within int64, got shape (2147483648, "
                       "2147483648, 2147483648)",
                       Error);
  CHECK_THROWS_WITH_AS(numel_of({-2, -3}), "[tensor] negative dimension in shape (-2, -3)", Error);
  CHECK(numel_of({0, big, big, big}) == 0);
  CHECK(numel_of({big, big}) == int64_t(1) << 62);
  CHECK_THROWS_WITH_AS(Tensor::empty({int64_t(1) << 62, 4}),
                       doctest::Contains("expected an element count within int64"), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({int64_t(1) << 61}),
                       "[tensor] expected a size in bytes within int64, got f32 shape "
                       "(2305843009213693952)",
                       Error);
  const Tensor six = Tensor::zeros({6});
  CHECK_THROWS_WITH_AS(ops::reshape(six, {-2, -3}), doctest::Contains("negative dimension"), Error);
  ops::Generator rng(1);
  CHECK_THROWS_WITH_AS(GenieGenerator(big, 1, rng),
                       "[generator] expected an image size <= 16384, got 2147483648", Error);
  CHECK_THROWS_WITH_AS(GenieGenerator(28, 70000, rng),
                       "[generator] expected 1 to 65536 image channels, got 70000", Error);
}

// cpu_for_outer's threading test compares outer · inner with the grain without forming the product.
TEST_CASE("graph: the CPU loop's grain test is exact and never overflows") {
  using k::cpu_work_exceeds_grain;
  using k::kCpuGrain;
  CHECK_FALSE(cpu_work_exceeds_grain(1, kCpuGrain));
  CHECK(cpu_work_exceeds_grain(1, kCpuGrain + 1));
  CHECK_FALSE(cpu_work_exceeds_grain(2, kCpuGrain / 2));
  CHECK(cpu_work_exceeds_grain(2, kCpuGrain / 2 + 1));
  CHECK_FALSE(cpu_work_exceeds_grain(3, 10922));  // 32766
  CHECK(cpu_work_exceeds_grain(3, 10923));        // 32769
  CHECK(cpu_work_exceeds_grain(std::numeric_limits<int64_t>::max(), 4));
  CHECK(cpu_work_exceeds_grain(int64_t(1) << 40, int64_t(1) << 40));
  CHECK_FALSE(cpu_work_exceeds_grain(0, std::numeric_limits<int64_t>::max()));
  CHECK_FALSE(cpu_work_exceeds_grain(5, 0));
}

TEST_CASE("archs: unknown names list the known ones; RegNet stage widths follow torchvision") {
  ModelInfo info{"x", 3, 32, 32, {}, {}, 10};
  CHECK_THROWS_WITH_AS(
      make_arch("resnet21", info),
      "[make_arch] unknown architecture 'resnet21' (known: resnet20, resnet18, resnet50, "
      "mobilenet_v2, regnet_x_400mf, regnet_x_600mf, regnet_x_3_2gf, mnasnet1_0)",
      Error);
  // torchvision 0.14: regnet_x_400mf stages (32, 1), (64, 2), (160, 7), (400, 12), groups
  // 2/4/10/25.
  const RegNetStages s = regnet_stages(22, 24, 24.48, 2.54, 16);
  CHECK(s.widths == std::vector<int64_t>{32, 64, 160, 400});
  CHECK(s.depths == std::vector<int64_t>{1, 2, 7, 12});
  // The Genie paper's RegNetX-600MF: depth 16, w0 48, wa 36.97, wm 2.24, group width 24.
  const RegNetStages p = regnet_stages(16, 48, 36.97, 2.24, 24);
  CHECK(p.widths == std::vector<int64_t>{48, 96, 240, 528});
  CHECK(p.depths == std::vector<int64_t>{1, 3, 5, 7});
}

TEST_CASE("archs: parameters, traced graphs and logits match PyTorch for every built-in arch") {
  const Json& gold = goldens();
  std::vector<std::string> names = known_archs();
  names.push_back("resnet20_c3");  // resnet20 with 3 input channels, 32x32, 7 classes
  for (const std::string& name : names) {
    INFO(name);
    const Json& e = gold.at(name);
    const std::string arch = name == "resnet20_c3" ? "resnet20" : name;
    const Model m = golden_model(arch, e);
    // Same state_dict keys and shapes as the PyTorch module.
    std::map<std::string, Shape> want;
    for (const Json& k : e.at("keys").as_array()) want[k[0].as_string()] = json_shape(k[1]);
    std::map<std::string, Shape> have;
    for (const auto& s : m.graph().param_specs()) have[s.key] = s.shape;
    CHECK(have == want);
    // The graph tools/export_pytorch.py traced from the PyTorch module equals the builder's.
    const Graph traced = Graph::from_json(e.at("graph"), name + " traced graph");
    CHECK(graph_diff(m.graph(), traced) == "");
    CHECK(derive_units(traced).size() == m.units().size());
    // Logits.
    const Tensor x = det_values("input", json_shape(e.at("input_shape")));
    const double err = logit_err(m.forward(x), e);
    MESSAGE(name, ": max |diff| / max |logit| = ", err);
    CHECK(err < 1e-4);
  }
}

TEST_CASE("model: BN layers, strided convs and units of ResNet-18 and MobileNetV2") {
  const Model r18 = golden_model("resnet18", goldens().at("resnet18"));
  CHECK(r18.bn_nodes().size() == 20);
  CHECK(r18.strided_convs().size() == 7);  // conv1, 3 x (conv1 + downsample) in layers 2-4
  CHECK(r18.add_nodes().size() == 8);
  const auto& u = r18.units();
  REQUIRE(u.size() == 10);
  CHECK(u[0].name == "conv1");
  CHECK(u[0].kind == "conv");
  CHECK(u[0].first == 0);
  CHECK(u[0].last == 2);  // conv1, bn1, relu; the max pool runs between units
  CHECK(u[0].input == -1);
  CHECK(u[1].name == "layer1.0");
  CHECK(u[1].kind == "basic_block");
  CHECK(u[1].input == 3);  // the max pool's output
  CHECK(u[8].name == "layer4.1");
  CHECK(u[9].name == "fc");
  CHECK(u[9].kind == "linear");
  CHECK(r18.node(u[9].input).op == "flatten");
  CHECK(r18.node(u[3].first + 5).name == "layer2.0.downsample.0");

  const Model mb = golden_model("mobilenet_v2", goldens().at("mobilenet_v2"));
  std::vector<std::string> kinds;
  for (const auto& x : mb.units()) kinds.push_back(x.kind);
  // features.0 conv, 17 inverted residuals (incl. the non-residual ones), features.18 conv, fc.
  REQUIRE(kinds.size() == 20);
  CHECK(kinds.front() == "conv");
  CHECK(std::count(kinds.begin(), kinds.end(), "inverted_residual") == 17);
  CHECK(mb.units()[18].name == "features.18.0");
  CHECK(mb.units()[19].name == "classifier.1");
  CHECK(mb.strided_convs().size() == 5);
  CHECK(mb.bn_nodes().size() == 52);
}

TEST_CASE("model: forward hooks, units run alone, forward_range and gradients") {
  const Json& e = goldens().at("resnet20");
  const Model m = golden_model("resnet20", e);
  const Tensor x = det_values("input", json_shape(e.at("input_shape")));
  // observe: every node once, in order; keep every output.
  std::map<int, Tensor> outs;
  int calls = 0, bn_inputs = 0;
  ForwardHooks obs;
  obs.observe = [&](int i, const std::vector<Tensor>& in, const Tensor& out) {
    CHECK(i == calls++);
    outs[i] = out;
    if (m.node(i).op == "bn") bn_inputs += in[0].shape() == out.shape();
  };
  const Tensor y = m.forward(x, &obs);
  CHECK(calls == m.graph().size());
  CHECK(bn_inputs == int(m.bn_nodes().size()));
  CHECK(test::max_abs_diff(y.to_vector(), outs[m.graph().size() - 1].to_vector()) == 0.0);
  // Each unit, fed the observed input, reproduces the observed output exactly.
  for (const Unit& u : m.units()) {
    INFO(u.name);
    const Tensor in = u.input < 0 ? x : outs.at(u.input);
    CHECK(test::max_abs_diff(m.forward_unit(u, in).to_vector(), outs.at(u.last).to_vector()) ==
          0.0);
  }
  CHECK_THROWS_WITH_AS(m.forward_range(5, 9, {}), doctest::Contains("not in the feeds"), Error);
  // override_node: replacing the classifier with zeros gives zero logits; other nodes untouched.
  ForwardHooks ov;
  int overridden = 0;
  ov.override_node = [&](int i, const std::vector<Tensor>& in, Tensor& out) {
    if (m.node(i).op != "linear") return false;
    ++overridden;
    out = Tensor::zeros({in[0].dim(0), m.node(i).out_ch});
    return true;
  };
  const std::vector<float> z = m.forward(x, &ov).to_vector();
  CHECK(overridden == 1);
  CHECK(*std::max_element(z.begin(), z.end()) == 0.f);
  CHECK(*std::min_element(z.begin(), z.end()) == 0.f);
  // Gradients flow through the forward to the input (what Genie-D needs).
  Tensor xg = x.clone();
  xg.set_requires_grad();
  backward(ops::sum(m.forward(xg)));
  REQUIRE(xg.grad().defined());
  double g2 = 0;
  for (float v : xg.grad().to_vector()) g2 += double(v) * v;
  CHECK(g2 > 0.0);
}

TEST_CASE(
    "export_pytorch: a non-built-in VGG-style net loads through its graph and matches PyTorch") {
  const Json& e = goldens().at("vgg_small");
  const Model m = io::load_model(test::source_path("tests/data/vgg_small.h5"));
  CHECK(m.info().arch == "vgg_small");
  CHECK(m.info().C == 3);
  CHECK(m.info().num_classes == 10);
  CHECK(m.info().mean == std::vector<float>{0.5f, 0.4f, 0.3f});
  CHECK(graph_diff(m.graph(), Graph::from_json(e.at("graph"))) == "");
  const Tensor x = det_values("input", json_shape(e.at("input_shape")));
  const double err = logit_err(m.forward(x), e);
  MESSAGE("vgg_small: max |diff| / max |logit| = ", err);
  CHECK(err < 1e-4);
  // Units: the custom residual block (annotated at export) and every conv/linear outside it.
  std::vector<std::string> names, kinds;
  for (const auto& u : m.units()) {
    names.push_back(u.name);
    kinds.push_back(u.kind);
  }
  CHECK(names == std::vector<std::string>{"features.0", "features.3", "features.7", "res", "head.0",
                                          "classifier.1", "classifier.4"});
  CHECK(kinds[3] == "residual");
  CHECK(m.strided_convs().size() == 1);
  CHECK(m.node(m.bn_nodes()[1]).eps == doctest::Approx(1e-3));
}
