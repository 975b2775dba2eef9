// ONNX QDQ export of a quantized model file, and its encodings file (see export.h).
#include "engine/export.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "engine/qmodel.h"
#include "engine/report.h"
#include "io/atomic.h"
#include "io/h5.h"
#include "io/onnx.h"

namespace genie::engine {

namespace onnx = io::onnx;

namespace {

constexpr int kMinOpset = 21, kMaxOpset = 25;

int64_t ir_version_for(int opset) {  // onnx.helper.VERSION_TABLE: 21, 22 → 10; 23 → 11; …
  return opset <= 22 ? 10 : opset == 23 ? 11 : opset == 24 ? 12 : 13;
}

// The narrowest integer container of `bits` bits at this opset (2-bit types from opset 25).
int container_bits(int bits, int opset) {
  if (bits <= 2 && opset >= 25) return 2;
  if (bits <= 4) return 4;
  if (bits <= 8) return 8;
  return 16;
}

int32_t int_type(int bits, bool is_signed) {
  switch (bits) {
    case 2:
      return is_signed ? onnx::kInt2 : onnx::kUint2;
    case 4:
      return is_signed ? onnx::kInt4 : onnx::kUint4;
    case 8:
      return is_signed ? onnx::kInt8 : onnx::kUint8;
    default:
      return is_signed ? onnx::kInt16 : onnx::kUint16;
  }
}

std::string join_floats(const std::vector<float>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + Json(v[i]).dump();
  return s;
}

void count(Json& counts, const std::string& key) { counts.set(key, counts.get_int(key, 0) + 1); }

// One AIMET-style encoding: the integer grid [0, 2^bits − 1] shifted by `offset` (= −zero point),
// real value = (q + offset) · scale.
Json encoding(int bits, double scale, int64_t offset, bool symmetric) {
  Json e = Json::object();
  e.set("bitwidth", bits);
  e.set("dtype", "int");
  e.set("is_symmetric", symmetric ? "True" : "False");
  e.set("min", double(offset) * scale);
  e.set("max", double(offset + (int64_t(1) << bits) - 1) * scale);
  e.set("offset", offset);
  e.set("scale", scale);
  return e;
}

class OnnxBuilder {
 public:
  OnnxBuilder(const quant::QModel& qm, int opset, bool narrow_acts, ExportSummary& sum)
      : qm_(qm), g_(qm.model().graph()), opset_(opset), narrow_acts_(narrow_acts), sum_(sum) {
    const models::ModelInfo& info = qm.model().info();
    shapes_ = g_.infer_shapes({1, info.C, info.H, info.W});
  }

  onnx::Model build(const std::string& source);
  Json encodings() const;

 private:
  std::string unique(const std::string& base);
  void node(const std::string& op, std::vector<std::string> in, const std::string& out,
            std::vector<onnx::Attribute> attrs = {});
  std::string const_i64(const std::string& base, const std::vector<int64_t>& v);
  std::string const_f(const std::string& base, float v);
  std::string float_param(const std::string& key, const Shape& dims = {});
  std::string weight(int i);
  void act_quantizer(int a);
  std::string input_of(int i, int slot) const;
  void emit(int i);
  void emit_pool(int i, const std::string& x, const std::string& out);
  void emit_adaptive(int i, const std::string& x, const std::string& out);
  std::string value_name(int v) const { return v < 0 ? "input" : value_[size_t(v)]; }

