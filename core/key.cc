// Row keys (core/changeset.h, "A row's identity inside metadata").
#include <cmath>
#include <string>
#include <vector>

#include "core/changeset.h"
#include "core/rapidjson.h"

namespace syncline::core {

namespace {

Status Invalid(std::string message) { return Status(Code::kInvalidInput, std::move(message)); }

}  // namespace

namespace {

// An integral real in the int64 range: one key with the integer.
bool IsIntegralReal(const Value& value) {
  return value.type == Value::Type::kReal && std::isfinite(value.real) && value.real == std::floor(value.real) &&
         value.real >= -9223372036854775808.0 && value.real < 9223372036854775808.0;
}

// WriteValue(writer, KeyForm(value)), without the copy.
void WriteKeyValue(JsonWriter& writer, const Value& value) {
  if (IsIntegralReal(value))
    writer.Int(static_cast<std::int64_t>(value.real));
  else
    WriteValue(writer, value);
}

template <typename Get> Status EncodeKeyValues(std::size_t count, Get get, std::string* out) {
  out->clear();
  JsonWriter writer(out);
  writer.BeginArray();
  for (std::size_t i = 0; i < count; ++i) {
    const Value& value = get(i);
    if (value.type == Value::Type::kText && !IsValidUtf8(value.bytes))
      return Invalid("primary key column " + std::to_string(i + 1) + " is text that is not valid UTF-8");
    WriteKeyValue(writer, value);
  }
  writer.EndArray();
  return Status::Ok();
}

}  // namespace

Value KeyForm(const Value& value) {
  if (IsIntegralReal(value)) return Value::Integer(static_cast<std::int64_t>(value.real));
  return value;
}

Status EncodeKey(const std::vector<Value>& values, std::string* out) {
  return EncodeKeyValues(
      values.size(), [&](std::size_t i) -> const Value& { return values[i]; }, out);
}

Status EncodeKeyOf(const std::vector<const Value*>& values, std::string* out) {
  return EncodeKeyValues(
      values.size(), [&](std::size_t i) -> const Value& { return *values[i]; }, out);
}

namespace {

// DecodeKey's streaming reader, like BatchReader: it accepts what the tree
// reader accepts, the same way, and stops on anything else.
class KeyReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, KeyReader> {
 public:
  explicit KeyReader(std::vector<Value>* out) : out_(out) {}

  bool Null() { return Add() != nullptr; }
  bool Bool(bool b) {
    Value* value = Add();
    if (value == nullptr) return false;
    *value = Value::Integer(b ? 1 : 0);
    return true;
  }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    Value* value = Add();
    return value != nullptr && DecodeNumber(std::string_view(str, length), value).ok();
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    std::string_view text(str, length);
    if (!IsValidUtf8(text)) return false;  // a lone low-surrogate escape (see BatchReader)
    if (where_ == Where::kTagged) {
      if (tag_.empty() || tag_done_) return false;
      tag_done_ = true;
      return DecodeTag(tag_, text, &out_->back()).ok();
    }
    Value* value = Add();
    if (value == nullptr) return false;
    value->type = Value::Type::kText;
    value->bytes.assign(text);
    return true;
  }
  bool StartObject() {
    if (Add() == nullptr) return false;
    tag_.clear();
    tag_done_ = false;
    where_ = Where::kTagged;
    return true;
  }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    std::string_view key(str, length);
    if (where_ != Where::kTagged || !tag_.empty() || (key != "blob" && key != "real")) return false;
    tag_.assign(key);
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    if (where_ != Where::kTagged || !tag_done_) return false;
    where_ = Where::kItems;
    return true;
  }
  bool StartArray() {
    if (where_ != Where::kStart) return false;
    where_ = Where::kItems;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    if (where_ != Where::kItems) return false;
    where_ = Where::kDone;
    return true;
  }

  bool done() const { return where_ == Where::kDone; }

 private:
  enum class Where { kStart, kItems, kTagged, kDone };

  // The next item of the array, or null where no value may start.
  Value* Add() {
    if (where_ != Where::kItems) return nullptr;
    out_->emplace_back();
    return &out_->back();
  }

  std::vector<Value>* out_;
  Where where_ = Where::kStart;
  std::string tag_;
  bool tag_done_ = false;
};

}  // namespace

bool DecodeKeyStreaming(std::string_view text, std::vector<Value>* out) {
  out->clear();
  if (!IsPlainJsonText(text)) return false;
  KeyReader reader(out);
  return ParseInSitu(text, reader) && reader.done();
}

Status DecodeKey(std::string_view text, std::vector<Value>* out) {
  if (DecodeKeyStreaming(text, out)) return Status::Ok();
  return DecodeKeyTree(text, out);
}

Status DecodeKeyTree(std::string_view text, std::vector<Value>* out) {
  out->clear();
  Json json;
  Status status = ParseJson(text, &json);
  if (!status.ok()) return status;
  if (!json.is_array()) return Invalid("a row key must be a JSON array");
  out->resize(json.items.size());
  for (std::size_t i = 0; i < json.items.size(); ++i) {
    status = DecodeValue(json.items[i], &(*out)[i]);
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace syncline::core
