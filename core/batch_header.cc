// ReadBatchHeader (core/changeset.h): one pass of RapidJSON's tokenizer over
// a batch, keeping only the fields a sync loop steers by. Nothing is
// copied but the cursor; the changes are counted, not decoded (apply_push
// decodes them, once).
#include <charconv>
#include <cstring>

#include "core/changeset.h"
#include "core/rapidjson.h"

namespace syncline::core {

namespace {

class HeaderReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, HeaderReader> {
 public:
  explicit HeaderReader(BatchHeader* out) : out_(out) {}

  bool Default() { return depth_ > 0; }  // a batch is an object
  bool String(const char* text, rapidjson::SizeType length, bool) {
    if (depth_ == 1 && field_ == Field::kCursor) {
      out_->cursor.assign(text, length);
      has_cursor_ = true;
    }
    // Numbers arrive as their text (kParseNumbersAsStringsFlag).
    if (depth_ == 1 && field_ == Field::kSchemaVersion) {
      std::int64_t version = 0;
      auto [end, error] = std::from_chars(text, text + length, version);
      if (error != std::errc() || end != text + length || version < 0) return false;
      out_->schema_version = version;
    }
    return Default();
  }
  bool Bool(bool value) {
    if (depth_ == 1 && field_ == Field::kHasMore) out_->has_more = value;
    return Default();
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    if (depth_ == 1) {
      const std::string_view key(text, length);
      field_ = key == "changes"          ? Field::kChanges
               : key == "cursor"         ? Field::kCursor
               : key == "has_more"       ? Field::kHasMore
               : key == "schema_version" ? Field::kSchemaVersion
                                         : Field::kOther;
    }
    return true;
  }
  bool StartObject() { return Open(); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() {
    if (depth_ == 0) return false;
    if (depth_ == 1 && field_ == Field::kChanges) in_changes_ = has_changes_ = true;
    return Open();
  }
  bool EndArray(rapidjson::SizeType) {
    if (depth_ == 2) in_changes_ = false;
    return Close();
  }

  bool complete() const { return has_changes_ && has_cursor_; }

 private:
  enum class Field { kOther, kChanges, kCursor, kHasMore, kSchemaVersion };

  bool Open() {
    if (depth_ == 2 && in_changes_) ++out_->changes;  // a change, straight inside "changes"
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }

  BatchHeader* out_;
  int depth_ = 0;
  Field field_ = Field::kOther;
  bool in_changes_ = false, has_changes_ = false, has_cursor_ = false;
};

}  // namespace

Status ReadBatchHeader(std::string_view text, BatchHeader* out) {
  *out = BatchHeader();
  if (std::memchr(text.data(), '\0', text.size()) != nullptr)
    return Status(Code::kInvalidInput, "batch: NUL byte in input");
  HeaderReader reader(out);
  rapidjson::Reader parser;
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::ParseResult result = parser.Parse<rapidjson::kParseNumbersAsStringsFlag>(stream, reader);
  if (!result)
    return Status(Code::kInvalidInput, "batch: malformed JSON at byte " + std::to_string(result.Offset()) + ": " +
                                           rapidjson::GetParseError_En(result.Code()));
  if (!reader.complete()) return Status(Code::kInvalidInput, "batch: lacks \"changes\" or \"cursor\"");
  return Status::Ok();
}

}  // namespace syncline::core
