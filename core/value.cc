#include "core/value.h"

#include <cmath>
#include <cstring>

namespace syncline::core {

const char* TypeName(Value::Type type) {
  switch (type) {
    case Value::Type::kNull: return "null";
    case Value::Type::kInteger: return "integer";
    case Value::Type::kReal: return "real";
    case Value::Type::kText: return "text";
    case Value::Type::kBlob: return "blob";
  }
  return "unknown";
}

bool SameValue(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Type::kNull: return true;
    case Value::Type::kInteger: return a.integer == b.integer;
    case Value::Type::kReal:
      if (std::isnan(a.real) || std::isnan(b.real)) return std::isnan(a.real) && std::isnan(b.real);
      return std::memcmp(&a.real, &b.real, sizeof(double)) == 0;
    case Value::Type::kText:
    case Value::Type::kBlob: return a.bytes == b.bytes;
  }
  return false;
}

}  // namespace syncline::core
