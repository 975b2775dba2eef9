// The pipeline as a library (engine/genie.h, engine/pipeline.h), in process: settings by flag
// name, checkpoint compatibility messages, distill → quantize with the synthetic set as an HDF5
// calibration file, real-data calibration, evaluation of the written file, bad input before writes.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/checkpoint.h"
#include "engine/genie.h"
#include "io/h5.h"
#include "io/model_file.h"
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
  // --precision: recorded (and compared on resume) only when it is not fp32.
  CHECK_FALSE(engine::result_settings_json(a).contains("precision"));
  CHECK_FALSE(engine::settings_json(a).contains("precision"));
  Config tf = a;
  engine::apply_setting(tf, "precision", "tf32");
  CHECK(engine::result_settings_json(tf).at("precision").as_string() == "tf32");
  CHECK(engine::distill_config(tf, Device::CUDA).precision == Precision::TF32);
  CHECK(engine::recon_options(tf).precision == Precision::TF32);
  CHECK(engine::distill_config(a, Device::CPU).precision == Precision::FP32);
  CHECK_THROWS_WITH_AS(engine::apply_setting(tf, "precision", "fp16"),
                       doctest::Contains("--precision expects fp32, tf32 or bf16, got 'fp16'"),
                       engine::InputError);

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

TEST_CASE(
    "settings: the defaults once, the phase configurations from them, the help from the table") {
  const Config c;
  // Every phase's configuration, converted from the default settings, is its own default.
  const engine::DistillConfig dc = engine::distill_config(c, Device::CPU), d0;
  CHECK(dc.samples == d0.samples);
  CHECK(dc.batch == d0.batch);
  CHECK(dc.iters == d0.iters);
  CHECK(dc.lr_z == d0.lr_z);
  CHECK(dc.lr_g == d0.lr_g);
  CHECK(dc.swing == d0.swing);
  CHECK(dc.mode == d0.mode);
  const quant::ReconOptions ro = engine::recon_options(c), r0;
  CHECK(ro.iters == r0.iters);
  CHECK(ro.batch == r0.batch);
  CHECK(ro.lr_w_step == r0.lr_w_step);
  CHECK(ro.lr_a_step == r0.lr_a_step);
  CHECK(ro.lr_logits == r0.lr_logits);
  CHECK(ro.qdrop_p == r0.qdrop_p);
  CHECK(ro.round_weight == r0.round_weight);
  CHECK(ro.max_step_change == r0.max_step_change);
  CHECK(r0.max_step_change == 0.02f);
  const quant::QuantConfig qc = engine::quant_config(c), q0;
  CHECK(qc.wbits == q0.wbits);
  CHECK(qc.abits == q0.abits);
  CHECK(qc.first_bits == q0.first_bits);
  CHECK(qc.last_bits == q0.last_bits);
  // …and they are the paper's (GENIE.md §1.5, §2.1, §2.5).
  CHECK(d0.samples == 1024);
  CHECK(d0.batch == 128);
  CHECK(d0.iters == 4000);
  CHECK(d0.lr_z == 0.1f);
  CHECK(d0.lr_g == 0.01f);
  CHECK(r0.iters == 20000);
  CHECK(r0.batch == 32);
  CHECK(r0.lr_w_step == 1e-4f);
  CHECK(r0.lr_a_step == 4e-5f);
  CHECK(r0.lr_logits == 1e-3f);
  CHECK(r0.qdrop_p == 0.5f);
  CHECK(q0.wbits == 4);
  CHECK(q0.first_bits == 8);
  CHECK(q0.last_bits == 8);

  // The help names every flag of quantize, each value flag with its default where it has one.
  const std::string help = engine::settings_help();
  for (const auto& f : engine::value_flags("quantize"))
    CHECK_MESSAGE(test::contains(help, "--" + f + " "), f);
  for (const auto& f : engine::switch_flags("quantize"))
    CHECK_MESSAGE(test::contains(help, "--" + f), f);
  CHECK(test::contains(help, "--samples N"));
  CHECK(test::contains(help, "calibration images S [default 1024]"));
  CHECK(test::contains(help, "[default " + Json(4e-5).dump() + "]"));
  CHECK(test::contains(help, "cpu | cuda | auto [default auto]"));
  CHECK(test::contains(help, "[2..8, default 4]"));
  CHECK(test::contains(help, "[0..1, default 0.5]"));
  // distill takes the Genie-D and run flags only.
  const auto dv = engine::value_flags("distill"), ds = engine::switch_flags("distill");
  CHECK(std::find(dv.begin(), dv.end(), "samples") != dv.end());
  CHECK(std::find(dv.begin(), dv.end(), "wbits") == dv.end());
  CHECK(std::find(dv.begin(), dv.end(), "calib") == dv.end());
  CHECK(std::find(ds.begin(), ds.end(), "no-swing") != ds.end());
  CHECK(std::find(ds.begin(), ds.end(), "fold-bn") == ds.end());
  // A step learning rate of 0 keeps the steps (accepted; a negative one is not).
  Config frozen;
  frozen.lr_wstep = frozen.lr_astep = 0;
  engine::check_ranges(frozen);
  CHECK(engine::recon_options(frozen).lr_w_step == 0.f);
  frozen.max_step_change = 0;
  CHECK_THROWS_WITH_AS(engine::check_ranges(frozen), doctest::Contains("--max-step-change"),
                       InputError);
  // Bit widths: one range at the boundary.
  Config bad;
  bad.first_bits = 1;
  CHECK_THROWS_WITH_AS(engine::check_ranges(bad),
                       doctest::Contains("--first-bits expects an integer in 2..8, got '1'"),
                       InputError);
  CHECK_THROWS_WITH_AS(engine::resolve_device("gpu"),
                       doctest::Contains("--device expects cpu, cuda or auto, got 'gpu'"),
                       InputError);
  CHECK_THROWS_WITH_AS(engine::parse_int("limit", "-3", 1, INT64_MAX),
                       doctest::Contains("--limit expects an integer >= 1, got '-3'"), InputError);
}

