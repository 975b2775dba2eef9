// genie_m: experiment driver for Genie-M alone (GENIE.md §2) — quantize a teacher with a given
// calibration set by block reconstruction, evaluate, save the integer model, reload it and check
// that it evaluates to exactly the same accuracy. Prints one JSON line with accuracies and the
// wall time of every phase.
//
//   genie_m --model models/data/resnet20_fmnist.h5 --wbits 4 --abits 4 --calib real --n 256
//           --iters 2000 [--fold-bn] [--seed 0] [--out q.h5] [--eval-limit 10000] [--threads 2]
// --calib: real (random training images, seeded), noise (N(0,1) in the normalized input space),
//          genie-d:FILE (Genie-D images: read FILE when it exists, else synthesise --n images with
//          --distill-iters iterations per batch of 128 and write FILE), or an HDF5 file of images.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "engine/distill.h"
#include "engine/evaluate.h"
#include "engine/fold_bn.h"
#include "engine/progress.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "engine/records.h"
#include "io/atomic.h"
#include "io/datasets.h"
#include "io/model_file.h"
#include "kernels/util.h"

using namespace genie;

namespace {
struct Args {
  std::string model = "models/data/resnet20_fmnist.h5", calib = "real", out, device = "cpu";
  Precision precision = Precision::FP32;  // --precision: GPU convolutions and GEMMs
  int wbits = 4, abits = 4, threads = 0;
  int64_t n = 256, iters = 2000, eval_limit = -1, batch = 32, distill_iters = 500;
  uint64_t seed = 0;
  bool fold_bn = false, eval_fp = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      GENIE_CHECK(i + 1 < argc, "[genie_m] expected a value after ", k);
      return argv[++i];
    };
    if (k == "--model")
      a.model = val();
    else if (k == "--calib")
      a.calib = val();
    else if (k == "--out")
      a.out = val();
    else if (k == "--device")
      a.device = val();
    else if (k == "--precision")
      a.precision = parse_precision(val());
    else if (k == "--wbits")
      a.wbits = std::stoi(val());
    else if (k == "--abits")
      a.abits = std::stoi(val());
    else if (k == "--threads")
      a.threads = std::stoi(val());
    else if (k == "--n")
      a.n = std::stoll(val());
    else if (k == "--iters")
      a.iters = std::stoll(val());
    else if (k == "--batch")
      a.batch = std::stoll(val());
    else if (k == "--distill-iters")
      a.distill_iters = std::stoll(val());
    else if (k == "--eval-limit")
      a.eval_limit = std::stoll(val());
    else if (k == "--seed")
      a.seed = std::stoull(val());
    else if (k == "--fold-bn")
      a.fold_bn = true;
    else if (k == "--eval-fp")
      a.eval_fp = true;
    else
      GENIE_CHECK(false, "[genie_m] unknown argument '", k, "'");
  }
  return a;
}