  const quant::QModel& qm_;
  const models::Graph& g_;
  int opset_;
  bool narrow_acts_;
  ExportSummary& sum_;
  std::vector<Shape> shapes_;
  onnx::Graph graph_;
  std::set<std::string> names_;
  std::vector<std::string> value_;    // ONNX tensor of each node's output
  std::vector<std::string> act_out_;  // dequantized output of each activation quantizer
  Json act_enc_ = Json::object(), param_enc_ = Json::object();
};

std::string OnnxBuilder::unique(const std::string& base) {
  std::string n = base.empty() ? "t" : base;
  for (int k = 1; names_.count(n); ++k) n = str(base, "_", k);
  names_.insert(n);
  return n;
}

void OnnxBuilder::node(const std::string& op, std::vector<std::string> in, const std::string& out,
                       std::vector<onnx::Attribute> attrs) {
  onnx::Node n;
  n.op_type = op;
  n.name = out;  // tensor names are unique, so node names taken from them are too
  n.inputs = std::move(in);
  n.outputs = {out};
  n.attrs = std::move(attrs);
  graph_.nodes.push_back(std::move(n));
}

std::string OnnxBuilder::const_i64(const std::string& base, const std::vector<int64_t>& v) {
  const std::string n = unique(base);
  graph_.initializers.push_back(onnx::ints(n, onnx::kInt64, {int64_t(v.size())}, v));
  return n;
}

std::string OnnxBuilder::const_f(const std::string& base, float v) {
  const std::string n = unique(base);
  graph_.initializers.push_back(onnx::floats(n, {}, {v}));
  return n;
}

// A float parameter as an initializer (of `dims` when given: the same values reshaped).
std::string OnnxBuilder::float_param(const std::string& key, const Shape& dims) {
  const auto& params = qm_.model().params();
  const auto it = params.find(key);
  GENIE_CHECK(it != params.end(), "[export] missing parameter ", key);
  const std::string n = unique(key);
  const Tensor& t = it->second;
  graph_.initializers.push_back(onnx::floats(n, dims.empty() ? t.shape() : dims, t.to_vector()));
  return n;
}

// The weight of conv/linear node i: integer codes → DequantizeLinear (axis 0). Returns the
// dequantized tensor's name.
std::string OnnxBuilder::weight(int i) {
  const models::Node& n = g_.nodes[size_t(i)];
  const quant::WeightQuantizer& q = qm_.wq[size_t(qm_.node_wq(i))];
  const int bits = q.bits();
  const int64_t qmax = (int64_t(1) << bits) - 1, half = int64_t(1) << (bits - 1);
  const std::vector<float> codes = q.codes().to_vector(), step = q.step().to_vector(),
                           zero = q.zero().to_vector();
  const int64_t K = int64_t(step.size()), M = int64_t(codes.size()) / K;
  bool symmetric = true;
  int64_t span = qmax;  // the widest range of codes and zero point after the per-channel shift
  std::vector<int64_t> z(static_cast<size_t>(K)), shift(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const float zf = zero[size_t(k)];
    GENIE_CHECK(zf == std::nearbyint(zf) && std::fabs(zf) < 32768.f, "[export] layer ", n.name,
                ": weight zero point ", zf, " of channel ", k, " is not an integer within ±32767");
    z[size_t(k)] = int64_t(zf);
    symmetric = symmetric && z[size_t(k)] == half;
    shift[size_t(k)] = std::min<int64_t>(0, z[size_t(k)]);
    span = std::max(span, std::max(qmax, z[size_t(k)]) - shift[size_t(k)]);
  }
  int cbits = container_bits(bits, opset_);
  while (!symmetric && span > (int64_t(1) << cbits) - 1) cbits = container_bits(cbits + 1, opset_);
  const int32_t dtype = int_type(cbits, symmetric);
  std::vector<int64_t> q_vals(codes.size()), zp(static_cast<size_t>(K));
  Json chans = Json::array();
  for (int64_t k = 0; k < K; ++k) {
    const int64_t sub = symmetric ? half : shift[size_t(k)];
    for (int64_t m = 0; m < M; ++m)
      q_vals[size_t(k * M + m)] = int64_t(codes[size_t(k * M + m)]) - sub;
    zp[size_t(k)] = z[size_t(k)] - sub;
    sum_.shifted_channels += !symmetric && (z[size_t(k)] < 0 || z[size_t(k)] > qmax);
    chans.push_back(encoding(bits, step[size_t(k)], -z[size_t(k)], symmetric));
  }
  const std::string base = n.name + ".weight";
  const std::string qn = unique(base + "_quantized"), sn = unique(base + "_scale"),
                    zn = unique(base + "_zero_point"), out = unique(base);
  graph_.initializers.push_back(onnx::ints(qn, dtype, q.w_floor().shape(), q_vals));
  graph_.initializers.push_back(onnx::floats(sn, {K}, step));
  graph_.initializers.push_back(onnx::ints(zn, dtype, {K}, zp));
  node("DequantizeLinear", {qn, sn, zn}, out, {onnx::attr_i("axis", 0)});
  param_enc_.set(out, std::move(chans));
  ++sum_.weight_layers;
  count(sum_.weight_types, onnx::type_name(dtype));
  return out;
}

// Activation quantizer a on its tensor: [Clip →] QuantizeLinear → DequantizeLinear.
void OnnxBuilder::act_quantizer(int a) {
  const quant::ActQuantizer& q = qm_.aq[size_t(a)];
  const std::string x = value_name(qm_.aq_value[size_t(a)]);
  const float s = q.step().to_vector()[0];
  const int bits = q.bits(), cbits = narrow_acts_ ? container_bits(bits, opset_) : 8;
  // 8-bit pairs are uint8, a signed quantizer's with zero point 128: ONNX Runtime 1.32's QDQ
  // propagation fails on an int8 pair before a Slice ("output_dtype INT8 does not match
  // y_zero_point type UINT8"). Narrow pairs are int4/int2 (zero point 0) for signed quantizers.
  const bool signed_type = narrow_acts_ && q.is_signed();
  const int32_t dtype = int_type(cbits, signed_type);
  const int64_t zp = q.is_signed() && !signed_type ? int64_t(1) << (cbits - 1) : 0;
  std::string in = x;
  if (cbits != bits) {  // e.g. 4 bits in an 8-bit type: the container would saturate too late
    const std::string lo = const_f(x + ".clip_min", q.qn() * s),
                      hi = const_f(x + ".clip_max", q.qp() * s);
    in = unique(x + ".clipped");
    node("Clip", {x, lo, hi}, in);
    ++sum_.clips;
  }
  const std::string sn = const_f(x + ".scale", s), zn = unique(x + ".zero_point");
  graph_.initializers.push_back(onnx::ints(zn, dtype, {}, {zp}));
  const std::string qt = unique(x + ".quantized");
  node("QuantizeLinear", {in, sn, zn}, qt);
  act_out_[size_t(a)] = unique(x + ".dequantized");
  node("DequantizeLinear", {qt, sn, zn}, act_out_[size_t(a)]);
  const int64_t offset = q.is_signed() ? -(int64_t(1) << (bits - 1)) : 0;
  Json e = encoding(bits, s, offset, q.is_signed());
  act_enc_.set(x, Json(Json::Array{std::move(e)}));
  ++sum_.activation_pairs;
  count(sum_.activation_types, onnx::type_name(dtype));
}

std::string OnnxBuilder::input_of(int i, int slot) const {
  const int a = qm_.node_aq(i, slot);
  if (a >= 0) return act_out_[size_t(a)];
  return value_name(g_.nodes[size_t(i)].inputs[size_t(slot)]);
}

void OnnxBuilder::emit_pool(int i, const std::string& x, const std::string& out) {
  const models::Node& n = g_.nodes[size_t(i)];
  std::vector<onnx::Attribute> at = {onnx::attr_ints("kernel_shape", {n.kernel, n.kernel}),
                                     onnx::attr_ints("strides", {n.stride, n.stride}),
                                     onnx::attr_ints("pads", {n.pad, n.pad, n.pad, n.pad}),
                                     onnx::attr_i("ceil_mode", n.ceil_mode)};
  if (n.op == "avgpool2d") at.push_back(onnx::attr_i("count_include_pad", n.count_include_pad));
  node(n.op == "maxpool" ? "MaxPool" : "AveragePool", {x}, out, std::move(at));
}

// AdaptiveAvgPool2d: one AveragePool when the size divides the input, otherwise PyTorch's bins
// [floor(i·H/oh), ceil((i+1)·H/oh)) as Slice + ReduceMean per row bin, then per column bin.
void OnnxBuilder::emit_adaptive(int i, const std::string& x, const std::string& out) {
  const models::Node& n = g_.nodes[size_t(i)];
  const Shape xs = n.inputs[0] < 0
                       ? Shape{1, qm_.model().info().C, qm_.model().info().H, qm_.model().info().W}
                       : shapes_[size_t(n.inputs[0])];
  const int64_t H = xs[2], W = xs[3];
  if (H % n.out_h == 0 && W % n.out_w == 0) {
    node("AveragePool", {x}, out,
         {onnx::attr_ints("kernel_shape", {H / n.out_h, W / n.out_w}),
          onnx::attr_ints("strides", {H / n.out_h, W / n.out_w})});
    return;
  }
  std::string cur = x;
  const int64_t sizes[2] = {n.out_h, n.out_w}, extent[2] = {H, W};
  for (int ax = 0; ax < 2; ++ax) {
    std::vector<std::string> parts;
    const std::string axes = const_i64(out + ".axes", {2 + ax});
    for (int64_t b = 0; b < sizes[ax]; ++b) {
      const int64_t lo = b * extent[ax] / sizes[ax],
                    hi = ((b + 1) * extent[ax] + sizes[ax] - 1) / sizes[ax];
      const std::string sl = unique(str(out, ".bin", ax, "_", b));
      node("Slice", {cur, const_i64(sl + ".start", {lo}), const_i64(sl + ".end", {hi}), axes}, sl);
      const std::string mean = unique(sl + ".mean");
      node("ReduceMean", {sl, axes}, mean, {onnx::attr_i("keepdims", 1)});
      parts.push_back(mean);
    }
    const std::string joined = ax == 1 ? out : unique(out + ".rows");
    node("Concat", parts, joined, {onnx::attr_i("axis", 2 + ax)});
    cur = joined;
  }
}

void OnnxBuilder::emit(int i) {
  const models::Node& n = g_.nodes[size_t(i)];
  std::vector<std::string> in;
  for (size_t s = 0; s < n.inputs.size(); ++s) in.push_back(input_of(i, int(s)));
  const std::string& out = value_[size_t(i)];
  const std::string& op = n.op;
  if (op == "conv") {
    // A bias on a conv whose input is quantized is a separate Add: inside the Conv, ONNX
    // Runtime's WeightBiasQuantization would round it to int32 with scale input step × weight
    // step, up to half a step of the accumulator away from the model (at 4 bits and below, a
    // visible change: export.h).
    std::vector<std::string> ins = {in[0], weight(i)};
    const bool bias_add = n.has_bias && qm_.node_aq(i, 0) >= 0;
    if (n.has_bias && !bias_add) ins.push_back(float_param(n.name + ".bias"));
    const std::string conv_out = bias_add ? unique(out + ".conv") : out;
    node("Conv", ins, conv_out,
         {onnx::attr_ints("kernel_shape", {n.kernel, n.kernel}),
          onnx::attr_ints("strides", {n.stride, n.stride}),
          onnx::attr_ints("pads", {n.pad, n.pad, n.pad, n.pad}),
          onnx::attr_ints("dilations", {1, 1}), onnx::attr_i("group", n.groups)});
    if (bias_add) node("Add", {conv_out, float_param(n.name + ".bias", {n.out_ch, 1, 1})}, out);
  } else if (op == "linear") {
    std::vector<std::string> ins = {in[0], weight(i)};
    if (n.has_bias) ins.push_back(float_param(n.name + ".bias"));
    node("Gemm", ins, out, {onnx::attr_i("transB", 1)});
  } else if (op == "bn") {
    std::string scale, bias;
    if (n.affine) {
      scale = float_param(n.name + ".weight"), bias = float_param(n.name + ".bias");
    } else {
      const size_t C = size_t(n.out_ch);
      scale = unique(n.name + ".weight"), bias = unique(n.name + ".bias");
      graph_.initializers.push_back(onnx::floats(scale, {n.out_ch}, std::vector<float>(C, 1.f)));
      graph_.initializers.push_back(onnx::floats(bias, {n.out_ch}, std::vector<float>(C, 0.f)));
    }
    node("BatchNormalization",
         {in[0], scale, bias, float_param(n.name + ".running_mean"),
          float_param(n.name + ".running_var")},
         out, {onnx::attr_f("epsilon", n.eps)});
  } else if (op == "relu") {
    node("Relu", in, out);
  } else if (op == "relu6") {
    node("Clip", {in[0], const_f(out + ".min", 0.f), const_f(out + ".max", 6.f)}, out);
  } else if (op == "leaky_relu") {
    node("LeakyRelu", in, out, {onnx::attr_f("alpha", n.slope)});
  } else if (op == "sigmoid") {
    node("Sigmoid", in, out);
  } else if (op == "silu") {
    const std::string sg = unique(out + ".sigmoid");
    node("Sigmoid", in, sg);
    node("Mul", {in[0], sg}, out);
  } else if (op == "hardswish") {
    node("HardSwish", in, out);
  } else if (op == "hardsigmoid") {
    node("HardSigmoid", in, out, {onnx::attr_f("alpha", 1.f / 6.f), onnx::attr_f("beta", 0.5f)});
  } else if (op == "gelu") {
    node("Gelu", in, out);
  } else if (op == "identity") {
    node("Identity", in, out);
  } else if (op == "add" || op == "mul") {
    node(op == "add" ? "Add" : "Mul", in, out);
  } else if (op == "concat") {
    node("Concat", in, out, {onnx::attr_i("axis", 1)});
  } else if (op == "slice") {
    node("Slice",
         {in[0], const_i64(out + ".start", {n.start}),
          const_i64(out + ".end", {n.start + n.out_ch}), const_i64(out + ".axes", {1})},
         out);
  } else if (op == "shuffle") {
    const Shape& s = shapes_[size_t(i)];
    const std::string r = unique(out + ".grouped"), t = unique(out + ".transposed");
    node("Reshape", {in[0], const_i64(r + ".shape", {0, n.groups, s[1] / n.groups, s[2], s[3]})},
         r);
    node("Transpose", {r}, t, {onnx::attr_ints("perm", {0, 2, 1, 3, 4})});
    node("Reshape", {t, const_i64(out + ".shape", {0, s[1], s[2], s[3]})}, out);
  } else if (op == "maxpool" || op == "avgpool2d") {
    emit_pool(i, in[0], out);
  } else if (op == "adaptive_avgpool") {
    emit_adaptive(i, in[0], out);
  } else if (op == "avgpool") {
    node("ReduceMean", {in[0], const_i64(out + ".axes", {2, 3})}, out,
         {onnx::attr_i("keepdims", n.keepdim ? 1 : 0)});
  } else if (op == "pad") {  // genie: left, right, top, bottom; ONNX: begins then ends per axis
    node(
        "Pad",
        {in[0], const_i64(out + ".pads", {0, 0, n.pads[2], n.pads[0], 0, 0, n.pads[3], n.pads[1]})},
        out, {onnx::attr_s("mode", "constant")});
  } else if (op == "flatten") {
    node("Flatten", in, out, {onnx::attr_i("axis", 1)});
  } else {
    throw InputError(str("[export] node ", i, " (", n.name, "): op '", op,
                         "' has no ONNX form in this exporter"));
  }
}

onnx::Model OnnxBuilder::build(const std::string& source) {
  const int N = g_.size(), out_node = g_.output_node();
  // Only what the output depends on (an exporter's leftover nodes would dangle in ONNX).
  std::vector<char> needed(size_t(N), 0);
  needed[size_t(out_node)] = 1;
  for (int i = out_node; i >= 0; --i)
    if (needed[size_t(i)])
      for (int j : g_.nodes[size_t(i)].inputs)
        if (j >= 0) needed[size_t(j)] = 1;
  names_.insert("input");
  names_.insert("logits");
  value_.assign(size_t(N), "");
  for (int i = 0; i < N; ++i) {
    const models::Node& n = g_.nodes[size_t(i)];
    value_[size_t(i)] =
        i == out_node ? "logits" : unique(n.name.empty() ? str(n.op, "_", i) : n.name);
  }
  act_out_.assign(qm_.aq.size(), "");
  auto quantizers_of = [&](int v) {
    for (size_t a = 0; a < qm_.aq.size(); ++a) {
      if (qm_.aq_value[a] != v) continue;
      const std::vector<int64_t> cons = qm_.consumers_of(int(a));
      bool used = false;
      for (size_t c = 0; c < cons.size(); c += 2) used = used || needed[size_t(cons[c])];
      if (used) act_quantizer(int(a));
    }
  };
  quantizers_of(-1);
  for (int i = 0; i < N; ++i) {
    if (!needed[size_t(i)]) continue;
    emit(i);
    quantizers_of(i);
  }
  const models::ModelInfo& info = qm_.model().info();
  graph_.name = info.arch.empty() ? "genie" : info.arch;
  graph_.inputs.push_back(
      {"input", onnx::kFloat, {{-1, "N"}, {info.C, ""}, {info.H, ""}, {info.W, ""}}});
  onnx::ValueInfo o{"logits", onnx::kFloat, {{-1, "N"}}};
  const Shape& os = shapes_[size_t(out_node)];
  for (size_t d = 1; d < os.size(); ++d) o.dims.push_back({os[d], ""});
  graph_.outputs.push_back(o);
  onnx::Model m;
  m.opset = opset_;
  m.ir_version = ir_version_for(opset_);
  m.producer_name = "genie";
  m.producer_version = genie_version();
  m.doc = str("genie quantized model (", source, "): input images (N, ", info.C, ", ", info.H, ", ",
              info.W, ") normalized as (pixel/255 - input_mean) / input_std");
  m.metadata = {{"input_mean", join_floats(info.mean)},
                {"input_std", join_floats(info.std)},
                {"input_shape", str(info.C, ",", info.H, ",", info.W)},
                {"num_classes", std::to_string(info.num_classes)},
                {"arch", info.arch},
                {"settings", str("W", qm_.config().wbits, "A", qm_.config().abits,
                                 qm_.config().fold_bn ? " fold_bn" : "")}};
  sum_.nodes = int(graph_.nodes.size());
  m.graph = std::move(graph_);
  return m;
}

Json OnnxBuilder::encodings() const {
  Json j = Json::object();
  j.set("version", "0.6.1");
  j.set("activation_encodings", act_enc_);
  j.set("param_encodings", param_enc_);
  j.set("excluded_layers", Json::array());
  Json args = Json::object();
  args.set("activation_bitwidth", qm_.config().abits);
  args.set("param_bitwidth", qm_.config().wbits);
  args.set("first_layer_bits", qm_.config().first_bits);
  args.set("last_layer_bits", qm_.config().last_bits);
  args.set("per_channel_quantization", true);
  args.set("dtype", "int");
  args.set("quant_scheme", "genie (AdaRound/BRECQ weights, LSQ activation steps)");
  j.set("quantizer_args", std::move(args));
  return j;
}

// A path we may create: its folder exists and is writable (checked before anything is written).
void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) throw InputError(str("export: --", flag, " expects a file name"));
  if (io::dir_exists(path)) throw InputError(str("export: --", flag, " ", path, " is a directory"));
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  if (::access(dir.c_str(), W_OK) != 0)
    throw InputError(str("export: --", flag, " ", path, ": ", io::why_cannot_create(path, errno)));
}

