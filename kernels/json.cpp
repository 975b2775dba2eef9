// JSON value, recursive-descent parser (with line:col errors) and printer (insertion-ordered keys,
// shortest round-tripping number format).
#include "kernels/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace genie {

Json::Json(float v) : type_(Type::Number), num_(double(v)) {
  if (!std::isfinite(v)) return;
  char buf[32];
  for (int prec = 1; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, double(v));
    const double d = std::strtod(buf, nullptr);
    if (float(d) == v) {
      num_ = d;
      return;
    }
  }
}

Json Json::object() {
  Json j;
  j.type_ = Type::Object;
  return j;
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null:
      return "null";
    case Type::Bool:
      return "bool";
    case Type::Number:
      return "number";
    case Type::String:
      return "string";
    case Type::Array:
      return "array";
    case Type::Object:
      return "object";
  }
  return "?";
}

#define JSON_EXPECT(t, tn) \
  GENIE_CHECK(type_ == Type::t, "[json] ", what, ": expected ", tn, ", got ", type_name())

bool Json::as_bool(const char* what) const {
  JSON_EXPECT(Bool, "bool");
  return b_;
}
double Json::as_number(const char* what) const {
  JSON_EXPECT(Number, "number");
  return num_;
}
int64_t Json::as_int(const char* what) const {
  JSON_EXPECT(Number, "integer");
  GENIE_CHECK(
      std::isfinite(num_) && std::floor(num_) == num_ && std::fabs(num_) < 9.007199254740992e15,
      "[json] ", what, ": expected an integer, got ", num_);
  return int64_t(num_);
}
const std::string& Json::as_string(const char* what) const {
  JSON_EXPECT(String, "string");
  return str_;
}
const Json::Array& Json::as_array(const char* what) const {
  JSON_EXPECT(Array, "array");
  return arr_;
}
Json::Array& Json::as_array(const char* what) {
  JSON_EXPECT(Array, "array");
  return arr_;
}
const Json::Object& Json::as_object(const char* what) const {
  JSON_EXPECT(Object, "object");
  return obj_;
}
Json::Object& Json::as_object(const char* what) {
  JSON_EXPECT(Object, "object");
  return obj_;
}
#undef JSON_EXPECT

size_t Json::size() const {
  if (type_ == Type::Array) return arr_.size();
  if (type_ == Type::Object) return obj_.size();
  GENIE_CHECK(false, "[json] size: expected array or object, got ", type_name());
  return 0;
}

const Json& Json::operator[](size_t i) const {
  const Array& a = as_array();
  GENIE_CHECK(i < a.size(), "[json] index ", i, " out of range (size ", a.size(), ")");
  return a[i];
}

void Json::push_back(Json v) {
  if (type_ == Type::Null) type_ = Type::Array;
  as_array("push_back").push_back(std::move(v));
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Json::contains(const std::string& key) const { return find(key) != nullptr; }

const Json& Json::at(const std::string& key) const {
  as_object(key.c_str());
  const Json* v = find(key);
  GENIE_CHECK(v != nullptr, "[json] missing key '", key, "'");
  return *v;
}

Json& Json::set(const std::string& key, Json v) {
  if (type_ == Type::Null) type_ = Type::Object;
  Object& o = as_object("set");
  for (auto& kv : o)
    if (kv.first == key) {
      kv.second = std::move(v);
      return kv.second;
    }
  o.emplace_back(key, std::move(v));
  return o.back().second;
}

double Json::get_number(const std::string& key, double def) const {
  const Json* v = find(key);
  return (v == nullptr || v->is_null()) ? def : v->as_number(key.c_str());
}
int64_t Json::get_int(const std::string& key, int64_t def) const {
  const Json* v = find(key);
  return (v == nullptr || v->is_null()) ? def : v->as_int(key.c_str());
}
bool Json::get_bool(const std::string& key, bool def) const {
  const Json* v = find(key);
  return (v == nullptr || v->is_null()) ? def : v->as_bool(key.c_str());
}
std::string Json::get_string(const std::string& key, const std::string& def) const {
  const Json* v = find(key);
  return (v == nullptr || v->is_null()) ? def : v->as_string(key.c_str());
}

bool Json::operator==(const Json& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::Null:
      return true;
    case Type::Bool:
      return b_ == o.b_;
    case Type::Number:
      return num_ == o.num_;
    case Type::String:
      return str_ == o.str_;
    case Type::Array:
      return arr_ == o.arr_;
    case Type::Object:
      return obj_ == o.obj_;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Printer

static void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);  // UTF-8 passes through
        }
    }
  }
  out += '"';
}

