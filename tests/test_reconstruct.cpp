// Genie-M reconstruction (engine/reconstruct.h, engine/qmodel.h, engine/fold_bn.h): the BasicBlock
// objective and its gradients against PyTorch (tests/golden/make_quant_golden.py → quant_block.h5),
// the β schedule, quantizer placement and bit conventions on ResNet-20, BN folding, determinism,
// checkpoint/resume and the integer model file's exact reload.
#include <hdf5.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>

#include "engine/fold_bn.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "kernels/graph.h"
#include "test_util.h"

using namespace genie;
using quant::QModel;

namespace {

io::H5Reader& block_golden() {
  static io::H5Reader r(test::source_path("tests/golden/quant_block.h5"));
  return r;
}
Tensor BG(const std::string& k) { return block_golden().read_f32(k); }
double rel(const Tensor& a, const Tensor& b) {
  return test::rel_err(a.to(Device::CPU).to_vector(), b.to(Device::CPU).to_vector());
}

models::Node node(const std::string& op, const std::string& name, std::vector<int> in,
                  const std::string& block = "") {
  models::Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(in);
  n.block = block;
  n.block_kind = block.empty() ? "" : "basic_block";
  return n;
}
models::Node conv(const std::string& name, std::vector<int> in, int64_t cin, int64_t cout,
                  int64_t k, int64_t stride, const std::string& block = "") {
  models::Node n = node("conv", name, std::move(in), block);
  n.in_ch = cin;
  n.out_ch = cout;
  n.kernel = k;
  n.stride = stride;
  n.pad = k / 2;
  return n;
}
models::Node bn(const std::string& name, int in, int64_t c, const std::string& block = "") {
  models::Node n = node("bn", name, {in}, block);
  n.in_ch = n.out_ch = c;
  return n;
}

// The golden script's model: conv1 bn1 relu | layer1.0 (8→8) | layer2.0 (8→16, s2, downsample) |
// avgpool | fc.
models::Model golden_model() {
  models::Graph g;
  g.add(conv("conv1", {-1}, 3, 8, 3, 1));  // 0
  g.add(bn("bn1", 0, 8));                  // 1
  g.add(node("relu", "relu", {1}));        // 2
  const std::string b1 = "layer1.0", b2 = "layer2.0";
  g.add(conv(b1 + ".conv1", {2}, 8, 8, 3, 1, b1));          // 3
  g.add(bn(b1 + ".bn1", 3, 8, b1));                         // 4
  g.add(node("relu", b1 + ".relu", {4}, b1));               // 5
  g.add(conv(b1 + ".conv2", {5}, 8, 8, 3, 1, b1));          // 6
  g.add(bn(b1 + ".bn2", 6, 8, b1));                         // 7
  g.add(node("add", "", {7, 2}, b1));                       // 8
  g.add(node("relu", b1 + ".relu", {8}, b1));               // 9
  g.add(conv(b2 + ".conv1", {9}, 8, 16, 3, 2, b2));         // 10
  g.add(bn(b2 + ".bn1", 10, 16, b2));                       // 11
  g.add(node("relu", b2 + ".relu", {11}, b2));              // 12
  g.add(conv(b2 + ".conv2", {12}, 16, 16, 3, 1, b2));       // 13
  g.add(bn(b2 + ".bn2", 13, 16, b2));                       // 14
  g.add(conv(b2 + ".downsample.0", {9}, 8, 16, 1, 2, b2));  // 15
  g.add(bn(b2 + ".downsample.1", 15, 16, b2));              // 16
  g.add(node("add", "", {14, 16}, b2));                     // 17
  g.add(node("relu", b2 + ".relu", {17}, b2));              // 18
  g.add(node("avgpool", "", {18}));                         // 19
  models::Node fc = node("linear", "fc", {19});
  fc.in_ch = 16;
  fc.out_ch = 10;
  fc.has_bias = true;
  g.add(fc);  // 20
  models::ModelInfo info;
  info.arch = "graph";
  info.C = 3, info.H = 8, info.W = 8;
  info.num_classes = 10;
  std::map<std::string, Tensor> params;
  for (const std::string& k : block_golden().list_datasets())
    if (k.rfind("param.", 0) == 0) params[k.substr(6)] = BG(k);
  return models::Model(g, info, params, "quant_block.h5");
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path(str("/tmp/genie_test_", ::getpid(), "_", name)) {}
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE(
    "reconstruct: beta schedule and regulariser start follow the reference's LinearTempDecay") {
  quant::ReconOptions o;
  o.iters = 100;
  CHECK_FALSE(quant::round_reg_on(19, o));
  CHECK(quant::round_reg_on(20, o));
  CHECK(quant::round_beta(1, o) == 20.f);
  CHECK(quant::round_beta(20, o) == 20.f);
  CHECK(quant::round_beta(60, o) == doctest::Approx(11.0));
  CHECK(quant::round_beta(100, o) == doctest::Approx(2.0));
  CHECK(quant::round_beta(60, o) == doctest::Approx(BG("beta").item()));
}

namespace {
void check_block_golden(Device dev) {
  models::Model m = golden_model();
  m.to(dev);
  QModel qm(m, {4, 4, false});
  const auto units = quant::recon_units(m);
  REQUIRE(units.size() == 4);
  quant::ReconOptions opt;
  opt.iters = int64_t(BG("iters").item());
  const int64_t it = int64_t(BG("it").item());
  struct Case {
    std::string block;
    int unit, conv1, conv2, down, add;
  };
  for (const Case& c : {Case{"layer1.0", 1, 3, 6, -1, 8}, Case{"layer2.0", 2, 10, 13, 15, 17}}) {
    INFO(c.block);
    const std::string b = c.block;
    REQUIRE(units[size_t(c.unit)].name == b);
    // Inject the golden quantizer states.
    std::vector<std::pair<std::string, int>> convs = {{"conv1", c.conv1}, {"conv2", c.conv2}};
    if (c.down >= 0) convs.push_back({"downsample.0", c.down});
    for (auto& [name, nd] : convs) {
      auto& q = qm.wq[size_t(qm.node_wq(nd))];
      CHECK(q.bits() == 4);
      q = quant::WeightQuantizer::from_state(
          BG(b + "." + name + ".w_floor").to(dev), BG(b + "." + name + ".v").to(dev),
          BG(b + "." + name + ".s").to(dev), BG(b + "." + name + ".z").to(dev), 4);
      q.step().set_requires_grad();
      q.logits().set_requires_grad();
    }
    const int a_in = qm.node_aq(c.conv1, 0), a_mid = qm.node_aq(c.conv2, 0);
    CHECK(qm.aq[size_t(a_in)].bits() == int(BG(b + ".in_bits").item()));
    CHECK(qm.aq[size_t(a_mid)].bits() == 4);
    qm.aq[size_t(a_in)].set_state(false, BG(b + ".s_in").item(), dev);
    qm.aq[size_t(a_mid)].set_state(false, BG(b + ".s_mid").item(), dev);
    qm.aq[size_t(a_in)].step().set_requires_grad();
    qm.aq[size_t(a_mid)].step().set_requires_grad();
    // Per-consumer QDrop masks as the golden drew them.
    Tensor m1 = block_golden().read_u8(b + ".m_conv1").to(dev);
    Tensor m2 = block_golden().read_u8(b + ".m_conv2").to(dev);
    Tensor ms = block_golden().read_u8(b + ".m_short").to(dev);
    QModel::Run run;
    run.qdrop_mask = [&](int a, int nd, const Tensor&) {
      if (nd == c.conv1) return m1;
      if (nd == c.conv2) return m2;
      CHECK((nd == c.add || nd == c.down));
      CHECK(a == a_in);
      return ms;
    };
    quant::Objective o = quant::unit_objective(
        qm, units[size_t(c.unit)], BG(b + ".x").to(dev), BG(b + ".xq").to(dev),
        BG(b + ".y").to(dev), block_golden().read_u8(b + ".mix").to(dev), run, it, opt);
    CHECK(o.beta == doctest::Approx(BG("beta").item()));
    CHECK(rel(o.rec, BG(b + ".rec")) < 1e-4);
    CHECK(rel(o.reg, BG(b + ".reg")) < 1e-4);
    CHECK(rel(o.total, BG(b + ".total")) < 1e-4);
    backward(o.total);
    for (auto& [name, nd] : convs) {
      INFO(name);
      const auto& q = qm.wq[size_t(qm.node_wq(nd))];
      CHECK(rel(q.step().grad(), BG(b + "." + name + ".ds")) < 1e-4);
      CHECK(rel(q.logits().grad(), BG(b + "." + name + ".dv")) < 1e-4);
    }
    CHECK(rel(qm.aq[size_t(a_in)].step().grad(), BG(b + ".ds_in")) < 1e-4);
    CHECK(rel(qm.aq[size_t(a_mid)].step().grad(), BG(b + ".ds_mid")) < 1e-4);
  }
}
}  // namespace

TEST_CASE("reconstruct: BasicBlock objective and gradients match the PyTorch golden (1e-4)") {
  check_block_golden(Device::CPU);
}

TEST_CASE("reconstruct: BasicBlock golden on CUDA (GPU)") {
  GENIE_REQUIRE_GPU();
  check_block_golden(Device::CUDA);
}

TEST_CASE(
    "qmodel: ResNet-20 quantizer placement, bit conventions and shared activation quantizers") {
  models::Model m = io::load_model(test::source_path("models/data/resnet20_fmnist.h5"));
  QModel qm(m, {2, 3, false});
  const auto& g = m.graph();
  auto find = [&](const std::string& name) {
    for (int i = 0; i < g.size(); ++i)
      if (g.nodes[size_t(i)].name == name) return i;
    FAIL("no node " << name);
    return -1;
  };
  const int conv1 = find("conv1"), l10c1 = find("layer1.0.conv1"), l10c2 = find("layer1.0.conv2");
  const int l20c1 = find("layer2.0.conv1"), l20ds = find("layer2.0.downsample.0"), fc = find("fc");
  CHECK(qm.wq.size() == 22);  // stem + 18 block convs + 2 downsample convs + fc
  CHECK(qm.wq[size_t(qm.node_wq(conv1))].bits() == 8);
  CHECK(qm.node_aq(conv1, 0) == -1);                       // image not quantized
  CHECK(qm.aq[size_t(qm.node_aq(l10c1, 0))].bits() == 8);  // second layer input A8
  CHECK(qm.wq[size_t(qm.node_wq(l10c1))].bits() == 2);
  CHECK(qm.aq[size_t(qm.node_aq(l10c2, 0))].bits() == 3);
  CHECK(qm.wq[size_t(qm.node_wq(fc))].bits() == 8);  // last layer W8A8
  CHECK(qm.aq[size_t(qm.node_aq(fc, 0))].bits() == 8);
  CHECK(qm.node_aq(l20c1, 0) == qm.node_aq(l20ds, 0));  // conv1 and downsample share
  // Identity shortcuts are quantized with the block input's quantizer; downsample outputs are not.
  int identity_adds = 0;
  for (int a : m.add_nodes()) {
    const auto& n = g.nodes[size_t(a)];
    const int q0 = qm.node_aq(a, 0), q1 = qm.node_aq(a, 1);
    if (q0 < 0 && q1 < 0) {
      CHECK(g.nodes[size_t(n.inputs[1])].op == "bn");  // downsample branch
      continue;
    }
    ++identity_adds;
    const int slot = q0 >= 0 ? 0 : 1;
    const int conv_after = g.consumers()[size_t(n.inputs[size_t(slot)])][0];
    CHECK(qm.node_aq(a, slot) == qm.node_aq(conv_after, 0));
  }
  CHECK(identity_adds == 7);
  CHECK(qm.aq.size() == 19);  // 21 quantized inputs, two shared by conv1 and the downsample conv
  // units: stem conv alone, 9 blocks, fc alone
  const auto units = quant::recon_units(m);
  REQUIRE(units.size() == 11);
  CHECK(units[0].name == "conv1");
  CHECK(units[0].first == units[0].last);
  CHECK(units[10].name == "fc");
  CHECK(units[10].first == units[10].last);
}

TEST_CASE("fold_bn: the folded ResNet-20 computes the same function") {
  models::Model m = io::load_model(test::source_path("models/data/resnet20_fmnist.h5"));
  std::vector<int> folded;
  models::Model f = quant::fold_bn(m, &folded);
  CHECK(folded.size() == m.bn_nodes().size());
  CHECK(f.graph().size() == m.graph().size());
  NoGradGuard ng;
  Tensor x = test::randn_cpu({4, 1, 28, 28}, 31);
  CHECK(rel(f.forward(x), m.forward(x)) < 1e-5);
  for (int i : folded) CHECK(f.graph().nodes[size_t(i)].op == "identity");
}

TEST_CASE(
    "reconstruct: deterministic, checkpoint/resume reproduces the run, file reloads exactly") {
  models::Model m = golden_model();
  Tensor calib = test::randn_cpu({12, 3, 8, 8}, 41);
  quant::ReconOptions opt;
  opt.iters = 8;
  opt.batch = 4;
  opt.collect_batch = 8;
  opt.seed = 5;
  Tensor probe = test::randn_cpu({6, 3, 8, 8}, 42);
  auto run_full = [&](std::vector<quant::UnitReport>* reps, const std::string& ckpt) {
    QModel qm(m, {3, 4, false});
    quant::ReconCallbacks cb;
    if (!ckpt.empty())
      cb.unit_done = [&](int u, const quant::UnitReport&, QModel& q) {
        if (u == 1) q.save(ckpt, {}, {}, true);
      };
    auto r = quant::reconstruct(qm, calib, opt, cb);
    if (reps) *reps = r;
    return qm;
  };
  TempFile ck("ckpt.h5"), fin("final.h5");
  std::vector<quant::UnitReport> reps;
  QModel a = run_full(&reps, ck.path);
  QModel b = run_full(nullptr, "");
  REQUIRE(reps.size() == 4);
  for (const auto& r : reps) {
    CHECK(std::isfinite(r.loss_before));
    CHECK(std::isfinite(r.loss_after));
  }
  auto logits = [&](QModel& q) {
    NoGradGuard ng;
    return q.forward(probe).to_vector();
  };
  const std::vector<float> ya = logits(a);
  CHECK(ya == logits(b));
  // Resume from the checkpoint written after unit 1.
  QModel c = QModel::load(ck.path);
  quant::ReconOptions ro = opt;
  ro.start_unit = 2;
  auto rest = quant::reconstruct(c, calib, ro);
  CHECK(rest.size() == 2);
  CHECK(logits(c) == ya);
  {
    NoGradGuard ng;  // reconstruction needs gradients: a clear error under a no-grad guard
    CHECK_THROWS_WITH_AS(quant::reconstruct(c, calib, ro), doctest::Contains("grad mode"), Error);
  }
  // The integer file reloads to bit-identical logits.
  a.save(fin.path, {{"note", "test"}});
  QModel d = QModel::load(fin.path);
  CHECK(logits(d) == ya);
  io::H5Reader r(fin.path);
  CHECK(r.stored_dtype("layer1.0.conv1.weight_codes") == DType::I8);
  CHECK(r.attr_i64("bits", "layer1.0.conv1.weight_codes") == 3);
  for (int8_t v : r.read_i8("layer1.0.conv1.weight_codes").to_i8()) CHECK((v >= -4 && v <= 3));
  // Unfinished models are refused.
  QModel fresh(m, {3, 4, false});
  CHECK_THROWS_WITH_AS(fresh.save(fin.path), doctest::Contains("not hard-rounded"), Error);
}

TEST_CASE("reconstruct: a quantized file's float dataset stored as integers is refused") {
  models::Model m = quant::fold_bn(golden_model());
  quant::ReconOptions opt;
  opt.iters = 2;
  opt.batch = 4;
  QModel qm(m, {4, 4, true});
  quant::reconstruct(qm, test::randn_cpu({8, 3, 8, 8}, 43), opt);
  TempFile f("int_param.h5");
  qm.save(f.path);
  CHECK_NOTHROW(QModel::load(f.path));
  // Replace one bias (param.*) by an int32 dataset of the same shape, as a careless converter
  // would write it: loading must name it, not convert it silently.
  std::string key;
  for (const auto& k : io::H5Reader(f.path).list_datasets())
    if (k.rfind("param.", 0) == 0 && k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0)
      key = k;
  REQUIRE_FALSE(key.empty());
  const Shape shape = io::H5Reader(f.path).shape(key);
  {
    const hid_t file = H5Fopen(f.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(file >= 0);
    REQUIRE(H5Ldelete(file, key.c_str(), H5P_DEFAULT) >= 0);
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    const hid_t ds =
        H5Dcreate2(file, key.c_str(), H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int32_t> zeros(size_t(shape.empty() ? 1 : shape[0]), 0);
    REQUIRE(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(file);
  }
  std::string msg;
  try {
    QModel::load(f.path);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("'" + key + "' expected a floating-point type, got i32") != std::string::npos);
}

TEST_CASE("reconstruct: a quantized file's bit widths come from the file and are checked") {
  // Found by the fuzzer (tests/fuzz): a weight_codes dataset whose `bits` attribute is -5 made
  // QModel::load shift by a negative amount (UBSan: quant_functors.h grid_max).
  const std::string p = test::source_path("tests/fuzz/corpus/model/regress_bits_negative.h5");
  std::string msg;
  try {
    QModel::load(p);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("dataset 'classifier.1.weight_codes' expected bits in 2..8, got -5") !=
        std::string::npos);
}

TEST_CASE("reconstruct: BN-folded model reconstructs and reloads exactly") {
  models::Model m = quant::fold_bn(golden_model());
  Tensor calib = test::randn_cpu({8, 3, 8, 8}, 43);
  quant::ReconOptions opt;
  opt.iters = 4;
  opt.batch = 4;
  QModel qm(m, {4, 4, true});
  quant::reconstruct(qm, calib, opt);
  TempFile f("folded.h5");
  qm.save(f.path);
  QModel re = QModel::load(f.path);
  CHECK(re.config().fold_bn);
  // Each activation quantizer names the inputs it quantizes (node, slot pairs), so that other
  // tools need not re-derive the placement rules: here every conv/linear input but the first
  // layer's, and the add node's identity-shortcut input.
  {
    io::H5Reader r(f.path);
    int adds = 0;
    for (size_t a = 0; a < qm.aq.size(); ++a) {
      const auto c = r.attr_i64_vec("consumers", str("act.", a, ".step"));
      CHECK(c == qm.consumers_of(int(a)));
      REQUIRE(c.size() % 2 == 0);
      REQUIRE(!c.empty());
      for (size_t j = 0; j < c.size(); j += 2) {
        const models::Node& n = qm.model().node(int(c[j]));
        CHECK(n.inputs[size_t(c[j + 1])] == qm.aq_value[a]);
        CHECK((n.op == "conv" || n.op == "linear" || n.op == "add"));
        adds += n.op == "add";
      }
    }
    CHECK(adds == 1);
  }
  NoGradGuard ng;
  Tensor probe = test::randn_cpu({3, 3, 8, 8}, 44);
  CHECK(re.forward(probe).to_vector() == qm.forward(probe).to_vector());
}

TEST_CASE("reconstruct: batch gather from the cache, and where the cache lives") {
  // Rows of a (5, 2, 3) cache in a chosen order, as one batch.
  std::vector<float> v(30);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  const Tensor cache = Tensor::from_vector(v, {5, 2, 3});
  const int64_t idx[3] = {4, 0, 2};
  const Tensor b = quant::gather_rows(cache, idx, 3, Device::CPU);
  REQUIRE(b.shape() == Shape{3, 2, 3});
  const auto got = b.to_vector();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j) CHECK(got[size_t(i * 6 + j)] == float(idx[i] * 6 + j));
  const int64_t bad[1] = {5};
  CHECK_THROWS_WITH(quant::gather_rows(cache, bad, 1, Device::CPU),
                    doctest::Contains("row 5 outside 0..4"));
  // A row order made once, batches taken from it at an offset (reconstruct()'s loop).
  const Tensor order = quant::row_order({3, 1, 4, 0, 2}, 5, Device::CPU);
  CHECK(order.dtype() == DType::I32);
  const auto b2 = quant::gather_rows(cache, order, 2, 3, Device::CPU).to_vector();  // rows 4, 0, 2
  CHECK(b2 == got);
  CHECK_THROWS_WITH(quant::row_order({0, -1}, 5, Device::CPU),
                    doctest::Contains("row -1 outside 0..4"));
  CHECK_THROWS_WITH(quant::gather_rows(cache, order, 3, 3, Device::CPU),
                    doctest::Contains("rows 3..6 outside the order's 5"));
  CHECK_THROWS_WITH(quant::gather_rows(cache, cache, 0, 1, Device::CPU),
                    doctest::Contains("expected a row order (I32 vector)"));
  if (cuda_available()) {  // the same batch gathered on the GPU (4-wide and element-wise rows)
    for (int64_t row : {int64_t(6), int64_t(8)}) {
      std::vector<float> w(size_t(5 * row));
      for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) * 0.5f;
      const Tensor c = Tensor::from_vector(w, {5, row});
      const auto host = quant::gather_rows(c, order, 1, 4, Device::CPU).to_vector();
      const Tensor cd = c.to(Device::CUDA);
      const Tensor od = quant::row_order({3, 1, 4, 0, 2}, 5, Device::CUDA);
      CHECK(quant::gather_rows(cd, od, 1, 4, Device::CPU).to_vector() == host);
    }
  }
  // The cache goes to the GPU only there, and only within the budget.
  quant::ReconOptions o;
  o.device_cache_bytes = 1000;
  CHECK_FALSE(quant::cache_on_device(10, Device::CPU, o));
  CHECK(quant::cache_on_device(1000, Device::CUDA, o));
  CHECK_FALSE(quant::cache_on_device(1001, Device::CUDA, o));
}

namespace {
// Runs reconstruct() on the golden model with every iteration's losses recorded; returns the
// logits of a probe batch afterwards.
std::vector<float> recon_run(const quant::ReconOptions& opt, Device d,
                             std::vector<std::array<float, 4>>* losses,
                             std::vector<std::string>* messages = nullptr) {
  models::Model m = golden_model();
  m.to(d);
  QModel qm(m, {3, 4, false});
  quant::ReconCallbacks cb;
  cb.progress = [&](const quant::ReconProgress& p) {
    losses->push_back({p.loss, p.rec, p.reg, p.beta});
  };
  if (messages) cb.message = [&](const std::string& m) { messages->push_back(m); };
  quant::reconstruct(qm, test::randn_cpu({12, 3, 8, 8}, 45), opt, cb);
  NoGradGuard ng;
  return qm.forward(test::randn_cpu({6, 3, 8, 8}, 46).to(d)).to(Device::CPU).to_vector();
}

void check_graph_matches_eager(Device d) {
  for (float qdrop : {0.5f, 0.3f}) {  // QDrop masks from qdrop_mask and from bernoulli_mask
    CAPTURE(qdrop);
    quant::ReconOptions opt;
    opt.iters = 20;  // regulariser from iteration 4: both phases capture and replay
    opt.batch = 4;   // 12 samples: a fresh permutation every 3 iterations
    opt.collect_batch = 8;
    opt.seed = 9;
    opt.log_every = 1;
    opt.qdrop_p = qdrop;
    std::vector<std::array<float, 4>> le, lg;
    const std::vector<float> ye = recon_run(opt, d, &le);
    opt.graph = true;
    const std::vector<float> yg = recon_run(opt, d, &lg);
    REQUIRE(le.size() == 4 * 20);  // 4 units
    REQUIRE(lg.size() == le.size());
    if (d == Device::CPU) {  // deterministic: bit for bit
      CHECK(lg == le);
      CHECK(yg == ye);
    } else {  // the same kernels and cuDNN algorithms; tolerate a nondeterministic algorithm
      std::vector<float> fe, fg;
      for (size_t i = 0; i < le.size(); ++i)
        for (int j = 0; j < 3; ++j) fe.push_back(le[i][size_t(j)]), fg.push_back(lg[i][size_t(j)]);
      if (fg != fe || yg != ye)
        MESSAGE("CUDA graph vs eager not bit-identical: losses rel ", test::rel_err(fg, fe),
                ", logits rel ", test::rel_err(yg, ye));
      CHECK(test::rel_err(fg, fe) < 1e-4);
      CHECK(test::rel_err(yg, ye) < 1e-4);
    }
    CHECK(le[10][2] > 0.f);  // the regulariser was on in the replayed phase
  }
}
}  // namespace

TEST_CASE("reconstruct: replayed captured steps (ReconOptions::graph) reproduce the eager run") {
  check_graph_matches_eager(Device::CPU);
}

TEST_CASE("reconstruct: a step that cannot be captured runs eagerly, says so, same results") {
  quant::ReconOptions opt;
  opt.iters = 12;
  opt.batch = 4;
  opt.collect_batch = 8;
  opt.log_every = 1;
  std::vector<std::array<float, 4>> le, lg;
  const std::vector<float> ye = recon_run(opt, Device::CPU, &le);
  opt.graph = true;
  std::vector<std::string> notes;
  k::StepGraph::fail_captures_for_testing(true);
  std::vector<float> yg;
  try {
    yg = recon_run(opt, Device::CPU, &lg, &notes);
  } catch (...) {
    k::StepGraph::fail_captures_for_testing(false);
    throw;
  }
  k::StepGraph::fail_captures_for_testing(false);
  CHECK(lg == le);
  CHECK(yg == ye);
  std::vector<std::string> capture_notes;  // (the guard may add notes of its own)
  for (const std::string& n : notes)
    if (n.find("could not be captured") != std::string::npos) capture_notes.push_back(n);
  REQUIRE(capture_notes.size() == 4);  // once per unit: no second attempt
  CHECK(capture_notes[0].find("injected") != std::string::npos);
  CHECK_FALSE(k::capturing());
}

TEST_CASE("reconstruct: replayed CUDA graphs reproduce the eager run (GPU)") {
  GENIE_REQUIRE_GPU();
  check_graph_matches_eager(Device::CUDA);
}

TEST_CASE("comm: one rank holds every shard; the ordered sum adds them in shard order") {
  const engine::Comm& one = engine::Comm::single();
  CHECK(one.size() == 1);
  CHECK(one.rank() == 0);
  CHECK(one.shard_first(0, 5) == 0);
  CHECK(one.shard_count(0, 5) == 5);
  // ((1e8 + 1) − 1e8) is 0 in float (1e8 + 1 rounds to 1e8); (1e8 − 1e8) + 1 would be 1.
  const std::vector<float> shards = {1e8f, 2.f, 1.f, -0.f, -1e8f, 3.f};  // 3 shards of n = 2
  std::vector<float> out(2, 7.f);
  one.ordered_sum(shards.data(), 3, 2, out.data(), Device::CPU);
  CHECK(out[0] == 0.f);
  CHECK(out[1] == 5.f);
  const std::vector<float> neg = {-0.f};
  one.ordered_sum(neg.data(), 1, 1, out.data(), Device::CPU);
  CHECK(std::signbit(out[0]));  // one shard is copied, not added to +0
}

TEST_CASE("reconstruct: sharded steps (ReconOptions::shards) follow the full batch's gradient") {
  quant::ReconOptions opt;
  opt.iters = 12;  // the regulariser from iteration 3 (on shard 0 only)
  opt.batch = 6;
  opt.collect_batch = 8;
  opt.log_every = 1;
  opt.qdrop_p = 0.f;  // no QDrop masks: the shards see exactly the full batch's data
  std::vector<std::array<float, 4>> full, s1, s3;
  const std::vector<float> y_full = recon_run(opt, Device::CPU, &full);
  // One shard on one rank is the plain loop.
  opt.shards = 1;
  CHECK(recon_run(opt, Device::CPU, &s1) == y_full);
  CHECK(s1 == full);
  // Three shards of two rows: the same objective, its gradient summed in another order.
  opt.shards = 3;
  const std::vector<float> y3 = recon_run(opt, Device::CPU, &s3);
  REQUIRE(s3.size() == full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    CAPTURE(i);
    for (int j = 0; j < 4; ++j)
      CHECK(s3[i][size_t(j)] == doctest::Approx(full[i][size_t(j)]).epsilon(2e-4));
  }
  CHECK(test::rel_err(y3, y_full) < 1e-3);
  CHECK(s3[5][2] > 0.f);  // the regulariser is in the sum
  // More shards than rows is refused.
  opt.shards = 7;
  CHECK_THROWS_WITH_AS(recon_run(opt, Device::CPU, &s3), doctest::Contains("expected 1..6 shards"),
                       Error);
}
