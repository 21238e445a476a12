// DecodeBatchStreaming (core/changeset.h): DecodeBatch's fast path, a
// format 1 batch read change by change from RapidJSON's SAX events. What it
// does not accept, DecodeBatchTree (core/changeset.cc) reads again and
// explains.
#include <algorithm>
#include <charconv>
#include <string>

#include "core/changeset.h"
#include "core/changeset_internal.h"
#include "core/node_id.h"
#include "core/rapidjson.h"

namespace syncline::core {

namespace {

// The streaming reader behind DecodeBatch's fast path: RapidJSON's SAX events
// go straight into the Batch, with no tree in between. It accepts exactly
// what DecodeBatchTree accepts, with the same result, but it checks nothing
// in order and explains nothing: on anything unexpected (a syntax error, a
// duplicate or unknown field, a bad value, a shape it does not know) it stops
// and DecodeBatchTree reads the batch again to name the first fault the way
// it always has. Accepted batches nest at most five levels, far below
// kMaxJsonDepth, and StartObject and StartArray refuse any deeper container.
class BatchReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, BatchReader> {
 public:
  explicit BatchReader(Batch* out) : out_(out) {}

  bool Null() {
    if (where_ == Where::kSchema) return schema_.Null(), true;
    switch (where_) {
      case Where::kTop:
        if (field_ != kCursor) return false;
        return true;
      case Where::kChange:
        if (field_ != kRow) return false;
        row_null_ = true;
        return true;
      case Where::kColumns: columns_->back().value = Value::Null(); return true;
      default: return false;
    }
  }

  bool Bool(bool b) {
    if (where_ == Where::kSchema) return schema_.Bool(b), true;
    if (where_ == Where::kTop && field_ == kHasMore) {
      out_->has_more = b;
      return true;
    }
    if (where_ != Where::kColumns) return false;
    columns_->back().value = Value::Integer(b ? 1 : 0);
    return true;
  }

  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    std::string_view literal(str, length);
    if (where_ == Where::kSchema) return schema_.Raw(literal), true;
    if (where_ == Where::kColumns) return DecodeNumber(literal, &columns_->back().value).ok();
    // Format 2 goes to the tree reader, which knows its fields.
    if (where_ == Where::kTop && field_ == kFormat) return literal == "1";
    if (where_ == Where::kTop && field_ == kSchemaVersion) return SchemaVersion(literal, &out_->schema_version);
    if (where_ != Where::kChange || field_ != kClock) return false;
    if (literal.find_first_of(".eE") != std::string_view::npos) return false;
    auto [ptr, ec] = std::from_chars(literal.data(), literal.data() + literal.size(), change_->clock);
    return ec == std::errc() && ptr == literal.data() + literal.size() && change_->clock >= 1;
  }

  bool String(const char* str, rapidjson::SizeType length, bool) {
    std::string_view text(str, length);
    // RapidJSON decodes a lone low-surrogate escape into bytes that are not
    // UTF-8 (see TreeBuilder in json.cc).
    if (!IsValidUtf8(text)) return false;
    switch (where_) {
      case Where::kSchema: schema_.String(text); return true;
      case Where::kTop:
        if (field_ == kSource) return Canonical(text, &out_->source);
        if (field_ != kCursor) return false;
        out_->cursor.assign(text);
        return true;
      case Where::kChange:
        switch (field_) {
          case kTable:
            if (text.empty()) return false;
            change_->table.assign(text);
            return true;
          case kOp:
            if (text == "upsert")
              change_->op = Op::kUpsert;
            else if (text == "delete")
              change_->op = Op::kDelete;
            else
              return false;
            return true;
          case kHlc: {
            std::optional<Hlc> stamp = HlcFromText(text);
            if (!stamp) return false;
            change_->hlc = *stamp;
            return true;
          }
          case kNode:
            // Most changes of a batch come from a few nodes, mostly the
            // batch's source, spelt the same way each time.
            if (!node_.empty() && text == node_text_) {
              change_->node = node_;
              return true;
            }
            if (!Canonical(text, &change_->node)) return false;
            node_text_.assign(text);
            node_ = change_->node;
            return true;
          default: return false;
        }
      case Where::kColumns: {
        Value& value = columns_->back().value;
        value.type = Value::Type::kText;
        value.bytes.assign(text);
        return true;
      }
      case Where::kTagged:
        if (tag_done_) return false;
        tag_done_ = true;
        return DecodeTag(tag_, text, &columns_->back().value).ok();
      default: return false;
    }
  }

