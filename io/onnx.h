// A small ONNX writer: the handful of ONNX messages a quantized CNN needs (ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto), serialized with our own protobuf
// wire-format encoder. No libprotobuf: ONNX files are plain protobuf, and the writer needs only
// varints, fixed32 floats and length-delimited fields (https://protobuf.dev/programming-guides/
// encoding/). Field numbers follow onnx/onnx.proto (IR version 10+).
//
// Integer initializers are stored in raw_data, little endian; INT4/UINT4 pack two values per byte
// and INT2/UINT2 four, low bits first (the ONNX spec's packing), so an odd count pads the last
// byte with zero bits.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace genie::io::onnx {

// onnx.TensorProto.DataType values.
enum DataType : int32_t {
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kUint4 = 21,
  kInt4 = 22,
  kUint2 = 25,
  kInt2 = 26,
};

// Bits per element and value range of an integer data type (kInt2 … kInt64).
int type_bits(int32_t dtype);
bool type_signed(int32_t dtype);
int64_t type_min(int32_t dtype);
int64_t type_max(int32_t dtype);
const char* type_name(int32_t dtype);  // "int4", "uint8", "float", …

struct Tensor {
  std::string name;
  int32_t dtype = kFloat;
  std::vector<int64_t> dims;  // empty: a scalar
  std::string raw;            // raw_data
};

// Initializer builders. ints(): every value must lie in the type's range (checked).
Tensor floats(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& v);
Tensor ints(const std::string& name, int32_t dtype, const std::vector<int64_t>& dims,
            const std::vector<int64_t>& v);
// The packed bytes of integer values (what ints() stores in raw).
std::string pack_ints(const std::vector<int64_t>& v, int32_t dtype);

struct Attribute {
  enum Kind : int32_t {
    kFloatAttr = 1,
    kIntAttr = 2,
    kStringAttr = 3,
    kFloatsAttr = 6,
    kIntsAttr = 7
  };
  std::string name;
  Kind kind = kIntAttr;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  std::vector<float> fs;
  std::vector<int64_t> is;
};
Attribute attr_f(const std::string& name, float v);
Attribute attr_i(const std::string& name, int64_t v);
Attribute attr_s(const std::string& name, const std::string& v);
Attribute attr_ints(const std::string& name, const std::vector<int64_t>& v);

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;  // "" = an omitted optional input
  std::vector<Attribute> attrs;
};

// A graph input/output: a float or integer tensor whose dims are numbers or symbolic names.
struct Dim {
  int64_t value = -1;  // used when >= 0
  std::string param;   // symbolic ("N") otherwise
};
struct ValueInfo {
  std::string name;
  int32_t elem_type = kFloat;
  std::vector<Dim> dims;
};

struct Graph {
  std::string name, doc;
  std::vector<Node> nodes;  // topological order
  std::vector<Tensor> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct Model {
  int64_t ir_version = 10;
  int64_t opset = 21;  // of the default ("ai.onnx") domain
  std::string producer_name, producer_version, doc;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props
  Graph graph;
};

// The serialized ModelProto. Throws genie::Error when it would exceed protobuf's 2 GiB limit.
std::string serialize(const Model& m);

// ---- the protobuf wire format (exposed for tests) ----
class ProtoWriter {
 public:
  void varint(uint64_t v);
  void tag(int field,
           int wire_type);  // wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  void int_field(int field,
                 int64_t v);  // wire type 0 (negative values as 10-byte two's complement)
  void float_field(int field, float v);               // wire type 5
  void bytes_field(int field, const std::string& b);  // wire type 2
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

}  // namespace genie::io::onnx