static void dump_number(std::string& out, double v) {
  // JSON has no NaN/Inf; null is the conventional stand-in.
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (std::floor(v) == v && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    out += buf;
    return;
  }
  // Shortest %.Ng that reads back to the same double.
  char buf[40];
  for (int prec = 6; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  out += buf;
}

void Json::dump_to(std::string& out, int indent, int level) const {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent * lvl), ' ');
  };
  switch (type_) {
    case Type::Null:
      out += "null";
      break;
    case Type::Bool:
      out += b_ ? "true" : "false";
      break;
    case Type::Number:
      dump_number(out, num_);
      break;
    case Type::String:
      dump_string(out, str_);
      break;
    case Type::Array: {
      out += '[';
      for (size_t i = 0; i < arr_.size(); ++i) {
        if (i) out += indent < 0 ? "," : ",";
        newline(level + 1);
        arr_[i].dump_to(out, indent, level + 1);
      }
      if (!arr_.empty()) newline(level);
      out += ']';
      break;
    }
    case Type::Object: {
      out += '{';
      for (size_t i = 0; i < obj_.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        dump_string(out, obj_[i].first);
        out += indent < 0 ? ":" : ": ";
        obj_[i].second.dump_to(out, indent, level + 1);
      }
      if (!obj_.empty()) newline(level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser

namespace {

class Parser {
 public:
  Parser(const std::string& s, const std::string& where) : s_(s), where_(where) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("expected end of input, got '" + std::string(1, s_[pos_]) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw Error(str("[json] ", where_, ":", line, ":", col, ": ", msg));
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  std::string got() const {
    return pos_ < s_.size() ? "'" + std::string(1, s_[pos_]) + "'" : std::string("end of input");
  }

  void expect_literal(const char* lit) {
    const size_t n = std::strlen(lit);
    if (s_.compare(pos_, n, lit) != 0) fail(str("expected '", lit, "', got ", got()));
    pos_ += n;
  }

  Json parse_value(int depth) {
    if (depth > 512) fail("nesting deeper than 512 levels");
    if (pos_ >= s_.size()) fail("expected a value, got end of input");
    const char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Json(parse_string());
    if (c == 't') {
      expect_literal("true");
      return Json(true);
    }
    if (c == 'f') {
      expect_literal("false");
      return Json(false);
    }
    if (c == 'n') {
      expect_literal("null");
      return Json();
    }
    if (c == '-' || (c >= '0' && c <= '9')) return Json(parse_number());
    fail(str("expected a value, got ", got()));
  }

  Json parse_object(int depth) {
    ++pos_;  // '{'
    Json obj = Json::object();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return obj;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail(str("expected a string key, got ", got()));
      std::string key = parse_string();
      if (obj.contains(key))
        fail("duplicate key '" + (key.size() > 64 ? key.substr(0, 64) + "…" : key) + "'");
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail(str("expected ':', got ", got()));
      ++pos_;
      skip_ws();
      obj.set(key, parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      fail(str("expected ',' or '}', got ", got()));
    }
  }

  Json parse_array(int depth) {
    ++pos_;  // '['
    Json arr = Json::array();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    for (;;) {
      skip_ws();
      arr.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      fail(str("expected ',' or ']', got ", got()));
    }
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("expected 4 hex digits after \\u, got end of input");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= uint32_t(h - 'A' + 10);
      else
        fail(str("expected a hex digit, got ", got()));
      ++pos_;
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // surrogate pair
            if (pos_ + 2 <= s_.size() && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
              pos_ += 2;
              const uint32_t lo = parse_hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              fail("unpaired high surrogate");
            }
          }
          put_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail(str("invalid escape '\\", e, "'"));
      }
    }
  }

  double parse_number() {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&]() {
      const size_t b = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - b;
    };
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail(str("expected a digit, got ", got()));
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail(str("expected a digit after '.', got ", got()));
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail(str("expected an exponent digit, got ", got()));
    }
    return std::strtod(s_.substr(start, pos_ - start).c_str(), nullptr);
  }

  const std::string& s_;
  std::string where_;
  size_t pos_ = 0;
};

}  // namespace

Json Json::parse(const std::string& text, const std::string& where) {
  return Parser(text, where).parse_document();
}

}  // namespace genie
