// genie_fuzz: a mutation fuzzer for the parsers that read untrusted input.
//
//   genie_fuzz TARGET [--seconds S | --runs N] [--seed N] [--out DIR] [--timeout S] [--quiet]
//     model   an HDF5 file: io::load_model, or quant::QModel::load for a quantized file, then the
//             graph's shape inference at the file's input shape
//     graph   a graph description (JSON): Json::parse, models::Graph::from_json, validate,
//             infer_shapes
//     config  a --config file (JSON): Json::parse, engine::apply_config_json, check_ranges
//
// Every input must either load or be refused with a genie::Error. Anything else is a finding:
// another exception type (the input is saved as DIR/finding-<n>.<ext>), a crash or a sanitizer
// report (the input is DIR/current.<ext>, written before each run), or a hang (a watchdog aborts
// after --timeout seconds, leaving DIR/current.<ext>). Build it in the sanitizer tree
// (scripts/sanitize.sh) so that memory errors are findings too.
//
// Seeds: the committed corpus (tests/fuzz/corpus/<target>/), the repository's model files and,
// for graphs, every built-in architecture's description. Mutations, 1–4 per input:
//   model files through their structure (read with H5Reader, rewritten with H5Writer): datasets
//   dropped, renamed, duplicated, reshaped, retyped (int8 / uint8 / int32), their values made NaN,
//   infinite, huge or denormal; attributes changed (sizes huge, zero, negative, fractional; float
//   values NaN / 0 / 1e-45; strings mutated like the text inputs: the graph JSON among them);
//   then, for a quarter of the inputs, bytes of the written file (flips, truncation, a block
//   copied elsewhere). Text through characters (flips, insertions, deletions, spans duplicated)
//   and tokens (numbers replaced by extreme values, strings lengthened or given a NUL, deep
//   nesting).
//
// The outcome counts at the end: executions, rate, inputs loaded, inputs refused (by the first
// words of the message), findings. Exit status 0 when there is no finding.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/evaluate.h"
#include "engine/qmodel.h"
#include "engine/settings.h"
#include "io/atomic.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "kernels/json.h"
#include "models/archs.h"
#include "models/graph.h"

using namespace genie;

namespace {

using Rng = std::mt19937_64;

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::vector<std::string> files_in(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0)
        out.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t pick(Rng& r, size_t n) { return n ? size_t(r() % n) : 0; }

// ---------------------------------------------------------------------------------------------
// Text mutations (graph and config JSON, string attributes)

const char* const kNumbers[] = {"0",      "-1",         "1e308",      "-1e308",
                                "1e-320", "4294967295", "4294967300", "9223372036854775807",
                                "1e19",   "2147483648", "0.5",        "-0",
                                "NaN",    "1e999",      "65536",      "100000"};

std::string mutate_number_token(const std::string& s, Rng& r) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((std::isdigit(uint8_t(s[i])) || s[i] == '-') &&
        (i == 0 || !std::isalnum(uint8_t(s[i - 1]))))
      starts.push_back(i);
  if (starts.empty()) return s;
  const size_t b = starts[pick(r, starts.size())];
  size_t e = b + 1;
  while (e < s.size() && (std::isdigit(uint8_t(s[e])) || std::strchr(".eE+-", s[e]))) ++e;
  return s.substr(0, b) + kNumbers[pick(r, std::size(kNumbers))] + s.substr(e);
}

std::string mutate_text(std::string s, Rng& r) {
  const int n = 1 + int(pick(r, 3));
  for (int k = 0; k < n; ++k) {
    const size_t at = pick(r, s.size() + 1);
    switch (pick(r, 9)) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(r, s.size())] ^= char(1 << pick(r, 8));
        break;
      case 1:  // insert a structural character
        s.insert(at, 1, "{}[]\",:\\0"[pick(r, 9)]);
        break;
      case 2:  // delete a span
        if (!s.empty()) s.erase(at < s.size() ? at : s.size() - 1, 1 + pick(r, 16));
        break;
      case 3: {  // duplicate a span
        const size_t len = 1 + pick(r, 64);
        if (at < s.size()) s.insert(pick(r, s.size()), s.substr(at, len));
        break;
      }
      case 4:
        s = mutate_number_token(s, r);
        break;
      case 5:  // a long run (names, strings)
        s.insert(at, std::string(1 + pick(r, 100000), "ax9"[pick(r, 3)]));
        break;
      case 6:  // deep nesting
        s.insert(at, std::string(1 + pick(r, 5000), "[{"[pick(r, 2)]));
        break;
      case 7:  // an embedded NUL
        s.insert(at, 1, '\0');
        break;
      default:  // truncate
        s.resize(at);
        break;
    }
  }
  return s;
}

