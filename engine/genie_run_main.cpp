// genie_run: the command-line front end.
//   genie_run eval --model FILE --eval fashion-mnist|DIR|FILE.h5 [--device cpu|cuda|auto]
//                  [--threads N] [--batch N] [--limit N]
//       prints one JSON line {"top1": …, "top5": …, "n": …, "seconds": …}
//   genie_run info --model FILE [--json]
//       prints the architecture, input description, parameter count, BN layers, strided
//       convolutions and reconstruction units
// Exit codes: 0 success, 2 bad flags or bad input (unreadable model/data), 1 runtime failure.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/evaluate.h"
#include "io/datasets.h"
#include "io/model_file.h"

using namespace genie;

namespace {

// Bad command line: exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Bad input file or data: exit code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "--name value" / "--name=value" / "--switch" flags, checked against the subcommand's known set.
class Flags {
 public:
  Flags(const std::vector<std::string>& args, const std::set<std::string>& with_value,
        const std::set<std::string>& switches, const std::string& cmd) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0) throw UsageError(cmd + ": unexpected argument '" + a + "'");
      std::string name = a.substr(2), value;
      const size_t eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (switches.count(name)) {
        if (inline_value) throw UsageError(cmd + ": --" + name + " takes no value");
        values_[name] = "1";
      } else if (with_value.count(name)) {
        if (!inline_value) {
          if (i + 1 >= args.size()) throw UsageError(cmd + ": --" + name + " expects a value");
          value = args[++i];
        }
        if (values_.count(name)) throw UsageError(cmd + ": --" + name + " given twice");
        values_[name] = value;
      } else {
        std::string known;
        for (const auto& k : with_value) known += " --" + k;
        for (const auto& k : switches) known += " --" + k;
        throw UsageError(cmd + ": unknown flag '--" + name + "' (known:" + known + ")");
      }
    }
  }
  bool has(const std::string& k) const { return values_.count(k) != 0; }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  std::string required(const std::string& k, const std::string& cmd) const {
    if (!has(k)) throw UsageError(cmd + ": missing required flag --" + k);
    return str(k);
  }
  int64_t integer(const std::string& k, int64_t def, int64_t min_value) const {
    if (!has(k)) return def;
    const std::string v = str(k);
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || x < min_value)
      throw UsageError("--" + k + " expects an integer >= " + std::to_string(min_value) + ", got '" + v + "'");
    return x;
  }

 private:
  std::map<std::string, std::string> values_;
};

Device device_flag(const Flags& f) {
  const std::string d = f.str("device", "auto");
  if (d != "cpu" && d != "cuda" && d != "auto")
    throw UsageError("--device expects cpu, cuda or auto, got '" + d + "'");
  try {
    return parse_device(d);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

models::Model load_model_or_input_error(const std::string& path) {
  try {
    return io::load_model(path);
  } catch (const Error& e) {
    throw InputError(e.what());
  }
}

int cmd_eval(const std::vector<std::string>& args) {
  const Flags f(args, {"model", "eval", "device", "threads", "batch", "limit"}, {}, "eval");
  const std::string model_path = f.required("model", "eval");
  const std::string source = f.required("eval", "eval");
  const Device dev = device_flag(f);
  const int64_t threads = f.integer("threads", 0, 0);
  const int64_t batch = f.integer("batch", 256, 1);
  const int64_t limit = f.integer("limit", -1, 1);
  if (threads > 0) set_cpu_threads(int(threads));
  if (dev == Device::CUDA && !cuda_available())
    throw UsageError("--device cuda: " + cuda_device_string());

  models::Model model = load_model_or_input_error(model_path);
  io::LabeledImages data;
  try {
    data = io::load_labeled_images(source, engine::input_spec(model.info()), limit);
    io::check_labels(data, model.info().num_classes, source);
  } catch (const Error& e) {
    throw InputError(e.what());
  }
  model.to(dev);
  const engine::EvalResult r = engine::evaluate(model, data, int(batch), dev);
  std::cout << engine::to_json(r).dump() << std::endl;
  return 0;
}

int cmd_info(const std::vector<std::string>& args) {
  const Flags f(args, {"model"}, {"json"}, "info");
  const models::Model m = load_model_or_input_error(f.required("model", "info"));
  const models::ModelInfo& info = m.info();
  const models::Graph& g = m.graph();
  Json j = Json::object();
  j.set("arch", info.arch);
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
  if (f.has("json")) {
    std::cout << j.dump() << std::endl;
    return 0;
  }
  std::printf("arch          %s\n", info.arch.c_str());
  std::printf("input         %lld x %lld x %lld, mean %s, std %s\n", (long long)info.C,
              (long long)info.H, (long long)info.W, j.at("input_mean").dump().c_str(),
              j.at("input_std").dump().c_str());
  std::printf("classes       %lld\n", (long long)info.num_classes);
  std::printf("parameters    %lld\n", (long long)m.num_params());
  std::printf("graph nodes   %d\n", g.size());
  std::printf("BN layers     %zu\n", m.bn_nodes().size());
  for (int i : m.bn_nodes())
    std::printf("  %-40s %lld channels\n", g.nodes[size_t(i)].name.c_str(),
                (long long)g.nodes[size_t(i)].out_ch);
  std::printf("strided convs %zu\n", m.strided_convs().size());
  for (int i : m.strided_convs())
    std::printf("  %-40s stride %lld\n", g.nodes[size_t(i)].name.c_str(),
                (long long)g.nodes[size_t(i)].stride);
  std::printf("units         %zu\n", m.units().size());
  for (const auto& u : m.units())
    std::printf("  %-40s %-18s nodes %d-%d, input %s\n", u.name.c_str(), u.kind.c_str(), u.first,
                u.last, u.input < 0 ? "image" : ("node " + std::to_string(u.input)).c_str());
  return 0;
}

const char* kUsage =
    "usage: genie_run <command> [flags]\n"
    "  eval --model FILE --eval fashion-mnist|DIR|FILE.h5 [--device cpu|cuda|auto] [--threads N]\n"
    "       [--batch N] [--limit N]     top-1/top-5 accuracy as one JSON line\n"
    "  info --model FILE [--json]       architecture, BN layers, strided convs, units\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    if (cmd == "eval") return cmd_eval(args);
    if (cmd == "info") return cmd_info(args);
    std::fprintf(stderr, "genie_run: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "genie_run: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const InputError& e) {
    std::fprintf(stderr, "genie_run: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genie_run: %s\n", e.what());
    return 1;
  }
}
