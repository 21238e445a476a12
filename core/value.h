// The value model every engine maps its column values to (docs/types.md):
// NULL, 64-bit integer, 64-bit float (NaN and infinities included), text
// (UTF-8) and blob.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace syncline::core {

struct Value {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };

  Type type = Type::kNull;
  std::int64_t integer = 0;
  double real = 0;
  std::string bytes;  // text (UTF-8) or blob

  static Value Null() { return Value(); }
  static Value Integer(std::int64_t v) {
    Value value;
    value.type = Type::kInteger;
    value.integer = v;
    return value;
  }
  static Value Real(double v) {
    Value value;
    value.type = Type::kReal;
    value.real = v;
    return value;
  }
  static Value Text(std::string v) {
    Value value;
    value.type = Type::kText;
    value.bytes = std::move(v);
    return value;
  }
  static Value Blob(std::string v) {
    Value value;
    value.type = Type::kBlob;
    value.bytes = std::move(v);
    return value;
  }
};

const char* TypeName(Value::Type type);

// Exact equality of representation: 1 and 1.0 differ, NaN equals NaN, and
// 0.0 differs from -0.0. This is what "the same write" means.
bool SameValue(const Value& a, const Value& b);

}  // namespace syncline::core
