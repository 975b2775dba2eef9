// The end-to-end pipeline: settings by flag name, validation before any write, Genie-D / noise /
// real calibration, Genie-M reconstruction with per-unit checkpoints, outputs and report.json.
#include "engine/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "autograd/tape.h"
#include "engine/checkpoint.h"
#include "engine/fold_bn.h"
#include "engine/qmodel.h"
#include "engine/reconstruct.h"
#include "engine/report.h"
#include "io/atomic.h"
#include "io/datasets.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "kernels/util.h"

namespace genie::engine {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Settings by flag name

namespace {

enum class Kind { Int, Float, String, Switch };

struct Setting {
  const char* name;
  Kind kind;
  bool result;  // decides the results (compared on resume)
  std::function<void(PipelineConfig&, const std::string&, const std::string&)> set;
  std::function<Json(const PipelineConfig&)> get;
};

[[noreturn]] void bad_value(const std::string& name, const std::string& expect,
                            const std::string& v, const std::string& source) {
  throw InputError(
      str(source.empty() ? "" : source + ": ", "--", name, " expects ", expect, ", got '", v, "'"));
}

int64_t parse_int(const std::string& name, const std::string& v, int64_t lo, int64_t hi,
                  const std::string& source) {
  const std::string expect =
      hi == INT64_MAX ? str("an integer >= ", lo) : str("an integer in ", lo, "..", hi);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
    bad_value(name, expect, v, source);
  return x;
}

// min_exclusive: the value must be > lo (learning rates), else >= lo. hi: inclusive upper bound.
double parse_float(const std::string& name, const std::string& v, double lo, bool min_exclusive,
                   double hi, const std::string& source) {
  std::string expect = min_exclusive ? str("a number > ", lo) : str("a number >= ", lo);
  if (hi < HUGE_VAL) expect = str("a number in [", lo, ", ", hi, "]");
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || (min_exclusive ? x <= lo : x < lo) ||
      x > hi)
    bad_value(name, expect, v, source);
  return x;
}

bool parse_switch(const std::string& name, const std::string& v, const std::string& source) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  bad_value(name, "true or false", v, source);
}

constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;  // exact in JSON numbers

#define GENIE_INT_SETTING(flag, field, result, lo, hi)                      \
  Setting {                                                                 \
    flag, Kind::Int, result,                                                \
        [](PipelineConfig& c, const std::string& v, const std::string& s) { \
          c.field = decltype(c.field)(parse_int(flag, v, lo, hi, s));       \
        },                                                                  \
        [](const PipelineConfig& c) { return Json(int64_t(c.field)); }      \
  }
#define GENIE_FLOAT_SETTING(flag, field, result, lo, excl, hi)              \
  Setting {                                                                 \
    flag, Kind::Float, result,                                              \
        [](PipelineConfig& c, const std::string& v, const std::string& s) { \
          c.field = parse_float(flag, v, lo, excl, hi, s);                  \
        },                                                                  \
        [](const PipelineConfig& c) { return Json(c.field); }               \
  }
#define GENIE_STRING_SETTING(flag, field, result)                           \
  Setting {                                                                 \
    flag, Kind::String, result,                                             \
        [](PipelineConfig& c, const std::string& v, const std::string& s) { \
          if (v.empty()) bad_value(flag, "a non-empty value", v, s);        \
          c.field = v;                                                      \
        },                                                                  \
        [](const PipelineConfig& c) { return Json(c.field); }               \
  }
#define GENIE_SWITCH_SETTING(flag, expr_get, expr_set, result)              \
  Setting {                                                                 \
    flag, Kind::Switch, result,                                             \
        [](PipelineConfig& c, const std::string& v, const std::string& s) { \
          const bool on = parse_switch(flag, v, s);                         \
          expr_set;                                                         \
        },                                                                  \
        [](const PipelineConfig& c) { return Json(bool(expr_get)); }        \
  }