  bool StartObject() {
    switch (where_) {
      case Where::kStart: where_ = Where::kTop; return true;
      case Where::kTop:
        if (field_ != kSchema) return false;
        where_ = Where::kSchema;
        schema_depth_ = 1;
        schema_.BeginObject();
        return true;
      case Where::kSchema:
        if (++schema_depth_ >= kMaxJsonDepth) return false;
        schema_.BeginObject();
        return true;
      case Where::kChanges:
        out_->changes.emplace_back();
        change_ = &out_->changes.back();
        seen_ = 0;
        row_null_ = false;
        where_ = Where::kChange;
        return true;
      case Where::kChange:
        if (field_ != kPk && field_ != kRow) return false;
        columns_ = field_ == kPk ? &change_->pk : &change_->row;
        // Changes of a batch mostly have the shape of the one before. Capped,
        // so that a wide change followed by narrow ones cannot make each of
        // them take much more memory than its text.
        columns_->reserve(std::min<std::size_t>(field_ == kPk ? pk_size_ : row_size_, kReserveColumns));
        where_ = Where::kColumns;
        return true;
      case Where::kColumns:
        tag_.clear();
        tag_done_ = false;
        where_ = Where::kTagged;
        return true;
      default: return false;
    }
  }

  bool Key(const char* str, rapidjson::SizeType length, bool) {
    std::string_view key(str, length);
    switch (where_) {
      case Where::kSchema:
        if (!IsValidUtf8(key)) return false;
        schema_.Key(key);
        return true;
      case Where::kTop: return Field(key, kTopFields, &top_seen_);
      case Where::kChange: return Field(key, kChangeFields, &seen_);
      case Where::kColumns:
        if (key.empty() || !IsValidUtf8(key)) return false;
        for (const ColumnValue& column : *columns_) {
          if (column.column == key) return false;
        }
        columns_->emplace_back();
        columns_->back().column.assign(key);
        return true;
      case Where::kTagged:
        if (!tag_.empty() || (key != "blob" && key != "real")) return false;
        tag_.assign(key);
        return true;
      default: return false;
    }
  }

  bool EndObject(rapidjson::SizeType) {
    switch (where_) {
      case Where::kSchema:
        schema_.EndObject();
        if (--schema_depth_ == 0) where_ = Where::kTop;
        return true;
      case Where::kTop:
        where_ = Where::kDone;
        return (top_seen_ & Bit(kFormat)) && (top_seen_ & Bit(kSource)) && (top_seen_ & Bit(kChanges));
      case Where::kChange: where_ = Where::kChanges; return ChangeComplete();
      case Where::kColumns:
        where_ = Where::kChange;
        (columns_ == &change_->pk ? pk_size_ : row_size_) = columns_->size();
        return !columns_->empty();
      case Where::kTagged: where_ = Where::kColumns; return tag_done_;
      default: return false;
    }
  }

  bool StartArray() {
    if (where_ == Where::kSchema) {
      if (++schema_depth_ >= kMaxJsonDepth) return false;
      schema_.BeginArray();
      return true;
    }
    if (where_ != Where::kTop || field_ != kChanges) return false;
    where_ = Where::kChanges;
    return true;
  }

  bool EndArray(rapidjson::SizeType) {
    if (where_ == Where::kSchema) {
      schema_.EndArray();
      --schema_depth_;
      return true;
    }
    if (where_ != Where::kChanges) return false;
    where_ = Where::kTop;
    return true;
  }

  bool done() const { return where_ == Where::kDone; }

