// Issue 17: networks of the torchvision classification zoo (SE blocks, SiLU / Hardswish, channel
// concatenation, split and shuffle, ceil-mode and average pooling, padding, functional convs),
// exported by tools/export_pytorch.py (graphs in tests/golden/zoo_goldens.json, written by
// tests/golden/make_zoo_goldens.py with deterministic weights): the graphs load and round-trip,
// the logits equal PyTorch's, the reconstruction units and activation quantizers sit where the
// README says, and a tiny W4A4 quantization of every block kind finishes with finite losses.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/genie.h"
#include "engine/qmodel.h"
#include "io/model_file.h"
#include "test_cli.h"
#include "test_util.h"

using namespace genie;
using namespace genie::models;
using test::det_values;
using test::json_floats;
using test::json_shape;

namespace {

const Json& zoo() {
  static const Json j = [] {
    std::ifstream f(test::source_path("tests/golden/zoo_goldens.json"), std::ios::binary);
    REQUIRE(f.good());
    std::stringstream ss;
    ss << f.rdbuf();
    return Json::parse(ss.str(), "zoo_goldens.json");
  }();
  return j;
}

// The entry's model: its traced graph with deterministic parameters.
Model zoo_model(const std::string& name) {
  const Json& e = zoo().at(name);
  const Shape in = json_shape(e.at("input_shape"));
  ModelInfo info;
  info.arch = name;
  info.C = in[1];
  info.H = in[2];
  info.W = in[3];
  info.num_classes = e.at("num_classes").as_int();
  Graph g = Graph::from_json(e.at("graph"), name);
  std::map<std::string, Tensor> params;
  for (const auto& s : g.param_specs()) params[s.key] = det_values(s.key, s.shape);
  return Model(std::move(g), info, std::move(params), name);
}

std::map<std::string, int> unit_kinds(const Model& m) {
  std::map<std::string, int> k;
  for (const auto& u : m.units()) ++k[u.kind];
  return k;
}

}  // namespace

TEST_CASE(
    "zoo: exported torchvision networks round-trip, read their state_dict and match PyTorch") {
  for (const auto& kv : zoo().as_object()) {
    const std::string& name = kv.first;
    const Json& e = kv.second;
    INFO(name);
    const Graph g = Graph::from_json(e.at("graph"), name);
    // Every field the exporter wrote survives genie's JSON round trip.
    CHECK(Graph::from_json(g.to_json()).to_json().dump() == g.to_json().dump());
    CHECK(g.to_json().dump() == Graph::from_json(e.at("graph")).to_json().dump());
    std::map<std::string, Shape> want, have;
    for (const Json& k : e.at("keys").as_array()) want[k[0].as_string()] = json_shape(k[1]);
    for (const auto& s : g.param_specs()) have[s.key] = s.shape;
    CHECK(have == want);
    const Model m = zoo_model(name);
    const Tensor x = det_values("input", json_shape(e.at("input_shape")));
    const std::vector<float> got = m.forward(x).to_vector(), ref = json_floats(e.at("logits"));
    REQUIRE(got.size() == ref.size());
    const double err = test::max_abs_diff(got, ref) / e.at("max_abs_logit").as_number();
    MESSAGE(name, ": max |diff| / max |logit| = ", err);
    CHECK(err < 1e-4);
  }
}

TEST_CASE("zoo: reconstruction units of the new block kinds") {
  const std::map<std::string, std::map<std::string, int>> want = {
      {"efficientnet_b0", {{"conv", 2}, {"mbconv", 16}, {"linear", 1}}},
      {"mobilenet_v3_small", {{"conv", 2}, {"inverted_residual", 11}, {"linear", 2}}},
      {"shufflenet_v2_x1_0", {{"conv", 2}, {"shuffle_unit", 16}, {"linear", 1}}},
      {"densenet121", {{"conv", 1}, {"dense_layer", 58}, {"dense_transition", 3}, {"linear", 1}}},
      {"googlenet", {{"conv", 3}, {"inception", 9}, {"linear", 1}}},
      {"regnet_y_400mf", {{"conv", 1}, {"regnet_block", 16}, {"linear", 1}}},
      {"zoo_ops", {{"conv", 2}, {"ops_block", 1}, {"linear", 1}}},
  };
  for (const auto& kv : want) {
    INFO(kv.first);
    CHECK(unit_kinds(zoo_model(kv.first)) == kv.second);
  }
  // DenseNet: the concatenation at the top of a dense layer runs between units, so each layer
  // reads one tensor — the concatenation of every earlier feature map of its dense block.
  const Model d = zoo_model("densenet121");
  for (const auto& u : d.units())
    if (u.kind == "dense_layer") {
      INFO(u.name);
      CHECK(d.node(u.input).op == "concat");
      CHECK(d.node(u.first).op == "bn");
    }
}