const std::vector<Setting>& settings_table() {
  static const std::vector<Setting> t = {
      GENIE_STRING_SETTING("model", model, false),
      GENIE_STRING_SETTING("out", out, false),
      GENIE_STRING_SETTING("calib", calib, true),
      GENIE_STRING_SETTING("eval", eval, false),
      GENIE_INT_SETTING("eval-limit", eval_limit, false, 1, INT64_MAX),
      GENIE_INT_SETTING("samples", samples, true, 1, INT64_MAX),
      GENIE_INT_SETTING("batch", batch, true, 1, INT64_MAX),
      GENIE_INT_SETTING("distill-iters", distill_iters, true, 1, INT64_MAX),
      GENIE_FLOAT_SETTING("distill-lr-z", distill_lr_z, true, 0.0, true, HUGE_VAL),
      GENIE_FLOAT_SETTING("distill-lr-g", distill_lr_g, true, 0.0, true, HUGE_VAL),
      Setting{"distill-mode", Kind::String, true,
              [](PipelineConfig& c, const std::string& v, const std::string& s) {
                if (v != "genie" && v != "latents_only" && v != "generator_only")
                  bad_value("distill-mode", "genie, latents_only or generator_only", v, s);
                c.distill_mode = v;
              },
              [](const PipelineConfig& c) { return Json(c.distill_mode); }},
      GENIE_SWITCH_SETTING("no-swing", !c.swing, c.swing = !on, true),
      GENIE_INT_SETTING("wbits", wbits, true, 2, 8),
      GENIE_INT_SETTING("abits", abits, true, 2, 8),
      GENIE_INT_SETTING("first-bits", first_bits, true, 2, 8),
      GENIE_INT_SETTING("last-bits", last_bits, true, 2, 8),
      GENIE_INT_SETTING("recon-iters", recon_iters, true, 1, INT64_MAX),
      GENIE_INT_SETTING("recon-batch", recon_batch, true, 1, INT64_MAX),
      GENIE_FLOAT_SETTING("lr-wstep", lr_wstep, true, 0.0, true, HUGE_VAL),
      GENIE_FLOAT_SETTING("lr-astep", lr_astep, true, 0.0, true, HUGE_VAL),
      GENIE_FLOAT_SETTING("lr-round", lr_round, true, 0.0, true, HUGE_VAL),
      GENIE_FLOAT_SETTING("round-weight", round_weight, true, 0.0, false, HUGE_VAL),
      GENIE_FLOAT_SETTING("qdrop-p", qdrop_p, true, 0.0, false, 1.0),
      GENIE_SWITCH_SETTING("fold-bn", c.fold_bn, c.fold_bn = on, true),
      GENIE_SWITCH_SETTING("graph", c.graph, c.graph = on, false),
      Setting{"device", Kind::String, true,
              [](PipelineConfig& c, const std::string& v, const std::string& s) {
                if (v != "cpu" && v != "cuda" && v != "auto")
                  bad_value("device", "cpu, cuda or auto", v, s);
                c.device = v;
              },
              [](const PipelineConfig& c) { return Json(c.device); }},
      GENIE_INT_SETTING("threads", threads, false, 0, 1024),
      GENIE_INT_SETTING("seed", seed, true, 0, kMaxSeed),
      GENIE_SWITCH_SETTING("quiet", c.quiet, c.quiet = on, false),
  };
  return t;
}

const Setting* find_setting(const std::string& name) {
  for (const auto& s : settings_table())
    if (name == s.name) return &s;
  return nullptr;
}

}  // namespace

const std::vector<std::string>& value_setting_names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& s : settings_table())
      if (s.kind != Kind::Switch) out.push_back(s.name);
    return out;
  }();
  return v;
}

const std::vector<std::string>& switch_setting_names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& s : settings_table())
      if (s.kind == Kind::Switch) out.push_back(s.name);
    return out;
  }();
  return v;
}

void apply_setting(PipelineConfig& c, const std::string& name, const std::string& value,
                   const std::string& source) {
  const Setting* s = find_setting(name);
  if (!s)
    throw InputError(str(source.empty() ? "" : source + ": ", "unknown setting '", name, "'"));
  s->set(c, value, source);
}

void apply_config_json(PipelineConfig& c, const Json& j, const std::string& where) {
  if (!j.is_object())
    throw InputError(str(where, ": expected a JSON object of settings, got ", j.type_name()));
  for (const auto& [key, v] : j.as_object()) {
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    const Setting* s = find_setting(name);
    if (!s) {
      std::vector<std::string> names;
      for (const auto& t : settings_table()) names.push_back(t.name);
      const auto near = closest_keys(name, names, 1);
      throw InputError(str(where, ": unknown setting '", key, "'",
                           near.empty() ? "" : str(" (did you mean '", near[0], "'?)")));
    }
    std::string text;
    if (v.is_string()) {
      text = v.as_string();
    } else if (v.is_bool()) {
      text = v.as_bool() ? "true" : "false";
    } else if (v.is_number()) {
      text = v.dump();
    } else {
      throw InputError(str(where, ": setting '", key, "' expects a string, number or boolean, got ",
                           v.type_name()));
    }
    if (s->kind != Kind::Switch && v.is_bool())
      throw InputError(str(where, ": setting '", key, "' expects a value, got a boolean"));
    s->set(c, text, where);
  }
}