// JSON through its structure: one value anywhere in the document replaced by an extreme number,
// a mutated string, another type, or removed (object members, array elements) or duplicated.
void collect(Json& j, std::vector<Json*>& all) {
  all.push_back(&j);
  if (j.is_array())
    for (auto& e : j.as_array()) collect(e, all);
  else if (j.is_object())
    for (auto& kv : j.as_object()) collect(kv.second, all);
}

std::string mutate_json(const std::string& text, Rng& r) {
  Json doc;
  try {
    doc = Json::parse(text, "seed");
  } catch (const Error&) {
    return mutate_text(text, r);
  }
  for (int k = 0, n = 1 + int(pick(r, 3)); k < n; ++k) {
    std::vector<Json*> all;
    collect(doc, all);
    Json& v = *all[pick(r, all.size())];
    switch (pick(r, 6)) {
      case 0:
        v = Json(std::strtod(kNumbers[pick(r, std::size(kNumbers))], nullptr));
        break;
      case 1:
        v = Json(v.is_string() ? mutate_text(v.as_string(), r) : std::string(pick(r, 3000), 'n'));
        break;
      case 2:
        v = pick(r, 2) ? Json(bool(pick(r, 2))) : Json();
        break;
      case 3:
        if (v.is_array() && v.size() > 0)
          v.as_array().erase(v.as_array().begin() + long(pick(r, v.size())));
        if (v.is_object() && v.size() > 0)
          v.as_object().erase(v.as_object().begin() + long(pick(r, v.size())));
        break;
      case 4:
        if (v.is_array() && v.size() > 0) v.push_back(v[pick(r, v.size())]);
        break;
      default:
        try {  // a number inside the value replaced, when that is still JSON
          v = Json::parse(mutate_number_token(v.dump(), r), "mutant");
        } catch (const Error&) {
        }
        break;
    }
  }
  return doc.dump();
}

// ---------------------------------------------------------------------------------------------
// HDF5 files through their structure

struct Attr {
  enum Kind { Str, Int, Float } kind = Str;
  std::string s;
  std::vector<double> v;
};
struct Dataset {
  std::string name;
  Tensor t;
  std::map<std::string, Attr> attrs;
};
struct H5Spec {
  std::vector<Dataset> datasets;
  std::map<std::string, Attr> attrs;
};

std::map<std::string, Attr> read_attrs(const io::H5Reader& r, const std::string& object) {
  std::map<std::string, Attr> out;
  for (const auto& a : r.list_attrs(object)) {
    Attr at;
    try {
      at.s = r.attr_string(a, object);
    } catch (const Error&) {
      at.v = r.attr_f64_vec(a, object);
      at.kind = std::all_of(at.v.begin(), at.v.end(), [](double x) { return x == std::floor(x); })
                    ? Attr::Int
                    : Attr::Float;
    }
    out[a] = at;
  }
  return out;
}

H5Spec read_spec(const std::string& path) {
  io::H5Reader r(path);
  H5Spec s;
  for (const auto& k : r.list_datasets()) s.datasets.push_back({k, r.read(k), read_attrs(r, k)});
  s.attrs = read_attrs(r, "");
  return s;
}

void write_attr(io::H5Writer& w, const std::string& name, const Attr& a, const std::string& obj) {
  if (a.kind == Attr::Str) {
    w.set_attr_string(name, a.s, obj);
  } else if (a.kind == Attr::Int) {
    std::vector<int64_t> v;
    for (double x : a.v) v.push_back(std::isfinite(x) && std::fabs(x) < 9.2e18 ? int64_t(x) : -1);
    w.set_attr_i64_vec(name, v, obj);
  } else {
    std::vector<float> v(a.v.begin(), a.v.end());
    w.set_attr_f32_vec(name, v, obj);
  }
}

