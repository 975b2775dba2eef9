// Weight files (io/model_file.h): the bundled teacher loads and reproduces PyTorch on real images;
// save/load round trip; every malformed-file case gives a clear error naming what is wrong.
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
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> str_attrs;
  std::map<std::string, std::vector<int64_t>> int_attrs;
  std::map<std::string, std::vector<float>> float_attrs;
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