namespace {
// Settings with no value: empty strings (no --eval, …) and --eval-limit -1.
bool is_unset(const Setting& s, const Json& v) {
  if (s.kind == Kind::String) return v.as_string().empty();
  return std::string(s.name) == "eval-limit" && v.as_int() < 0;
}
}  // namespace

Json result_settings_json(const PipelineConfig& c) {
  Json j = Json::object();
  for (const auto& s : settings_table())
    if (s.result) j.set(s.name, s.get(c));
  return j;
}

Json settings_json(const PipelineConfig& c) {
  Json j = Json::object();
  for (const auto& s : settings_table()) {
    Json v = s.get(c);
    if (!is_unset(s, v)) j.set(s.name, std::move(v));
  }
  return j;
}

void check_ranges(const PipelineConfig& c) {
  // Re-run every setter on the current value: the same messages as the command line.
  for (const auto& s : settings_table()) {
    const Json v = s.get(c);
    if (is_unset(s, v)) continue;  // required-ness is checked by the commands
    PipelineConfig tmp = c;
    s.set(tmp,
          v.is_string() ? v.as_string()
          : v.is_bool() ? (v.as_bool() ? "1" : "0")
                        : v.dump(),
          "");
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs

std::string file_fingerprint(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  GENIE_CHECK(f, "[pipeline] ", path, ": cannot read");
  uint64_t h = kFnv1aBasis;
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) h = fnv1a64(buf, n, h);
  std::fclose(f);
  return hex64(h);
}

struct Prepared {
  PipelineConfig cfg;
  std::string command;
  Device device = Device::CPU;
  models::Model model;
  std::string fingerprint;
  io::LabeledImages eval_data;  // when cfg.eval is set
  Tensor calib_images;          // real / file calibration (host); genie/noise: made later
  bool resume = false;
  Json state;  // checkpoint state when resuming
  double load_s = 0;
};

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --out must be a writable directory or creatable (its first existing ancestor a writable
// directory). Nothing is created here.
void check_out_dir(const std::string& out) {
  if (out.empty()) throw InputError("missing required flag --out DIR");
  std::error_code ec;
  const fs::path p(out);
  if (fs::exists(p, ec)) {
    if (!fs::is_directory(p, ec))
      throw InputError(str("--out ", out, ": exists and is not a directory"));
    if (::access(out.c_str(), W_OK | X_OK) != 0)
      throw InputError(str("--out ", out, ": directory is not writable"));
    return;
  }
  fs::path anc = p.has_parent_path() ? p.parent_path() : fs::path(".");
  while (!anc.empty() && !fs::exists(anc, ec))
    anc = anc.has_parent_path() && anc.parent_path() != anc ? anc.parent_path() : fs::path();
  if (anc.empty()) anc = p.is_absolute() ? fs::path("/") : fs::path(".");
  if (!fs::is_directory(anc, ec))
    throw InputError(
        str("--out ", out, ": cannot be created, '", anc.string(), "' is not a directory"));
  if (::access(anc.c_str(), W_OK | X_OK) != 0)
    throw InputError(
        str("--out ", out, ": cannot be created, directory '", anc.string(), "' is not writable"));
}

Device resolve_device(const std::string& d) {
  if (d == "cuda" && !cuda_available())
    throw InputError(str("--device cuda: ", cuda_device_string()));
  try {
    return parse_device(d);
  } catch (const Error& e) {
    throw InputError(str("--device ", d, ": ", e.what()));
  }
}

std::shared_ptr<Prepared> prepare_common(const PipelineConfig& cfg_in, const std::string& command) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = std::make_shared<Prepared>();
  p->cfg = cfg_in;
  p->command = command;
  PipelineConfig& cfg = p->cfg;
  check_ranges(cfg);
  if (cfg.model.empty()) throw InputError("missing required flag --model FILE");
  check_out_dir(cfg.out);
  p->device = resolve_device(cfg.device);
  if (cfg.threads > 0) set_cpu_threads(cfg.threads);
  // The model.
  try {
    p->model = io::load_model(cfg.model);
  } catch (const Error& e) {
    throw InputError(str("--model ", cfg.model, ": ", e.what()));
  }
  p->fingerprint = file_fingerprint(cfg.model);
  // The Genie-D settings against the model (no BN layers, input size not divisible by 4, …).
  if (command == "distill" || cfg.calib == "genie") {
    DistillConfig dc;
    dc.samples = cfg.samples;
    dc.batch = cfg.batch;
    dc.iters = cfg.distill_iters;
    dc.lr_z = float(cfg.distill_lr_z);
    dc.lr_g = float(cfg.distill_lr_g);
    dc.swing = cfg.swing;
    dc.mode = parse_distill_mode(cfg.distill_mode);
    dc.device = p->model.device();
    try {
      validate_distill(p->model, dc);
    } catch (const Error& e) {
      throw InputError(str("--model ", cfg.model, ": ", e.what()));
    }
  }
  // Checkpoint of an earlier run in --out.
  const bool has_ckpt = Checkpoint::exists(cfg.out);
  if (!cfg.resume.empty()) {
    if (cfg.resume != cfg.out && fs::path(cfg.resume) != fs::path(cfg.out))
      throw InputError(str("--resume ", cfg.resume,
                           ": must be the run's --out directory (got --out ", cfg.out, ")"));
    p->state = Checkpoint::read_state(cfg.resume);
    const std::string diff =
        Checkpoint::differences(p->state, command, result_settings_json(cfg), p->fingerprint);
    if (!diff.empty())
      throw InputError(str("--resume ", cfg.resume,
                           ": the checkpoint was made with different settings or a different "
                           "model; refusing to continue it:\n",
                           diff));
    p->resume = true;
  } else if (has_ckpt) {
    throw InputError(str("--out ", cfg.out, ": holds the checkpoint of an unfinished run (",
                         Checkpoint::dir_of(cfg.out), "); continue it with --resume ", cfg.out,
                         ", or choose another --out (or delete that directory)"));
  }
  p->load_s = since(t0);
  return p;
}

}  // namespace