TEST_CASE("zoo: activation quantizers on joining paths, none before a pre-activation BatchNorm") {
  quant::QuantConfig cfg;
  // ShuffleNet: a stride-1 unit's untouched half (a slice of the unit's input) is quantized,
  // as an identity shortcut is.
  {
    quant::QModel q(zoo_model("shufflenet_v2_x1_0"), cfg);
    const Model& m = q.model();
    int slices = 0;
    for (const auto& u : m.units())
      for (int i = u.first; i <= u.last; ++i)
        if (m.node(i).op == "slice" && m.node(i).inputs[0] == u.input) {
          ++slices;
          CHECK(q.node_aq(i, 0) >= 0);
        }
    CHECK(slices == 26);  // 13 stride-1 units, chunk(2): both halves read the unit's input
  }
  // DenseNet: norm1 reads the unit's input (the concatenation) unquantized; conv1 reads relu1's
  // output through a quantizer.
  {
    quant::QModel q(zoo_model("densenet121"), cfg);
    const Model& m = q.model();
    for (const auto& u : m.units()) {
      if (u.kind != "dense_layer") continue;
      CHECK(q.node_aq(u.first, 0) == -1);
      CHECK(q.node_aq(u.first + 2, 0) >= 0);  // conv1
    }
  }
  // EfficientNet: inside an MBConv with SE, both 1x1 convs of the SE branch have input quantizers;
  // the gating multiply reads the features and the gate as they are.
  {
    quant::QModel q(zoo_model("efficientnet_b0"), cfg);
    const Model& m = q.model();
    int se_convs = 0;
    for (int i = 0; i < m.graph().size(); ++i) {
      const Node& n = m.node(i);
      if (n.op == "mul") {
        CHECK(q.node_aq(i, 0) == -1);
        CHECK(q.node_aq(i, 1) == -1);
      }
      if (n.op == "conv" && n.name.find(".fc") != std::string::npos) {
        ++se_convs;
        CHECK(q.node_aq(i, 0) >= 0);
      }
    }
    CHECK(se_convs == 32);
  }
}

// Issue 17 "a short quantization (tiny settings, W4A4) runs for each, with finite losses" for the
// fast subset's block kinds (tools/zoo_check.py runs every zoo network at its native size).
TEST_CASE("zoo: a tiny W4A4 Genie-D + Genie-M run of every new block kind has finite losses") {
  for (const char* name : {"zoo_ops", "mobilenet_v3_small", "shufflenet_v2_x1_0"}) {
    INFO(name);
    test::TempDir dir;
    io::SaveOptions so;
    so.write_graph = true;
    io::save_model(zoo_model(name), dir / "model.h5", so);
    engine::PipelineConfig cfg;
    cfg.model = dir / "model.h5";
    cfg.out = dir / "out";
    cfg.samples = 4;
    cfg.batch = 4;
    cfg.distill_iters = 2;
    cfg.recon_iters = 4;
    cfg.recon_batch = 4;
    cfg.device = "cpu";
    cfg.quiet = true;
    const engine::PipelineResult r = genie::quantize(cfg);
    CHECK(r.units.size() == zoo_model(name).units().size());
    for (const auto& u : r.units) {
      INFO(u.name);
      CHECK(std::isfinite(u.loss_before));
      CHECK(std::isfinite(u.final_loss()));
    }
    CHECK(test::path_exists(r.quant_model_path));
  }
}

