// genie_run's command line: subcommands, flags, config files, progress display, summary.
#include "engine/cli.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>

#include "engine/checkpoint.h"
#include "engine/export.h"
#include "engine/qmodel.h"
#include "engine/report.h"
#include "io/atomic.h"
#include "io/datasets.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "kernels/collective.h"
#include "kernels/util.h"

namespace genie::cli {

using engine::InputError;
using engine::PipelineConfig;

namespace {

// Flags of quantize / distill beyond the settings.
const std::vector<std::string> kExtraValueFlags = {"config", "resume"};
const std::vector<std::string> kExtraSwitches = {"help", "version"};
// The help of the flags that are not settings.
const char* const kExtraHelp =
    "  --config FILE          JSON object of settings by flag name; flags given here override it\n"
    "  --resume DIR           continue the interrupted run in DIR (its --out) from its "
    "checkpoint\n"
    "  --help                 this text\n"
    "  --version              the version\n";

std::string usage() {
  std::string s =
      "usage: genie_run [quantize] --model FILE --out DIR [flags]   Genie-D + Genie-M "
      "quantization\n"
      "       genie_run distill --model FILE --out DIR [flags]      Genie-D synthetic data only\n"
      "       genie_run eval --model FILE --eval SRC [--device D] [--threads N] [--batch N] "
      "[--limit N]\n"
      "                      [--logits FILE.h5]                 top-1/top-5 of an FP32 or "
      "quantized file\n"
      "                                                         (--logits: every image's logits,\n"
      "                                                         prediction and label)\n"
      "       genie_run info --model FILE [--json]              architecture, units, bits\n"
      "       genie_run export --model DIR/quantized.h5 --out FILE.onnx [--format onnx]\n"
      "                      [--encodings FILE.json] [--opset 21..25]\n"
      "                      [--act-storage 8bit|narrow]\n"
      "                                                         ONNX Quantize/DequantizeLinear"
      " model\n"
      "                                                         (integer weights; opset 21, 25 for"
      " int2;\n"
      "                                                         activations in 8-bit pairs, or\n"
      "                                                         int4/int2 with narrow)\n"
      "flags of quantize (distill takes the Genie-D and run flags; defaults from the paper):\n";
  s += engine::settings_help();
  s += kExtraHelp;
  s += "several processes: mpirun -np N genie_run quantize|distill ... (Genie-D batches and "
       "Genie-M\n  shards spread over the ranks; the same files for any N at a fixed "
       "--recon-shards; README)\n";
  s += "exit codes: 0 success, 2 bad input (nothing written), 1 failure while running\n";
  return s;
}

std::string version_string() {
  return str("genie_run ", engine::genie_version(), " (CUDA backend ",
             cuda_built() ? "built" : "not built", ", MPI ",
             engine::Comm::built() ? "built" : "not built", ", NCCL ",
             k::nccl_built() ? "built" : "not built", ")");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> split_flags(
    const std::vector<std::string>& args, const std::vector<std::string>& with_value,
    const std::vector<std::string>& switches, const std::string& command) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  auto known = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a.rfind("--", 0) != 0)
      throw InputError(str(command, ": unexpected argument '", a, "' (flags are --name value)"));
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (known(switches, name)) {
      if (inline_value) throw InputError(str(command, ": --", name, " takes no value"));
      value = "1";
    } else if (known(with_value, name)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw InputError(str(command, ": --", name, " expects a value"));
        value = args[++i];
      }
    } else {
      std::vector<std::string> all(with_value);
      all.insert(all.end(), switches.begin(), switches.end());
      const auto near = closest_keys(name, all, 1);
      throw InputError(str(command, ": unknown flag '--", name, "'",
                           near.empty() ? "" : str(" (did you mean --", near[0], "?)"),
                           "; see genie_run --help"));
    }
    if (!seen.insert(name).second) throw InputError(str(command, ": --", name, " given twice"));
    out.emplace_back(name, value);
  }
  return out;
}