std::shared_ptr<Prepared> prepare_distill(const PipelineConfig& cfg) {
  return prepare_common(cfg, "distill");
}

std::shared_ptr<Prepared> prepare_quantize(const PipelineConfig& cfg) {
  auto p = prepare_common(cfg, "quantize");
  const auto t0 = std::chrono::steady_clock::now();
  const PipelineConfig& c = p->cfg;
  const io::InputSpec spec = input_spec(p->model.info());
  // Calibration source.
  if (c.calib != "genie" && c.calib != "noise") {
    std::string src = c.calib;
    const bool real = src.rfind("real:", 0) == 0;
    if (real) src = src.substr(5);
    if (src == "fashion-mnist") src = "fashion-mnist:train";
    try {
      if (real) {
        p->calib_images = io::load_labeled_images(src, spec, c.samples).images;
      } else if (io::file_exists(src)) {
        p->calib_images = io::load_h5_images(src, spec, c.samples, /*require_labels=*/false).images;
      } else {
        throw InputError(str("--calib expects genie, noise, real:PATH or an HDF5 image file, got '",
                             c.calib, "'",
                             io::dir_exists(src) ? " (a directory: use real:" + src + ")" : ""));
      }
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw InputError(str("--calib ", c.calib, ": ", e.what()));
    }
    if (p->calib_images.dim(0) < c.samples)
      throw InputError(str("--calib ", c.calib, ": expected at least --samples ", c.samples,
                           " images, got ", p->calib_images.dim(0)));
  }
  // Evaluation data.
  if (!c.eval.empty()) {
    try {
      p->eval_data = io::load_labeled_images(c.eval, spec, c.eval_limit);
      io::check_labels(p->eval_data, p->model.info().num_classes, c.eval);
    } catch (const Error& e) {
      throw InputError(str("--eval ", c.eval, ": ", e.what()));
    }
  }
  // The quantizer layout (bit widths against the graph) before any work.
  try {
    quant::QuantConfig qc;
    qc.wbits = c.wbits;
    qc.abits = c.abits;
    qc.first_bits = c.first_bits;
    qc.last_bits = c.last_bits;
    qc.fold_bn = c.fold_bn;
    quant::QModel probe(c.fold_bn ? quant::fold_bn(p->model) : p->model, qc);
  } catch (const Error& e) {
    throw InputError(str("--model ", c.model, ": cannot be quantized: ", e.what()));
  }
  p->load_s += since(t0);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Running

namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

DistillConfig distill_config(const PipelineConfig& c, Device dev) {
  DistillConfig dc;
  dc.samples = c.samples;
  dc.batch = c.batch;
  dc.iters = c.distill_iters;
  dc.lr_z = float(c.distill_lr_z);
  dc.lr_g = float(c.distill_lr_g);
  dc.seed = c.seed;
  dc.swing = c.swing;
  dc.mode = parse_distill_mode(c.distill_mode);
  dc.device = dev;
  dc.graph = c.graph;
  dc.progress_every = std::max<int64_t>(1, std::min<int64_t>(50, c.distill_iters / 10));
  return dc;
}

void emit(const PipelineListener& l, PipelineEvent e) {
  if (l) l(e);
}
void emit_phase(const PipelineListener& l, PipelineEvent::Kind k, const std::string& phase,
                int64_t steps = 0, double seconds = 0) {
  PipelineEvent e;
  e.kind = k;
  e.phase = phase;
  e.steps = steps;
  e.seconds = seconds;
  emit(l, e);
}
void emit_message(const PipelineListener& l, const std::string& text) {
  PipelineEvent e;
  e.kind = PipelineEvent::Message;
  e.text = text;
  emit(l, e);
}

// Genie-D with checkpoints after every batch (resume from the checkpoint's batches).
DistillResult run_genie_d(const Prepared& p, Checkpoint& ck, const PipelineListener& listen,
                          std::chrono::steady_clock::time_point& mark) {
  DistillConfig dc = distill_config(p.cfg, p.device);
  dc.message = [&](const std::string& m) { emit_message(listen, m); };
  const auto& info = p.model.info();
  const int64_t nb = (dc.samples + dc.batch - 1) / dc.batch;
  const DistillResume resume = ck.distill_resume({dc.samples, info.C, info.H, info.W});
  emit_phase(listen, PipelineEvent::PhaseBegin, "distill", nb * dc.iters);
  if (resume.next_batch >= nb)
    emit_message(listen, str("Genie-D: all ", nb, " batches are in the checkpoint"));
  else if (resume.next_batch > 0)
    emit_message(listen, str("resuming Genie-D after ", resume.next_batch, " of ", nb, " batches"));
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](const DistillProgress& dp) {
    PipelineEvent e;
    e.kind = PipelineEvent::DistillStep;
    e.phase = "distill";
    e.step = dp.batch * dp.iters + dp.iter;
    e.steps = dp.num_batches * dp.iters;
    e.eta_s = dp.eta_s;
    e.distill = dp;
    emit(listen, e);
  };
  auto on_batch = [&](const DistillResult& so_far, const DistillBatch& done) {
    const int64_t row = info.C * info.H * info.W;
    Tensor imgs = Tensor::empty({done.count, info.C, info.H, info.W});
    std::copy(so_far.images.data() + done.first * row,
              so_far.images.data() + (done.first + done.count) * row, imgs.data());
    ck.add_time("elapsed", since(mark));
    mark = std::chrono::steady_clock::now();
    ck.save_batch(done, imgs);
  };
  DistillResult r =
      distill(p.model, dc, progress, on_batch, resume.next_batch > 0 ? &resume : nullptr);
  emit_phase(listen, PipelineEvent::PhaseEnd, "distill", nb * dc.iters, since(t0));
  return r;
}