TEST_CASE("graph: the new ops' fields are checked and their shapes inferred, with clear errors") {
  auto parse = [](const std::string& nodes) {
    return Graph::from_json(Json::parse(R"({"format": "genie-graph-1", "nodes": )" + nodes + "}"),
                            "g.json");
  };
  auto error = [&](const std::string& nodes) {
    try {
      parse(nodes).infer_shapes({2, 8, 9, 9});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // Shapes: ceil-mode pools drop a window that would start in the right padding only.
  Graph g = parse(R"([{"op": "maxpool", "kernel": 3, "stride": 2, "ceil_mode": true},
      {"op": "avgpool2d", "kernel": 2, "stride": 2, "pad": 1, "ceil_mode": true,
       "count_include_pad": false, "inputs": [-1]},
      {"op": "adaptive_avgpool", "size": [3, 4], "inputs": [-1]},
      {"op": "pad", "pads": [1, 2, 3, 0], "inputs": [-1]},
      {"op": "slice", "start": 2, "out": 5, "inputs": [-1]},
      {"op": "shuffle", "groups": 4, "inputs": [-1]},
      {"op": "avgpool", "keepdim": true, "inputs": [-1]},
      {"op": "mul", "inputs": [-1, 6]}, {"op": "mul", "inputs": [6, -1]},
      {"op": "concat", "inputs": [-1, 4, -1]}, {"op": "hardswish", "inputs": [9]}])");
  const std::vector<Shape> s = g.infer_shapes({2, 8, 9, 9});
  CHECK(s[0] == Shape{2, 8, 4, 4});  // ceil((9-3)/2)+1 = 4
  CHECK(s[1] == Shape{2, 8, 5, 5});  // ceil((9+2-2)/2)+1 = 6, but window 5 starts at 10 >= 9+1
  CHECK(s[2] == Shape{2, 8, 3, 4});
  CHECK(s[3] == Shape{2, 8, 12, 12});
  CHECK(s[4] == Shape{2, 5, 9, 9});
  CHECK(s[6] == Shape{2, 8, 1, 1});
  CHECK(s[7] == Shape{2, 8, 9, 9});
  CHECK(s[8] == Shape{2, 8, 9, 9});
  CHECK(s[9] == Shape{2, 21, 9, 9});
  CHECK(s[10] == Shape{2, 21, 9, 9});
  // Errors name the node, the field and the value.
  CHECK(test::contains(error(R"([{"op": "slice", "start": 6, "out": 4}])"),
                       "node 0 (-, slice): channels [6, 10) are outside the input (2, 8, 9, 9)"));
  CHECK(test::contains(error(R"([{"op": "shuffle", "groups": 3}])"),
                       "expected channels divisible by groups 3"));
  CHECK(test::contains(error(R"([{"op": "pad", "pads": [1, 2, 3]}])"),
                       "node 0: 'pads' expected 4 integers, got 3"));
  CHECK(test::contains(error(R"([{"op": "pad", "pads": [1, -2, 3, 0]}])"),
                       "'pads' expected integers in [0, 16384], got -2"));
  CHECK(test::contains(error(R"([{"op": "adaptive_avgpool", "size": [0, 2]}])"),
                       "node 0 (-, adaptive_avgpool): expected out_h in [1, 16384], got 0"));
  CHECK(test::contains(error(R"([{"op": "avgpool2d", "kernel": 3, "stride": 1, "pad": 2}])"),
                       "expected pad at most half the kernel, got pad 2 for kernel 3"));
  CHECK(test::contains(error(R"([{"op": "avgpool", "keepdim": true},
                                 {"op": "slice", "start": 0, "out": 4, "inputs": [-1]},
                                 {"op": "mul", "inputs": [0, 1]}])"),
                       "expected equal shapes or (N, C, H, W) and (N, C, 1, 1), got (2, 8, 1, 1) "
                       "and (2, 4, 9, 9)"));
  CHECK(test::contains(error(R"([{"op": "maxpool", "kernel": 3, "stride": 3},
                                 {"op": "concat", "inputs": [-1, 0]}])"),
                       "expected inputs that differ only in channels, got (2, 8, 9, 9) and "
                       "(2, 8, 3, 3)"));
  CHECK(test::contains(error(R"([{"op": "concat", "inputs": []}])"),
                       "expected 1 to 65536 inputs, got 0"));
  CHECK(test::contains(error(R"([{"op": "mul", "inputs": [-1]}])"), "expected 2 input(s), got 1"));
}

// Issue 17: Genie-D needs BatchNorm statistics; a network without any gets a clear error (exit 2,
// nothing written), and noise or real calibration still quantizes it.
TEST_CASE("zoo: a model without BatchNorm is refused by Genie-D and quantized with noise") {
  Graph g;
  Node conv;
  conv.op = "conv", conv.name = "conv", conv.in_ch = 1, conv.out_ch = 8, conv.kernel = 3;
  conv.pad = 1, conv.has_bias = true;
  g.add(conv);
  Node act;
  act.op = "silu";
  g.add(act);
  Node pool;
  pool.op = "avgpool";
  g.add(pool);
  Node fc;
  fc.op = "linear", fc.name = "fc", fc.in_ch = 8, fc.out_ch = 10, fc.has_bias = true;
  g.add(fc);
  ModelInfo info;
  info.arch = "no_bn", info.C = 1, info.H = info.W = 28, info.num_classes = 10;
  std::map<std::string, Tensor> params;
  for (const auto& s : g.param_specs()) params[s.key] = det_values(s.key, s.shape);
  test::TempDir dir;
  io::SaveOptions so;
  so.write_graph = true;
  io::save_model(Model(g, info, params, "no_bn"), dir / "no_bn.h5", so);
  const std::vector<std::string> tiny = {
      "--samples",     "4", "--batch",  "4",   "--distill-iters", "2", "--recon-iters", "2",
      "--recon-batch", "4", "--device", "cpu", "--quiet"};
  std::vector<std::string> args = {"quantize", "--model", dir / "no_bn.h5", "--out", dir / "a"};
  args.insert(args.end(), tiny.begin(), tiny.end());
  const test::ProcResult r = test::run_genie(args);
  CHECK(r.rc == 2);
  CHECK(test::contains(r.err, "expected a teacher with BatchNorm layers"));
  CHECK(test::contains(r.err, "--calib noise"));
  CHECK_FALSE(test::path_exists(dir / "a/quantized.h5"));
  args = {"quantize", "--model", dir / "no_bn.h5", "--out", dir / "b", "--calib", "noise"};
  args.insert(args.end(), tiny.begin(), tiny.end());
  const test::ProcResult ok = test::run_genie(args);
  CHECK(ok.rc == 0);
  CHECK(test::path_exists(dir / "b/quantized.h5"));
}