Parsed parse(const std::string& command, const std::vector<std::string>& args) {
  std::vector<std::string> vals = kExtraValueFlags, sws = kExtraSwitches;
  for (const auto& n : engine::value_flags(command)) vals.push_back(n);
  for (const auto& n : engine::switch_flags(command)) sws.push_back(n);
  const auto flags = split_flags(args, vals, sws, command);
  Parsed p;
  p.command = command;
  std::map<std::string, std::string> given(flags.begin(), flags.end());
  if (given.count("help")) p.help = true;
  if (given.count("version")) p.version = true;
  if (p.help || p.version) return p;
  PipelineConfig& cfg = p.cfg;
  // 1. a resumed run's own settings (so `--resume DIR` alone continues it as it was started)
  if (given.count("resume")) {
    const std::string dir = given.at("resume");
    if (dir.empty()) throw InputError("--resume expects a directory, got ''");
    // Rank 0 reads the checkpoint (other ranks may not see the folder) and sends its state.
    const engine::Comm& world = engine::Comm::world();
    std::string state;
    if (world.root()) state = engine::Checkpoint::read_state(dir).dump();
    world.broadcast(state);
    const Json st = Json::parse(state, "checkpoint state");
    Json base = Json::object();
    if (const Json* s = st.find("settings"); s && s->is_object())
      for (const auto& [k, v] : s->as_object())
        if (k != "quiet" && k != "threads" && k != "out") base.set(k, v);
    engine::apply_config_json(cfg, base, "--resume " + dir + " (checkpoint settings)");
    // A checkpoint without --recon-shards was made unsharded: resumed so on any rank count.
    if (!base.contains("recon-shards")) cfg.recon_shards = 1;
    // One without --precision computed in FP32 (whatever the default).
    if (!base.contains("precision")) cfg.precision = "fp32";
    cfg.out = dir;
    cfg.resume = dir;
  }
  // 2. the config file
  if (given.count("config")) {
    const std::string path = given.at("config");
    Json j;
    try {
      j = Json::parse(io::read_text_file(path), path);
    } catch (const Error& e) {
      throw InputError(str("--config ", path, ": ", e.what()));
    }
    engine::apply_config_json(cfg, j, "--config " + path);
  }
  // 3. the flags
  for (const auto& [name, value] : flags)
    if (name != "config" && name != "resume") engine::apply_setting(cfg, name, value);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Subcommands

namespace {

int64_t int_flag(const std::map<std::string, std::string>& f, const std::string& k, int64_t def,
                 int64_t lo) {
  auto it = f.find(k);
  return it == f.end() ? def : engine::parse_int(k, it->second, lo, INT64_MAX);
}

Device device_flag(const std::map<std::string, std::string>& f) {
  return engine::resolve_device(f.count("device") ? f.at("device") : "auto");
}

std::string required(const std::map<std::string, std::string>& f, const std::string& k,
                     const std::string& cmd, const std::string& what) {
  auto it = f.find(k);
  if (it == f.end() || it->second.empty())
    throw InputError(str(cmd, ": missing required flag --", k, " ", what));
  return it->second;
}

int cmd_eval(const std::vector<std::string>& args, std::ostream& out) {
  const auto fl = split_flags(
      args, {"model", "eval", "device", "threads", "batch", "limit", "logits"}, {"help"}, "eval");
  const std::map<std::string, std::string> f(fl.begin(), fl.end());
  if (f.count("help")) {
    out << usage();
    return 0;
  }
  const std::string path = required(f, "model", "eval", "FILE");
  const std::string source = required(f, "eval", "eval", "fashion-mnist|DIR|FILE.h5");
  const Device dev = device_flag(f);
  const int64_t threads = int_flag(f, "threads", 0, 0);
  const int64_t batch = int_flag(f, "batch", 256, 1);
  const int64_t limit = int_flag(f, "limit", -1, 1);
  const std::string logits_path = f.count("logits") ? f.at("logits") : "";
  if (f.count("logits")) {
    if (logits_path.empty()) throw InputError("eval: --logits expects a file name");
    const size_t slash = logits_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : logits_path.substr(0, slash + 1);
    if (::access(dir.c_str(), W_OK) != 0)
      throw InputError(
          str("--logits ", logits_path, ": the folder does not exist or is not writable"));
  }
  if (threads > 0) set_cpu_threads(int(threads));
  const engine::FileEval fe =
      engine::evaluate_file(path, source, limit, dev, int(batch), !logits_path.empty());
  Json j = engine::to_json(fe.result);
  j.set("quantized", fe.quantized);
  if (fe.quantized) j.set("bits", fe.bits);
  if (!logits_path.empty()) {  // all or nothing: written under a temporary name, then renamed
    const engine::EvalResult& r = fe.result;
    io::H5Writer w(logits_path);
    w.write_f32("logits", r.logits, {r.n, r.classes});
    w.write_i32("predictions", r.predictions, {r.n});
    w.write_i32("labels", fe.labels, {r.n});
    w.set_attr_string("model", path);
    w.set_attr_string("eval", source);
    w.set_attr_f64("top1", r.top1);
    w.commit();
    j.set("logits", logits_path);
  }
  out << j.dump() << std::endl;
  return 0;
}

// What `info --json` prints: the architecture, BN layers, strided convs, units and, for a
// quantized file, every layer's bits.
Json info_json(const models::Model& m, const quant::QModel* qm) {
  const bool quantized = qm != nullptr;
  const models::ModelInfo& info = m.info();
  const models::Graph& g = m.graph();
  Json j = Json::object();
  j.set("arch", info.arch);
  j.set("quantized", quantized);
  j.set("input_shape", Json::array_of(std::vector<int64_t>{info.C, info.H, info.W}));
  j.set("input_mean", Json::array_of(info.mean));
  j.set("input_std", Json::array_of(info.std));
  j.set("num_classes", info.num_classes);
  j.set("params", m.num_params());
  j.set("nodes", int64_t(g.size()));
  Json bns = Json::array();
  for (int i : m.bn_nodes()) bns.push_back(g.nodes[size_t(i)].name);
  j.set("bn_layers", std::move(bns));
  Json strided = Json::array();
  for (int i : m.strided_convs()) strided.push_back(g.nodes[size_t(i)].name);
  j.set("strided_convs", std::move(strided));
  Json units = Json::array();
  for (const auto& u : m.units()) {
    Json uj = Json::object();
    uj.set("name", u.name);
    uj.set("kind", u.kind);
    uj.set("first", u.first);
    uj.set("last", u.last);
    uj.set("input", u.input);
    units.push_back(std::move(uj));
  }
  j.set("units", std::move(units));
  Json layers = Json::array();
  if (quantized) {
    j.set("bits", str("W", qm->config().wbits, "A", qm->config().abits));
    j.set("fold_bn", qm->config().fold_bn);
    for (size_t i = 0; i < qm->wq.size(); ++i) {
      Json l = Json::object();
      const int node = qm->wq_node[i];
      l.set("name", g.nodes[size_t(node)].name);
      l.set("wbits", qm->wq[i].bits());
      const int a = qm->node_aq(node, 0);
      l.set("abits", a >= 0 ? Json(qm->aq[size_t(a)].bits()) : Json());
      layers.push_back(std::move(l));
    }
    j.set("layers", layers);
  }
  return j;
}

// The same for people, with each BN layer's channels and each strided conv's stride.
void print_info(const models::Model& m, const quant::QModel* qm, const Json& j, std::ostream& out) {
  const bool quantized = qm != nullptr;
  const models::ModelInfo& info = m.info();
  const models::Graph& g = m.graph();
  const Json empty = Json::array();
  const Json& layers = quantized ? j.at("layers") : empty;
  char buf[512];
  auto p = [&](const std::string& s) { out << s << "\n"; };
  p(str("arch          ", info.arch,
        quantized ? " (quantized " + j.at("bits").as_string() +
                        (qm->config().fold_bn ? ", BN folded)" : ")")
                  : std::string()));
  p(str("input         ", info.C, " x ", info.H, " x ", info.W, ", mean ",
        j.at("input_mean").dump(), ", std ", j.at("input_std").dump()));
  p(str("classes       ", info.num_classes));
  p(str("parameters    ", m.num_params()));
  p(str("graph nodes   ", g.size()));
  p(str("BN layers     ", m.bn_nodes().size()));
  for (int i : m.bn_nodes()) {
    std::snprintf(buf, sizeof buf, "  %-40s %lld channels", g.nodes[size_t(i)].name.c_str(),
                  (long long)g.nodes[size_t(i)].out_ch);
    p(buf);
  }
  p(str("strided convs ", m.strided_convs().size()));
  for (int i : m.strided_convs()) {
    std::snprintf(buf, sizeof buf, "  %-40s stride %lld", g.nodes[size_t(i)].name.c_str(),
                  (long long)g.nodes[size_t(i)].stride);
    p(buf);
  }
  p(str("units         ", m.units().size()));
  for (const auto& u : m.units()) {
    std::snprintf(buf, sizeof buf, "  %-40s %-18s nodes %d-%d, input %s", u.name.c_str(),
                  u.kind.c_str(), u.first, u.last,
                  u.input < 0 ? "image" : ("node " + std::to_string(u.input)).c_str());
    p(buf);
  }
  if (quantized) {
    p(str("quantized layers ", qm->wq.size()));
    for (size_t i = 0; i < layers.size(); ++i) {
      const Json& l = layers[i];
      std::snprintf(
          buf, sizeof buf, "  %-40s W%lld  input %s", l.at("name").as_string().c_str(),
          (long long)l.at("wbits").as_int(),
          l.at("abits").is_null() ? "FP" : ("A" + std::to_string(l.at("abits").as_int())).c_str());
      p(buf);
    }
  }
}

int cmd_export(const std::vector<std::string>& args, std::ostream& out) {
  const auto fl = split_flags(args, {"model", "out", "format", "encodings", "opset", "act-storage"},
                              {"help"}, "export");
  const std::map<std::string, std::string> f(fl.begin(), fl.end());
  if (f.count("help")) {
    out << usage();
    return 0;
  }
  engine::ExportOptions o;
  const std::string path = required(f, "model", "export", "DIR/quantized.h5");
  o.out = required(f, "out", "export", "FILE.onnx");
  if (f.count("format")) o.format = f.at("format");
  if (f.count("encodings")) {
    o.encodings = f.at("encodings");
    if (o.encodings.empty()) throw InputError("export: --encodings expects a file name");
  }
  if (f.count("act-storage")) {
    const std::string a = f.at("act-storage");
    if (a != "8bit" && a != "narrow")
      throw InputError(str("export: --act-storage expected 8bit or narrow, got '", a, "'"));
    o.narrow_activations = a == "narrow";
  }
  if (f.count("opset")) o.opset = int(engine::parse_int("opset", f.at("opset"), 21, 25));
  out << engine::to_json(engine::export_model(path, o)).dump() << std::endl;
  return 0;
}

int cmd_info(const std::vector<std::string>& args, std::ostream& out) {
  const auto fl = split_flags(args, {"model"}, {"json", "help"}, "info");
  const std::map<std::string, std::string> f(fl.begin(), fl.end());
  if (f.count("help")) {
    out << usage();
    return 0;
  }
  const std::string path = required(f, "model", "info", "FILE");
  const bool quantized = engine::is_quantized_file(path);
  quant::QModel qm;
  models::Model m;
  try {
    if (quantized) {
      qm = quant::QModel::load(path, Device::CPU);
      m = qm.model();
    } else {
      m = io::load_model(path);
    }
  } catch (const Error& e) {
    throw InputError(str("--model ", path, ": ", e.what()));
  }
  const Json j = info_json(m, quantized ? &qm : nullptr);
  if (f.count("json"))
    out << j.dump() << std::endl;
  else
    print_info(m, quantized ? &qm : nullptr, j, out);
  return 0;
}

int cmd_pipeline(const std::string& command, const std::vector<std::string>& args,
                 std::ostream& out, std::ostream& err, bool tty) {
  const Parsed ps = parse(command, args);
  if (ps.help) {
    out << usage();
    return 0;
  }
  if (ps.version) {
    out << version_string() << "\n";
    return 0;
  }
  // Under MPI rank 0 alone shows progress and the summary.
  const bool root = engine::Comm::world().root();
  engine::ProgressView view(err, tty, ps.cfg.quiet || !root);
  auto listen = [&](const engine::PipelineEvent& e) { view(e); };
  engine::PipelineResult r;
  try {
    r = command == "distill" ? engine::run_distill(ps.cfg, listen)
                             : engine::run_quantize(ps.cfg, listen);
  } catch (...) {
    view.finish();
    throw;
  }
  view.finish();
  if (!ps.cfg.quiet && root) out << engine::summary_table(r.report) << std::flush;
  return 0;
}

}  // namespace

int run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
        bool err_is_tty) {
  if (argv.empty()) {
    err << usage();
    return 2;
  }
  std::string cmd = argv[0];
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    out << usage();
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    out << version_string() << "\n";
    return 0;
  }
  if (cmd.rfind("--", 0) == 0) {  // the default subcommand
    cmd = "quantize";
    args = argv;
  }
  try {
    if (cmd == "quantize" || cmd == "distill") return cmd_pipeline(cmd, args, out, err, err_is_tty);
    if (cmd == "eval") return cmd_eval(args, out);
    if (cmd == "info") return cmd_info(args, out);
    if (cmd == "export") return cmd_export(args, out);
    err << "genie_run: unknown command '" << cmd << "' (quantize, distill, eval, info, export)\n"
        << usage();
    return 2;
  } catch (const InputError& e) {
    err << "genie_run: " << engine::rank_prefix() << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "genie_run: " << engine::rank_prefix() << e.what() << "\n";
    return 1;
  }
}

int main(int argc, char** argv) {
  engine::Comm::init(&argc, &argv);  // MPI, when started by mpirun (engine/comm.h)
  std::vector<std::string> args(argv + 1, argv + argc);
  const int rc = run(args, std::cout, std::cerr, ::isatty(STDERR_FILENO) != 0);
  // An error on one rank ends them all (the others may wait in a collective); the message was
  // printed above by the rank that failed.
  if (rc != 0 && engine::Comm::world().size() > 1) {
    std::cerr << std::flush;
    engine::Comm::world().abort(rc);
  }
  engine::Comm::finalize();
  return rc;
}

}  // namespace genie::cli
