// genie_run's command line, run as a child process: every bad-input case exits with code 2, names
// the flag or file and writes nothing; config files and flag overrides; report.json's fields; the
// quantized file re-evaluated by `genie_run eval` gives the run's own accuracy.
#include "test_cli.h"

#include <algorithm>
#include <cmath>

#include "engine/cli.h"
#include "engine/qmodel.h"
#include "io/h5.h"
#include "kernels/json.h"
#include "test_util.h"

using namespace genie;
using genie::test::ProcResult;
using genie::test::run_genie;
using genie::test::TempDir;

namespace {

const std::string kModel = test::source_path("tests/data/vgg_small.h5");

// Tiny settings: the 7-unit VGG fixture, 16 images, 20 + 20 iterations, one thread.
std::vector<std::string> tiny(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"quantize", "--model",         kModel, "--out",
                                out,        "--samples",       "16",   "--batch",
                                "8",        "--distill-iters", "20",   "--recon-iters",
                                "20",       "--recon-batch",   "8",    "--device",
                                "cpu",      "--threads",       "1",    "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

using test::contains;

}  // namespace

TEST_CASE("genie_run: bad input exits with 2, names the flag or file, and writes nothing") {
  TempDir tmp;
  const std::string out = tmp / "out";  // never created by any case below
  const std::string not_h5 = tmp / "not_a_model.h5";
  test::write_file(not_h5, "this is not HDF5\n");
  const std::string a_file = tmp / "plain_file";
  test::write_file(a_file, "x");
  const std::string bad_cfg = tmp / "bad.json";
  test::write_file(bad_cfg, R"({"samples": 16, "wbitz": 4})");
  const std::string broken_cfg = tmp / "broken.json";
  test::write_file(broken_cfg, R"({"samples": )");
  const std::string missing = tmp / "missing.h5";

  struct Case {
    std::vector<std::string> args;
    std::string expect;  // must appear in stderr
  };
  const std::vector<Case> cases = {
      {{"--bogus", "1"}, "--bogus"},
      {{"--wbits", "9"}, "--wbits"},
      {{"--wbits", "1"}, "--wbits"},
      {{"--abits", "0"}, "--abits"},
      {{"--abits", "four"}, "--abits"},
      {{"--first-bits", "9"}, "--first-bits"},
      {{"--last-bits", "1"}, "--last-bits"},
      {{"--qdrop-p", "1.5"}, "--qdrop-p"},
      {{"--qdrop-p", "-0.1"}, "--qdrop-p"},
      {{"--samples", "0"}, "--samples"},
      {{"--batch", "-3"}, "--batch"},
      {{"--distill-iters", "0"}, "--distill-iters"},
      {{"--recon-iters", "0"}, "--recon-iters"},
      {{"--distill-lr-z", "-0.1"}, "--distill-lr-z"},
      {{"--distill-lr-g", "0"}, "--distill-lr-g"},
      {{"--lr-wstep", "-1e-4"}, "--lr-wstep"},
      {{"--lr-astep", "-1"}, "--lr-astep"},
      {{"--max-step-change", "0"}, "--max-step-change"},
      {{"--max-step-change", "1.5"}, "--max-step-change"},
      {{"--lr-round", "nan"}, "--lr-round"},
      {{"--round-weight", "-1"}, "--round-weight"},
      {{"--recon-shards", "-1"}, "--recon-shards"},
      {{"--recon-shards", "33"}, "--recon-shards 33: expected at most 32 shards"},
      {{"--device", "tpu"}, "--device"},
      {{"--precision", "fp16"}, "--precision expects fp32, tf32 or bf16, got 'fp16'"},
      {{"--precision", "tf32", "--device", "cpu"},
       "--precision tf32: the CPU computes convolutions and GEMMs in FP32 only"},
      {{"--precision", "bf16", "--device", "cpu"},
       "--precision bf16: the CPU computes convolutions and GEMMs in FP32 only"},
      {{"--distill-mode", "magic"}, "--distill-mode"},
      {{"--calib", "real:" + missing}, missing},
      {{"--calib", "whatever"}, "--calib"},
      {{"--eval", missing}, missing},
      {{"--config", bad_cfg}, "wbitz"},
      {{"--config", broken_cfg}, broken_cfg},
      {{"--config", missing}, missing},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"quantize", "--model", kModel, "--out", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const ProcResult r = run_genie(args);
    INFO("args: ", c.args[0], " ", c.args.size() > 1 ? c.args[1] : "", "\nstderr: ", r.err);
    CHECK(r.rc == 2);
    CHECK(contains(r.err, c.expect));
    CHECK_FALSE(test::path_exists(out));
  }
  // The model file itself.
  for (const std::string& m : {missing, not_h5}) {
    const ProcResult r = run_genie({"quantize", "--model", m, "--out", out});
    INFO("model ", m, "\nstderr: ", r.err);
    CHECK(r.rc == 2);
    CHECK(contains(r.err, m));
    CHECK_FALSE(test::path_exists(out));
  }
  {
    const ProcResult r = run_genie({"quantize", "--out", out});
    CHECK(r.rc == 2);
    CHECK(contains(r.err, "--model"));
  }
  // Unwritable --out: an existing file, and a path below a file.
  for (const std::string& o : {a_file, a_file + "/sub/dir"}) {
    const ProcResult r = run_genie({"quantize", "--model", kModel, "--out", o});
    INFO("out ", o, "\nstderr: ", r.err);
    CHECK(r.rc == 2);
    CHECK(contains(r.err, "--out"));
    CHECK(contains(r.err, o));
    CHECK(test::read_file(a_file) == "x");
  }
  // Subcommands validate too.
  {
    const ProcResult r = run_genie({"distill", "--model", kModel, "--out", out, "--wbits", "4"});
    CHECK(r.rc == 2);
    CHECK(contains(r.err, "--wbits"));  // not a distill flag
    const ProcResult e = run_genie({"eval", "--model", missing, "--eval", "fashion-mnist"});
    CHECK(e.rc == 2);
    CHECK(contains(e.err, missing));
    const ProcResult i = run_genie({"info", "--model", not_h5});
    CHECK(i.rc == 2);
    CHECK(contains(i.err, not_h5));
    const ProcResult u = run_genie({"frobnicate"});
    CHECK(u.rc == 2);
    CHECK(contains(u.err, "frobnicate"));
  }
  CHECK_FALSE(test::path_exists(out));
}

// Issue 15: before, `info` printed these shapes and exited 0, and `quantize` segfaulted (2^31) or
// failed with a 320 GB allocation (100000) after writing a checkpoint. Now the loader refuses them.
TEST_CASE("genie_run: an absurd input_shape is bad input: exit 2, named, nothing written") {
  TempDir tmp;
  const std::string out = tmp / "out";
  const int64_t big = int64_t(1) << 31;
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, big, big}, std::vector<int64_t>{1, 100000, 100000}}) {
    const std::string bad = tmp / "bad.h5";
    {
      io::H5Reader r(test::source_path("models/data/resnet20_fmnist.h5"));
      io::H5Writer w(bad);
      for (const auto& k : r.list_datasets()) w.write(k, r.read_f32(k));
      w.set_attr_string("arch", r.attr_string("arch"));
      w.set_attr_i64_vec("input_shape", shape);
      w.set_attr_f32_vec("input_mean", r.attr_f32_vec("input_mean"));
      w.set_attr_f32_vec("input_std", r.attr_f32_vec("input_std"));
      w.set_attr_i64("num_classes", r.attr_i64("num_classes"));
      w.commit();
    }
    const std::string want =
        str("input_shape expected [C, H, W] with C in [1, 65536] and H, W in "
            "[1, 16384], got (1, ",
            shape[1], ", ", shape[2], ")");
    const ProcResult i = run_genie({"info", "--model", bad});
    INFO("stderr: ", i.err);
    CHECK(i.rc == 2);
    CHECK(contains(i.err, bad));
    CHECK(contains(i.err, want));
    const ProcResult qb = run_genie({"quantize", "--model", bad, "--out", out, "--samples", "8",
                                     "--distill-iters", "2", "--recon-iters", "2", "--quiet"});
    INFO("quantize stderr: ", qb.err);
    CHECK(qb.rc == 2);
    CHECK(contains(qb.err, want));
    CHECK_FALSE(test::path_exists(out));
  }
}

