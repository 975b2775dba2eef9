// report.json and the end-of-run summary table.
#include "engine/report.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/records.h"
#include "io/atomic.h"
#include "kernels/util.h"

#ifndef GENIE_VERSION
#define GENIE_VERSION "0.1.0"  // normally set by engine/CMakeLists.txt from the project version
#endif

namespace genie::engine {

const char* genie_version() { return GENIE_VERSION; }

namespace {

Json model_json(const PipelineConfig& c, const models::Model& m, const std::string& fingerprint) {
  Json j = Json::object();
  j.set("path", c.model);
  j.set("arch", m.info().arch);
  j.set("params", m.num_params());
  j.set("input_shape", Json::array_of(std::vector<int64_t>{m.info().C, m.info().H, m.info().W}));
  j.set("num_classes", m.info().num_classes);
  j.set("fingerprint", fingerprint);
  return j;
}

}  // namespace

Json quantize_report(const PipelineConfig& c, const models::Model& teacher,
                     const std::string& fingerprint, const PipelineResult& r) {
  Json j = Json::object();
  j.set("genie_version", genie_version());
  j.set("command", "quantize");
  j.set("bits", str("W", c.wbits, "A", c.abits));
  if (r.evaluated) {
    j.set("fp32_top1", r.fp32.top1);
    j.set("fp32_top5", r.fp32.top5);
    j.set("quant_top1", r.quant.top1);
    j.set("quant_top5", r.quant.top5);
    Json e = Json::object();
    e.set("source", c.eval);
    e.set("n", r.quant.n);
    j.set("eval", std::move(e));
  }
  j.set("timings_s", r.timings);
  j.set("settings", settings_json(c));
  j.set("model", model_json(c, teacher, fingerprint));
  Json units = Json::array();
  for (const auto& u : r.units) units.push_back(to_json(u));
  j.set("units", std::move(units));
  if (c.calib == "genie") j.set("distill", distill_json(r.distill));
  Json files = Json::object();
  files.set("quantized_model", r.quant_model_path);
  if (!r.synthetic_path.empty()) files.set("synthetic_set", r.synthetic_path);
  if (!r.contact_sheet_path.empty()) files.set("contact_sheet", r.contact_sheet_path);
  files.set("report", r.report_path);
  j.set("files", std::move(files));
  j.set("resumed", r.resumed);
  return j;
}

Json distill_report(const PipelineConfig& c, const models::Model& teacher,
                    const std::string& fingerprint, const PipelineResult& r) {
  Json j = Json::object();
  j.set("genie_version", genie_version());
  j.set("command", "distill");
  // Genie-D's losses at the top level too: a distill run's report is about them.
  j.set("bn_loss_final", r.distill.bn_loss_final);
  j.set("input_loss_final", r.distill.input_loss_final);
  j.set("bn_loss_noise", r.distill.bn_loss_noise);
  j.set("iters_per_s", r.distill.iters_per_s);
  j.set("time_s", r.timings.get_number("distill", 0.0));
  j.set("timings_s", r.timings);
  j.set("settings", settings_json(c));
  j.set("model", model_json(c, teacher, fingerprint));
  j.set("distill", distill_json(r.distill));
  Json files = Json::object();
  files.set("synthetic_set", r.synthetic_path);
  files.set("contact_sheet", r.contact_sheet_path);
  files.set("report", r.report_path);
  j.set("files", std::move(files));
  j.set("resumed", r.resumed);
  return j;
}

void write_report(const std::string& path, const Json& report) {
  io::write_file_atomic(path, report.dump(2) + "\n");
}

std::string summary_table(const Json& rep) {
  std::string out;
  char buf[512];
  auto row = [&](const std::string& a, const std::string& b) {
    std::snprintf(buf, sizeof buf, "  %-22s %s\n", a.c_str(), b.c_str());
    out += buf;
  };
  const std::string rule = "  " + std::string(60, '-') + "\n";
  out += rule;
  const bool quant = rep.get_string("command", "") == "quantize";
  row("summary",
      quant ? rep.get_string("bits", "") + " (" + rep.at("model").get_string("arch", "") + ")"
            : "Genie-D (" + rep.at("model").get_string("arch", "") + ")");
  out += rule;
  static const std::pair<const char*, const char*> phases[] = {
      {"load", "load + validate"},
      {"distill", "Genie-D synthesis"},
      {"write_synthetic", "write synthetic set"},
      {"reconstruct", "Genie-M reconstruction"},
      {"write_model", "write quantized model"},
      {"eval_fp32", "evaluate FP32"},
      {"eval_quant", "evaluate quantized"},
      {"write", "write outputs"},
      {"total", "total wall time"}};
  const Json& t = rep.at("timings_s");
  for (const auto& [key, label] : phases)
    if (t.contains(key)) row(label, format_duration(t.at(key).as_number()));
  if (rep.contains("distill")) {
    const Json& d = rep.at("distill");
    std::snprintf(buf, sizeof buf, "%.4g (noise images: %.4g)", d.get_number("bn_loss_final", 0),
                  d.get_number("bn_loss_noise", 0));
    row("Genie-D BN loss", buf);
  }
  if (rep.contains("units") && rep.at("units").size() > 0) {
    const Json& us = rep.at("units");
    double before = 0, after = 0;
    std::vector<std::string> kept;  // units where the guard kept the initial quantizer
    for (size_t i = 0; i < us.size(); ++i) {
      before += us[i].get_number("loss_before", 0);
      after += us[i].get_number("loss_final", us[i].get_number("loss_after", 0));
      if (us[i].get_bool("kept_initial", false)) kept.push_back(us[i].get_string("name", "?"));
    }
    std::snprintf(buf, sizeof buf, "%zu units, summed loss %.4g -> %.4g", us.size(), before, after);
    row("reconstruction", buf);
    if (!kept.empty()) {
      std::string names;
      for (size_t i = 0; i < kept.size() && i < 4; ++i) names += (i ? ", " : "") + kept[i];
      if (kept.size() > 4) names += ", …";
      row("optimisation worse", str(kept.size(), " unit(s) kept the initial quantizer: ", names));
    }
  }
  if (rep.contains("quant_top1")) {
    out += rule;
    std::snprintf(buf, sizeof buf, "%.2f %%   (top-5 %.2f %%)",
                  100 * rep.at("fp32_top1").as_number(), 100 * rep.at("fp32_top5").as_number());
    row("FP32 top-1", buf);
    std::snprintf(buf, sizeof buf, "%.2f %%   (top-5 %.2f %%)",
                  100 * rep.at("quant_top1").as_number(), 100 * rep.at("quant_top5").as_number());
    row(rep.get_string("bits", "quantized") + " top-1", buf);
    std::snprintf(buf, sizeof buf, "%+.2f pp on %lld images",
                  100 * (rep.at("quant_top1").as_number() - rep.at("fp32_top1").as_number()),
                  static_cast<long long>(rep.at("eval").get_int("n", 0)));
    row("difference", buf);
  }
  out += rule;
  if (rep.contains("files"))
    for (const auto& [k, v] : rep.at("files").as_object()) row(k, v.as_string());
  out += rule;
  return out;
}

}  // namespace genie::engine