TEST_CASE("records: one JSON form each, read back as written") {
  quant::UnitReport u;
  u.name = "layer2.0";
  u.kind = "basic_block";
  u.first = 12;
  u.last = 19;
  u.iters = 300;
  u.loss_before = 0.123456789012345;
  u.loss_after = 0.0123;
  u.collect_s = 1.5;
  u.optimize_s = 20.25;
  const Json j = Json::parse(engine::to_json(u).dump(), "unit");
  CHECK(j.at("time_s").as_number() == 21.75);
  const quant::UnitReport r = engine::unit_report_from_json(j);
  CHECK(r.name == u.name);
  CHECK(r.kind == u.kind);
  CHECK(r.first == u.first);
  CHECK(r.last == u.last);
  CHECK(r.iters == u.iters);
  CHECK(r.loss_before == u.loss_before);
  CHECK(r.loss_after == u.loss_after);
  CHECK(r.collect_s == u.collect_s);
  CHECK(r.optimize_s == u.optimize_s);
  CHECK_FALSE(r.kept_initial);
  CHECK(j.at("loss_final").as_number() == u.loss_after);
  u.kept_initial = true;  // the guard: the unit's final loss is the initial quantizer's
  const Json k = engine::to_json(u);
  CHECK(k.at("loss_final").as_number() == u.loss_before);
  CHECK(engine::unit_report_from_json(k).kept_initial);
  // A checkpoint written before the unit times were split: its time_s is kept.
  const Json old = Json::parse(
      R"({"name": "conv1", "kind": "conv", "loss_before": 2, "loss_after": 1, "time_s": 3.5})");
  const quant::UnitReport o = engine::unit_report_from_json(old);
  CHECK(o.collect_s + o.optimize_s == 3.5);
  CHECK(o.loss_after == 1.0);
  CHECK_FALSE(o.kept_initial);  // (before the guard existed)
  CHECK_THROWS_AS(engine::unit_report_from_json(Json::parse(R"({"name": "x"})")), Error);

  engine::DistillBatch b;
  b.index = 3;
  b.first = 384;
  b.count = 100;
  b.iters = 4000;
  b.bn_loss = 0.0371f;
  b.input_loss = 1.25e-3f;
  b.bn_loss_noise = 2.7182817f;
  b.time_s = 12.5;
  const engine::DistillBatch c =
      engine::distill_batch_from_json(Json::parse(engine::to_json(b).dump(), "batch"));
  CHECK(c.index == b.index);
  CHECK(c.first == b.first);
  CHECK(c.count == b.count);
  CHECK(c.iters == b.iters);
  CHECK(c.bn_loss == b.bn_loss);  // floats round-trip exactly
  CHECK(c.input_loss == b.input_loss);
  CHECK(c.bn_loss_noise == b.bn_loss_noise);
  CHECK(c.time_s == b.time_s);
}

