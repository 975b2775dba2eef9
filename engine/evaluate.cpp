// Batched top-1 / top-5 evaluation, of a model in memory or of a model file.
#include "engine/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "autograd/tape.h"
#include "engine/qmodel.h"
#include "io/h5.h"
#include "io/model_file.h"

namespace genie::engine {

EvalResult evaluate(const ForwardFn& fwd, const io::LabeledImages& data, int batch, Device device,
                    bool keep_logits) {
  GENIE_CHECK(batch > 0, "[evaluate] expected batch > 0, got ", batch);
  GENIE_CHECK(data.images.defined() && data.images.ndim() == 4,
              "[evaluate] expected images (N, C, H, W), got ",
              data.images.defined() ? data.images.describe() : std::string("none"));
  GENIE_CHECK(data.labels.defined() && data.labels.dtype() == DType::I32 &&
                  data.labels.ndim() == 1 && data.labels.dim(0) == data.images.dim(0),
              "[evaluate] expected ", data.images.dim(0), " int32 labels, got ",
              data.labels.defined() ? data.labels.describe() : std::string("none"));
  NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor images = data.images.to(Device::CPU);
  const std::vector<int32_t> labels = data.labels.to_i32();
  const int64_t N = images.dim(0);
  const Shape& s = images.shape();
  const int64_t per = s[1] * s[2] * s[3];
  int64_t hit1 = 0, hit5 = 0;
  EvalResult r;
  for (int64_t b0 = 0; b0 < N; b0 += batch) {
    const int64_t B = std::min<int64_t>(batch, N - b0);
    Tensor x = Tensor::empty({B, s[1], s[2], s[3]});
    std::memcpy(x.data(), images.data() + b0 * per, size_t(B * per) * sizeof(float));
    const Tensor logits = fwd(x.to(device));
    GENIE_CHECK(logits.defined() && logits.ndim() == 2 && logits.dim(0) == B,
                "[evaluate] expected logits (", B, ", classes), got ",
                logits.defined() ? logits.describe() : std::string("none"));
    const int64_t K = logits.dim(1);
    const std::vector<float> l = logits.to_vector();
    if (keep_logits) {
      r.classes = K;
      r.logits.insert(r.logits.end(), l.begin(), l.end());
      for (int64_t i = 0; i < B; ++i) {
        const float* row = l.data() + i * K;
        r.predictions.push_back(int32_t(std::max_element(row, row + K) - row));
      }
    }
    for (int64_t i = 0; i < B; ++i) {
      const int32_t y = labels[size_t(b0 + i)];
      GENIE_CHECK(y >= 0 && y < K, "[evaluate] label ", y, " of image ", b0 + i,
                  " is outside the model's ", K, " classes");
      const float* row = l.data() + i * K;
      const float ly = row[y];
      int64_t rank = 0;  // classes ranked before the label
      for (int64_t j = 0; j < K; ++j) rank += (row[j] > ly) || (row[j] == ly && j < y);
      hit1 += rank < 1;
      hit5 += rank < std::min<int64_t>(5, K);
    }
  }
  r.n = N;
  r.top1 = N ? double(hit1) / double(N) : 0.0;
  r.top5 = N ? double(hit5) / double(N) : 0.0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

EvalResult evaluate(const models::Model& model, const io::LabeledImages& data, int batch,
                    Device device, bool keep_logits) {
  if (model.device() == device)
    return evaluate([&](const Tensor& x) { return model.forward(x); }, data, batch, device,
                    keep_logits);
  models::Model m = model;  // parameters are handles: moving the copy leaves `model` untouched
  m.to(device);
  return evaluate([&](const Tensor& x) { return m.forward(x); }, data, batch, device, keep_logits);
}

io::InputSpec input_spec(const models::ModelInfo& info) {
  io::InputSpec s;
  s.channels = info.C;
  s.height = info.H;
  s.width = info.W;
  s.mean = info.mean.empty() ? std::vector<float>(size_t(info.C), 0.f) : info.mean;
  s.std = info.std.empty() ? std::vector<float>(size_t(info.C), 1.f) : info.std;
  return s;
}

Json to_json(const EvalResult& r) {
  Json j = Json::object();
  j.set("top1", r.top1);
  j.set("top5", r.top5);
  j.set("n", r.n);
  j.set("seconds", r.seconds);
  return j;
}

bool is_quantized_file(const std::string& path) {
  try {
    io::H5Reader r(path);
    return r.has_attr("format") && r.attr_string("format") == "genie-qmodel-1";
  } catch (const Error&) {
    return false;  // load_model reports what is wrong with the file
  }
}

FileEval evaluate_file(const std::string& path, const std::string& source, int64_t limit,
                       Device dev, int batch, bool keep_logits) {
  FileEval fe;
  fe.quantized = is_quantized_file(path);
  quant::QModel qm;
  models::Model fp;
  try {
    if (fe.quantized) {
      qm = quant::QModel::load(path, dev);
      fe.bits = str("W", qm.config().wbits, "A", qm.config().abits);
    } else {
      fp = io::load_model(path);
      fp.to(dev);
    }
  } catch (const Error& e) {
    throw InputError(str("--model ", path, ": ", e.what()));
  }
  const models::ModelInfo& info = fe.quantized ? qm.model().info() : fp.info();
  io::LabeledImages data;
  try {
    data = io::load_labeled_images(source, input_spec(info), limit);
    io::check_labels(data, info.num_classes, source);
  } catch (const Error& e) {
    throw InputError(str("--eval ", source, ": ", e.what()));
  }
  fe.result = fe.quantized ? evaluate([&](const Tensor& x) { return qm.forward(x); }, data, batch,
                                      dev, keep_logits)
                           : evaluate(fp, data, batch, dev, keep_logits);
  if (keep_logits) fe.labels = data.labels.to_i32();
  return fe;
}

}  // namespace genie::engine
