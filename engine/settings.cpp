// The settings table and everything derived from it: parsing with ranges, JSON both ways, the
// help text, and the conversions to the phase configurations.
#include "engine/settings.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "kernels/quant_functors.h"
#include "kernels/util.h"

namespace genie::engine {

namespace {

enum class Kind { Int, Float, String, Switch };

struct Setting {
  const char* name;
  Kind kind;
  bool quantize_only;  // a flag of quantize alone (not of distill)
  bool result;         // decides the results (compared on resume)
  const char* arg;     // the value's placeholder in the help ("N", "LR", …)
  const char* help;
  std::string range;  // "2..8" for a bounded number, else empty
  std::function<void(PipelineConfig&, const std::string&, const std::string&)> set;
  std::function<Json(const PipelineConfig&)> get;
};

[[noreturn]] void bad_value(const std::string& name, const std::string& expect,
                            const std::string& v, const std::string& source) {
  throw InputError(
      str(source.empty() ? "" : source + ": ", "--", name, " expects ", expect, ", got '", v, "'"));
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

// One of `choices` ("a|b|c"); the message lists them as "a, b or c".
std::string parse_choice(const std::string& name, const std::string& v, const std::string& choices,
                         const std::string& source) {
  std::vector<std::string> list;
  for (size_t b = 0, e; b <= choices.size(); b = e + 1) {
    e = std::min(choices.find('|', b), choices.size());
    list.push_back(choices.substr(b, e - b));
  }
  if (std::find(list.begin(), list.end(), v) != list.end()) return v;
  std::string expect;
  for (size_t i = 0; i < list.size(); ++i)
    expect += (i == 0 ? "" : i + 1 == list.size() ? " or " : ", ") + list[i];
  bad_value(name, expect, v, source);
}

constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;  // exact in JSON numbers
constexpr int64_t kNoMax = INT64_MAX;
constexpr bool kQ = true, kAll = false;       // quantize only / every pipeline command
constexpr bool kResult = true, kRun = false;  // decides the results / how the run goes

using Set = std::function<void(PipelineConfig&, const std::string&, const std::string&)>;
using Get = std::function<Json(const PipelineConfig&)>;

#define GENIE_FIELD(field) [](const PipelineConfig& c) { return Json(c.field); }
#define GENIE_INT(flag, field, scope, result, lo, hi, arg, help)                                 \
  Setting {                                                                                      \
    flag, Kind::Int, scope, result, arg, help, hi == kNoMax ? std::string() : str(lo, "..", hi), \
        Set([](PipelineConfig& c, const std::string& v, const std::string& s) {                  \
          c.field = decltype(c.field)(parse_int(flag, v, lo, hi, s));                            \
        }),                                                                                      \
        Get([](const PipelineConfig& c) { return Json(int64_t(c.field)); })                      \
  }
#define GENIE_FLOAT(flag, field, scope, result, lo, excl, hi, arg, help)        \
  Setting {                                                                     \
    flag, Kind::Float, scope, result, arg, help,                                \
        hi < HUGE_VAL ? str(lo, "..", hi) : std::string(),                      \
        Set([](PipelineConfig& c, const std::string& v, const std::string& s) { \
          c.field = parse_float(flag, v, lo, excl, hi, s);                      \
        }),                                                                     \
        Get(GENIE_FIELD(field))                                                 \
  }
#define GENIE_STRING(flag, field, scope, result, arg, help)                     \
  Setting {                                                                     \
    flag, Kind::String, scope, result, arg, help, std::string(),                \
        Set([](PipelineConfig& c, const std::string& v, const std::string& s) { \
          if (v.empty()) bad_value(flag, "a non-empty value", v, s);            \
          c.field = v;                                                          \
        }),                                                                     \
        Get(GENIE_FIELD(field))                                                 \
  }
#define GENIE_CHOICE(flag, field, scope, result, arg, choices, help)            \
  Setting {                                                                     \
    flag, Kind::String, scope, result, arg, help, std::string(),                \
        Set([](PipelineConfig& c, const std::string& v, const std::string& s) { \
          c.field = parse_choice(flag, v, choices, s);                          \
        }),                                                                     \
        Get(GENIE_FIELD(field))                                                 \
  }
#define GENIE_SWITCH(flag, expr_get, expr_set, scope, result, help)             \
  Setting {                                                                     \
    flag, Kind::Switch, scope, result, "", help, std::string(),                 \
        Set([](PipelineConfig& c, const std::string& v, const std::string& s) { \
          const bool on = parse_switch(flag, v, s);                             \
          expr_set;                                                             \
        }),                                                                     \
        Get([](const PipelineConfig& c) { return Json(bool(expr_get)); })       \
  }

// The order is that of settings_json(), report.json and the quantized file's settings.
const std::vector<Setting>& settings_table() {
  constexpr int64_t b0 = k::kMinBits, b1 = k::kMaxBits;
  static const std::vector<Setting> t = {
      GENIE_STRING("model", model, kAll, kRun, "FILE", "FP32 teacher (HDF5 weights, see README)"),
      GENIE_STRING("out", out, kAll, kRun, "DIR",
                   "output directory (created; quantized.h5, images.h5, contact_sheet.png, "
                   "report.json)"),
      GENIE_STRING("calib", calib, kQ, kResult, "SRC",
                   "calibration data: genie (Genie-D) | noise | real:PATH | FILE.h5"),
      GENIE_STRING("eval", eval, kQ, kRun, "SRC",
                   "evaluate FP32 and quantized: fashion-mnist | DIR (image folder) | FILE.h5"),
      GENIE_INT("eval-limit", eval_limit, kQ, kRun, 1, kNoMax, "N",
                "evaluate only the first N images"),
      GENIE_INT("samples", samples, kAll, kResult, 1, kNoMax, "N", "calibration images S"),
      GENIE_INT("batch", batch, kAll, kResult, 1, kNoMax, "N", "Genie-D images per batch B"),
      GENIE_INT("distill-iters", distill_iters, kAll, kResult, 1, kNoMax, "N",
                "Genie-D iterations per batch"),
      GENIE_FLOAT("distill-lr-z", distill_lr_z, kAll, kResult, 0.0, true, HUGE_VAL, "LR",
                  "Genie-D Adam learning rate of the latents"),
      GENIE_FLOAT("distill-lr-g", distill_lr_g, kAll, kResult, 0.0, true, HUGE_VAL, "LR",
                  "Genie-D Adam learning rate of the generator"),
      GENIE_CHOICE("distill-mode", distill_mode, kAll, kResult, "M",
                   "genie|latents_only|generator_only",
                   "Genie-D: genie | latents_only | generator_only (the paper's ablations)"),
      GENIE_SWITCH("no-swing", !c.swing, c.swing = !on, kAll, kResult,
                   "Genie-D without swing convolution"),
      GENIE_INT("wbits", wbits, kQ, kResult, b0, b1, "N",
                "weight bits (first and last layer: --first-bits / --last-bits)"),
      GENIE_INT("abits", abits, kQ, kResult, b0, b1, "N",
                "activation bits (second and last layer inputs: --first-bits / --last-bits)"),
      GENIE_INT("first-bits", first_bits, kQ, kResult, b0, b1, "N",
                "first layer's weights and the second layer's input"),
      GENIE_INT("last-bits", last_bits, kQ, kResult, b0, b1, "N", "last layer's weights and input"),
      GENIE_INT("recon-iters", recon_iters, kQ, kResult, 1, kNoMax, "N",
                "Genie-M iterations per reconstruction unit"),
      GENIE_INT("recon-batch", recon_batch, kQ, kResult, 1, kNoMax, "N", "Genie-M batch"),
      GENIE_INT("recon-shards", recon_shards, kQ, kResult, 0, 1 << 20, "N",
                "Genie-M: each step's batch in N shards, gradients summed in shard order; the "
                "same N gives the same bits on any number of MPI ranks (0: one per rank)"),
      GENIE_FLOAT("lr-wstep", lr_wstep, kQ, kResult, 0.0, false, HUGE_VAL, "LR",
                  "Genie-M learning rate of the weight steps (0 keeps them)"),
      GENIE_FLOAT("lr-astep", lr_astep, kQ, kResult, 0.0, false, HUGE_VAL, "LR",
                  "Genie-M learning rate of the activation steps (0 keeps them)"),
      GENIE_FLOAT("max-step-change", max_step_change, kQ, kResult, 0.0, true, 1.0, "F",
                  "most a learned step moves per iteration, relative to its initial size"),
      GENIE_FLOAT("lr-round", lr_round, kQ, kResult, 0.0, true, HUGE_VAL, "LR",
                  "Genie-M learning rate of the rounding logits"),
      GENIE_FLOAT("round-weight", round_weight, kQ, kResult, 0.0, false, HUGE_VAL, "W",
                  "weight of the rounding regulariser"),
      GENIE_FLOAT("qdrop-p", qdrop_p, kQ, kResult, 0.0, false, 1.0, "P",
                  "QDrop: probability that an activation keeps its FP value"),
      GENIE_SWITCH("fold-bn", c.fold_bn, c.fold_bn = on, kQ, kResult,
                   "fold BatchNorm into the convolutions before quantizing"),
      GENIE_SWITCH("symmetric-weights", c.symmetric_weights, c.symmetric_weights = on, kQ, kResult,
                   "weight grids with zero point 2^(b-1): zero-point-0 integer weights once "
                   "exported (TensorRT)"),
      GENIE_SWITCH("graph", c.graph, c.graph = on, kAll, kRun,
                   "capture each Genie-D batch's and Genie-M unit's step once and replay it (a "
                   "CUDA graph on the GPU; the same results)"),
      GENIE_CHOICE("device", device, kAll, kResult, "D", "cpu|cuda|auto", "cpu | cuda | auto"),
      GENIE_CHOICE("precision", precision, kAll, kResult, "P", "fp32|tf32|bf16",
                   "convolutions and GEMMs on the GPU: fp32 | tf32 | bf16 (FP32 accumulation; "
                   "BN statistics, losses, quantizers and optimizer state stay FP32); the CPU "
                   "computes fp32 only"),
      GENIE_INT("threads", threads, kAll, kRun, 0, 1024, "N", "CPU threads (0: all)"),
      GENIE_INT("seed", seed, kAll, kResult, 0, kMaxSeed, "N", "random seed"),
      GENIE_SWITCH("quiet", c.quiet, c.quiet = on, kAll, kRun, "no progress and no summary"),
  };
  return t;
}

const Setting* find_setting(const std::string& name) {
  for (const auto& s : settings_table())
    if (name == s.name) return &s;
  return nullptr;
}

// Settings left out of the recorded settings at this value: --recon-shards 0 or 1 (no sharding on
// one rank) and --precision fp32, so that a run that shards nothing and computes in FP32 records
// what it did before those settings existed, byte for byte.
bool omitted_default(const Setting& s, const Json& v) {
  const std::string name = s.name;
  return (name == "recon-shards" && v.as_int() <= 1) ||
         (name == "precision" && v.as_string() == "fp32");
}

// Settings with no value: empty strings (no --eval, …), --eval-limit -1, and the omitted defaults.
bool is_unset(const Setting& s, const Json& v) {
  if (omitted_default(s, v)) return true;
  if (s.kind == Kind::String) return v.as_string().empty();
  return std::string(s.name) == "eval-limit" && v.as_int() < 0;
}

// A JSON value as the text a flag would give.
std::string as_text(const Json& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  return v.dump();
}

std::vector<std::string> flags_of(const std::string& command, bool switches) {
  std::vector<std::string> out;
  for (const auto& s : settings_table())
    if ((s.kind == Kind::Switch) == switches && (command == "quantize" || !s.quantize_only))
      out.push_back(s.name);
  return out;
}

}  // namespace

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

Device resolve_device(const std::string& d) {
  parse_choice("device", d, "cpu|cuda|auto", "");
  if (d == "cuda" && !cuda_available())
    throw InputError(str("--device cuda: ", cuda_device_string()));
  return parse_device(d);
}

std::vector<std::string> value_flags(const std::string& command) {
  return flags_of(command, false);
}
std::vector<std::string> switch_flags(const std::string& command) {
  return flags_of(command, true);
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
    if (!v.is_string() && !v.is_bool() && !v.is_number())
      throw InputError(str(where, ": setting '", key, "' expects a string, number or boolean, got ",
                           v.type_name()));
    if (s->kind != Kind::Switch && v.is_bool())
      throw InputError(str(where, ": setting '", key, "' expects a value, got a boolean"));
    s->set(c, as_text(v), where);
  }
}

Json result_settings_json(const PipelineConfig& c) {
  Json j = Json::object();
  for (const auto& s : settings_table()) {
    if (!s.result) continue;
    Json v = s.get(c);
    if (s.kind == Kind::String ? !omitted_default(s, v) : !is_unset(s, v))
      j.set(s.name, std::move(v));
  }
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
    s.set(tmp, s.kind == Kind::Switch ? (v.as_bool() ? "1" : "0") : as_text(v), "");
  }
}