namespace {
// The test model with its first BatchNorm's scale and shift set to 3e38: finite numbers in the
// file, but the layer's outputs overflow to infinities (and NaN further on).
std::string overflowing_model(const std::string& path) {
  models::Model m = io::load_model(kModel);
  const std::string bn = m.node(m.bn_nodes().at(0)).name;
  for (const char* p : {".weight", ".bias"}) {
    Tensor& t = m.mutable_params().at(bn + p);
    t = Tensor::full(t.shape(), 3e38f);
  }
  io::save_model(m, path);
  return path;
}

// The message of the genie::Error `f` throws ("" when it does not throw one).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE(
    "non-finite numbers never pass as results: evaluation, Genie-D, Genie-M, the model file") {
  test::TempDir tmp;
  const std::string eval_set = tmp / "eval.h5";
  test::write_self_labeled_set(kModel, eval_set, 8, 3);
  const std::string bad_model = overflowing_model(tmp / "overflow.h5");
  const std::string first_bn =
      io::load_model(kModel).node(io::load_model(kModel).bn_nodes().at(0)).name;

  // Evaluation refuses to report an accuracy over non-finite logits, naming where they start.
  std::string e = error_of([&] { genie::evaluate(bad_model, eval_set); });
  CHECK(test::contains(e, "[evaluate] the logits of image 0 are not finite"));
  CHECK(test::contains(e, "the first non-finite values come from node '" + first_bn + "' (bn)"));
  // genie_run: a failure while running (exit 1), the message on stderr, nothing on stdout.
  const test::ProcResult ev = test::run_genie({"eval", "--model", bad_model, "--eval", eval_set});
  CHECK(ev.rc == 1);
  CHECK(test::contains(ev.err, "are not finite"));
  CHECK(ev.out.empty());

  // Genie-D stops at the first iteration, naming the batch and the teacher's first bad node.
  Config dc;
  dc.model = bad_model;
  dc.out = tmp / "distill";
  dc.samples = 4;
  dc.batch = 4;
  dc.distill_iters = 3;
  dc.device = "cpu";
  e = error_of([&] { genie::distill(dc); });
  CHECK(test::contains(e, "[distill] batch 0, iteration 1: the loss is not finite"));
  CHECK(test::contains(e, "the teacher's activations are not finite from node '" + first_bn));
  CHECK_FALSE(test::path_exists(dc.out + "/images.h5"));

  // Genie-M stops at the first unit whose data is not finite; no quantized model is written.
  Config qc;
  qc.model = bad_model;
  qc.out = tmp / "quant";
  qc.calib = "noise";
  qc.samples = 8;
  qc.recon_iters = 3;
  qc.recon_batch = 4;
  qc.device = "cpu";
  e = error_of([&] { genie::quantize(qc); });
  CHECK(test::contains(e, "[reconstruct] unit "));
  CHECK(test::contains(e, "the FP32 teacher's activations are not finite from node '" + first_bn));
  CHECK_FALSE(test::path_exists(qc.out + "/quantized.h5"));

  // A healthy model whose optimisation diverges (absurd step learning rates) stops too.
  Config dv = qc;
  dv.model = kModel;
  dv.out = tmp / "diverge";
  dv.lr_astep = 1e38;
  dv.lr_wstep = 1e38;
  e = error_of([&] { genie::quantize(dv); });
  CHECK(test::contains(e, "[reconstruct] unit "));
  CHECK(test::contains(e, "is not finite"));
  CHECK_FALSE(test::path_exists(dv.out + "/quantized.h5"));
}

TEST_CASE("Genie-D that cannot fit in memory is refused before anything is written") {
  test::TempDir tmp;
  // The bundled teacher at 4096 x 4096: the generator's first layer alone is ~550 GB.
  const models::Model t = io::load_model(test::source_path("models/data/resnet20_fmnist.h5"));
  models::ModelInfo info = t.info();
  info.H = info.W = 4096;
  io::save_model(models::Model(t.graph(), info, t.params(), "test"), tmp / "big.h5");
  Config c;
  c.model = tmp / "big.h5";
  c.out = tmp / "out";
  c.samples = 8;
  c.batch = 8;
  c.device = "cpu";
  CHECK_THROWS_WITH_AS(genie::distill(c), doctest::Contains("Genie-D needs at least"), InputError);
  CHECK_FALSE(test::path_exists(c.out));
}
