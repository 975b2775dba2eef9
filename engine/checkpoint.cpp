// Resumable pipeline state: atomic per-batch / per-unit files and the state.json that lists them.
#include "engine/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "engine/records.h"
#include "io/atomic.h"
#include "io/h5.h"
#include "kernels/error.h"

namespace genie::engine {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "genie-checkpoint-1";

std::string numbered(const char* prefix, int64_t k) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_%05lld.h5", prefix, static_cast<long long>(k));
  return buf;
}

// A value as a short string for difference messages.
std::string show(const Json* v) { return v ? v->dump() : "(absent)"; }

}  // namespace

std::string Checkpoint::dir_of(const std::string& out_dir) {
  return join_path(out_dir, kCheckpointDir);
}

bool Checkpoint::exists(const std::string& out_dir) {
  return io::file_exists(join_path(dir_of(out_dir), "state.json"));
}

Json Checkpoint::read_state(const std::string& out_dir) {
  const std::string path = join_path(dir_of(out_dir), "state.json");
  if (!io::file_exists(path)) {
    if (io::file_exists(join_path(out_dir, kReportFile)))
      throw InputError(str("--resume ", out_dir, ": no checkpoint there (", path,
                           " is missing); the run in it has finished (", kReportFile, " exists)"));
    throw InputError(str("--resume ", out_dir, ": no checkpoint there (", path, " is missing)"));
  }
  Json st;
  try {
    st = Json::parse(io::read_text_file(path), path);
  } catch (const Error& e) {
    throw InputError(str("--resume ", out_dir, ": unreadable checkpoint state: ", e.what()));
  }
  if (!st.is_object() || st.get_string("format", "") != kFormat)
    throw InputError(str("--resume ", out_dir, ": ", path,
                         " is not a genie checkpoint (expected format '", kFormat, "')"));
  return st;
}

std::string Checkpoint::differences(const Json& state, const std::string& command,
                                    const Json& result_settings, const std::string& fingerprint) {
  std::string diff;
  auto add = [&](const std::string& line) { diff += (diff.empty() ? "" : "\n") + ("  " + line); };
  const std::string cmd = state.get_string("command", "");
  if (cmd != command) add(str("command: checkpoint '", cmd, "', now '", command, "'"));
  const std::string fp = state.get_string("model_fingerprint", "");
  if (fp != fingerprint)
    add(str("model: checkpoint made from '", state.get_string("model_path", "?"), "' (fingerprint ",
            fp, "), now a different file (fingerprint ", fingerprint, ")"));
  const Json* saved = state.find("result_settings");
  if (!saved || !saved->is_object()) {
    add("settings: missing from the checkpoint");
    return diff;
  }
  for (const auto& [k, v] : result_settings.as_object()) {
    const Json* old = saved->find(k);
    if (!old || *old != v) add(str(k, ": checkpoint ", show(old), ", now ", v.dump()));
  }
  for (const auto& [k, v] : saved->as_object())
    if (!result_settings.contains(k)) add(str(k, ": checkpoint ", v.dump(), ", now (absent)"));
  return diff;
}

Checkpoint::Checkpoint(const std::string& out_dir, const std::string& command, const Json& settings,
                       const Json& result_settings, const std::string& model_path,
                       const std::string& fingerprint, bool resume)
    : dir_(dir_of(out_dir)),
      command_(command),
      model_path_(model_path),
      fingerprint_(fingerprint),
      settings_(settings),
      result_settings_(result_settings) {
  if (!resume && fs::exists(dir_)) fs::remove_all(dir_);
  io::make_dirs(dir_);
  // Temporary files of a writer that was killed mid-write: never listed by the state, remove them.
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos)
      fs::remove(e.path());
  }
  if (resume) {
    const Json st = read_state(out_dir);
    if (const Json* t = st.find("timings_s"); t && t->is_object()) timings_ = *t;
    if (const Json* bs = st.find("batches"))
      for (size_t i = 0; i < bs->size(); ++i) {
        batches_.push_back(distill_batch_from_json((*bs)[i]));
        GENIE_CHECK(batches_.back().index == int64_t(i) && io::file_exists(batch_path(int64_t(i))),
                    "[checkpoint] ", dir_, ": batch ", i, " is listed but its file ",
                    batch_path(int64_t(i)), " is missing");
      }
    if (const Json* us = st.find("units"))
      for (size_t i = 0; i < us->size(); ++i) {
        units_.push_back(unit_report_from_json((*us)[i]));
        GENIE_CHECK(io::file_exists(unit_path(int64_t(i))), "[checkpoint] ", dir_, ": unit ", i,
                    " is listed but its file ", unit_path(int64_t(i)), " is missing");
      }
  } else {
    write_state();
  }
}

std::string Checkpoint::batch_path(int64_t k) const {
  return join_path(dir_, numbered("batch", k));
}
std::string Checkpoint::unit_path(int64_t u) const { return join_path(dir_, numbered("unit", u)); }

