// Weight files (io/model_file.h): the bundled teacher loads and reproduces PyTorch on real images;
// save/load round trip; every malformed-file case gives a clear error naming what is wrong, and
// absurd sizes, non-finite constants and integer-typed weights are refused at load (issue 15).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "engine/evaluate.h"
#include "io/datasets.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "models/model.h"
#include "test_util.h"

using namespace genie;
using models::Model;

namespace {

const std::string& teacher_path() {
  static const std::string p = test::source_path("models/data/resnet20_fmnist.h5");
  return p;
}

std::string tmp_path(const std::string& name) {
  return str("/tmp/genie_test_models_", getpid(), "_", name);
}

// Copies the teacher file into `path`, letting `edit` change the tensors and string/number
// attributes before writing.
struct FileSpec {
  std::map<std::string, Tensor> tensors;  // any dtype (written as float32, int8, uint8, int32)
  std::map<std::string, std::string> str_attrs;
  std::map<std::string, std::vector<int64_t>> int_attrs;
  std::map<std::string, std::vector<float>> float_attrs;
  std::map<std::string, double> f64_attrs;  // scalars
};

FileSpec teacher_spec() {
  io::H5Reader r(teacher_path());
  FileSpec s;
  for (const auto& k : r.list_datasets()) s.tensors[k] = r.read_f32(k);
  s.str_attrs["arch"] = r.attr_string("arch");
  s.int_attrs["input_shape"] = r.attr_i64_vec("input_shape");
  s.int_attrs["num_classes"] = {r.attr_i64("num_classes")};
  s.float_attrs["input_mean"] = r.attr_f32_vec("input_mean");
  s.float_attrs["input_std"] = r.attr_f32_vec("input_std");
  return s;
}

std::string write_spec(const FileSpec& s, const std::string& name) {
  const std::string path = tmp_path(name);
  io::H5Writer w(path);
  for (const auto& kv : s.tensors) w.write(kv.first, kv.second);
  for (const auto& kv : s.str_attrs) w.set_attr_string(kv.first, kv.second);
  for (const auto& kv : s.int_attrs)
    if (kv.first == "num_classes")
      w.set_attr_i64(kv.first, kv.second[0]);
    else
      w.set_attr_i64_vec(kv.first, kv.second);
  for (const auto& kv : s.float_attrs) w.set_attr_f32_vec(kv.first, kv.second);
  for (const auto& kv : s.f64_attrs) w.set_attr_f64(kv.first, kv.second);
  w.commit();
  return path;
}

// The message load_model throws for `path` (fails the test if it loads).
std::string load_error(const std::string& path) {
  try {
    io::load_model(path);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("non-genie exception: ") + e.what();
  }
  return "loaded without error";
}

using test::contains;

// load_error for the teacher with `edit` applied; the message must name the file.
std::string edited_error(const std::function<void(FileSpec&)>& edit) {
  FileSpec s = teacher_spec();
  edit(s);
  const std::string p = write_spec(s, "edited.h5");
  const std::string msg = load_error(p);
  std::remove(p.c_str());
  CHECK_MESSAGE(contains(msg, p), msg);
  return msg;
}

// The teacher's graph description (JSON), for edits of its fields.
Json teacher_graph() { return io::load_model(teacher_path()).graph().to_json(); }

Json& member(Json& object, const std::string& key) {
  for (auto& kv : object.as_object())
    if (kv.first == key) return kv.second;
  FAIL("no key ", key);
  return object;
}

}  // namespace

