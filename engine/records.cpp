// The JSON form of each record (engine/records.h).
#include "engine/records.h"

namespace genie::engine {

Json to_json(const DistillBatch& b) {
  Json o = Json::object();
  o.set("index", b.index);
  o.set("first", b.first);
  o.set("count", b.count);
  o.set("iters", b.iters);
  o.set("bn_loss", b.bn_loss);
  o.set("input_loss", b.input_loss);
  o.set("bn_loss_noise", b.bn_loss_noise);
  o.set("time_s", b.time_s);
  return o;
}

DistillBatch distill_batch_from_json(const Json& j) {
  DistillBatch b;
  b.index = j.at("index").as_int("index");
  b.first = j.at("first").as_int("first");
  b.count = j.at("count").as_int("count");
  b.iters = j.at("iters").as_int("iters");
  b.bn_loss = float(j.at("bn_loss").as_number("bn_loss"));
  b.input_loss = float(j.at("input_loss").as_number("input_loss"));
  b.bn_loss_noise = float(j.at("bn_loss_noise").as_number("bn_loss_noise"));
  b.time_s = j.get_number("time_s", 0.0);
  return b;
}

Json to_json(const quant::UnitReport& u) {
  Json o = Json::object();
  o.set("name", u.name);
  o.set("kind", u.kind);
  o.set("first", u.first);
  o.set("last", u.last);
  o.set("iters", u.iters);
  o.set("loss_before", u.loss_before);
  o.set("loss_after", u.loss_after);
  o.set("kept_initial", u.kept_initial);
  o.set("loss_final", u.final_loss());
  o.set("collect_s", u.collect_s);
  o.set("optimize_s", u.optimize_s);
  o.set("time_s", u.collect_s + u.optimize_s);
  return o;
}

quant::UnitReport unit_report_from_json(const Json& j) {
  quant::UnitReport u;
  u.name = j.at("name").as_string("name");
  u.kind = j.at("kind").as_string("kind");
  u.first = int(j.get_int("first", 0));
  u.last = int(j.get_int("last", 0));
  u.iters = j.get_int("iters", 0);
  u.loss_before = j.at("loss_before").as_number("loss_before");
  u.loss_after = j.at("loss_after").as_number("loss_after");
  u.kept_initial = j.get_bool("kept_initial", false);  // absent in checkpoints before it existed
  u.collect_s = j.get_number("collect_s", 0.0);
  // A checkpoint written before collect_s/optimize_s existed holds only time_s.
  u.optimize_s = j.get_number("optimize_s", j.get_number("time_s", 0.0) - u.collect_s);
  return u;
}

Json distill_json(const DistillResult& d) {
  Json j = Json::object();
  j.set("bn_loss_final", d.bn_loss_final);
  j.set("input_loss_final", d.input_loss_final);
  j.set("bn_loss_noise", d.bn_loss_noise);
  j.set("iters_per_s", d.iters_per_s);
  Json bs = Json::array();
  for (const auto& b : d.batches) bs.push_back(to_json(b));
  j.set("batches", std::move(bs));
  return j;
}

std::string join_path(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace genie::engine
