// JSON in and out.
//
// Reading: RapidJSON's SAX reader tokenizes and validates (UTF-8, syntax,
// iterative so nesting cannot overflow the stack) and we build a small tree.
// Numbers are kept as their literal text, so that the codec decides exactly
// how to read them: an integer literal that does not fit 64 bits is an error,
// never a silently rounded float, and 1.0 stays distinct from 1.
//
// Writing: a minimal appender; doubles go through FormatDouble (shortest
// text that reads back to the same double, the same in every build).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace syncline::core {

struct Json {
  enum class Kind { kNull, kFalse, kTrue, kNumber, kString, kArray, kObject };

  Kind kind = Kind::kNull;
  std::string text;  // string contents, or a number's literal
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kNumber; }
  bool is_null() const { return kind == Kind::kNull; }
  const Json* Find(std::string_view key) const;
};

inline constexpr int kMaxJsonDepth = 64;

// Parses a whole document. Rejects invalid UTF-8, duplicate object keys,
// nesting deeper than kMaxJsonDepth and trailing content.
Status ParseJson(std::string_view input, Json* out);

const char* JsonKindName(Json::Kind kind);
// A string member of an object ("" when absent or not a string).
std::string StringMember(const Json& json, std::string_view key);
// A tree back as JSON text (members in their order; numbers as read).
std::string JsonText(const Json& json);

bool IsValidUtf8(std::string_view bytes);
// Valid UTF-8 with no control character but tab, line feed and carriage
// return: all a JSON text may hold outside escapes (RFC 8259), and what
// DecodeBatch's streaming reader insists on (see core/rapidjson.h).
bool IsPlainJsonText(std::string_view bytes);

// Appends JSON text to a string. The caller keeps the structure well formed.
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject() {
    Separate();
    out_->push_back('{');
    first_ = true;
  }
  void EndObject() {
    out_->push_back('}');
    first_ = false;
  }
  void BeginArray() {
    Separate();
    out_->push_back('[');
    first_ = true;
  }
  void EndArray() {
    out_->push_back(']');
    first_ = false;
  }
  void Key(std::string_view key) {
    String(key);
    out_->push_back(':');
    first_ = true;
  }
  void String(std::string_view text);  // text must be valid UTF-8
  void Int(std::int64_t value);
  void Double(double value);  // finite values only; always has '.' or 'e'
  void Bool(bool value) { Raw(value ? "true" : "false"); }
  void Null() { Raw("null"); }
  void Raw(std::string_view json) {
    Separate();
    out_->append(json);
  }
  // A place in the text to come back to, undoing what was written after it.
  struct Mark {
    std::size_t size;
    bool first;
  };
  Mark GetMark() const { return {out_->size(), first_}; }
  void Rewind(const Mark& mark) {
    out_->resize(mark.size);
    first_ = mark.first;
  }

 private:
  void Separate() {
    if (!first_) out_->push_back(',');
    first_ = false;
  }
  std::string* out_;
  bool first_ = true;
};

std::string Base64Encode(std::string_view bytes);
// Strict: standard alphabet, padding required, no whitespace.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace syncline::core