double sum_batch_time(const std::vector<DistillBatch>& bs) {
  double t = 0;
  for (const auto& b : bs) t += b.time_s;
  return t;
}

// The per-unit quantizer state saved in a checkpoint: every weight quantizer's step and rounding
// logits, every activation quantizer's step and sign, of the unit's node range.
std::map<std::string, Tensor> unit_state(quant::QModel& qm, const models::Unit& u) {
  std::map<std::string, Tensor> s;
  for (int w : qm.wq_in(u.first, u.last)) {
    s[str("wq.", w, ".step")] = qm.wq[size_t(w)].step().detach().to(Device::CPU);
    s[str("wq.", w, ".logits")] = qm.wq[size_t(w)].logits().detach().to(Device::CPU);
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    const auto& q = qm.aq[size_t(a)];
    GENIE_CHECK(q.initialized(), "[pipeline] activation quantizer ", a, " of unit ", u.name,
                " is not initialised after its reconstruction");
    s[str("aq.", a, ".step")] = q.step().detach().to(Device::CPU);
    s[str("aq.", a, ".signed")] = Tensor::from_vector({q.is_signed() ? 1.f : 0.f}, {1});
  }
  return s;
}

void restore_unit(quant::QModel& qm, const models::Unit& u, const std::map<std::string, Tensor>& s,
                  const std::string& what) {
  auto get = [&](const std::string& k) -> const Tensor& {
    auto it = s.find(k);
    GENIE_CHECK(it != s.end(), "[checkpoint] ", what, ": missing '", k, "' for unit ", u.name);
    return it->second;
  };
  NoGradGuard ng;
  for (int w : qm.wq_in(u.first, u.last)) {
    auto& q = qm.wq[size_t(w)];
    const Tensor& st = get(str("wq.", w, ".step"));
    const Tensor& lg = get(str("wq.", w, ".logits"));
    GENIE_CHECK(st.shape() == q.step().shape() && lg.shape() == q.logits().shape(), "[checkpoint] ",
                what, ": unit ", u.name, " weight quantizer ", w, " has mismatched shapes");
    q.step().copy_(st);
    q.logits().copy_(lg);
    q.set_hard(true);
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    const Tensor& st = get(str("aq.", a, ".step"));
    const Tensor& sg = get(str("aq.", a, ".signed"));
    qm.aq[size_t(a)].set_state(sg.item() != 0.f, st.item(), qm.device());
    qm.aq[size_t(a)].qdrop = false;
  }
}

