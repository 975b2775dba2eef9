// Model weight files over io::H5Reader / H5Writer (format in model_file.h).
#include "io/model_file.h"

#include <cmath>

#include "io/h5.h"
#include "models/archs.h"

namespace genie::io {

using models::Graph;
using models::Model;
using models::ModelInfo;

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// "[0, 0, 0]" for C = 3 (the attribute value to write for an unnormalised model).
static std::string constant_list(int64_t C, const char* v) {
  if (C > 4) return str("[", v, ", …] (", C, " values)");
  std::string s = "[";
  for (int64_t c = 0; c < C; ++c) s += (c ? ", " : "") + std::string(v);
  return s + "]";
}

// The input description: input_shape, input_mean, input_std (required), num_classes (optional),
// arch; checked against models/limits.h before anything is sized by it.
static ModelInfo read_info(const H5Reader& r, const std::string& where, bool has_graph) {
  ModelInfo info;
  GENIE_CHECK(r.has_attr("input_shape"), "[load_model] ", where,
              ": missing root attribute 'input_shape' ([C, H, W])");
  const std::vector<int64_t> shape = r.attr_i64_vec("input_shape");
  GENIE_CHECK(shape.size() == 3 && shape[0] > 0 && shape[1] > 0 && shape[2] > 0, "[load_model] ",
              where, ": attribute 'input_shape' expected 3 positive values [C, H, W], got ",
              shape.size() <= 8 ? shape_str(shape) : str(shape.size(), " values"));
  info.C = shape[0];
  info.H = shape[1];
  info.W = shape[2];
  models::check_info(info, where);  // the shape's bounds before anything is sized by C
  // No silent default: a file without its normalisation would be evaluated and distilled in the
  // wrong input space. The exporter (tools/export_pytorch.py) always writes both.
  for (const char* a : {"input_mean", "input_std"})
    GENIE_CHECK(r.has_attr(a), "[load_model] ", where, ": missing root attribute '", a,
                "' (the per-channel input normalisation, x -> (x - mean) / std; write input_mean ",
                constant_list(info.C, "0"), " and input_std ", constant_list(info.C, "1"),
                " for an unnormalised model)");
  info.mean = r.attr_f32_vec("input_mean");
  info.std = r.attr_f32_vec("input_std");
  GENIE_CHECK(int64_t(info.mean.size()) == info.C && int64_t(info.std.size()) == info.C,
              "[load_model] ", where, ": attributes input_mean/input_std expected ", info.C,
              " values each (input_shape C), got ", info.mean.size(), " and ", info.std.size());
  if (r.has_attr("num_classes")) {
    info.num_classes = r.attr_i64("num_classes");
    GENIE_CHECK(info.num_classes >= 1 && info.num_classes <= models::limits::kMaxElements,
                "[load_model] ", where, ": attribute 'num_classes' expected a value in [1, ",
                models::limits::kMaxElements, "], got ", info.num_classes);
  }
  info.arch = r.has_attr("arch") ? r.attr_string("arch") : (has_graph ? "graph" : "");
  GENIE_CHECK(!info.arch.empty(), "[load_model] ", where,
              ": missing root attribute 'arch' (and no 'graph' description)");
  models::check_info(info, where);
  return info;
}

models::Model load_model(const std::string& path) {
  using models::limits::clip;
  H5Reader r(path);
  const std::string where = path;
  const bool has_graph = r.has_attr("graph");
  ModelInfo info = read_info(r, where, has_graph);
  float eps = 1e-5f;
  if (r.has_attr("bn_eps")) {
    const double e = r.attr_f64("bn_eps");
    eps = float(e);
    GENIE_CHECK(std::isfinite(e) && e > 0.0 && e <= models::limits::kMaxEps && eps > 0.f,
                "[load_model] ", where, ": attribute 'bn_eps' expected a value in (0, ",
                models::limits::kMaxEps, "], got ", e);
  }

  Graph g;
  if (has_graph) {
    g = Graph::from_json(Json::parse(r.attr_string("graph"), where + ": attribute 'graph'"),
                         where + ": attribute 'graph'");
  } else {
    GENIE_CHECK(info.num_classes > 0, "[load_model] ", where,
                ": missing root attribute 'num_classes' (needed by built-in arch '",
                clip(info.arch), "')");
    try {
      g = models::make_arch(info.arch, info, eps);
    } catch (const Error& e) {
      throw Error(str("[load_model] ", where, ": ", e.what()));
    }
  }
  if (info.num_classes == 0) {
    const auto shapes = g.infer_shapes({1, info.C, info.H, info.W});
    const Shape& out = shapes[size_t(g.output_node())];
    GENIE_CHECK(out.size() == 2, "[load_model] ", where,
                ": expected the graph output to be (N, classes), got ", shape_str(out));
    info.num_classes = out[1];
  }

  // The architecture's shapes, checked against the file's before any tensor is read (a dataset
  // declaring a huge shape is refused by its declaration, not after reading it).
  std::map<std::string, Shape> expected;
  for (const auto& s : g.param_specs()) expected[s.key] = s.shape;
  std::map<std::string, Tensor> params;
  for (const std::string& key : r.list_datasets()) {
    GENIE_CHECK(key.size() <= models::limits::kMaxKey, "[load_model] ", where, ": dataset name of ",
                key.size(), " characters, expected at most ", models::limits::kMaxKey, " ('",
                clip(key), "')");
    if (ends_with(key, "num_batches_tracked")) continue;
    // Integer data is never a float parameter converted (an int8 weight read as float32 loads
    // and runs at chance accuracy); float64 converts exactly enough and stays accepted.
    const DType t = r.stored_dtype(key);
    GENIE_CHECK(t == DType::F32, "[load_model] ", where, ": dataset '", key,
                "' expected float values (float32 or float64), got ",
                t == DType::I8   ? "int8"
                : t == DType::U8 ? "uint8"
                                 : "16- to 64-bit integer",
                " values");
    const auto e = expected.find(key);
    if (e != expected.end()) {
      const Shape found = r.shape(key);
      GENIE_CHECK(found == e->second, "[model] ", where, ": tensor '", key, "' expected shape ",
                  shape_str(e->second), ", found ", shape_str(found));
    }
    params[key] = r.read_f32(key);
  }
  return Model(std::move(g), std::move(info), std::move(params), where);
}

void write_input_attrs(H5Writer& w, const ModelInfo& info) {
  w.set_attr_i64_vec("input_shape", {info.C, info.H, info.W});
  w.set_attr_f32_vec("input_mean",
                     info.mean.empty() ? std::vector<float>(size_t(info.C), 0.f) : info.mean);
  w.set_attr_f32_vec("input_std",
                     info.std.empty() ? std::vector<float>(size_t(info.C), 1.f) : info.std);
  w.set_attr_i64("num_classes", info.num_classes);
}

void save_model(const models::Model& model, const std::string& path, const SaveOptions& opts) {
  const ModelInfo& info = model.info();
  H5Writer w(path);
  for (const auto& kv : model.params()) w.write(kv.first, kv.second.to(Device::CPU));
  w.set_attr_string("arch", info.arch);
  write_input_attrs(w, info);
  // bn_eps: only when every BN shares one eps different from the default (otherwise the graph
  // carries per-layer values).
  bool uniform = true;
  float eps = -1.f;
  for (int i : model.bn_nodes()) {
    const float e = model.node(i).eps;
    if (eps < 0.f) eps = e;
    uniform = uniform && e == eps;
  }
  const bool builtin = models::is_known_arch(info.arch);
  const bool graph = opts.write_graph || !builtin || !uniform;
  if (uniform && eps > 0.f && eps != 1e-5f) w.set_attr_f64("bn_eps", double(eps));
  if (graph) w.set_attr_string("graph", model.graph().to_json().dump());
  for (const auto& kv : opts.string_attrs) w.set_attr_string(kv.first, kv.second);
  for (const auto& kv : opts.number_attrs) w.set_attr_f64(kv.first, kv.second);
  w.commit();
}

}  // namespace genie::io