void write_spec(const H5Spec& s, const std::string& path) {
  io::H5Writer w(path);
  std::map<std::string, int> seen;
  for (const auto& d : s.datasets) {
    if (seen[d.name]++) continue;  // a duplicated name keeps its first copy
    w.write(d.name, d.t);
    for (const auto& [k, a] : d.attrs) write_attr(w, k, a, d.name);
  }
  for (const auto& [k, a] : s.attrs) write_attr(w, k, a, "");
  w.commit();
}

Tensor retyped(const Tensor& t, DType to, Rng& r) {
  const std::vector<float> v = t.dtype() == DType::F32 ? t.to_vector() : std::vector<float>();
  Tensor out = Tensor::zeros(t.shape(), Device::CPU, to);
  uint8_t* p = static_cast<uint8_t*>(out.raw());
  const size_t bytes = size_t(out.numel()) * dtype_size(to);
  for (size_t i = 0; i < bytes; ++i) p[i] = uint8_t(i < v.size() ? int(v[i] * 100) : int(r()));
  return out;
}

Shape reshaped(const Shape& s, Rng& r) {
  Shape o = s;
  switch (pick(r, 5)) {
    case 0:
      if (!o.empty()) o.pop_back();
      break;
    case 1:
      o.push_back(1 + int64_t(pick(r, 3)));
      break;
    case 2:
      if (!o.empty()) o[pick(r, o.size())] = int64_t(pick(r, 4));
      break;
    case 3:
      std::reverse(o.begin(), o.end());
      break;
    default:
      if (!o.empty()) o[pick(r, o.size())] += 1;
      break;
  }
  return o;
}

void mutate_values(Tensor& t, Rng& r) {
  if (t.dtype() != DType::F32 || t.numel() == 0) return;
  static const float kVals[] = {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(),
                                -3e38f,
                                3e38f,
                                1e-45f,
                                0.f,
                                -1.f};
  Tensor c = t.clone();
  float* p = c.data();
  const int64_t n = 1 + int64_t(pick(r, 4));
  for (int64_t k = 0; k < n; ++k) p[pick(r, size_t(c.numel()))] = kVals[pick(r, std::size(kVals))];
  t = c;
}

void mutate_attr(Attr& a, Rng& r) {
  if (a.kind == Attr::Str) {
    a.s = pick(r, 2) ? mutate_json(a.s, r) : mutate_text(a.s, r);
    return;
  }
  static const double kVals[] = {0,   -1,    -5,  1e300, 4294967296.0, 2147483648.0,
                                 1e5, 16385, 0.5, 1e-45, std::nan(""), HUGE_VAL};
  switch (pick(r, 4)) {
    case 0:
      a.v.clear();
      break;
    case 1:
      a.v.push_back(kVals[pick(r, std::size(kVals))]);
      break;
    default:
      if (a.v.empty()) a.v.push_back(0);
      a.v[pick(r, a.v.size())] = kVals[pick(r, std::size(kVals))];
      break;
  }
  if (pick(r, 4) == 0) a.kind = Attr::Kind(pick(r, 3));
}

void mutate_spec(H5Spec& s, Rng& r) {
  const int n = 1 + int(pick(r, 4));
  for (int k = 0; k < n; ++k) {
    if (pick(r, 3) == 0 && !s.attrs.empty()) {  // a root attribute
      auto it = std::next(s.attrs.begin(), long(pick(r, s.attrs.size())));
      if (pick(r, 8) == 0)
        s.attrs.erase(it);
      else
        mutate_attr(it->second, r);
      continue;
    }
    if (s.datasets.empty()) return;
    Dataset& d = s.datasets[pick(r, s.datasets.size())];
    switch (pick(r, 8)) {
      case 0:
        s.datasets.erase(s.datasets.begin() + long(&d - s.datasets.data()));
        break;
      case 1:
        d.name = mutate_text(d.name, r);
        if (d.name.empty() || d.name.front() == '/' || d.name.back() == '/') d.name += "x";
        d.name.erase(std::remove(d.name.begin(), d.name.end(), '\0'), d.name.end());
        break;
      case 2:
        s.datasets.push_back(d);
        s.datasets.back().name += ".extra";
        break;
      case 3: {
        const Shape sh = reshaped(d.t.shape(), r);
        int64_t numel = 1;
        for (int64_t x : sh) numel *= x;
        if (numel <= (int64_t(1) << 22)) d.t = Tensor::zeros(sh, Device::CPU, d.t.dtype());
        break;
      }
      case 4:
        d.t = retyped(d.t, DType(pick(r, 2) ? DType::I8 : pick(r, 2) ? DType::U8 : DType::I32), r);
        break;
      case 5:
        if (!d.attrs.empty())
          mutate_attr(std::next(d.attrs.begin(), long(pick(r, d.attrs.size())))->second, r);
        break;
      default:
        mutate_values(d.t, r);
        break;
    }
  }
}

