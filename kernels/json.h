// A small JSON value (null / bool / number / string / array / object) with a strict parser and a
// stable printer, for graph descriptions, configs and reports. Objects keep insertion order, so
// dump() of a parsed document reproduces its key order. Numbers are doubles (integers up to 2^53
// round-trip exactly). Parse errors throw genie::Error "[json] <where>:<line>:<col>: expected …".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common.h"

namespace genie {

class Json {
 public:
  enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // insertion order

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), b_(b) {}
  Json(int v) : type_(Type::Number), num_(v) {}
  Json(int64_t v) : type_(Type::Number), num_(double(v)) {}
  Json(size_t v) : type_(Type::Number), num_(double(v)) {}
  Json(double v) : type_(Type::Number), num_(v) {}
  // A float is stored as the shortest decimal that reads back to it (0.4f dumps as 0.4).
  Json(float v);
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Json(Array a) : type_(Type::Array), arr_(std::move(a)) {}
  static Json array() { return Json(Array{}); }
  static Json object();
  template <class T>
  static Json array_of(const std::vector<T>& v) {
    Array a;
    a.reserve(v.size());
    for (const auto& x : v) a.emplace_back(x);
    return Json(std::move(a));
  }

  Type type() const { return type_; }
  const char* type_name() const;
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; a wrong type throws "[json] expected <type>, got <type>" (`what` names the
  // field).
  bool as_bool(const char* what = "value") const;
  double as_number(const char* what = "value") const;
  int64_t as_int(const char* what = "value") const;  // must be integral
  const std::string& as_string(const char* what = "value") const;
  const Array& as_array(const char* what = "value") const;
  Array& as_array(const char* what = "value");
  const Object& as_object(const char* what = "value") const;
  Object& as_object(const char* what = "value");

  // Arrays.
  size_t size() const;  // array or object length
  const Json& operator[](size_t i) const;
  void push_back(Json v);

  // Objects. set() replaces an existing key in place (keeping its position) or appends.
  bool contains(const std::string& key) const;
  const Json& at(const std::string& key) const;    // throws "[json] missing key 'k'"
  const Json* find(const std::string& key) const;  // nullptr when absent
  Json& set(const std::string& key, Json v);
  // Value of `key`, or `def` when absent or null.
  double get_number(const std::string& key, double def) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;

  // indent < 0: one line with no spaces; otherwise pretty-printed with `indent` spaces per level.
  std::string dump(int indent = -1) const;
  // `where` (a file name, "graph attribute", …) prefixes error messages.
  static Json parse(const std::string& text, const std::string& where = "json");

  bool operator==(const Json& o) const;
  bool operator!=(const Json& o) const { return !(*this == o); }

 private:
  void dump_to(std::string& out, int indent, int level) const;

  Type type_ = Type::Null;
  bool b_ = false;
  double num_ = 0.0;
  std::string str_;
  Array arr_;
  Object obj_;
};

}  // namespace genie