Tensor calibration(const Args& a, const models::Model& m, const io::InputSpec& spec) {
  if (a.calib == "real") {
    io::LabeledImages train = io::load_fashion_mnist("train", spec);
    std::mt19937_64 rng(a.seed + 12345);
    std::vector<int64_t> idx(size_t(train.size()));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
    std::shuffle(idx.begin(), idx.end(), rng);
    const int64_t per = train.images.numel() / train.size();
    Tensor out =
        Tensor::empty({a.n, train.images.dim(1), train.images.dim(2), train.images.dim(3)});
    for (int64_t i = 0; i < a.n; ++i)
      std::copy(train.images.data() + idx[size_t(i)] * per,
                train.images.data() + (idx[size_t(i)] + 1) * per, out.data() + i * per);
    return out;
  }
  if (a.calib == "noise") {
    ops::Generator g(a.seed + 777);
    return ops::randn({a.n, m.info().C, m.info().H, m.info().W}, g);
  }
  std::string path = a.calib;
  if (path.rfind("genie-d:", 0) == 0) {
    path = path.substr(8);
    if (!io::file_exists(path)) {
      engine::DistillConfig dc;
      dc.samples = a.n;
      dc.batch = 128;
      dc.iters = a.distill_iters;
      dc.seed = a.seed;
      dc.device = m.device();
      dc.precision = a.precision;
      const engine::DistillResult r = engine::distill(m, dc, [](const engine::DistillProgress& p) {
        if (p.iter == p.iters || p.iter % 100 == 0)
          std::fprintf(stderr, "%s\n", engine::format_distill_progress(p).c_str());
      });
      engine::write_distill_h5(path, r, dc, m);
      std::fprintf(stderr, "[genie_m] Genie-D: %lld images in %.1fs (bn loss %.4f, noise %.4f)\n",
                   (long long)a.n, r.time_s, r.bn_loss_final, r.bn_loss_noise);
    }
  }
  io::LabeledImages d = io::load_h5_images(path, spec, a.n, false);
  GENIE_CHECK(d.size() == a.n, "[genie_m] ", path, ": expected ", a.n, " images, got ", d.size());
  return d.images;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.threads > 0) set_cpu_threads(a.threads);
    const Device dev = parse_device(a.device);
    Json phases = Json::object(), out = Json::object();
    Stopwatch t;
    models::Model teacher = io::load_model(a.model);
    teacher.to(dev);
    const io::InputSpec spec = engine::input_spec(teacher.info());
    io::LabeledImages test = io::load_fashion_mnist("test", spec, a.eval_limit);
    phases.set("load_s", t.seconds());
    if (a.eval_fp) {
      t.restart();
      out.set("fp32_top1", engine::evaluate(teacher, test, 500, dev).top1);
      phases.set("eval_fp32_s", t.seconds());
    }
    t.restart();
    const Tensor calib = calibration(a, teacher, spec);
    phases.set("calib_s", t.seconds());
    t.restart();
    models::Model base = a.fold_bn ? quant::fold_bn(teacher) : teacher;
    quant::QuantConfig cfg;
    cfg.wbits = a.wbits;
    cfg.abits = a.abits;
    cfg.fold_bn = a.fold_bn;
    quant::QModel qm(base, cfg);
    phases.set("init_s", t.seconds());
    quant::ReconOptions ro;
    ro.iters = a.iters;
    ro.batch = a.batch;
    ro.seed = a.seed;
    ro.precision = a.precision;
    ro.log_every = std::max<int64_t>(1, a.iters / 4);
    quant::ReconCallbacks cb;
    cb.progress = [](const quant::ReconProgress& p) {
      std::fprintf(stderr,
                   "[genie_m] unit %d/%d %-10s it %5lld/%lld loss %.4f (rec %.4f reg %.2f b %.1f) "
                   "%.1f it/s ETA %.0fs\n",
                   p.unit + 1, p.units, p.name.c_str(), (long long)p.iter, (long long)p.iters,
                   p.loss, p.rec, p.reg, p.beta, p.it_per_s, p.eta_s);
    };
    cb.message = [](const std::string& m) { std::fprintf(stderr, "[genie_m] %s\n", m.c_str()); };
    t.restart();
    const auto reports = quant::reconstruct(qm, calib, ro, cb);
    phases.set("reconstruct_s", t.seconds());
    Json units = Json::array();
    for (const auto& r : reports) {
      units.push_back(engine::to_json(r));
      std::fprintf(stderr, "[genie_m] %-10s loss %.5f -> %.5f  (%.1fs)%s\n", r.name.c_str(),
                   r.loss_before, r.loss_after, r.collect_s + r.optimize_s,
                   r.kept_initial ? "  worse: initial quantizer kept" : "");
    }
    t.restart();
    const double top1 = engine::evaluate(qm, test, 500, dev).top1;
    phases.set("eval_quant_s", t.seconds());
    out.set("quant_top1", top1);
    if (!a.out.empty()) {
      t.restart();
      qm.save(a.out, {{"calibration", a.calib}});
      quant::QModel re = quant::QModel::load(a.out, dev);
      const double top1r = engine::evaluate(re, test, 500, dev).top1;
      phases.set("save_reload_eval_s", t.seconds());
      out.set("reloaded_top1", top1r);
      out.set("reload_exact", top1r == top1);
    }
    out.set("model", a.model);
    if (a.precision != Precision::FP32) out.set("precision", precision_name(a.precision));
    out.set("wbits", a.wbits);
    out.set("abits", a.abits);
    out.set("calib", a.calib);
    out.set("n", a.n);
    out.set("iters", a.iters);
    out.set("fold_bn", a.fold_bn);
    out.set("seed", int64_t(a.seed));
    out.set("phases", phases);
    out.set("units", units);
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
