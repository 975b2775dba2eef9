// The pipeline as a library (engine/genie.h, engine/pipeline.h), in process: settings by flag
// name, checkpoint compatibility messages, distill → quantize with the synthetic set as an HDF5
// calibration file, real-data calibration, evaluation of the written file, bad input before writes.
#include <cmath>

#include "engine/checkpoint.h"
#include "engine/genie.h"
#include "io/h5.h"
#include "test_cli.h"
#include "test_util.h"

using namespace genie;

namespace {
const std::string kModel = test::source_path("tests/data/vgg_small.h5");
}

TEST_CASE("pipeline settings: flag names round trip, ranges, checkpoint differences") {
  Config a;
  a.samples = 48;
  a.wbits = 3;
  a.abits = 5;
  a.fold_bn = true;
  a.swing = false;
  a.calib = "noise";
  a.lr_round = 2e-3;
  a.seed = 12345;
  a.eval = "fashion-mnist";
  const Json j = engine::settings_json(a);
  CHECK(j.at("no-swing").as_bool());
  CHECK(j.at("lr-round").as_number() == 2e-3);
  CHECK_FALSE(j.contains("eval-limit"));  // unset
  Config b;
  engine::apply_config_json(b, j, "test");
  CHECK(engine::settings_json(b) == j);
  CHECK_FALSE(engine::result_settings_json(a).contains("threads"));
  CHECK_FALSE(engine::result_settings_json(a).contains("eval"));
  CHECK(engine::result_settings_json(a).contains("seed"));

  Config bad;
  bad.abits = 9;
  CHECK_THROWS_WITH_AS(engine::check_ranges(bad),
                       doctest::Contains("--abits expects an integer in 2..8"), engine::InputError);
  CHECK_THROWS_WITH_AS(engine::apply_setting(bad, "qdrop", "1"), doctest::Contains("qdrop"),
                       engine::InputError);

  // What a refused resume says.
  Json state = Json::object();
  state.set("command", "quantize");
  state.set("model_path", "m.h5");
  state.set("model_fingerprint", "0123456789abcdef");
  state.set("result_settings", engine::result_settings_json(a));
  CHECK(engine::Checkpoint::differences(state, "quantize", engine::result_settings_json(a),
                                        "0123456789abcdef")
            .empty());
  Config c = a;
  c.seed = 5;
  c.wbits = 2;
  const std::string d = engine::Checkpoint::differences(
      state, "quantize", engine::result_settings_json(c), "fedcba9876543210");
  CHECK(d.find("seed: checkpoint 12345, now 5") != std::string::npos);
  CHECK(d.find("wbits: checkpoint 3, now 2") != std::string::npos);
  CHECK(d.find("model: checkpoint made from 'm.h5'") != std::string::npos);
  CHECK(d.find("samples") == std::string::npos);
  CHECK(engine::Checkpoint::differences(state, "distill", engine::result_settings_json(a),
                                        "0123456789abcdef")
            .find("command") != std::string::npos);
}

TEST_CASE("library API: distill, quantize from the synthetic file and from real images, evaluate") {
  test::TempDir tmp;
  const std::string eval_set = tmp / "eval.h5";
  test::write_self_labeled_set(kModel, eval_set, 48, 9);

  Config dc;
  dc.model = kModel;
  dc.out = tmp / "distill";
  dc.samples = 12;  // two batches, the last one smaller
  dc.batch = 8;
  dc.distill_iters = 3;
  dc.device = "cpu";
  int steps = 0;
  const Result d =
      genie::distill(dc, [&](const Event& e) { steps += e.kind == Event::DistillStep; });
  CHECK(steps > 0);
  REQUIRE(test::path_exists(d.synthetic_path));
  CHECK(test::path_exists(d.contact_sheet_path));
  CHECK(d.distill.images.shape() == Shape{12, 3, 32, 32});
  CHECK(io::H5Reader(d.synthetic_path).read_f32("images").to_vector() ==
        d.distill.images.to_vector());
  const Json drep = Json::parse(test::read_file(d.report_path), "report.json");
  CHECK(drep.at("bn_loss_final").as_number() > 0);
  CHECK(drep.at("distill").at("batches").size() == 2);
  CHECK_FALSE(test::path_exists(dc.out + "/checkpoint"));
  // --graph: the same images through replayed captured steps.
  Config dg = dc;
  dg.out = tmp / "distill_graph";
  dg.graph = true;
  CHECK(genie::distill(dg).distill.images.to_vector() == d.distill.images.to_vector());

  // Quantize with the synthetic set as the calibration file: no Genie-D work, every unit done.
  Config qc;
  qc.model = kModel;
  qc.out = tmp / "quant";
  qc.calib = d.synthetic_path;
  qc.samples = 12;
  qc.recon_iters = 4;
  qc.recon_batch = 4;
  qc.eval = eval_set;
  qc.device = "cpu";
  int distill_steps = 0, units = 0;
  const Result q = genie::quantize(qc, [&](const Event& e) {
    distill_steps += e.kind == Event::DistillStep;
    units += e.kind == Event::UnitEnd;
  });
  CHECK(distill_steps == 0);
  CHECK(units == 7);
  REQUIRE(q.units.size() == 7);
  CHECK(q.evaluated);
  CHECK(q.fp32.top1 == 1.0);
  const FileEval fe = genie::evaluate(q.quant_model_path, eval_set);
  CHECK(fe.quantized);
  CHECK(fe.bits == "W4A4");
  CHECK(fe.result.top1 == q.quant.top1);
  CHECK(fe.result.top5 == q.quant.top5);
  CHECK(genie::evaluate(kModel, eval_set).result.top1 == 1.0);
  // --graph: the same reconstruction through replayed captured steps.
  Config gc = qc;
  gc.out = tmp / "quant_graph";
  gc.graph = true;
  const Result qg = genie::quantize(gc);
  REQUIRE(qg.units.size() == q.units.size());
  for (size_t i = 0; i < q.units.size(); ++i) {
    CHECK(qg.units[i].loss_before == q.units[i].loss_before);
    CHECK(qg.units[i].loss_after == q.units[i].loss_after);
  }
  CHECK(qg.quant.top1 == q.quant.top1);
  CHECK(io::H5Reader(qg.quant_model_path).read_i8("res.conv_a.weight_codes").to_i8() ==
        io::H5Reader(q.quant_model_path).read_i8("res.conv_a.weight_codes").to_i8());

  // Real labeled images as calibration (the evaluation set here), fewer than asked: refused.
  Config rc = qc;
  rc.out = tmp / "real";
  rc.calib = "real:" + eval_set;
  rc.eval.clear();
  rc.samples = 16;
  const Result r = genie::quantize(rc);
  CHECK(r.units.size() == 7);
  CHECK_FALSE(r.evaluated);
  rc.samples = 100;
  rc.out = tmp / "real_too_many";
  CHECK_THROWS_WITH_AS(genie::quantize(rc), doctest::Contains("at least --samples 100"),
                       engine::InputError);
  CHECK_FALSE(test::path_exists(rc.out));

  // Bad input throws before anything is written.
  Config bad = qc;
  bad.out = tmp / "bad";
  bad.wbits = 1;
  CHECK_THROWS_AS(genie::quantize(bad), engine::InputError);
  bad.wbits = 4;
  bad.model = tmp / "nope.h5";
  CHECK_THROWS_WITH_AS(genie::quantize(bad), doctest::Contains("nope.h5"), engine::InputError);
  CHECK_FALSE(test::path_exists(bad.out));
}