TEST_CASE("model_file: the bundled teacher loads and matches PyTorch logits on real images") {
  const Model m = io::load_model(teacher_path());
  CHECK(m.info().arch == "resnet20");
  CHECK(m.info().C == 1);
  CHECK(m.info().H == 28);
  CHECK(m.info().num_classes == 10);
  CHECK(m.info().mean[0] == doctest::Approx(0.2860));
  CHECK(m.info().std[0] == doctest::Approx(0.3530));
  CHECK(m.num_params() == 272186);  // README
  CHECK(m.bn_nodes().size() == 21);
  CHECK(m.strided_convs().size() == 4);  // layer2.0/layer3.0 conv1 and downsample
  CHECK(m.units().size() == 11);         // stem conv, 9 basic blocks, fc

  std::ifstream f(test::source_path("tests/golden/teacher_fmnist_logits.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  const Json gold = Json::parse(ss.str(), "teacher_fmnist_logits.json");
  const int64_t n = gold.at("n").as_int();
  const io::LabeledImages d = io::load_fashion_mnist("test", engine::input_spec(m.info()), n);
  std::vector<float> want;
  for (const Json& v : gold.at("logits").as_array()) want.push_back(float(v.as_number()));
  const std::vector<float> got = m.forward(d.images).to_vector();
  CHECK(test::rel_err(got, want) < 1e-5);
  std::vector<int32_t> labels;
  for (const Json& v : gold.at("labels").as_array()) labels.push_back(int32_t(v.as_int()));
  CHECK(d.labels.to_i32() == labels);
}

TEST_CASE("model_file: save then load round-trips parameters, info and graph") {
  const Model m = io::load_model(teacher_path());
  const std::string p1 = tmp_path("roundtrip.h5"), p2 = tmp_path("roundtrip_graph.h5");
  io::SaveOptions opts;
  opts.string_attrs["dataset"] = "fashion-mnist";
  io::save_model(m, p1, opts);
  opts.write_graph = true;
  io::save_model(m, p2, opts);
  for (const std::string& p : {p1, p2}) {
    INFO(p);
    const Model b = io::load_model(p);
    CHECK(b.info().arch == "resnet20");
    CHECK(b.info().mean == m.info().mean);
    CHECK(b.params().size() == m.params().size());
    for (const auto& kv : m.params())
      CHECK(test::max_abs_diff(kv.second.to_vector(), b.param(kv.first).to_vector()) == 0.0);
    CHECK(b.units().size() == m.units().size());
    io::H5Reader r(p);
    CHECK(r.attr_string("dataset") == "fashion-mnist");
    CHECK(r.has_attr("graph") == (p == p2));
    std::remove(p.c_str());
  }
}

TEST_CASE("model_file: missing tensor names the key, the file and the closest keys") {
  FileSpec s = teacher_spec();
  s.tensors.erase("layer2.1.bn1.running_var");
  const std::string p = write_spec(s, "missing.h5");
  const std::string msg = load_error(p);
  INFO(msg);
  CHECK(contains(msg, p));
  CHECK(contains(msg, "missing tensor 'layer2.1.bn1.running_var'"));
  // Edit distance 1 each; ties in alphabetical order.
  CHECK(contains(msg,
                 "(closest keys present: layer1.1.bn1.running_var, layer2.0.bn1.running_var, "
                 "layer2.1.bn2.running_var)"));
  std::remove(p.c_str());
}

TEST_CASE("model_file: wrong shape names expected and found") {
  FileSpec s = teacher_spec();
  s.tensors["fc.weight"] = Tensor::zeros({10, 32});
  const std::string p = write_spec(s, "shape.h5");
  const std::string msg = load_error(p);
  INFO(msg);
  CHECK(contains(msg, p));
  CHECK(contains(msg, "tensor 'fc.weight' expected shape (10, 64), found (10, 32)"));
  std::remove(p.c_str());
}

TEST_CASE("model_file: a tensor's declared shape is checked before the tensor is read") {
  // fc.weight as 64 MiB of zeros, deflated to a few dozen KiB: the file is small, the declared
  // shape is not the architecture's (10, 64). It is refused by its declaration, before the
  // 64 MiB are allocated and decompressed.
  FileSpec s = teacher_spec();
  s.tensors.erase("fc.weight");
  const std::string p = tmp_path("declared.h5");
  {
    io::H5Writer w(p);
    for (const auto& kv : s.tensors) w.write(kv.first, kv.second);
    w.write("fc.weight", Tensor::zeros({4096, 4096}), 9);
    for (const auto& kv : s.str_attrs) w.set_attr_string(kv.first, kv.second);
    w.set_attr_i64_vec("input_shape", s.int_attrs.at("input_shape"));
    w.set_attr_i64("num_classes", s.int_attrs.at("num_classes")[0]);
    for (const auto& kv : s.float_attrs) w.set_attr_f32_vec(kv.first, kv.second);
    w.commit();
  }
  host_reset_peak();
  const size_t before = host_mem_stats().allocated;
  const std::string msg = load_error(p);
  CHECK(contains(msg, "tensor 'fc.weight' expected shape (10, 64), found (4096, 4096)"));
  CHECK(host_mem_stats().peak_allocated - before < (size_t(16) << 20));  // no 64 MiB read
  std::remove(p.c_str());
}

TEST_CASE("model_file: unknown arch lists the known ones") {
  FileSpec s = teacher_spec();
  s.str_attrs["arch"] = "resnet21";
  const std::string p = write_spec(s, "arch.h5");
  const std::string msg = load_error(p);
  INFO(msg);
  CHECK(contains(msg, p));
  CHECK(contains(msg, "unknown architecture 'resnet21' (known: resnet20, resnet18, resnet50,"));
  CHECK(contains(msg, "mnasnet1_0"));
  std::remove(p.c_str());
}

TEST_CASE("model_file: NaN / Inf weights and negative running variance name the tensor") {
  struct Case {
    const char* key;
    int64_t index;
    float value;
    const char* want;
  };
  const Case cases[] = {
      {"layer1.0.conv1.weight", 17, std::numeric_limits<float>::quiet_NaN(),
       "tensor 'layer1.0.conv1.weight' expected finite values, got nan at flat index 17"},
      {"fc.bias", 3, std::numeric_limits<float>::infinity(),
       "tensor 'fc.bias' expected finite values, got inf at flat index 3"},
      {"layer3.2.bn2.running_var", 5, -0.25f,
       "tensor 'layer3.2.bn2.running_var' expected a non-negative running variance, got -0.25 at "
       "channel 5"},
  };
  for (const Case& c : cases) {
    INFO(c.key);
    FileSpec s = teacher_spec();
    Tensor t = s.tensors.at(c.key).clone();
    t.data()[c.index] = c.value;
    s.tensors[c.key] = t;
    const std::string p = write_spec(s, "values.h5");
    const std::string msg = load_error(p);
    INFO(msg);
    CHECK(contains(msg, p));
    CHECK(contains(msg, c.want));
    std::remove(p.c_str());
  }
}

TEST_CASE("model_file: unexpected extra tensors are named; num_batches_tracked is ignored") {
  FileSpec s = teacher_spec();
  s.tensors["bn1.num_batches_tracked"] = Tensor::zeros({});
  s.tensors["layer1.0.num_batches_tracked"] = Tensor::zeros({});
  std::string p = write_spec(s, "nbt.h5");
  CHECK(io::load_model(p).params().size() == teacher_spec().tensors.size());
  std::remove(p.c_str());
  s.tensors["layer4.0.conv1.weight"] = Tensor::zeros({3, 3});
  p = write_spec(s, "extra.h5");
  const std::string msg = load_error(p);
  INFO(msg);
  CHECK(contains(msg, p));
  CHECK(
      contains(msg, "1 unexpected tensor(s) not used by the architecture: layer4.0.conv1.weight"));
  std::remove(p.c_str());
}

TEST_CASE("model_file: missing attributes and a malformed graph description are clear errors") {
  FileSpec s = teacher_spec();
  s.int_attrs.erase("input_shape");
  std::string p = write_spec(s, "noshape.h5");
  CHECK(contains(load_error(p), "missing root attribute 'input_shape'"));
  std::remove(p.c_str());
  s = teacher_spec();
  s.int_attrs["input_shape"] = {1, 28};
  p = write_spec(s, "badshape.h5");
  CHECK(contains(load_error(p), "'input_shape' expected 3 positive values [C, H, W], got (1, 28)"));
  std::remove(p.c_str());
  s = teacher_spec();
  s.float_attrs["input_std"] = {0.3f, 0.3f};
  p = write_spec(s, "badstd.h5");
  CHECK(contains(load_error(p), "expected 1 values each"));
  std::remove(p.c_str());
  s = teacher_spec();
  s.str_attrs["graph"] = "{\"nodes\": [\n {\"op\": \"conv\",, }]}";
  p = write_spec(s, "badgraph.h5");
  const std::string msg = load_error(p);
  INFO(msg);
  CHECK(contains(msg, "attribute 'graph':2:16: expected a string key"));
  std::remove(p.c_str());
}

TEST_CASE("model_file: non-HDF5, truncated, empty and absent files give clear errors") {
  const std::string text = tmp_path("text.h5");
  {
    std::ofstream f(text);
    f << "this is not an HDF5 file\n";
  }
  CHECK(contains(load_error(text), "not an HDF5 file"));
  CHECK(contains(load_error(text), text));

  const std::string empty = tmp_path("empty.h5");
  { std::ofstream f(empty); }
  CHECK(contains(load_error(empty), "is empty (0 bytes)"));

  // Truncated: the first half of the real teacher file.
  const std::string trunc = tmp_path("trunc.h5");
  {
    std::ifstream in(teacher_path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(trunc, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size() / 2));
  }
  const std::string tmsg = load_error(trunc);
  INFO(tmsg);
  CHECK(contains(tmsg, trunc));
  CHECK((contains(tmsg, "truncated") || contains(tmsg, "corrupt")));

  CHECK(contains(load_error(tmp_path("absent.h5")), "does not exist"));
  for (const auto& p : {text, empty, trunc}) std::remove(p.c_str());
}

// ---- issue 15: absurd or non-finite descriptions are refused at load ------------------------

// Before: (1, 2^31, 2^31) and (1, 100000, 100000) loaded (genie_run info printed them), and
// quantize then segfaulted (int64 overflow in the generator's sizes) or failed after writing a
// checkpoint (a 320 GB allocation). Bounds: models/limits.h.
TEST_CASE("model_file: absurd input_shape and num_classes are refused at load, naming them") {
  const int64_t big = int64_t(1) << 31;
  struct Case {
    std::vector<int64_t> shape;
    const char* want;
  };
  const Case cases[] = {
      {{1, big, big},
       "input_shape expected [C, H, W] with C in [1, 65536] and H, W in [1, "
       "16384], got (1, 2147483648, 2147483648)"},
      {{1, 100000, 100000}, "got (1, 100000, 100000)"},
      {{70000, 28, 28}, "got (70000, 28, 28)"},
      {{big, 1, 1}, "got (2147483648, 1, 1)"},
      {{4096, 16384, 16384},
       "input_shape expected at most 268435456 values per image (C·H·W), got (4096, 16384, 16384)"},
  };
  for (const Case& c : cases) {
    // The shape is checked first (input_mean and input_std keep the teacher's single value).
    const std::string msg =
        edited_error([&](FileSpec& s) { s.int_attrs["input_shape"] = c.shape; });
    INFO(msg);
    CHECK(contains(msg, c.want));
  }
  const std::string msg =
      edited_error([](FileSpec& s) { s.int_attrs["num_classes"] = {int64_t(1) << 40}; });
  INFO(msg);
  CHECK(contains(msg,
                 "attribute 'num_classes' expected a value in [1, 268435456], got "
                 "1099511627776"));
  CHECK(contains(edited_error([](FileSpec& s) { s.int_attrs["num_classes"] = {0}; }),
                 "attribute 'num_classes' expected a value in [1, 268435456], got 0"));
}

// Before: input_std 1e-45 and a NaN/Inf input_mean loaded (every normalised image became ±inf
// or NaN; 0, negative, NaN and Inf std were already refused).
TEST_CASE("model_file: non-finite input_mean and a degenerate input_std are refused") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* attr;
    float value;
    const char* want;
  };
  const Case cases[] = {
      {"input_std", 1e-45f, "input_std[0] expected a finite value >= 1e-06, got 1.4013e-45"},
      {"input_std", 0.f, "input_std[0] expected a finite value >= 1e-06, got 0"},
      {"input_std", -0.5f, "input_std[0] expected a finite value >= 1e-06, got -0.5"},
      {"input_std", nan, "input_std[0] expected a finite value >= 1e-06, got nan"},
      {"input_std", inf, "input_std[0] expected a finite value >= 1e-06, got inf"},
      {"input_mean", nan, "input_mean[0] expected a finite value in [-1e+06, 1e+06], got nan"},
      {"input_mean", -inf, "input_mean[0] expected a finite value in [-1e+06, 1e+06], got -inf"},
      {"input_mean", 3e38f, "input_mean[0] expected a finite value in [-1e+06, 1e+06], got 3e+38"},
  };
  for (const Case& c : cases) {
    const std::string msg = edited_error([&](FileSpec& s) { s.float_attrs[c.attr] = {c.value}; });
    INFO(msg);
    CHECK(contains(msg, c.want));
  }
}