std::string bits_name(const PipelineConfig& c) { return str("W", c.wbits, "A", c.abits); }

}  // namespace

PipelineResult run_distill(const PipelineConfig& cfg, const PipelineListener& listen) {
  auto mark = std::chrono::steady_clock::now();  // wall time since the last checkpoint write
  auto p = prepare_distill(cfg);
  const PipelineConfig& c = p->cfg;
  p->model.to(p->device);
  io::make_dirs(c.out);
  Checkpoint ck(c.out, "distill", settings_json(c), result_settings_json(c), c.model,
                p->fingerprint, p->resume);
  PipelineResult res;
  res.out_dir = c.out;
  res.resumed = p->resume;
  res.distill = run_genie_d(*p, ck, listen, mark);
  const auto t_w = std::chrono::steady_clock::now();
  const DistillConfig dc = distill_config(c, p->device);
  res.synthetic_path = join(c.out, kSyntheticFile);
  res.contact_sheet_path = join(c.out, kContactSheetFile);
  res.report_path = join(c.out, kReportFile);
  write_distill_h5(res.synthetic_path, res.distill, dc, p->model);
  write_distill_contact_sheet(res.contact_sheet_path, res.distill, p->model);
  res.timings.set("load", p->load_s);
  res.timings.set("distill", sum_batch_time(res.distill.batches));
  res.timings.set("write", since(t_w));
  res.timings.set("total", ck.timings().get_number("elapsed", 0.0) + since(mark));
  res.report = distill_report(c, p->model, p->fingerprint, res);
  write_report(res.report_path, res.report);
  ck.remove();
  return res;
}

