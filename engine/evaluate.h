// Classification accuracy (top-1 / top-5) of a model — or of any forward function, so quantized
// models reuse it — over a labeled image set, in batches, without autograd; and the diagnosis of
// non-finite outputs (the first layer that produces them).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/qmodel.h"
#include "io/datasets.h"
#include "kernels/json.h"
#include "models/model.h"

namespace genie::engine {

struct EvalResult {
  double top1 = 0, top5 = 0;  // fractions in [0, 1]
  int64_t n = 0;              // images evaluated
  double seconds = 0;         // wall time of the whole evaluation (transfers included)
  // With keep_logits: every image's logits, (n, classes) row-major, and the predicted class
  // (the first highest logit, as torch.argmax).
  std::vector<float> logits;
  std::vector<int32_t> predictions;
  int64_t classes = 0;
};

// Maps a batch (B, C, H, W) on the evaluation device to logits (B, classes) on that device.
using ForwardFn = std::function<Tensor(const Tensor&)>;
// For a batch whose logits are not finite: where the non-finite values first appear.
using LocateFn = std::function<std::string(const Tensor&)>;

// Runs `fwd` over `data` in batches of `batch` images moved to `device`. Top-k counts a label as
// hit when fewer than k classes score higher (equal scores: the lower class index ranks first, as
// torch.topk); k is capped at the number of classes. Labels are checked against the logit width.
// No accuracy is reported over non-finite logits: a NaN or an infinity throws genie::Error naming
// the image and, with `locate`, the first layer that produced it.
EvalResult evaluate(const ForwardFn& fwd, const io::LabeledImages& data, int batch = 256,
                    Device device = Device::CPU, bool keep_logits = false,
                    const LocateFn& locate = {});
// The model's own forward (a copy of the model is moved to `device` when it lives elsewhere).
EvalResult evaluate(const models::Model& model, const io::LabeledImages& data, int batch = 256,
                    Device device = Device::CPU, bool keep_logits = false);
// A quantized model's simulated integer inference (on its own device, which must be `device`).
EvalResult evaluate(quant::QModel& qm, const io::LabeledImages& data, int batch = 256,
                    Device device = Device::CPU, bool keep_logits = false);

// Whether every value of t is finite (copies to the host).
bool all_finite(const Tensor& t);
// Where non-finite values first appear in a forward of x through m's nodes 0..last (-1: all)
// under `hooks` (null: the model's own forward): "the input", or "node 'name' (op)" of the first
// node in graph order whose output holds a NaN or an infinity; "" when everything is finite.
std::string first_nonfinite(const models::Model& m, const Tensor& x,
                            const models::ForwardHooks* hooks = nullptr, int last = -1);

// The model's input description for the dataset readers.
io::InputSpec input_spec(const models::ModelInfo& info);

// {"top1": …, "top5": …, "n": …, "seconds": …}
Json to_json(const EvalResult& r);

// Accuracy of a model file on `source` (fashion-mnist | DIR | FILE.h5, see
// io::load_labeled_images): an FP32 weight file (io::load_model) or a quantized file written by
// quantize (simulated integer inference). Unreadable files and data throw InputError naming them.
struct FileEval {
  EvalResult result;
  bool quantized = false;
  std::string bits;             // "W4A4" for quantized files
  std::vector<int32_t> labels;  // with keep_logits
};
bool is_quantized_file(const std::string& path);
// keep_logits: also every image's logits and predicted class (EvalResult).
FileEval evaluate_file(const std::string& model_path, const std::string& source, int64_t limit = -1,
                       Device device = Device::CPU, int batch = 256, bool keep_logits = false);

}  // namespace genie::engine
