// Batched top-1 / top-5 evaluation, of a model in memory or of a model file.
#include "engine/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "autograd/tape.h"
#include "engine/qmodel.h"
#include "io/h5.h"
#include "io/model_file.h"

namespace genie::engine {

bool all_finite(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

std::string first_nonfinite(const models::Model& m, const Tensor& x,
                            const models::ForwardHooks* hooks, int last) {
  NoGradGuard ng;
  if (!all_finite(x)) return "the input";
  std::string found;
  models::ForwardHooks h = hooks ? *hooks : models::ForwardHooks{};
  auto inner = h.observe;
  h.observe = [&](int node, const std::vector<Tensor>& in, const Tensor& out) {
    if (inner) inner(node, in, out);
    if (found.empty() && !all_finite(out))
      found = str("node '", m.node(node).name, "' (", m.node(node).op, ")");
  };
  if (last < 0)
    m.forward(x, &h);
  else
    m.forward_range(0, last, {{-1, x}}, &h);
  return found;
}

namespace {

// Throws when a row of logits holds a NaN or an infinity: accuracy over them means nothing.
void check_logits(const std::vector<float>& l, int64_t K, int64_t first_image, const Tensor& x,
                  const LocateFn& locate) {
  const auto bad = std::find_if(l.begin(), l.end(), [](float v) { return !std::isfinite(v); });
  if (bad == l.end()) return;
  const int64_t image = first_image + int64_t(bad - l.begin()) / K;
  const std::string where = locate ? locate(x) : std::string();
  throw Error(str("[evaluate] the logits of image ", image, " are not finite (", *bad,
                  "): no accuracy is reported",
                  where.empty() ? "" : "; the first non-finite values come from " + where));
}

}  // namespace

EvalResult evaluate(const ForwardFn& fwd, const io::LabeledImages& data, int batch, Device device,
                    bool keep_logits, const LocateFn& locate) {
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
    const Tensor xd = x.to(device);
    const Tensor logits = fwd(xd);
    GENIE_CHECK(logits.defined() && logits.ndim() == 2 && logits.dim(0) == B,
                "[evaluate] expected logits (", B, ", classes), got ",
                logits.defined() ? logits.describe() : std::string("none"));
    const int64_t K = logits.dim(1);
    const std::vector<float> l = logits.to_vector();
    check_logits(l, K, b0, xd, locate);
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
  models::Model moved;  // parameters are handles: moving a copy leaves `model` untouched
  if (model.device() != device) {
    moved = model;
    moved.to(device);
  }
  const models::Model& m = model.device() == device ? model : moved;
  return evaluate([&](const Tensor& x) { return m.forward(x); }, data, batch, device, keep_logits,
                  [&](const Tensor& x) { return first_nonfinite(m, x); });
}

EvalResult evaluate(quant::QModel& qm, const io::LabeledImages& data, int batch, Device device,
                    bool keep_logits) {
  GENIE_CHECK(qm.device() == device, "[evaluate] expected the quantized model on ",
              device_name(device), ", got it on ", device_name(qm.device()));
  return evaluate([&](const Tensor& x) { return qm.forward(x); }, data, batch, device, keep_logits,
                  [&](const Tensor& x) {
                    const quant::QModel::Run run;
                    const models::ForwardHooks h = qm.hooks(run);
                    return first_nonfinite(qm.model(), x, &h);
                  });
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
  fe.result = fe.quantized ? evaluate(qm, data, batch, dev, keep_logits)
                           : evaluate(fp, data, batch, dev, keep_logits);
  if (keep_logits) fe.labels = data.labels.to_i32();
  return fe;
}

}  // namespace genie::engine