// Before: a file without them loaded as if normalised with mean 0 and std 1, without a word.
TEST_CASE("model_file: missing input_mean / input_std is an error that says what to write") {
  for (const char* attr : {"input_mean", "input_std"}) {
    const std::string msg = edited_error([&](FileSpec& s) { s.float_attrs.erase(attr); });
    INFO(msg);
    CHECK(contains(msg, str("missing root attribute '", attr, "'")));
    CHECK(contains(msg, "write input_mean [0] and input_std [1] for an unnormalised model"));
  }
}

// Before: integer datasets were converted to float without a word (an int8 conv weight gave 8 %
// accuracy on Fashion-MNIST).
TEST_CASE("model_file: integer-typed parameters are refused, naming the key and the stored type") {
  struct Case {
    const char* key;
    DType type;
    const char* want;
  };
  const Case cases[] = {
      {"conv1.weight", DType::I8,
       "dataset 'conv1.weight' expected float values (float32 or "
       "float64), got int8 values"},
      {"layer1.0.conv2.weight", DType::U8,
       "dataset 'layer1.0.conv2.weight' expected float "
       "values (float32 or float64), got uint8 values"},
      {"fc.bias", DType::I32,
       "dataset 'fc.bias' expected float values (float32 or float64), got "
       "16- to 64-bit integer values"},
  };
  for (const Case& c : cases) {
    const std::string msg = edited_error([&](FileSpec& s) {
      s.tensors[c.key] = Tensor::zeros(s.tensors.at(c.key).shape(), Device::CPU, c.type);
    });
    INFO(msg);
    CHECK(contains(msg, c.want));
  }
  // float64 is read as float (H5Reader::stored_dtype reports F32 for every float type, which is
  // what the loader accepts): the h5py fixture's float64 dataset.
  io::H5Reader r(test::source_path("tests/data/io/h5py_fixture.h5"));
  CHECK(r.stored_dtype("layer1.0.bn1.running_var") == DType::F32);
}