 private:
  // Where the next event lands: the containers of an accepted batch, from
  // the outside in.
  // kSchema: inside the schema document, copied as it comes.
  enum class Where { kStart, kTop, kChanges, kChange, kColumns, kTagged, kSchema, kDone };
  // Field numbers: the batch's, then the change's.
  enum FieldId {
    kFormat,
    kSource,
    kCursor,
    kHasMore,
    kChanges,
    kSchemaVersion,
    kSchema,
    kTable,
    kOp,
    kPk,
    kRow,
    kClock,
    kHlc,
    kNode,
    kNone
  };
  struct FieldName {
    std::string_view name;
    FieldId id;
  };
  static constexpr FieldName kTopFields[] = {{"format", kFormat},   {"source", kSource},
                                             {"cursor", kCursor},   {"has_more", kHasMore},
                                             {"changes", kChanges}, {"schema_version", kSchemaVersion},
                                             {"schema", kSchema}};
  static constexpr FieldName kChangeFields[] = {{"table", kTable}, {"op", kOp},   {"pk", kPk},    {"row", kRow},
                                                {"clock", kClock}, {"hlc", kHlc}, {"node", kNode}};

  static constexpr unsigned Bit(FieldId id) { return 1u << id; }
  static constexpr std::size_t kReserveColumns = 64;

  // A known field, each at most once (a duplicate is a parse error).
  template <std::size_t N> bool Field(std::string_view key, const FieldName (&fields)[N], unsigned* seen) {
    for (const FieldName& field : fields) {
      if (field.name != key) continue;
      if (*seen & Bit(field.id)) return false;
      *seen |= Bit(field.id);
      field_ = field.id;
      return true;
    }
    return false;
  }

  static bool Canonical(std::string_view text, std::string* out) {
    std::optional<std::string> id = CanonicalNodeId(text);
    if (!id) return false;
    *out = std::move(*id);
    return true;
  }

  // The checks DecodeChange makes once every field is known.
  bool ChangeComplete() const {
    constexpr unsigned kRequired = Bit(kTable) | Bit(kOp) | Bit(kPk) | Bit(kClock) | Bit(kHlc) | Bit(kNode);
    if ((seen_ & kRequired) != kRequired) return false;
    const Change& change = *change_;
    if (change.op == Op::kDelete) return change.row.empty() && (!(seen_ & Bit(kRow)) || row_null_);
    if (row_null_ || change.row.empty()) return false;
    for (const ColumnValue& key : change.pk) {
      const ColumnValue* match = nullptr;
      for (const ColumnValue& column : change.row) {
        if (column.column == key.column) match = &column;
      }
      if (match == nullptr || !SameValue(match->value, key.value)) return false;
    }
    return true;
  }

  Batch* out_;
  Where where_ = Where::kStart;
  JsonWriter schema_{&out_->schema};
  int schema_depth_ = 0;
  FieldId field_ = kNone;  // the field whose value comes next
  unsigned top_seen_ = 0;  // Bit() of the batch fields read so far
  unsigned seen_ = 0;      // ... and of the current change's
  Change* change_ = nullptr;
  bool row_null_ = false;  // the current change has "row": null
  std::vector<ColumnValue>* columns_ = nullptr;
  std::string tag_;  // the current value object's key
  bool tag_done_ = false;
  std::size_t pk_size_ = 0, row_size_ = 0;  // the previous change's
  std::string node_text_, node_;            // the last "node" read, as sent and canonical
};

}  // namespace

bool DecodeBatchStreaming(std::string_view text, Batch* out) {
  *out = Batch{};
  if (text.size() > kMaxBatchBytes) return false;
  // One pass over the text instead of RapidJSON's UTF-8 check per string
  // (without that flag it reads valid input the same way). It also refuses
  // what a JSON text never holds raw and RapidJSON's SSE2 string scan misses
  // (see core/rapidjson.h), and NUL, which RapidJSON takes for the end.
  if (!IsPlainJsonText(text)) return false;
  BatchReader reader(out);
  return ParseInSitu(text, reader) && reader.done();
}

}  // namespace syncline::core