quant::QModel load_quantized(const std::string& path) {
  try {
    {
      io::H5Reader r(path);
      if (r.has_attr("format") && r.attr_string("format") == "genie-qmodel-1" &&
          r.has_attr("checkpoint") && r.attr_i64("checkpoint") != 0)
        throw InputError(
            str("--model ", path, ": a resume checkpoint, not a finished quantized model"));
      if (!r.has_attr("format") || r.attr_string("format") != "genie-qmodel-1")
        throw InputError(str("--model ", path,
                             ": not a quantized model (format genie-qmodel-1); export takes the "
                             "quantized.h5 that genie_run quantize writes"));
    }
    return quant::QModel::load(path);
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(str("--model ", path, ": ", e.what()));
  }
}

// Writes both files under temporary names, then renames them: nothing is left half-written.
void write_outputs(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> tmps;
  try {
    for (const auto& f : files) {
      tmps.push_back(io::temp_path_for(f.first));
      FILE* fp = std::fopen(tmps.back().c_str(), "wb");
      if (!fp) throw Error(str("[export] ", f.first, ": ", io::why_cannot_create(f.first, errno)));
      const bool ok = std::fwrite(f.second.data(), 1, f.second.size(), fp) == f.second.size();
      const int err = errno;
      if (std::fclose(fp) != 0 || !ok)
        throw Error(
            str("[export] ", f.first, ": cannot write (", std::strerror(ok ? errno : err), ")"));
    }
    for (size_t i = 0; i < files.size(); ++i) io::fsync_and_rename(tmps[i], files[i].first);
  } catch (...) {
    for (const std::string& t : tmps) std::remove(t.c_str());
    throw;
  }
}

}  // namespace