// Before: bn_eps 2 (or 1e3) was accepted; values that narrow to float 0 or inf were refused.
TEST_CASE("model_file: bn_eps outside (0, 1] is refused") {
  for (double e : {2.0, 1e300, 0.0, -1e-5, 1e-50, std::numeric_limits<double>::quiet_NaN()}) {
    const std::string msg = edited_error([&](FileSpec& s) { s.f64_attrs["bn_eps"] = e; });
    INFO(msg);
    CHECK(contains(msg, "attribute 'bn_eps' expected a value in (0, 1], got "));
  }
  FileSpec s = teacher_spec();
  s.f64_attrs["bn_eps"] = 1e-3;  // in range: every BN gets it
  const std::string p = write_spec(s, "eps.h5");
  const Model m = io::load_model(p);
  std::remove(p.c_str());
  CHECK(m.node(m.bn_nodes()[0]).eps == 1e-3f);
}

// Before: a 1 MB arch name or dataset name was compared by edit distance against every key
// (seconds) and echoed whole in the error.
TEST_CASE("model_file: over-long names are refused with a clipped message") {
  const std::string long_name(1 << 20, 'q');
  std::string msg = edited_error([&](FileSpec& s) { s.str_attrs["arch"] = long_name; });
  INFO(msg.substr(0, 300));
  CHECK(contains(msg, "arch expected at most 256 characters, got 1048576 ('qqqq"));
  CHECK(msg.size() < 400);
  msg = edited_error([&](FileSpec& s) { s.tensors[std::string(5000, 'k')] = Tensor::zeros({1}); });
  CHECK(contains(msg, "dataset name of 5000 characters, expected at most 288"));
  CHECK(contains(msg, "… (5000 characters)"));
  CHECK(msg.size() < 400);
}

