// Evaluation (engine/evaluate.h): top-k bookkeeping on hand-made logits, and the bundled teacher's
// Fashion-MNIST test accuracy against the fp32_top1 recorded in its file (PyTorch, eval mode).
#include "engine/evaluate.h"
#include "io/datasets.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "test_util.h"

using namespace genie;

TEST_CASE("evaluate: top-1 / top-5 counting, ties, batching and label checks") {
  // 7 images, 6 classes, one logit row per image (the image value indexes the row).
  const std::vector<std::vector<float>> rows = {
      {9, 1, 2, 3, 4, 5}, {0, 0, 0, 0, 0, 1}, {5, 6, 0, 0, 0, 0}, {1, 2, 3, 4, 0.2f, 0.5f},
      {1, 2, 3, 4, 5, 6}, {3, 2, 1, 0, 9, 0}, {4, 4, 4, 4, 4, 4}};
  const std::vector<int32_t> labels = {0, 5, 0, 5, 0, 0, 5};
  // Ranks: 0, 0, 1, 4, 5, 1; the all-equal row ranks label 5 after classes 0-4 (rank 5).
  io::LabeledImages d;
  d.images = Tensor::zeros({7, 1, 1, 1});
  for (int i = 0; i < 7; ++i) d.images.data()[i] = float(i);
  d.labels = Tensor::from_i32(labels, {7});
  auto fwd = [&](const Tensor& x) {
    const int64_t B = x.dim(0);
    std::vector<float> out;
    for (int64_t b = 0; b < B; ++b) {
      const auto& r = rows[size_t(x.data()[b])];
      out.insert(out.end(), r.begin(), r.end());
    }
    return Tensor::from_vector(out, {B, 6});
  };
  for (int batch : {1, 3, 256}) {
    INFO(batch);
    const engine::EvalResult r = engine::evaluate(fwd, d, batch);
    CHECK(r.n == 7);
    CHECK(r.top1 == doctest::Approx(2.0 / 7.0));
    CHECK(r.top5 == doctest::Approx(5.0 / 7.0));
  }
  d.labels.data_as<int32_t>()[2] = 6;
  CHECK_THROWS_WITH_AS(engine::evaluate(fwd, d, 4),
                       "[evaluate] label 6 of image 2 is outside the model's 6 classes", Error);
  const Json j = engine::to_json({0.5, 0.75, 4, 1.25});
  CHECK(j.dump() == "{\"top1\":0.5,\"top5\":0.75,\"n\":4,\"seconds\":1.25}");
}

TEST_CASE(
    "evaluate: resnet20_fmnist.h5 reaches its fp32_top1 on the 10,000 Fashion-MNIST test images") {
  const std::string path = test::source_path("models/data/resnet20_fmnist.h5");
  const double fp32_top1 = io::H5Reader(path).attr_f64("fp32_top1");
  const models::Model m = io::load_model(path);
  const io::LabeledImages data = io::load_fashion_mnist("test", engine::input_spec(m.info()));
  REQUIRE(data.size() == 10000);
  const engine::EvalResult r = engine::evaluate(m, data, 256, Device::CPU);
  MESSAGE("resnet20_fmnist: top1 ", r.top1, " top5 ", r.top5, " (fp32_top1 ", fp32_top1, ") in ",
          r.seconds, " s on the CPU (", cpu_threads(), " threads)");
  CHECK(r.n == 10000);
  CHECK(std::fabs(r.top1 - fp32_top1) <= 0.0005 + 1e-12);
  CHECK(r.top5 > r.top1);
}

// Issue 17: the trained networks with the new layers (tests/data/make_zoo_fmnist.py: SE blocks,
// SiLU, Hardswish, Fused-MBConv; dense block, transition, ShuffleNetV2 units, ceil-mode pooling)
// reach, in genie, the top-1 PyTorch measured when exporting them.
TEST_CASE("evaluate: the issue-17 Fashion-MNIST networks reach their PyTorch fp32_top1") {
  for (const char* name : {"se_fmnist", "concat_fmnist"}) {
    INFO(name);
    const std::string path = test::source_path(str("tests/data/", name, ".h5"));
    const double fp32_top1 = io::H5Reader(path).attr_f64("fp32_top1");
    const models::Model m = io::load_model(path);
    const io::LabeledImages data = io::load_fashion_mnist("test", engine::input_spec(m.info()));
    const engine::EvalResult r = engine::evaluate(m, data, 256, Device::CPU);
    MESSAGE(std::string(name), ": top1 ", r.top1, " (PyTorch ", fp32_top1, ") in ", r.seconds,
            " s");
    CHECK(r.n == 10000);
    CHECK(std::fabs(r.top1 - fp32_top1) <= 0.0002 + 1e-12);  // at most 2 images
  }
}
