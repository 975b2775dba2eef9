// Resumable pipeline state: atomic per-batch / per-unit files and the state.json that lists them.
#include "engine/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "engine/pipeline.h"
#include "io/atomic.h"
#include "io/h5.h"

namespace genie::engine {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "genie-checkpoint-1";

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string numbered(const char* prefix, int64_t k) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_%05lld.h5", prefix, static_cast<long long>(k));
  return buf;
}

// A value as a short string for difference messages.
std::string show(const Json* v) { return v ? v->dump() : "(absent)"; }

}  // namespace

std::string Checkpoint::dir_of(const std::string& out_dir) { return join(out_dir, kCheckpointDir); }

bool Checkpoint::exists(const std::string& out_dir) {
  return io::file_exists(join(dir_of(out_dir), "state.json"));
}

Json Checkpoint::read_state(const std::string& out_dir) {
  const std::string path = join(dir_of(out_dir), "state.json");
  if (!io::file_exists(path)) {
    if (io::file_exists(join(out_dir, kReportFile)))
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
        const Json& b = (*bs)[i];
        DistillBatch r;
        r.index = b.at("index").as_int();
        r.first = b.at("first").as_int();
        r.count = b.at("count").as_int();
        r.iters = b.at("iters").as_int();
        r.bn_loss = float(b.at("bn_loss").as_number());
        r.input_loss = float(b.at("input_loss").as_number());
        r.bn_loss_noise = float(b.at("bn_loss_noise").as_number());
        r.time_s = b.at("time_s").as_number();
        GENIE_CHECK(r.index == int64_t(i) && io::file_exists(batch_path(r.index)), "[checkpoint] ",
                    dir_, ": batch ", i, " is listed but its file ", batch_path(r.index),
                    " is missing");
        batches_.push_back(r);
      }
    if (const Json* us = st.find("units"))
      for (size_t i = 0; i < us->size(); ++i) {
        const Json& u = (*us)[i];
        UnitEntry r;
        r.name = u.at("name").as_string();
        r.kind = u.at("kind").as_string();
        r.loss_before = u.at("loss_before").as_number();
        r.loss_after = u.at("loss_after").as_number();
        r.time_s = u.at("time_s").as_number();
        GENIE_CHECK(io::file_exists(unit_path(int64_t(i))), "[checkpoint] ", dir_, ": unit ", i,
                    " is listed but its file ", unit_path(int64_t(i)), " is missing");
        units_.push_back(r);
      }
  } else {
    write_state();
  }
}

std::string Checkpoint::batch_path(int64_t k) const { return join(dir_, numbered("batch", k)); }
std::string Checkpoint::unit_path(int64_t u) const { return join(dir_, numbered("unit", u)); }

void Checkpoint::write_state() {
  Json st = Json::object();
  st.set("format", kFormat);
  st.set("command", command_);
  st.set("model_path", model_path_);
  st.set("model_fingerprint", fingerprint_);
  st.set("settings", settings_);
  st.set("result_settings", result_settings_);
  Json bs = Json::array();
  for (const auto& b : batches_) {
    Json o = Json::object();
    o.set("index", b.index);
    o.set("first", b.first);
    o.set("count", b.count);
    o.set("iters", b.iters);
    o.set("bn_loss", b.bn_loss);
    o.set("input_loss", b.input_loss);
    o.set("bn_loss_noise", b.bn_loss_noise);
    o.set("time_s", b.time_s);
    bs.push_back(std::move(o));
  }
  st.set("batches_done", int64_t(batches_.size()));
  st.set("batches", std::move(bs));
  Json us = Json::array();
  for (const auto& u : units_) {
    Json o = Json::object();
    o.set("name", u.name);
    o.set("kind", u.kind);
    o.set("loss_before", u.loss_before);
    o.set("loss_after", u.loss_after);
    o.set("time_s", u.time_s);
    us.push_back(std::move(o));
  }
  st.set("units_done", int64_t(units_.size()));
  st.set("units", std::move(us));
  st.set("timings_s", timings_);
  io::write_file_atomic(join(dir_, "state.json"), st.dump(2) + "\n");
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

void Checkpoint::save_unit(int64_t index, const UnitEntry& rec,
                           const std::map<std::string, Tensor>& state) {
  GENIE_CHECK(index == units_done(), "[checkpoint] expected unit ", units_done(), ", got ", index);
  io::H5Writer w(unit_path(index));
  for (const auto& [k, t] : state) w.write(k, t);
  w.set_attr_string("unit", rec.name);
  w.commit();
  units_.push_back(rec);
  write_state();
}

std::map<std::string, Tensor> Checkpoint::load_unit(int64_t index) const {
  GENIE_CHECK(index >= 0 && index < units_done(), "[checkpoint] expected a finished unit < ",
              units_done(), ", got ", index);
  io::H5Reader rd(unit_path(index));
  std::map<std::string, Tensor> out;
  for (const auto& k : rd.list_datasets()) out[k] = rd.read(k);
  return out;
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
