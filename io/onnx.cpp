// The ONNX writer: protobuf wire format and the ONNX messages (field numbers of onnx/onnx.proto).
#include "io/onnx.h"

#include <cstring>
#include <limits>

#include "kernels/error.h"

namespace genie::io::onnx {

// ---- data types ----

int type_bits(int32_t dtype) {
  switch (dtype) {
    case kInt2:
    case kUint2:
      return 2;
    case kInt4:
    case kUint4:
      return 4;
    case kInt8:
    case kUint8:
      return 8;
    case kInt16:
    case kUint16:
      return 16;
    case kInt32:
    case kFloat:
      return 32;
    case kInt64:
      return 64;
    default:
      throw Error(str("[onnx] unsupported data type ", dtype));
  }
}

bool type_signed(int32_t dtype) {
  return dtype == kInt2 || dtype == kInt4 || dtype == kInt8 || dtype == kInt16 || dtype == kInt32 ||
         dtype == kInt64;
}

int64_t type_min(int32_t dtype) {
  if (dtype == kInt64) return std::numeric_limits<int64_t>::min();
  return type_signed(dtype) ? -(int64_t(1) << (type_bits(dtype) - 1)) : 0;
}

int64_t type_max(int32_t dtype) {
  if (dtype == kInt64) return std::numeric_limits<int64_t>::max();
  const int b = type_bits(dtype);
  return type_signed(dtype) ? (int64_t(1) << (b - 1)) - 1 : (int64_t(1) << b) - 1;
}

const char* type_name(int32_t dtype) {
  switch (dtype) {
    case kFloat:
      return "float";
    case kUint8:
      return "uint8";
    case kInt8:
      return "int8";
    case kUint16:
      return "uint16";
    case kInt16:
      return "int16";
    case kInt32:
      return "int32";
    case kInt64:
      return "int64";
    case kUint4:
      return "uint4";
    case kInt4:
      return "int4";
    case kUint2:
      return "uint2";
    case kInt2:
      return "int2";
    default:
      return "unknown";
  }
}

// ---- initializers ----

std::string pack_ints(const std::vector<int64_t>& v, int32_t dtype) {
  const int bits = type_bits(dtype);
  GENIE_CHECK(dtype != kFloat, "[onnx] pack_ints: float is not an integer type");
  const int64_t lo = type_min(dtype), hi = type_max(dtype);
  for (size_t i = 0; i < v.size(); ++i)
    GENIE_CHECK(v[i] >= lo && v[i] <= hi, "[onnx] value ", v[i], " at ", i, " outside the ",
                type_name(dtype), " range ", lo, "..", hi);
  std::string out;
  if (bits < 8) {  // sub-byte: low bits first
    const int per = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    out.assign((v.size() + size_t(per) - 1) / size_t(per), '\0');
    for (size_t i = 0; i < v.size(); ++i) {
      const unsigned u = unsigned(uint64_t(v[i])) & mask;
      out[i / size_t(per)] =
          char(uint8_t(out[i / size_t(per)]) | (u << (bits * int(i % size_t(per)))));
    }
    return out;
  }
  const size_t nb = size_t(bits / 8);
  out.resize(v.size() * nb);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint64_t u = uint64_t(v[i]);
    for (size_t b = 0; b < nb; ++b) out[i * nb + b] = char((u >> (8 * b)) & 0xff);
  }
  return out;
}

static int64_t count_of(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    GENIE_CHECK(d >= 0, "[onnx] negative dimension ", d);
    n *= d;
  }
  return n;
}

Tensor floats(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& v) {
  GENIE_CHECK(count_of(dims) == int64_t(v.size()), "[onnx] initializer ", name, ": ", v.size(),
              " values for its dims");
  Tensor t{name, kFloat, dims, std::string(v.size() * 4, '\0')};
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) t.raw[i * 4 + size_t(b)] = char((u >> (8 * b)) & 0xff);
  }
  return t;
}

Tensor ints(const std::string& name, int32_t dtype, const std::vector<int64_t>& dims,
            const std::vector<int64_t>& v) {
  GENIE_CHECK(count_of(dims) == int64_t(v.size()), "[onnx] initializer ", name, ": ", v.size(),
              " values for its dims");
  return Tensor{name, dtype, dims, pack_ints(v, dtype)};
}

Attribute attr_f(const std::string& name, float v) {
  Attribute a;
  a.name = name, a.kind = Attribute::kFloatAttr, a.f = v;
  return a;
}
Attribute attr_i(const std::string& name, int64_t v) {
  Attribute a;
  a.name = name, a.kind = Attribute::kIntAttr, a.i = v;
  return a;
}
Attribute attr_s(const std::string& name, const std::string& v) {
  Attribute a;
  a.name = name, a.kind = Attribute::kStringAttr, a.s = v;
  return a;
}
Attribute attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  Attribute a;
  a.name = name, a.kind = Attribute::kIntsAttr, a.is = v;
  return a;
}