TEST_CASE("genie_run: --help and --version") {
  const ProcResult h = run_genie({"--help"});
  CHECK(h.rc == 0);
  for (const char* flag :
       {"--model",  "--out",           "--wbits",        "--abits",    "--samples",
        "--batch",  "--distill-iters", "--recon-iters",  "--calib",    "--eval",
        "--device", "--seed",          "--threads",      "--config",   "--resume",
        "--quiet",  "--fold-bn",       "--round-weight", "--lr-round", "--graph"})
    CHECK_MESSAGE(contains(h.out, flag), flag);
  const ProcResult v = run_genie({"--version"});
  CHECK(v.rc == 0);
  CHECK(contains(v.out, "genie_run 0."));
}

TEST_CASE("genie_run: config file settings, overridden by flags") {
  TempDir tmp;
  const std::string cfg = tmp / "cfg.json";
  test::write_file(cfg, R"({"samples": 24, "wbits": 3, "fold_bn": true, "seed": 7, "calib": "noise",
                            "distill-lr-z": 0.05, "eval": "fashion-mnist"})");
  const cli::Parsed p = cli::parse(
      "quantize", {"--config", cfg, "--wbits", "5", "--model", "m.h5", "--out", "o", "--seed=9"});
  CHECK(p.cfg.samples == 24);  // from the file
  CHECK(p.cfg.wbits == 5);     // flag overrides the file
  CHECK(p.cfg.seed == 9);      // --name=value form overrides too
  CHECK(p.cfg.fold_bn);        // switch from the file ('_' accepted for '-')
  CHECK_FALSE(p.cfg.graph);    // default
  CHECK(p.cfg.calib == "noise");
  CHECK(p.cfg.distill_lr_z == doctest::Approx(0.05));
  CHECK(p.cfg.abits == 4);            // default
  CHECK(p.cfg.recon_iters == 20000);  // default
  CHECK(p.cfg.eval == "fashion-mnist");
  CHECK_THROWS_WITH_AS(cli::parse("quantize", {"--wbits", "4", "--wbits", "5"}),
                       doctest::Contains("twice"), engine::InputError);
  CHECK_THROWS_WITH_AS(cli::parse("quantize", {"--fold-bn=1"}), doctest::Contains("--fold-bn"),
                       engine::InputError);
  CHECK_THROWS_WITH_AS(cli::parse("quantize", {"--wbit", "4"}), doctest::Contains("--wbits"),
                       engine::InputError);  // the suggestion

  // End to end: the file's settings and the overriding flags reach report.json.
  const std::string out = tmp / "run";
  test::write_file(cfg, R"({"samples": 8, "batch": 8, "wbits": 3, "abits": 3, "distill-iters": 2,
                            "recon-iters": 3, "recon-batch": 4, "calib": "noise", "seed": 11})");
  const ProcResult r = run_genie({"--model", kModel, "--out", out, "--config", cfg, "--abits", "6",
                                  "--first-bits", "7", "--last-bits", "5", "--qdrop-p", "0.25",
                                  "--threads", "1", "--quiet", "--device", "cpu"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  const Json rep = Json::parse(test::read_file(out + "/report.json"), "report.json");
  const Json& s = rep.at("settings");
  CHECK(s.at("wbits").as_int() == 3);
  CHECK(s.at("abits").as_int() == 6);
  CHECK(s.at("samples").as_int() == 8);
  CHECK(s.at("seed").as_int() == 11);
  CHECK(s.at("calib").as_string() == "noise");
  CHECK(rep.at("bits").as_string() == "W3A6");
  CHECK_FALSE(test::path_exists(out + "/images.h5"));  // no synthetic set for noise calibration
  const ProcResult info = run_genie({"info", "--model", out + "/quantized.h5", "--json"});
  REQUIRE(info.rc == 0);
  const Json ij = Json::parse(info.out, "info");
  CHECK(ij.at("quantized").as_bool());
  CHECK(ij.at("bits").as_string() == "W3A6");
  CHECK(s.at("qdrop-p").as_number() == 0.25);
  // Bit widths per layer: first layer W7 with an FP input, second layer's input A7, last layer
  // W5A5.
  const Json& layers = ij.at("layers");
  REQUIRE(layers.size() == 8);  // 6 convs + 2 linears of the VGG fixture
  CHECK(layers[0].at("wbits").as_int() == 7);
  CHECK(layers[0].at("abits").is_null());
  CHECK(layers[1].at("wbits").as_int() == 3);
  CHECK(layers[1].at("abits").as_int() == 7);
  CHECK(layers[2].at("abits").as_int() == 6);
  CHECK(layers[6].at("wbits").as_int() == 3);
  CHECK(layers[7].at("wbits").as_int() == 5);
  CHECK(layers[7].at("abits").as_int() == 5);
}

TEST_CASE("genie_run quantize: report.json fields, outputs, and eval of the quantized file") {
  TempDir tmp;
  const std::string eval_set = tmp / "eval.h5";
  test::write_self_labeled_set(kModel, eval_set, 64, 5);
  const std::string out = tmp / "run";
  const ProcResult r = run_genie(tiny(out, {"--eval", eval_set, "--seed", "2"}));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  for (const char* f : {"quantized.h5", "images.h5", "contact_sheet.png", "report.json"})
    CHECK_MESSAGE(test::path_exists(out + "/" + f), f);
  CHECK_FALSE(test::path_exists(out + "/checkpoint"));  // removed once finished

  const Json rep = Json::parse(test::read_file(out + "/report.json"), "report.json");
  // FP32 labels are the model's own predictions: exactly 1.
  CHECK(rep.at("fp32_top1").as_number() == 1.0);
  const double q1 = rep.at("quant_top1").as_number();
  CHECK(q1 >= 0.0);
  CHECK(q1 <= 1.0);
  CHECK(rep.at("eval").at("n").as_int() == 64);
  const Json& t = rep.at("timings_s");
  for (const char* k : {"load", "distill", "reconstruct", "eval_fp32", "eval_quant", "total"}) {
    INFO(k);
    REQUIRE(t.contains(k));
    CHECK(t.at(k).as_number() >= 0.0);
  }
  CHECK(t.at("total").as_number() >= t.at("distill").as_number() + t.at("reconstruct").as_number());
  const Json& s = rep.at("settings");
  CHECK(s.at("samples").as_int() == 16);
  CHECK(s.at("distill-iters").as_int() == 20);
  CHECK(s.at("recon-iters").as_int() == 20);
  CHECK(s.at("wbits").as_int() == 4);
  CHECK(s.at("abits").as_int() == 4);
  CHECK(s.at("seed").as_int() == 2);
  const Json& units = rep.at("units");
  REQUIRE(units.size() == 7);  // features.0, features.3, features.7, res, head.0, classifier.1, .4
  CHECK(units[0].at("name").as_string() == "features.0");
  CHECK(units[3].at("name").as_string() == "res");
  for (size_t i = 0; i < units.size(); ++i) {
    const double b = units[i].at("loss_before").as_number(),
                 a = units[i].at("loss_after").as_number();
    CHECK(std::isfinite(b));
    CHECK(std::isfinite(a));
    CHECK(b >= 0.0);
    CHECK(a >= 0.0);
    // The guard (issue 16): a unit never ends worse than it started, and the record says which
    // quantizer it kept.
    const bool kept = units[i].at("kept_initial").as_bool();
    CHECK(units[i].at("loss_final").as_number() == (kept ? b : a));
    CHECK(units[i].at("loss_final").as_number() <= b);
    if (kept) CHECK(test::contains(r.err, "the initial quantizer is kept"));
  }
  const Json& d = rep.at("distill");
  CHECK(d.at("batches").size() == 2);
  CHECK(d.at("bn_loss_final").as_number() > 0.0);

  // `genie_run eval` on the files: one JSON line with the run's own accuracies.
  const ProcResult eq =
      run_genie({"eval", "--model", out + "/quantized.h5", "--eval", eval_set, "--threads", "1"});
  INFO(eq.err);
  REQUIRE(eq.rc == 0);
  const Json ej = Json::parse(eq.out, "eval output");
  CHECK(ej.at("top1").as_number() == q1);
  CHECK(ej.at("top5").as_number() == rep.at("quant_top5").as_number());
  CHECK(ej.at("quantized").as_bool());
  // --logits: every image's logits (genie's forward of the file), prediction and label.
  const std::string genie_logits_file = tmp / "genie_logits.h5";
  const ProcResult el = run_genie({"eval", "--model", out + "/quantized.h5", "--eval", eval_set,
                                   "--threads", "1", "--logits", genie_logits_file});
  INFO(el.err);
  REQUIRE(el.rc == 0);
  io::H5Reader gl(genie_logits_file);
  const std::vector<float> genie_logits = gl.read_f32("logits").to_vector();
  const std::vector<int32_t> preds = gl.read_i32("predictions").to_i32(),
                             labels = gl.read_i32("labels").to_i32();
  REQUIRE(genie_logits.size() == 64 * 10);
  REQUIRE(preds.size() == 64);
  CHECK(labels == io::H5Reader(eval_set).read_i32("labels").to_i32());
  {
    NoGradGuard ng;
    const Tensor images = io::H5Reader(eval_set).read_f32("images");
    CHECK(quant::QModel::load(out + "/quantized.h5").forward(images).to_vector() == genie_logits);
  }
  int hits = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    const auto row = genie_logits.begin() + std::ptrdiff_t(i * 10);
    CHECK(preds[i] == int32_t(std::max_element(row, row + 10) - row));
    hits += preds[i] == labels[i];
  }
  CHECK(hits / 64.0 == q1);
  CHECK(run_genie({"eval", "--model", out + "/quantized.h5", "--eval", eval_set, "--logits",
                   tmp / "no/such/dir/x.h5"})
            .rc == 2);
  const ProcResult ef =
      run_genie({"eval", "--model", kModel, "--eval", eval_set, "--threads", "1"});
  REQUIRE(ef.rc == 0);
  CHECK(Json::parse(ef.out, "eval output").at("top1").as_number() == 1.0);

  // A second implementation reads the file: tools/quantized_to_pytorch.py rebuilds the simulated
  // quantized inference in PyTorch from the file alone (graph, codes, steps, the inputs each
  // activation quantizer applies to) and reaches the same accuracy.
  if (!test::torch_available()) {
    ++test::torch_skipped();
    return;
  }
  const std::string logits_file = tmp / "torch_logits.h5";
  const ProcResult pt = test::run_program(
      "/usr/bin/python3", {test::source_path("tools/quantized_to_pytorch.py"),
                           out + "/quantized.h5", "--eval", eval_set, "--threads", "1", "--json",
                           "--logits", logits_file, "--torchscript", tmp / "model.pt"});
  INFO(pt.err);
  REQUIRE(pt.rc == 0);
  const Json pj = Json::parse(pt.out, "quantized_to_pytorch output");
  CHECK(pj.at("images").as_int() == 64);
  CHECK(pj.at("top1").as_number() == q1);
  CHECK(test::path_exists(tmp / "model.pt"));  // TorchScript, checked by the tool on reload
  // Logits against genie's (`eval --logits` above). Both are float32 with different summation
  // orders, so an activation lying within rounding of a quantization boundary can land on the
  // neighbouring level in one of them, which moves that image's logits by up to a few percent
  // (the demo's model: 1 prediction of 10,000 differs, 9,753 images have identical logits, 87
  // differ by more than 1e-5). A missing or misplaced quantizer, or a weight off by 0.1 %, moves
  // nearly every image's logits by more than 1e-4.
  const std::vector<float> torch_logits = io::H5Reader(logits_file).read_f32("logits").to_vector();
  REQUIRE(torch_logits.size() == genie_logits.size());
  double top = 0;
  for (float v : genie_logits) top = std::max(top, std::fabs(double(v)));
  int close = 0;
  for (size_t i = 0; i < 64; ++i) {
    double d = 0;
    for (size_t k = 0; k < 10; ++k)
      d = std::max(d, std::fabs(double(torch_logits[i * 10 + k]) - genie_logits[i * 10 + k]));
    close += d <= 1e-4 * top;
  }
  MESSAGE("PyTorch vs genie logits of the quantized file: ", close,
          " of 64 images within 1e-4 of the largest logit");
  CHECK(close >= 58);  // 90 %
  // It refuses what is not a finished quantized model, naming the file.
  const ProcResult bad = test::run_program(
      "/usr/bin/python3", {test::source_path("tools/quantized_to_pytorch.py"), kModel});
  CHECK(bad.rc == 2);
  CHECK(contains(bad.err, kModel));
  CHECK(contains(bad.err, "genie-qmodel-1"));
}