ExportSummary export_model(const std::string& qmodel_path, const ExportOptions& opt) {
  if (opt.format != "onnx")
    throw InputError(str("export: unknown --format '", opt.format, "' (known: onnx)"));
  if (opt.opset != 0 && (opt.opset < kMinOpset || opt.opset > kMaxOpset))
    throw InputError(
        str("export: --opset expected ", kMinOpset, "..", kMaxOpset, ", got ", opt.opset));
  check_writable("out", opt.out);
  if (!opt.encodings.empty()) check_writable("encodings", opt.encodings);
  if (!opt.encodings.empty() && opt.encodings == opt.out)
    throw InputError("export: --encodings and --out name the same file");
  const quant::QModel qm = load_quantized(qmodel_path);
  const int opset = opt.opset == 0 ? kMinOpset : opt.opset;
  ExportSummary sum;
  sum.out = opt.out;
  sum.encodings = opt.encodings;
  sum.opset = opset;
  sum.narrow_activations = opt.narrow_activations;
  sum.weight_types = Json::object();
  sum.activation_types = Json::object();
  OnnxBuilder b(qm, opset, opt.narrow_activations, sum);
  std::vector<std::pair<std::string, std::string>> files;
  try {
    files.emplace_back(opt.out, onnx::serialize(b.build(qmodel_path)));
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(str("export: ", qmodel_path, ": ", e.what()));
  }
  sum.bytes = int64_t(files[0].second.size());
  if (!opt.encodings.empty()) files.emplace_back(opt.encodings, b.encodings().dump() + "\n");
  write_outputs(files);
  return sum;
}

Json to_json(const ExportSummary& s) {
  Json j = Json::object();
  j.set("out", s.out);
  if (!s.encodings.empty()) j.set("encodings", s.encodings);
  j.set("format", "onnx");
  j.set("opset", s.opset);
  j.set("bytes", s.bytes);
  j.set("nodes", s.nodes);
  j.set("weight_layers", s.weight_layers);
  j.set("weight_types", s.weight_types);
  j.set("activation_quantizers", s.activation_pairs);
  j.set("activation_types", s.activation_types);
  j.set("activation_storage", s.narrow_activations ? "narrow" : "8bit");
  j.set("clips", s.clips);
  j.set("shifted_weight_channels", s.shifted_channels);
  return j;
}

}  // namespace genie::engine
