// io/: HDF5 reader/writer (roundtrips, h5py interop, every bad-file case, all-or-nothing writes),
// atomic text files, dataset readers (Fashion-MNIST, image folders, HDF5 arrays), PNG/JPEG and
// contact sheets.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "io/atomic.h"
#include "io/h5.h"
#include "test_util.h"

using namespace genie;
using namespace genie::io;

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with its files when the object dies.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/genie_io_test.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path = buf.data();
  }
  ~TempDir() { remove_tree(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) out.push_back(e->d_name);
      ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static void remove_tree(const std::string& p) {
    if (DIR* d = ::opendir(p.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
        const std::string c = p + "/" + e->d_name;
        struct stat st;
        if (::lstat(c.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(c);
        else ::unlink(c.c_str());
      }
      ::closedir(d);
    }
    ::rmdir(p.c_str());
  }
};

std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

// Runs `fn`, requires a genie::Error whose message contains every one of `parts`.
template <class F>
void require_error(F&& fn, std::initializer_list<const char*> parts) {
  std::string msg;
  try {
    fn();
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  REQUIRE_FALSE(msg.empty());
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

const std::string kTeacher = "models/data/resnet20_fmnist.h5";

}  // namespace

TEST_CASE("io h5: every dtype and attribute kind round-trips") {
  TempDir dir;
  const std::string p = dir / "rt.h5";
  Tensor f = test::randn_cpu({3, 4, 5}, 7);
  Tensor i8 = Tensor::empty({2, 3}, Device::CPU, DType::I8);
  Tensor u8 = Tensor::empty({7}, Device::CPU, DType::U8);
  Tensor i32 = Tensor::from_i32({-2147483647 - 1, 0, 5, 2147483647}, {2, 2});
  for (int i = 0; i < 6; ++i) i8.data_as<int8_t>()[i] = int8_t(-128 + 51 * i);
  for (int i = 0; i < 7; ++i) u8.data_as<uint8_t>()[i] = uint8_t(255 - 40 * i);
  Tensor big = test::randn_cpu({64, 128}, 8);
  {
    H5Writer w(p);
    w.write("layer1.0.conv1.weight", f);
    w.write("codes", i8);
    w.write("pixels", u8);
    w.write("labels", i32);
    w.write("scalar", Tensor::scalar(-3.25f));
    w.write("empty", Tensor::empty({0, 3}));
    w.write("big", big, /*gzip=*/6);
    w.set_attr_string("arch", "resnet20");
    w.set_attr_string("graph", std::string(100000, 'x'));  // longer than an object header may hold
    w.set_attr_f32_vec("input_mean", {0.286f, 0.5f});
    w.set_attr_i64_vec("input_shape", {1, 28, 28});
    w.set_attr_f64("fp32_top1", 0.9274);
    w.set_attr_i64("num_classes", 10);
    w.set_attr_f32_vec("none", {});
    w.set_attr_string("arch", "resnet18");  // replacing is allowed
    w.set_attr_f32_vec("step", {0.125f, 0.25f}, "codes");
    w.set_attr_string("kind", "weight", "layer1.0.conv1.weight");
    CHECK_FALSE(file_exists(p));  // nothing at the final path before commit()
    w.commit();
    require_error([&] { w.write("late", f); }, {"after commit()"});
  }
  H5Reader r(p);
  CHECK(r.list_datasets() ==
        std::vector<std::string>{"big", "codes", "empty", "labels", "layer1.0.conv1.weight", "pixels", "scalar"});
  CHECK(r.has("layer1.0.conv1.weight"));
  CHECK(r.has("layer1/0/conv1/weight"));  // either spelling
  CHECK_FALSE(r.has("layer1.0.conv2.weight"));
  CHECK(r.shape("layer1.0.conv1.weight") == Shape{3, 4, 5});
  CHECK(r.shape("scalar") == Shape{});
  CHECK(r.shape("empty") == Shape{0, 3});
  CHECK(r.stored_dtype("codes") == DType::I8);
  CHECK(r.stored_dtype("pixels") == DType::U8);
  CHECK(r.stored_dtype("labels") == DType::I32);
  CHECK(r.read_f32("layer1.0.conv1.weight").to_vector() == f.to_vector());
  CHECK(r.read_f32("big").to_vector() == big.to_vector());
  CHECK(r.read_f32("scalar").item() == -3.25f);
  CHECK(r.read_f32("empty").numel() == 0);
  Tensor ri8 = r.read_i8("codes");
  CHECK(ri8.dtype() == DType::I8);
  CHECK(ri8.to_i8() == i8.to_i8());
  Tensor ru8 = r.read("pixels");
  REQUIRE(ru8.dtype() == DType::U8);
  for (int i = 0; i < 7; ++i) CHECK(ru8.data_as<uint8_t>()[i] == uint8_t(255 - 40 * i));
  CHECK(r.read_i32("labels").to_i32() == i32.to_i32());
  CHECK(r.read_i32("codes").to_i32() == std::vector<int32_t>{-128, -77, -26, 25, 76, 127});  // widened
  CHECK(r.read_f32("codes").to_vector() == std::vector<float>{-128, -77, -26, 25, 76, 127});
  require_error([&] { r.read_i8("labels"); }, {"labels", "-2147483648", "does not fit i8"});
  require_error([&] { r.read_i32("big"); }, {"big", "expected an integer type"});

  CHECK(r.attr_string("arch") == "resnet18");
  CHECK(r.attr_string("graph") == std::string(100000, 'x'));
  CHECK(r.attr_f32_vec("input_mean") == std::vector<float>{0.286f, 0.5f});
  CHECK(r.attr_i64_vec("input_shape") == std::vector<int64_t>{1, 28, 28});
  CHECK(r.attr_f64("fp32_top1") == 0.9274);
  CHECK(r.attr_i64("num_classes") == 10);
  CHECK(r.attr_i64_vec("num_classes") == std::vector<int64_t>{10});  // scalar read as a vector
  CHECK(r.attr_f32_vec("none").empty());
  CHECK(r.attr_f32_vec("step", "codes") == std::vector<float>{0.125f, 0.25f});
  CHECK(r.attr_string("kind", "layer1/0/conv1/weight") == "weight");
  CHECK(r.has_attr("arch"));
  CHECK_FALSE(r.has_attr("arch", "codes"));
  CHECK(r.list_attrs() ==
        std::vector<std::string>{"arch", "fp32_top1", "graph", "input_mean", "input_shape", "none", "num_classes"});
  require_error([&] { r.attr_string("input_shape"); }, {p.c_str(), "input_shape", "expected a string"});
  require_error([&] { r.attr_f64("arch"); }, {"arch", "expected a number"});
  require_error([&] { r.attr_f64("input_shape"); }, {"input_shape", "expected one value, got 3"});
  require_error([&] { r.attr_i64_vec("input_mean"); }, {"input_mean", "expected integer values"});
  require_error([&] { r.attr_string("nope"); }, {"no attribute 'nope' on the file root", "present: arch"});
  require_error([&] { r.attr_string("nope", "codes"); }, {"no attribute 'nope' on dataset 'codes'"});
}

TEST_CASE("io h5: nested groups are read as dotted keys") {
  TempDir dir;
  const std::string p = dir / "nested.h5";
  {
    H5Writer w(p);
    w.write("layer1/0/conv1/weight", Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
    w.write("layer1/0/bn1/bias", Tensor::from_vector({5, 6}, {2}));
    w.write("fc.weight", Tensor::from_vector({7}, {1, 1}));
    w.set_attr_f32_vec("scale", {0.5f}, "layer1/0/bn1/bias");
    w.commit();
  }
  H5Reader r(p);
  CHECK(r.list_datasets() == std::vector<std::string>{"fc.weight", "layer1.0.bn1.bias", "layer1.0.conv1.weight"});
  CHECK(r.read_f32("layer1.0.conv1.weight").to_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK(r.read_f32("layer1/0/bn1/bias").to_vector() == std::vector<float>{5, 6});
  CHECK(r.attr_f32_vec("scale", "layer1.0.bn1.bias") == std::vector<float>{0.5f});
}

TEST_CASE("io h5: files written by h5py (fixture from tests/data/io/make_fixtures.py)") {
  H5Reader r(test::source_path("tests/data/io/h5py_fixture.h5"));
  CHECK(r.list_datasets() == std::vector<std::string>{"codes", "fc.bias", "gz", "labels", "layer1.0.bn1.running_var",
                                                      "layer1.0.conv1.weight", "pixels", "scalar"});
  auto w = r.read_f32("layer1.0.conv1.weight");
  CHECK(w.shape() == Shape{2, 3, 2, 2});
  for (int i = 0; i < 24; ++i) CHECK(w.data()[i] == float(i) / 8);
  CHECK(r.read_f32("layer1.0.bn1.running_var").to_vector() == std::vector<float>{0.5f, 1.5f});  // from float64
  CHECK(r.read_f32("fc.bias").to_vector() == std::vector<float>{-1.25f, 0.f, 3.5f});
  CHECK(r.stored_dtype("labels") == DType::I32);
  CHECK(r.read_i32("labels").to_i32() == std::vector<int32_t>{3, 0, 9, 200});  // from int64
  require_error([&] { r.read_i8("labels"); }, {"'labels'", "value 200", "does not fit i8"});
  CHECK(r.read_u8("labels").data_as<uint8_t>()[3] == 200);
  CHECK(r.read_i8("codes").to_i8() == std::vector<int8_t>{-128, 127, 0, -1});
  CHECK(r.read_u8("pixels").data_as<uint8_t>()[1] == 255);
  CHECK(r.read_f32("scalar").item() == 2.5f);
  auto gz = r.read_f32("gz").to_vector();
  REQUIRE(gz.size() == 5000);
  CHECK(gz.front() == -1.f);
  CHECK(gz.back() == 1.f);
  CHECK(r.attr_string("arch") == "tiny");
  CHECK(r.attr_string("fixed") == "fixed-len");
  CHECK(r.attr_i64_vec("input_shape") == std::vector<int64_t>{3, 8, 8});
  CHECK(r.attr_f32_vec("input_mean") == std::vector<float>{0.5f, 0.25f, 0.125f});
  CHECK(r.attr_i64("num_classes") == 10);
  CHECK(r.attr_i64("normalized") == 1);
  CHECK(r.attr_f64("ratio") == 0.75);
  CHECK(r.attr_i64_vec("whole") == std::vector<int64_t>{4, -2});
  CHECK(r.attr_string("note", "fc.bias") == "bias");
  CHECK(r.attr_f32_vec("scale", "layer1.0.conv1.weight") == std::vector<float>{1.5f, 2.5f});
}

TEST_CASE("io h5: the bundled Fashion-MNIST teacher") {
  H5Reader r(test::source_path(kTeacher));
  // `h5ls -r models/data/resnet20_fmnist.h5 | grep -c Dataset` → 107
  CHECK(r.list_datasets().size() == 107);
  CHECK(r.attr_string("arch") == "resnet20");
  CHECK(r.attr_string("dataset") == "fashion-mnist");
  CHECK(r.attr_i64_vec("input_shape") == std::vector<int64_t>{1, 28, 28});
  CHECK(r.attr_f32_vec("input_mean") == std::vector<float>{0.2860f});
  CHECK(r.attr_f32_vec("input_std") == std::vector<float>{0.3530f});
  CHECK(r.attr_i64("num_classes") == 10);
  CHECK(r.attr_f64("fp32_top1") == doctest::Approx(0.9274).epsilon(1e-12));
  CHECK(r.shape("conv1.weight") == Shape{16, 1, 3, 3});
  CHECK(r.shape("layer3.0.downsample.0.weight") == Shape{64, 32, 1, 1});
  CHECK(r.shape("fc.weight") == Shape{10, 64});
  auto var = r.read_f32("bn1.running_var").to_vector();
  REQUIRE(var.size() == 16);
  for (float v : var) CHECK(v > 0.f);
  require_error([&] { r.read_f32("layer1.0.conv3.weight"); },
                {kTeacher.c_str(), "no dataset 'layer1.0.conv3.weight'", "closest: layer1.0.conv1.weight"});
}

TEST_CASE("io h5: bad files give clear errors, never a crash") {
  TempDir dir;
  require_error([&] { H5Reader r(dir / "missing.h5"); }, {"missing.h5: does not exist"});
  require_error([&] { H5Reader r(dir.path); }, {"got a directory"});
  write_bytes(dir / "empty.h5", "");
  require_error([&] { H5Reader r(dir / "empty.h5"); }, {"empty.h5: is empty (0 bytes), not an HDF5 file"});
  write_bytes(dir / "text.h5", "arch = resnet20\nthis is not HDF5\n");
  require_error([&] { H5Reader r(dir / "text.h5"); }, {"text.h5: not an HDF5 file"});
  const std::string whole = read_bytes(test::source_path(kTeacher));
  REQUIRE(whole.size() > 100000);
  for (size_t keep : {size_t(4096), whole.size() / 2, whole.size() - 100}) {
    CAPTURE(keep);
    write_bytes(dir / "trunc.h5", whole.substr(0, keep));
    require_error([&] { H5Reader r(dir / "trunc.h5"); }, {"trunc.h5: truncated or corrupt"});
  }
  // Signature intact, metadata after the superblock overwritten: an Error when opening or listing.
  {
    std::string bad = whole;
    for (size_t i = 96; i < 2048; ++i) bad[i] = char(0xA5);
    write_bytes(dir / "corrupt.h5", bad);
    require_error(
        [&] {
          H5Reader r(dir / "corrupt.h5");
          for (const auto& k : r.list_datasets()) r.read_f32(k);
        },
        {"corrupt.h5"});
  }
  write_bytes(dir / "ok.h5", whole);
  H5Reader ok(dir / "ok.h5");
  require_error([&] { ok.shape("fc.bias.x"); }, {"no dataset 'fc.bias.x'", "closest: fc.bias"});
  require_error([&] { ok.attr_string("arch", "nope.weight"); }, {"no dataset 'nope.weight'"});
}

TEST_CASE("io h5: the writer is all-or-nothing and deterministic") {
  TempDir dir;
  const std::string p = dir / "w.h5";
  {
    H5Writer w(p);
    w.write("a", Tensor::from_vector({1, 2}, {2}));
    CHECK(dir.entries().size() == 1);  // the temporary file, under another name
    CHECK_FALSE(file_exists(p));
  }  // destroyed without commit()
  CHECK(dir.entries().empty());
  // An existing file survives a failed (uncommitted) rewrite untouched.
  {
    H5Writer w(p);
    w.write("a", Tensor::from_vector({1, 2}, {2}));
    w.commit();
  }
  const std::string before = read_bytes(p);
  {
    H5Writer w(p);
    w.write("b", Tensor::from_vector({3}, {1}));
    require_error([&] { w.write("b", Tensor::from_vector({3}, {1})); }, {"dataset 'b' written twice"});
    require_error([&] { w.set_attr_f64("x", 1.0, "nope"); }, {"'nope'", "written first"});
  }
  CHECK(read_bytes(p) == before);
  CHECK(dir.entries() == std::vector<std::string>{"w.h5"});
  // Same content → same bytes (no timestamps in the file), so checkpoints and models can be compared.
  auto make = [&](const std::string& q) {
    H5Writer w(q);
    w.write("layer1/0/w", test::randn_cpu({5, 6}, 3));
    w.write("x.y", test::randn_cpu({100, 50}, 4), 4);
    w.set_attr_string("graph", "{\"nodes\": []}");
    w.set_attr_i64_vec("shape", {1, 2, 3}, "x.y");
    w.commit();
  };
  make(dir / "d1.h5");
  sleep(1);
  make(dir / "d2.h5");
  CHECK(read_bytes(dir / "d1.h5") == read_bytes(dir / "d2.h5"));
  require_error([&] { H5Writer w(dir / "no/such/dir/x.h5"); }, {"x.h5: cannot create", "does not exist"});
}

TEST_CASE("io atomic: text files") {
  TempDir dir;
  const std::string p = dir / "report.json";
  write_file_atomic(p, "{\"a\": 1}\n");
  CHECK(read_text_file(p) == "{\"a\": 1}\n");
  write_file_atomic(p, std::string("x\0y", 3));
  CHECK(read_text_file(p) == std::string("x\0y", 3));
  CHECK(dir.entries() == std::vector<std::string>{"report.json"});
  require_error([&] { read_text_file(dir / "nope.json"); }, {"nope.json: does not exist"});
  require_error([&] { read_text_file(dir.path); }, {"got a directory"});
  require_error([&] { write_file_atomic(dir / "missing/r.json", "x"); }, {"r.json: cannot write", "does not exist"});
  make_dirs(dir / "a/b/c");
  CHECK(dir_exists(dir / "a/b/c"));
  write_file_atomic(dir / "a/b/c/f", "z");
  CHECK(file_exists(dir / "a/b/c/f"));
  require_error([&] { make_dirs(dir / "a/b/c/f/g"); }, {"not a directory"});
}