std::string settings_help() {
  const PipelineConfig defaults;
  std::string out;
  char buf[512];
  for (const auto& s : settings_table()) {
    const std::string left = str("--", s.name, s.arg[0] ? str(" ", s.arg) : "");
    const Json d = s.get(defaults);
    std::string note = s.range;
    if (s.kind != Kind::Switch &&
        (!is_unset(s, d) || (s.kind == Kind::String && !d.as_string().empty())))
      note += (note.empty() ? "default " : ", default ") + as_text(d);
    std::snprintf(buf, sizeof buf, "  %-22s %s%s\n", left.c_str(), s.help,
                  note.empty() ? "" : (" [" + note + "]").c_str());
    out += buf;
  }
  return out;
}

DistillConfig distill_config(const PipelineConfig& c, Device device) {
  DistillConfig dc;
  dc.samples = c.samples;
  dc.batch = c.batch;
  dc.iters = c.distill_iters;
  dc.lr_z = float(c.distill_lr_z);
  dc.lr_g = float(c.distill_lr_g);
  dc.seed = c.seed;
  dc.swing = c.swing;
  dc.mode = parse_distill_mode(c.distill_mode);
  dc.device = device;
  dc.precision = parse_precision(c.precision);
  dc.graph = c.graph;
  dc.progress_every = std::max<int64_t>(1, std::min<int64_t>(50, c.distill_iters / 10));
  return dc;
}

quant::QuantConfig quant_config(const PipelineConfig& c) {
  quant::QuantConfig qc;
  qc.wbits = c.wbits;
  qc.abits = c.abits;
  qc.first_bits = c.first_bits;
  qc.last_bits = c.last_bits;
  qc.fold_bn = c.fold_bn;
  qc.symmetric_weights = c.symmetric_weights;
  return qc;
}

quant::ReconOptions recon_options(const PipelineConfig& c) {
  quant::ReconOptions ro;
  ro.iters = c.recon_iters;
  ro.batch = c.recon_batch;
  ro.round_weight = float(c.round_weight);
  ro.qdrop_p = float(c.qdrop_p);
  ro.graph = c.graph;
  ro.lr_w_step = float(c.lr_wstep);
  ro.lr_a_step = float(c.lr_astep);
  ro.max_step_change = float(c.max_step_change);
  ro.lr_logits = float(c.lr_round);
  ro.seed = c.seed;
  ro.shards = std::max(c.recon_shards, 1);
  ro.precision = parse_precision(c.precision);
  ro.log_every = std::max<int64_t>(1, std::min<int64_t>(100, c.recon_iters / 10));
  return ro;
}

}  // namespace genie::engine