PipelineResult run_quantize(const PipelineConfig& cfg, const PipelineListener& listen) {
  auto mark = std::chrono::steady_clock::now();  // wall time since the last checkpoint write
  auto p = prepare_quantize(cfg);
  const PipelineConfig& c = p->cfg;
  const Device dev = p->device;
  p->model.to(dev);
  io::make_dirs(c.out);
  Checkpoint ck(c.out, "quantize", settings_json(c), result_settings_json(c), c.model,
                p->fingerprint, p->resume);
  PipelineResult res;
  res.out_dir = c.out;
  res.resumed = p->resume;
  res.timings.set("load", p->load_s);
  emit_message(listen,
               str("model ", c.model, " (", p->model.info().arch, ", ", p->model.num_params(),
                   " parameters) -> ", bits_name(c), ", calibration: ", c.calib, ", ", c.samples,
                   " images, device ", device_name(dev)));

  // ---- calibration set ----
  Tensor calib;
  if (c.calib == "genie") {
    res.distill = run_genie_d(*p, ck, listen, mark);
    calib = res.distill.images;
    res.timings.set("distill", sum_batch_time(res.distill.batches));
    const auto t_w = std::chrono::steady_clock::now();
    res.synthetic_path = join(c.out, kSyntheticFile);
    res.contact_sheet_path = join(c.out, kContactSheetFile);
    write_distill_h5(res.synthetic_path, res.distill, distill_config(c, dev), p->model);
    write_distill_contact_sheet(res.contact_sheet_path, res.distill, p->model);
    res.timings.set("write_synthetic", since(t_w));
  } else if (c.calib == "noise") {
    // N(0, 1) images in the normalized input space, from their own stream of the seed.
    const auto& info = p->model.info();
    ops::Generator g(c.seed * 0x9E3779B97F4A7C15ull + 0x6E6F697365ull);  // "noise"
    calib = ops::randn({c.samples, info.C, info.H, info.W}, g, Device::CPU);
  } else {
    const Tensor& all = p->calib_images;
    const int64_t row = all.numel() / all.dim(0);
    calib = Tensor::empty({c.samples, all.dim(1), all.dim(2), all.dim(3)});
    std::copy(all.data(), all.data() + c.samples * row, calib.data());
  }

  // ---- Genie-M ----
  quant::QuantConfig qc;
  qc.wbits = c.wbits;
  qc.abits = c.abits;
  qc.first_bits = c.first_bits;
  qc.last_bits = c.last_bits;
  qc.fold_bn = c.fold_bn;
  quant::QModel qm(c.fold_bn ? quant::fold_bn(p->model) : p->model, qc);
  const std::vector<models::Unit> units = quant::recon_units(qm.model());
  const int64_t done_before = ck.units_done();
  GENIE_CHECK(done_before <= int64_t(units.size()), "[checkpoint] ", ck.dir(), ": ", done_before,
              " finished units listed, the model has ", units.size());
  for (int64_t u = 0; u < done_before; ++u) {
    GENIE_CHECK(ck.units()[size_t(u)].name == units[size_t(u)].name, "[checkpoint] ", ck.dir(),
                ": unit ", u, " is '", ck.units()[size_t(u)].name, "', the model's is '",
                units[size_t(u)].name, "'");
    restore_unit(qm, units[size_t(u)], ck.load_unit(u), ck.dir());
  }
  quant::ReconOptions ro;
  ro.iters = c.recon_iters;
  ro.batch = c.recon_batch;
  ro.round_weight = float(c.round_weight);
  ro.qdrop_p = float(c.qdrop_p);
  ro.graph = c.graph;
  ro.lr_w_step = float(c.lr_wstep);
  ro.lr_a_step = float(c.lr_astep);
  ro.lr_logits = float(c.lr_round);
  ro.seed = c.seed;
  ro.start_unit = int(done_before);
  ro.log_every = std::max<int64_t>(1, std::min<int64_t>(100, c.recon_iters / 10));
  const int64_t nunits = int64_t(units.size());
  emit_phase(listen, PipelineEvent::PhaseBegin, "reconstruct", nunits * c.recon_iters);
  if (done_before > 0)
    emit_message(listen, str("resuming Genie-M after ", done_before, " of ", nunits, " units"));
  const auto t_rec = std::chrono::steady_clock::now();
  quant::ReconCallbacks cb;
  cb.progress = [&](const quant::ReconProgress& rp) {
    PipelineEvent e;
    e.kind = PipelineEvent::UnitStep;
    e.phase = "reconstruct";
    e.unit = rp.unit;
    e.units = rp.units;
    e.text = rp.name;
    e.iter = rp.iter;
    e.iters = rp.iters;
    e.loss = rp.loss;
    e.rec = rp.rec;
    e.reg = rp.reg;
    e.step = int64_t(rp.unit) * rp.iters + rp.iter;
    e.steps = int64_t(rp.units) * rp.iters;
    // ETA of the whole phase: this unit's rest plus the later units at the current rate.
    e.eta_s = rp.it_per_s > 0 ? double(e.steps - e.step) / rp.it_per_s : -1;
    emit(listen, e);
  };
  cb.message = [&](const std::string& m) { emit_message(listen, m); };
  cb.unit_done = [&](int u, const quant::UnitReport& r, quant::QModel& q) {
    Checkpoint::UnitEntry ent{r.name, r.kind, r.loss_before, r.loss_after,
                              r.collect_s + r.optimize_s};
    ck.add_time("elapsed", since(mark));
    mark = std::chrono::steady_clock::now();
    ck.save_unit(u, ent, unit_state(q, units[size_t(u)]));
    PipelineEvent e;
    e.kind = PipelineEvent::UnitEnd;
    e.phase = "reconstruct";
    e.unit = u;
    e.units = nunits;
    e.text = r.name;
    e.loss_before = r.loss_before;
    e.loss_after = r.loss_after;
    e.seconds = ent.time_s;
    emit(listen, e);
  };
  quant::reconstruct(qm, calib, ro, cb);
  emit_phase(listen, PipelineEvent::PhaseEnd, "reconstruct", nunits * c.recon_iters, since(t_rec));
  double rec_s = 0;
  for (const auto& u : ck.units()) {
    res.units.push_back({u.name, u.kind, u.loss_before, u.loss_after, u.time_s});
    rec_s += u.time_s;
  }
  res.timings.set("reconstruct", rec_s);

  // ---- the quantized model file (no times, no paths: identical bytes for identical work) ----
  const auto t_save = std::chrono::steady_clock::now();
  res.quant_model_path = join(c.out, kQuantModelFile);
  qm.save(
      res.quant_model_path,
      {{"genie_settings", result_settings_json(c).dump()}, {"teacher_fingerprint", p->fingerprint}},
      {});
  res.timings.set("write_model", since(t_save));

  // ---- evaluation ----
  if (!c.eval.empty()) {
    emit_phase(listen, PipelineEvent::PhaseBegin, "eval_fp32", p->eval_data.size());
    res.fp32 = evaluate(p->model, p->eval_data, 256, dev);
    emit_phase(listen, PipelineEvent::PhaseEnd, "eval_fp32", p->eval_data.size(), res.fp32.seconds);
    emit_phase(listen, PipelineEvent::PhaseBegin, "eval_quant", p->eval_data.size());
    res.quant = evaluate([&](const Tensor& x) { return qm.forward(x); }, p->eval_data, 256, dev);
    emit_phase(listen, PipelineEvent::PhaseEnd, "eval_quant", p->eval_data.size(),
               res.quant.seconds);
    res.evaluated = true;
    res.timings.set("eval_fp32", res.fp32.seconds);
    res.timings.set("eval_quant", res.quant.seconds);
  }
  res.timings.set("total", ck.timings().get_number("elapsed", 0.0) + since(mark));
  res.report_path = join(c.out, kReportFile);
  res.report = quantize_report(c, p->model, p->fingerprint, res);
  write_report(res.report_path, res.report);
  ck.remove();
  return res;
}

