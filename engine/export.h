// Export of a quantized model file (quantized.h5) for deployment: ONNX with QuantizeLinear /
// DequantizeLinear (the "QDQ" form that ONNX Runtime, TensorRT, OpenVINO and QNN read), plus an
// encodings file in the AIMET/QNN JSON layout.
//
// What the ONNX graph holds (written by io/onnx.h, no Python, no libprotobuf):
// - Weights as integers: each conv/linear weight is its stored AdaRound codes in an integer
//   initializer feeding DequantizeLinear (axis 0, a float scale and an integer zero point per
//   output channel): w = (q − zp) · scale reproduces genie's (code − zero) · step exactly. Never a
//   QuantizeLinear of float weights (that would re-round and undo AdaRound). The storage type is
//   the narrowest of int2/uint2 (with opset 25), int4/uint4, int8/uint8, int16/uint16 that holds
//   the layer's codes and zero points: uint with zp = zero (shifted per channel when a zero point
//   lies outside the code range, as for channels whose weights share one sign), or int with
//   zp = 0 when every channel's zero point is 2^(b−1) (symmetric).
// - Activations: each activation quantizer of the file is one QuantizeLinear → DequantizeLinear
//   pair on the tensor it quantizes (scale = the learned step), and its output feeds exactly the
//   (node, input) pairs the file lists as its consumers; other readers of the tensor get the
//   float value. The pair is uint8, with zero point 0 for unsigned and 128 for signed quantizers
//   (ONNX Runtime 1.32 fails on int8 pairs before a Slice), or with
//   ExportOptions::narrow_activations the narrowest type (uint4/int4, uint2/int2 at opset 25,
//   zero point 0). A bit width below its container type (4 bits in uint8, 3 bits in int4) gets a
//   Clip to [qn·s, qp·s] before the pair.
//   QuantizeLinear rounds half to even and saturates, as genie's round(clamp(x/s, qn, qp)).
// - Float biases stay float. The bias of a conv whose input is quantized is a separate Add after
//   the Conv: ONNX Runtime (WeightBiasQuantization, on by default) rounds a Conv's bias to int32
//   with scale input step × weight step, which at 4 bits and below changed 0.9 % of the
//   Fashion-MNIST predictions of a --fold-bn model. (Gemm biases stay in the Gemm.)
// - BatchNorm as BatchNormalization (models quantized with --fold-bn have none); every other op of
//   models/graph.h as the matching ONNX op(s).
// - One input "input" (N, C, H, W) float32, normalized ((pixel/255 − mean)/std; the mean and std
//   are in the metadata_props input_mean / input_std), one output "logits".
// - Opset 21 (IR 10) by default: 2-bit weights then sit in uint4/int4 (the same codes). Opset 25
//   (IR 13) stores them as uint2/int2, which ONNX Runtime 1.32 runs only without its QDQ fusions
//   (with them on it builds a QGemm that rejects uint2 weights).
#pragma once
#include <string>

#include "kernels/json.h"

namespace genie::engine {

struct ExportOptions {
  std::string format = "onnx";  // the only one so far
  std::string out;              // the model file to write
  std::string encodings;        // optional: the encodings JSON to write beside it
  int opset = 0;                // 21..25; 0 = 21
  // Activation Q/DQ pairs in 8-bit types, with a Clip to the quantizer's range before each one
  // below 8 bits (default: ONNX Runtime 1.32 runs it with its default optimizations), or in the
  // narrowest type (int4/uint4, int2/uint2 at opset 25): the compact form, which ONNX Runtime
  // 1.32 runs only with its ClipQuantFusion optimizer off (a Relu or Clip feeding a 4-bit
  // QuantizeLinear makes it fail at load: "Unexpected data type for QuantizeLinear input
  // y_zero_point of 21").
  bool narrow_activations = false;
};

struct ExportSummary {
  std::string out, encodings;
  int opset = 0;
  bool narrow_activations = false;
  int64_t bytes = 0;         // of the model file
  int nodes = 0;             // ONNX nodes
  int weight_layers = 0;     // DequantizeLinear'd weights
  int activation_pairs = 0;  // QuantizeLinear/DequantizeLinear pairs on activations
  int clips = 0;             // of those, preceded by a Clip (bits below the container type)
  int shifted_channels = 0;  // weight channels whose zero point lies outside the code range
  Json weight_types;         // {"uint4": layers, …}
  Json activation_types;     // {"uint4": quantizers, …}
};

// Reads `qmodel_path` (a finished genie quantized model) and writes opt.out (and opt.encodings),
// each under a temporary name, then renamed; both are written only when both could be built.
// Throws InputError (nothing written) for a file that is not a finished quantized model, an
// unknown format, an opset outside 21..25, an output path that cannot be created, a value that
// no ONNX integer type holds.
ExportSummary export_model(const std::string& qmodel_path, const ExportOptions& opt);

Json to_json(const ExportSummary& s);

}  // namespace genie::engine