// ---- wire format ----

void ProtoWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(char(uint8_t(v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(char(uint8_t(v)));
}

void ProtoWriter::tag(int field, int wire_type) {
  varint(uint64_t(field) << 3 | uint64_t(wire_type));
}

void ProtoWriter::int_field(int field, int64_t v) {
  tag(field, 0);
  varint(uint64_t(v));
}

void ProtoWriter::float_field(int field, float v) {
  tag(field, 5);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int b = 0; b < 4; ++b) out_.push_back(char((u >> (8 * b)) & 0xff));
}

void ProtoWriter::bytes_field(int field, const std::string& b) {
  tag(field, 2);
  varint(b.size());
  out_ += b;
}

// ---- messages ----

namespace {

std::string tensor_bytes(const Tensor& t) {
  ProtoWriter w;
  for (int64_t d : t.dims) w.int_field(1, d);  // dims
  w.int_field(2, t.dtype);                     // data_type
  w.bytes_field(8, t.name);                    // name
  w.bytes_field(9, t.raw);                     // raw_data
  return w.bytes();
}

std::string attribute_bytes(const Attribute& a) {
  ProtoWriter w;
  w.bytes_field(1, a.name);
  switch (a.kind) {
    case Attribute::kFloatAttr:
      w.float_field(2, a.f);
      break;
    case Attribute::kIntAttr:
      w.int_field(3, a.i);
      break;
    case Attribute::kStringAttr:
      w.bytes_field(4, a.s);
      break;
    case Attribute::kFloatsAttr:
      for (float f : a.fs) w.float_field(7, f);
      break;
    case Attribute::kIntsAttr:
      for (int64_t i : a.is) w.int_field(8, i);
      break;
  }
  w.int_field(20, a.kind);  // type
  return w.bytes();
}

std::string node_bytes(const Node& n) {
  ProtoWriter w;
  for (const auto& s : n.inputs) w.bytes_field(1, s);
  for (const auto& s : n.outputs) w.bytes_field(2, s);
  if (!n.name.empty()) w.bytes_field(3, n.name);
  w.bytes_field(4, n.op_type);
  for (const auto& a : n.attrs) w.bytes_field(5, attribute_bytes(a));
  return w.bytes();
}

std::string value_info_bytes(const ValueInfo& v) {
  ProtoWriter shape;
  for (const Dim& d : v.dims) {
    ProtoWriter dim;
    if (d.value >= 0)
      dim.int_field(1, d.value);  // dim_value
    else
      dim.bytes_field(2, d.param);  // dim_param
    shape.bytes_field(1, dim.bytes());
  }
  ProtoWriter tensor_type;
  tensor_type.int_field(1, v.elem_type);
  tensor_type.bytes_field(2, shape.bytes());
  ProtoWriter type;
  type.bytes_field(1, tensor_type.bytes());
  ProtoWriter w;
  w.bytes_field(1, v.name);
  w.bytes_field(2, type.bytes());
  return w.bytes();
}

std::string graph_bytes(const Graph& g) {
  ProtoWriter w;
  for (const Node& n : g.nodes) w.bytes_field(1, node_bytes(n));
  w.bytes_field(2, g.name);
  for (const Tensor& t : g.initializers) w.bytes_field(5, tensor_bytes(t));
  if (!g.doc.empty()) w.bytes_field(10, g.doc);
  for (const ValueInfo& v : g.inputs) w.bytes_field(11, value_info_bytes(v));
  for (const ValueInfo& v : g.outputs) w.bytes_field(12, value_info_bytes(v));
  return w.bytes();
}

}  // namespace

std::string serialize(const Model& m) {
  // A protobuf message is at most 2 GiB; ONNX's external-data form is not written here.
  size_t payload = 0;
  for (const Tensor& t : m.graph.initializers) payload += t.raw.size();
  GENIE_CHECK(payload < (size_t(1) << 31) - (size_t(64) << 20), "[onnx] the model's ", payload,
              " bytes of initializers exceed protobuf's 2 GiB limit");
  ProtoWriter w;
  w.int_field(1, m.ir_version);
  w.bytes_field(2, m.producer_name);
  w.bytes_field(3, m.producer_version);
  if (!m.doc.empty()) w.bytes_field(6, m.doc);
  w.bytes_field(7, graph_bytes(m.graph));
  ProtoWriter opset;
  opset.bytes_field(1, "");
  opset.int_field(2, m.opset);
  w.bytes_field(8, opset.bytes());
  for (const auto& kv : m.metadata) {
    ProtoWriter e;
    e.bytes_field(1, kv.first);
    e.bytes_field(2, kv.second);
    w.bytes_field(14, e.bytes());
  }
  return w.bytes();
}

}  // namespace genie::io::onnx