// The graph attribute: every integer field checked before it is narrowed, every float constant
// finite, sizes within models/limits.h. Before: each of these loaded (inputs 4294967295 read as
// -1, the graph input; stride 4294967300 and pad 2^52 ran and gave garbage or a length_error
// abort; eps 1e30 and a 1e300 slope ran with inf).
TEST_CASE("model_file: graph fields out of range are refused at load, naming the node and field") {
  struct Case {
    size_t node;  // SIZE_MAX: the graph object itself
    const char* key;
    Json value;
    const char* want;
  };
  const Case cases[] = {
      {0, "inputs", Json::array_of(std::vector<int64_t>{4294967295}),
       "node 0: 'inputs' expected inputs from earlier nodes (-1 = graph input), got 4294967295"},
      {1, "inputs", Json::array_of(std::vector<int64_t>{4294967296}), "got 4294967296"},
      {SIZE_MAX, "output", Json(int64_t(4294967295)),
       "'output' expected a node index in [-1, 73), got 4294967295"},
      {0, "stride", Json(int64_t(4294967300)),
       "node 0: 'stride' expected an integer in [1, 16384], got 4294967300"},
      {0, "pad", Json(int64_t(1) << 52), "node 0: 'pad' expected an integer in [0, 16384], got "},
      {0, "out", Json(int64_t(1) << 40), "node 0: 'out' expected an integer in [0, 268435456]"},
      {0, "groups", Json(-1), "node 0: 'groups' expected an integer in [1, 65536], got -1"},
      {0, "kernel", Json(1e300), "kernel: expected an integer, got 1e+300"},
      {1, "eps", Json(1e300), "node 1: 'eps' expected a finite float32 value, got 1e+300"},
      {1, "eps", Json(1e30), "node 1 (bn1, bn): expected eps in (0, 1], got 1e+30"},
      {1, "eps", Json(0.0), "node 1 (bn1, bn): expected eps in (0, 1], got 0"},
      {1, "eps", Json(-1e-5), "expected eps in (0, 1], got -1e-05"},
      {2, "slope", Json(1e39), "node 2: 'slope' expected a finite float32 value, got 1e+39"},
  };
  for (const Case& c : cases) {
    Json g = teacher_graph();
    if (c.node == SIZE_MAX)
      g.set(c.key, c.value);
    else
      member(g, "nodes").as_array()[c.node].set(c.key, c.value);
    const std::string msg = edited_error([&](FileSpec& s) { s.str_attrs["graph"] = g.dump(); });
    INFO(c.key, ": ", msg);
    CHECK(contains(msg, c.want));
    CHECK(contains(msg, "attribute 'graph'"));
  }
}