std::string mutate_bytes(std::string b, Rng& r) {
  switch (pick(r, 3)) {
    case 0:  // flips, half of them in the first 4 KiB (the superblock and root metadata)
      for (int k = 0, n = 1 + int(pick(r, 8)); k < n && !b.empty(); ++k)
        b[pick(r, pick(r, 2) ? std::min<size_t>(b.size(), 4096) : b.size())] ^=
            char(1 << pick(r, 8));
      break;
    case 1:
      b.resize(pick(r, b.size() + 1));
      break;
    default: {  // a block copied over another place
      const size_t len = 1 + pick(r, 256), from = pick(r, b.size()), to = pick(r, b.size());
      for (size_t i = 0; i < len && from + i < b.size() && to + i < b.size(); ++i)
        b[to + i] = b[from + i];
      break;
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// The targets: each runs one input and lets a genie::Error through.

void run_model(const std::string& path) {
  if (engine::is_quantized_file(path)) {
    quant::QModel qm = quant::QModel::load(path, Device::CPU);
    const auto& info = qm.model().info();
    qm.model().graph().infer_shapes({1, info.C, info.H, info.W});
    return;
  }
  const models::Model m = io::load_model(path);
  m.graph().infer_shapes({1, m.info().C, m.info().H, m.info().W});
}

void run_graph(const std::string& text) {
  const models::Graph g = models::Graph::from_json(Json::parse(text, "fuzz"), "fuzz");
  g.validate();
  g.infer_shapes({1, 3, 32, 32});
}

void run_config(const std::string& text) {
  engine::PipelineConfig c;
  engine::apply_config_json(c, Json::parse(text, "fuzz"), "fuzz");
  engine::check_ranges(c);
}

// ---------------------------------------------------------------------------------------------
// The loop

struct Options {
  std::string target, out = "fuzz-out";
  double seconds = 60, timeout = 60;
  int64_t runs = -1;
  uint64_t seed = 1;
  bool quiet = false;
};

std::atomic<int64_t> g_started{0};
std::atomic<bool> g_done{false};

// Aborts the process when one input runs longer than `timeout` seconds (a hang).
void watchdog(double timeout, std::string current) {
  int64_t seen = -1;
  auto since = std::chrono::steady_clock::now();
  while (!g_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int64_t now = g_started;
    if (now != seen) {
      seen = now;
      since = std::chrono::steady_clock::now();
    } else if (std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count() >
               timeout) {
      std::fprintf(stderr, "genie_fuzz: HANG: input %lld ran over %.0f s; it is %s\n",
                   (long long)now, timeout, current.c_str());
      std::abort();
    }
  }
}

// Seeds of a target: the committed corpus plus the repository's own inputs.
std::vector<std::string> seeds(const std::string& target) {
  const std::string root = GENIE_SOURCE_DIR;
  std::vector<std::string> s;
  if (target == "model") {
    for (const auto& f : files_in(root + "/tests/fuzz/corpus/model", ".h5"))
      s.push_back(read_bytes(f));
    s.push_back(read_bytes(root + "/tests/data/vgg_small.h5"));
    s.push_back(read_bytes(root + "/models/data/resnet20_fmnist.h5"));
  } else if (target == "graph") {
    for (const auto& f : files_in(root + "/tests/fuzz/corpus/graph", ".json"))
      s.push_back(read_bytes(f));
    models::ModelInfo info;
    info.C = 3, info.H = info.W = 32, info.num_classes = 10;
    for (const auto& a : models::known_archs())
      s.push_back(models::make_arch(a, info).to_json().dump());
  } else {
    for (const auto& f : files_in(root + "/tests/fuzz/corpus/config", ".json"))
      s.push_back(read_bytes(f));
  }
  GENIE_CHECK(!s.empty(), "[genie_fuzz] no seeds for target ", target);
  return s;
}

int fuzz(const Options& o) {
  const bool model = o.target == "model";
  const std::string ext = model ? ".h5" : ".json";
  io::make_dirs(o.out);
  const std::string current = o.out + "/current" + ext;
  const std::vector<std::string> corpus = seeds(o.target);
  std::vector<H5Spec> specs;
  if (model)
    for (size_t i = 0; i < corpus.size(); ++i) {
      write_bytes(current, corpus[i]);
      specs.push_back(read_spec(current));
    }
  Rng rng(o.seed);
  std::map<std::string, int64_t> outcomes;
  int64_t findings = 0, n = 0;
  std::thread dog(watchdog, o.timeout, current);
  struct StopDog {  // the watchdog is stopped and joined however fuzz() ends
    std::thread& t;
    ~StopDog() {
      g_done = true;
      if (t.joinable()) t.join();
    }
  } stop_dog{dog};
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (; o.runs >= 0 ? n < o.runs : elapsed() < o.seconds; ++n) {
    std::string input;
    if (model) {
      H5Spec s = specs[pick(rng, specs.size())];
      mutate_spec(s, rng);
      try {  // a mutation the HDF5 writer itself cannot write is skipped (the harness's limit)
        write_spec(s, current);
      } catch (const std::exception& e) {
        const std::string w = e.what();
        ++outcomes["skipped: mutation not writable (" + w.substr(0, w.find(':')) + ")"];
        continue;
      }
      if (pick(rng, 4) == 0) write_bytes(current, mutate_bytes(read_bytes(current), rng));
    } else {
      const std::string& seed = corpus[pick(rng, corpus.size())];
      input = pick(rng, 3) ? mutate_json(seed, rng) : mutate_text(seed, rng);
      write_bytes(current, input);
    }
    ++g_started;
    try {
      if (model)
        run_model(current);
      else if (o.target == "graph")
        run_graph(input);
      else
        run_config(input);
      ++outcomes["loaded"];
    } catch (const Error& e) {
      const std::string w = e.what();  // its "[tag]" names the layer that refused it
      ++outcomes[str("refused ", w.size() > 1 && w[0] == '[' ? w.substr(0, w.find(']') + 1) : "",
                     dynamic_cast<const InputError*>(&e) ? " (bad input)" : "",
                     w.find("crashed the HDF5 library") != std::string::npos
                         ? " (libhdf5 crashed in the probe's child)"
                     : w.find("did not finish reading") != std::string::npos
                         ? " (libhdf5 hung in the probe's child)"
                         : "")];
    } catch (const std::exception& e) {
      const std::string keep = str(o.out, "/finding-", ++findings, ext);
      write_bytes(keep, read_bytes(current));
      std::fprintf(stderr, "genie_fuzz: FINDING: %s (not a genie::Error): %s\n", e.what(),
                   keep.c_str());
    }
  }
  g_done = true;
  dog.join();
  const double s = elapsed();
  std::printf("genie_fuzz %s: %lld executions in %.1f s (%.0f/s), seed %llu, %lld findings\n",
              o.target.c_str(), (long long)n, s, double(n) / std::max(s, 1e-9),
              (unsigned long long)o.seed, (long long)findings);
  if (!o.quiet)
    for (const auto& [k, v] : outcomes) std::printf("  %8lld  %s\n", (long long)v, k.c_str());
  return findings ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    if (argc < 2)
      throw Error(
          "usage: genie_fuzz model|graph|config [--seconds S | --runs N] "
          "[--seed N] [--out DIR] [--timeout S] [--quiet]");
    o.target = argv[1];
    GENIE_CHECK(o.target == "model" || o.target == "graph" || o.target == "config",
                "[genie_fuzz] expected a target model | graph | config, got '", o.target, "'");
    for (int i = 2; i < argc; ++i) {
      const std::string k = argv[i];
      auto val = [&]() -> std::string {
        GENIE_CHECK(i + 1 < argc, "[genie_fuzz] ", k, " expects a value");
        return argv[++i];
      };
      if (k == "--seconds")
        o.seconds = std::stod(val());
      else if (k == "--runs")
        o.runs = std::stoll(val());
      else if (k == "--seed")
        o.seed = std::stoull(val());
      else if (k == "--out")
        o.out = val();
      else if (k == "--timeout")
        o.timeout = std::stod(val());
      else if (k == "--quiet")
        o.quiet = true;
      else
        throw Error(str("[genie_fuzz] unknown argument '", k, "'"));
    }
    return fuzz(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genie_fuzz: %s\n", e.what());
    return 2;
  }
}