void Checkpoint::write_state() {
  Json st = Json::object();
  st.set("format", kFormat);
  st.set("command", command_);
  st.set("model_path", model_path_);
  st.set("model_fingerprint", fingerprint_);
  st.set("settings", settings_);
  st.set("result_settings", result_settings_);
  Json bs = Json::array();
  for (const auto& b : batches_) bs.push_back(to_json(b));
  st.set("batches_done", int64_t(batches_.size()));
  st.set("batches", std::move(bs));
  Json us = Json::array();
  for (const auto& u : units_) us.push_back(to_json(u));
  st.set("units_done", int64_t(units_.size()));
  st.set("units", std::move(us));
  st.set("timings_s", timings_);
  io::write_file_atomic(join_path(dir_, "state.json"), st.dump(2) + "\n");
}

void Checkpoint::save_batch(const DistillBatch& rec, const Tensor& images) {
  GENIE_CHECK(rec.index == batches_done(), "[checkpoint] expected batch ", batches_done(), ", got ",
              rec.index);
  GENIE_CHECK(images.ndim() == 4 && images.dim(0) == rec.count, "[checkpoint] expected ", rec.count,
              " images (n, C, H, W) for batch ", rec.index, ", got ", images.describe());
  io::H5Writer w(batch_path(rec.index));
  w.write("images", images);
  w.set_attr_i64("index", rec.index);
  w.set_attr_i64("first", rec.first);
  w.commit();
  batches_.push_back(rec);
  write_state();
}

DistillResume Checkpoint::distill_resume(const Shape& all_images) const {
  DistillResume r;
  r.next_batch = batches_done();
  if (r.next_batch == 0) return r;
  r.previous.images = Tensor::zeros(all_images);
  const int64_t row = all_images.size() == 4 ? all_images[1] * all_images[2] * all_images[3] : 0;
  for (const auto& b : batches_) {
    io::H5Reader rd(batch_path(b.index));
    const Tensor im = rd.read_f32("images");
    GENIE_CHECK(im.ndim() == 4 && im.dim(0) == b.count && im.numel() == b.count * row &&
                    b.first + b.count <= all_images[0],
                "[checkpoint] ", batch_path(b.index), ": expected ", b.count,
                " images of the model's input shape, got ", im.describe());
    std::copy(im.data(), im.data() + im.numel(), r.previous.images.data() + b.first * row);
  }
  r.previous.batches = batches_;
  return r;
}

void Checkpoint::save_unit(int64_t index, const quant::UnitReport& rec, const quant::QModel& qm,
                           const models::Unit& u) {
  GENIE_CHECK(index == units_done(), "[checkpoint] expected unit ", units_done(), ", got ", index);
  io::H5Writer w(unit_path(index));
  for (int q : qm.wq_in(u.first, u.last)) {
    w.write(str("wq.", q, ".step"), qm.wq[size_t(q)].step().detach().to(Device::CPU));
    w.write(str("wq.", q, ".logits"), qm.wq[size_t(q)].logits().detach().to(Device::CPU));
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    const auto& q = qm.aq[size_t(a)];
    GENIE_CHECK(q.initialized(), "[checkpoint] activation quantizer ", a, " of unit ", u.name,
                " is not initialised after its reconstruction");
    w.write(str("aq.", a, ".step"), q.step().detach().to(Device::CPU));
    w.write(str("aq.", a, ".signed"), Tensor::from_vector({q.is_signed() ? 1.f : 0.f}, {1}));
  }
  w.set_attr_string("unit", rec.name);
  w.commit();
  units_.push_back(rec);
  write_state();
}

void Checkpoint::restore_unit(int64_t index, quant::QModel& qm, const models::Unit& u) const {
  GENIE_CHECK(index >= 0 && index < units_done(), "[checkpoint] expected a finished unit < ",
              units_done(), ", got ", index);
  GENIE_CHECK(units_[size_t(index)].name == u.name, "[checkpoint] ", dir_, ": unit ", index,
              " is '", units_[size_t(index)].name, "', the model's is '", u.name, "'");
  io::H5Reader rd(unit_path(index));
  auto get = [&](const std::string& k) {
    GENIE_CHECK(rd.has(k), "[checkpoint] ", dir_, ": missing '", k, "' for unit ", u.name);
    return rd.read(k);
  };
  NoGradGuard ng;
  for (int w : qm.wq_in(u.first, u.last)) {
    auto& q = qm.wq[size_t(w)];
    const Tensor st = get(str("wq.", w, ".step")), lg = get(str("wq.", w, ".logits"));
    GENIE_CHECK(st.shape() == q.step().shape() && lg.shape() == q.logits().shape(), "[checkpoint] ",
                dir_, ": unit ", u.name, " weight quantizer ", w, " has mismatched shapes");
    q.step().copy_(st);
    q.logits().copy_(lg);
    q.set_hard(true);
  }
  for (int a : qm.aq_in(u.first, u.last)) {
    const Tensor st = get(str("aq.", a, ".step")), sg = get(str("aq.", a, ".signed"));
    qm.aq[size_t(a)].set_state(sg.item() != 0.f, st.item(), qm.device());
    qm.aq[size_t(a)].qdrop = false;
  }
}

void Checkpoint::add_time(const std::string& name, double seconds) {
  timings_.set(name, timings_.get_number(name, 0.0) + seconds);
}

void Checkpoint::flush() { write_state(); }

void Checkpoint::remove() {
  std::error_code ec;
  fs::remove_all(dir_, ec);  // best effort: the run's outputs are complete already
}

}  // namespace genie::engine
