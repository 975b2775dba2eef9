// The end-to-end pipeline as phase functions: calibration set (Genie-D with per-batch checkpoints,
// noise or real images), Genie-M with per-unit checkpoints, the quantized model file, evaluation,
// report.json. Validation happened before (engine/prepare.h); nothing here decides a setting.
#include "engine/pipeline.h"

#include <algorithm>

#include "engine/checkpoint.h"
#include "engine/fold_bn.h"
#include "engine/prepare.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "engine/report.h"
#include "io/atomic.h"
#include "kernels/util.h"

namespace genie::engine {

namespace {

// A run in progress: its checked inputs, its checkpoint, where its progress goes, and the result
// so far.
struct Run {
  Prepared p;
  Progress progress;
  Checkpoint ck;
  PipelineResult res;
  Stopwatch& mark;  // wall time since the last checkpoint write (from the start of the run)

  const Comm& world = Comm::world();

  Run(Prepared prepared, const PipelineListener& listen, Stopwatch& mark_)
      : p(std::move(prepared)), progress(listen), mark(mark_) {
    const PipelineConfig& c = p.cfg;
    p.model.to(p.device);
    // Rank 0 alone writes (the output folder, the checkpoint); the others compute and send.
    if (world.root()) {
      io::make_dirs(c.out);
      ck = Checkpoint(c.out, p.command, settings_json(c), result_settings_json(c), c.model,
                      p.fingerprint, p.resume);
    }
    res.out_dir = c.out;
    res.resumed = p.resume;
    res.timings.set("load", p.load_s);
  }
  const PipelineConfig& cfg() const { return p.cfg; }
  std::string path(const char* name) const { return join_path(p.cfg.out, name); }
  // Before a checkpoint write: the time since the last one joins the checkpointed total.
  void checkpointing() { ck.add_time("elapsed", mark.lap()); }
  // report.json (its "total" is the wall time across resumed processes), then the checkpoint goes.
  void finish(Json (*make_report)(const PipelineConfig&, const models::Model&, const std::string&,
                                  const PipelineResult&)) {
    if (!world.root()) return;
    res.timings.set("total", ck.timings().get_number("elapsed", 0.0) + mark.seconds());
    res.report_path = path(kReportFile);
    res.report = make_report(p.cfg, p.model, p.fingerprint, res);
    write_report(res.report_path, res.report);
    ck.remove();
  }
};

double sum_batch_time(const std::vector<DistillBatch>& bs) {
  double t = 0;
  for (const auto& b : bs) t += b.time_s;
  return t;
}

// Rank 0's resume state (the finished batches' records and images) on every rank.
void share_resume(const Comm& world, DistillResume& resume, const Shape& shape) {
  if (world.size() <= 1) return;
  std::string recs;
  if (world.root()) {
    Json a = Json::array();
    for (const auto& b : resume.previous.batches) a.push_back(to_json(b));
    recs = a.dump();
  }
  world.broadcast(recs);
  world.broadcast(&resume.next_batch, sizeof resume.next_batch);
  if (resume.next_batch == 0) return;
  if (!world.root()) {
    const Json a = Json::parse(recs, "batch records");
    resume.previous.batches.clear();
    for (size_t i = 0; i < a.size(); ++i)
      resume.previous.batches.push_back(distill_batch_from_json(a[i]));
    resume.previous.images = Tensor::zeros(shape);
  }
  world.broadcast(resume.previous.images.data(),
                  size_t(resume.previous.images.numel()) * sizeof(float));
}

// A finished unit's quantizer state (restored from the checkpoint on rank 0) on every rank.
void share_unit(const Comm& world, quant::QModel& qm, const models::Unit& u) {
  if (world.size() <= 1) return;
  NoGradGuard ng;
  auto share = [&](Tensor& t) {
    Tensor h = t.detach().to(Device::CPU).clone();
    world.broadcast(h.data(), size_t(h.numel()) * sizeof(float));
    if (!world.root()) t.copy_(h);
  };
  for (int w : qm.wq_in(u.first, u.last)) {
    auto& q = qm.wq[size_t(w)];
    share(q.step());
    share(q.logits());
    q.set_hard(true);
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    auto& q = qm.aq[size_t(a)];
    float st[2] = {0.f, 0.f};
    if (world.root()) {
      st[0] = q.is_signed() ? 1.f : 0.f;
      st[1] = q.step().item();
    }
    world.broadcast(st, sizeof st);
    if (!world.root()) q.set_state(st[0] != 0.f, st[1], qm.device());
    q.qdrop = false;
  }
}

// Genie-D with a checkpoint after every batch (resumed from the checkpoint's batches), then its
// outputs: images.h5 and the contact sheet (their write time under `write_key`).
void genie_d(Run& r, const char* write_key) {
  const DistillConfig dc = [&] {
    DistillConfig d = distill_config(r.cfg(), r.p.device);
    d.message = r.progress.messages();
    d.comm = &r.world;
    return d;
  }();
  const auto& info = r.p.model.info();
  const int64_t nb = (dc.samples + dc.batch - 1) / dc.batch;
  const Shape shape{dc.samples, info.C, info.H, info.W};
  DistillResume resume;
  if (r.world.root()) resume = r.ck.distill_resume(shape);
  share_resume(r.world, resume, shape);
  r.progress.phase_begin("distill", nb * dc.iters);
  if (resume.next_batch >= nb)
    r.progress.message(str("Genie-D: all ", nb, " batches are in the checkpoint"));
  else if (resume.next_batch > 0)
    r.progress.message(str("resuming Genie-D after ", resume.next_batch, " of ", nb, " batches"));
  const Stopwatch clock;
  DistillBatchFn on_batch = [&](const DistillResult& so_far, const DistillBatch& done) {
    const int64_t row = info.C * info.H * info.W;
    Tensor imgs = Tensor::empty({done.count, info.C, info.H, info.W});
    std::copy(so_far.images.data() + done.first * row,
              so_far.images.data() + (done.first + done.count) * row, imgs.data());
    r.checkpointing();
    r.ck.save_batch(done, imgs);
  };
  if (!r.world.root()) on_batch = nullptr;
  r.res.distill = distill(
      r.p.model, dc, [&](const DistillProgress& dp) { r.progress.distill_step(dp); }, on_batch,
      resume.next_batch > 0 ? &resume : nullptr);
  r.progress.phase_end("distill", nb * dc.iters, clock.seconds());
  r.res.timings.set("distill", sum_batch_time(r.res.distill.batches));
  if (!r.world.root()) return;
  const Stopwatch write;
  r.res.synthetic_path = r.path(kSyntheticFile);
  r.res.contact_sheet_path = r.path(kContactSheetFile);
  write_distill_h5(r.res.synthetic_path, r.res.distill, dc, r.p.model);
  write_distill_contact_sheet(r.res.contact_sheet_path, r.res.distill, r.p.model);
  r.res.timings.set(write_key, write.seconds());
}

// The calibration set on the host: Genie-D's images, N(0, 1) noise, or the first --samples of the
// real images loaded by prepare.
Tensor calibration_set(Run& r) {
  const PipelineConfig& c = r.cfg();
  const auto& info = r.p.model.info();
  if (c.calib == "genie") {
    genie_d(r, "write_synthetic");
    return r.res.distill.images;
  }
  if (c.calib == "noise") {  // in the normalized input space, from the seed's own stream
    ops::Generator g(c.seed * 0x9E3779B97F4A7C15ull + 0x6E6F697365ull);  // "noise"
    return ops::randn({c.samples, info.C, info.H, info.W}, g, Device::CPU);
  }
  const Tensor& all = r.p.calib_images;
  const int64_t row = all.numel() / all.dim(0);
  Tensor calib = Tensor::empty({c.samples, all.dim(1), all.dim(2), all.dim(3)});
  std::copy(all.data(), all.data() + c.samples * row, calib.data());
  return calib;
}

// Genie-M over the units not in the checkpoint (the others are restored), checkpointing each.
void genie_m(Run& r, quant::QModel& qm, const Tensor& calib) {
  const std::vector<models::Unit> units = quant::recon_units(qm.model());
  int64_t done = r.ck.units_done();
  const int64_t nunits = int64_t(units.size());
  r.world.broadcast(&done, sizeof done);
  GENIE_CHECK(done <= nunits, "[checkpoint] ", r.ck.dir(), ": ", done,
              " finished units listed, the model has ", nunits);
  if (r.world.root())
    for (int64_t u = 0; u < done; ++u) r.ck.restore_unit(u, qm, units[size_t(u)]);
  for (int64_t u = 0; u < done; ++u) share_unit(r.world, qm, units[size_t(u)]);
  quant::ReconOptions ro = recon_options(r.cfg());
  ro.start_unit = int(done);
  ro.comm = &r.world;
  r.progress.phase_begin("reconstruct", nunits * ro.iters);
  if (done > 0) r.progress.message(str("resuming Genie-M after ", done, " of ", nunits, " units"));
  const Stopwatch clock;
  quant::ReconCallbacks cb;
  cb.progress = [&](const quant::ReconProgress& rp) { r.progress.unit_step(rp); };
  cb.message = r.progress.messages();
  cb.unit_done = [&](int u, const quant::UnitReport& rep, quant::QModel& q) {
    if (!r.world.root()) return;
    r.checkpointing();
    r.ck.save_unit(u, rep, q, units[size_t(u)]);
    r.progress.unit_end(u, int(nunits), rep);
  };
  quant::reconstruct(qm, calib, ro, cb);
  r.progress.phase_end("reconstruct", nunits * ro.iters, clock.seconds());
  r.res.units = r.world.root() ? r.ck.units() : std::vector<quant::UnitReport>{};
  double rec_s = 0;
  for (const auto& u : r.res.units) rec_s += u.collect_s + u.optimize_s;
  r.res.timings.set("reconstruct", rec_s);
}

// The quantized model file: no times, no paths, so identical work gives identical bytes.
void write_model(Run& r, const quant::QModel& qm) {
  if (!r.world.root()) return;
  const Stopwatch clock;
  r.res.quant_model_path = r.path(kQuantModelFile);
  qm.save(r.res.quant_model_path,
          {{"genie_settings", result_settings_json(r.cfg()).dump()},
           {"teacher_fingerprint", r.p.fingerprint}},
          {});
  r.res.timings.set("write_model", clock.seconds());
}

// FP32 and quantized accuracy on the evaluation set.
void evaluate_both(Run& r, quant::QModel& qm) {
  if (!r.world.root()) return;  // only rank 0 loaded the evaluation set
  const io::LabeledImages& data = r.p.eval_data;
  r.progress.phase_begin("eval_fp32", data.size());
  r.res.fp32 = evaluate(r.p.model, data, 256, r.p.device);
  r.progress.phase_end("eval_fp32", data.size(), r.res.fp32.seconds);
  r.progress.phase_begin("eval_quant", data.size());
  r.res.quant = evaluate(qm, data, 256, r.p.device);
  r.progress.phase_end("eval_quant", data.size(), r.res.quant.seconds);
  r.res.evaluated = true;
  r.res.timings.set("eval_fp32", r.res.fp32.seconds);
  r.res.timings.set("eval_quant", r.res.quant.seconds);
}

// Under MPI: NCCL for the Genie-M gradient sums when every rank has a GPU of its own, and a line
// saying how the work is spread.
void announce_ranks(Run& r, bool quantize) {
  Comm& world = Comm::world();
  if (world.size() <= 1) return;
  const bool nccl = quantize && r.p.device == Device::CUDA && world.enable_nccl();
  std::string how = str(world.size(), " MPI ranks: Genie-D batches round-robin");
  if (quantize)
    how += str(", Genie-M batches in ", r.cfg().recon_shards, " shards summed in order (",
               r.p.device == Device::CPU ? "host"
               : nccl                    ? "NCCL"
                                         : "host-staged: ranks share a GPU or NCCL is missing",
               ")");
  r.progress.message(how);
}

}  // namespace

PipelineResult run_distill(const PipelineConfig& cfg, const PipelineListener& listen) {
  Stopwatch mark;
  Run r(prepare_distill(cfg), listen, mark);
  announce_ranks(r, false);
  genie_d(r, "write");
  r.finish(distill_report);
  return std::move(r.res);
}

PipelineResult run_quantize(const PipelineConfig& cfg, const PipelineListener& listen) {
  Stopwatch mark;
  Run r(prepare_quantize(cfg), listen, mark);
  const PipelineConfig& c = r.cfg();
  r.progress.message(
      str("model ", c.model, " (", r.p.model.info().arch, ", ", r.p.model.num_params(),
          " parameters) -> W", c.wbits, "A", c.abits, ", calibration: ", c.calib, ", ", c.samples,
          " images, device ", device_name(r.p.device),
          c.precision == "fp32" ? "" : str(" (", c.precision, " convolutions and GEMMs)")));
  announce_ranks(r, true);
  if (c.graph && c.recon_shards > 1)
    r.progress.message(
        "--graph: Genie-M's sharded steps exchange gradients between shards, so "
        "they run eagerly (Genie-D's steps are still captured)");
  const Tensor calib = calibration_set(r);
  quant::QModel qm(c.fold_bn ? quant::fold_bn(r.p.model) : r.p.model, quant_config(c));
  genie_m(r, qm, calib);
  write_model(r, qm);
  if (!c.eval.empty()) evaluate_both(r, qm);
  r.finish(quantize_report);
  return std::move(r.res);
}

}  // namespace genie::engine