bool is_quantized_file(const std::string& path) {
  try {
    io::H5Reader r(path);
    return r.has_attr("format") && r.attr_string("format") == "genie-qmodel-1";
  } catch (const Error&) {
    return false;  // load_model reports what is wrong with the file
  }
}

FileEval evaluate_file(const std::string& path, const std::string& source, int64_t limit,
                       Device dev, int batch, bool keep_logits) {
  FileEval fe;
  fe.quantized = is_quantized_file(path);
  quant::QModel qm;
  models::Model fp;
  try {
    if (fe.quantized) {
      qm = quant::QModel::load(path, dev);
      fe.bits = str("W", qm.config().wbits, "A", qm.config().abits);
    } else {
      fp = io::load_model(path);
      fp.to(dev);
    }
  } catch (const Error& e) {
    throw InputError(str("--model ", path, ": ", e.what()));
  }
  const models::ModelInfo& info = fe.quantized ? qm.model().info() : fp.info();
  io::LabeledImages data;
  try {
    data = io::load_labeled_images(source, input_spec(info), limit);
    io::check_labels(data, info.num_classes, source);
  } catch (const Error& e) {
    throw InputError(str("--eval ", source, ": ", e.what()));
  }
  fe.result = fe.quantized ? evaluate([&](const Tensor& x) { return qm.forward(x); }, data, batch,
                                      dev, keep_logits)
                           : evaluate(fp, data, batch, dev, keep_logits);
  if (keep_logits) fe.labels = data.labels.to_i32();
  return fe;
}

}  // namespace genie::engine