TEST_CASE(
    "genie_run: --recon-shards runs sharded in one process and is recorded only then (and "
    "--precision fp32 never)") {
  TempDir tmp;
  const ProcResult plain = run_genie(tiny(tmp / "plain"));
  const ProcResult one =
      run_genie(tiny(tmp / "one", {"--recon-shards", "1", "--precision", "fp32"}));
  const ProcResult two = run_genie(tiny(tmp / "two", {"--recon-shards", "2"}));
  INFO(plain.err, one.err, two.err);
  REQUIRE(plain.rc == 0);
  REQUIRE(one.rc == 0);
  REQUIRE(two.rc == 0);
  auto settings = [&](const std::string& run) {
    return Json::parse(test::read_file(tmp / (run + "/report.json")), "report.json").at("settings");
  };
  // Unsharded runs record nothing (their files are those of runs before the setting existed).
  CHECK_FALSE(settings("plain").contains("recon-shards"));
  CHECK_FALSE(settings("one").contains("precision"));
  CHECK(test::read_file(tmp / "plain/quantized.h5") == test::read_file(tmp / "one/quantized.h5"));
  CHECK(settings("two").at("recon-shards").as_int() == 2);
  // Two shards: the same objective summed in another order — another file, the same model shape.
  CHECK(test::read_file(tmp / "two/quantized.h5") != test::read_file(tmp / "plain/quantized.h5"));
  const ProcResult info = run_genie({"info", "--model", tmp / "two/quantized.h5", "--json"});
  REQUIRE(info.rc == 0);
  CHECK(Json::parse(info.out, "info").at("quantized").as_bool());
}
