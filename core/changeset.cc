// The changeset codec (core/changeset.h; the format is docs/protocol.md):
// values, the tree reader (DecodeBatchTree) and DecodeBatch, which tries the
// streaming reader (core/changeset_streaming.cc) first, and the writer
// (BatchWriter).
#include "core/changeset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "core/changeset_internal.h"
#include "core/float_text.h"
#include "core/node_id.h"

namespace syncline::core {

std::string ChangeContext(std::size_t index, std::string_view table) {
  std::string context = "change " + std::to_string(index);
  if (!table.empty()) context += " (table \"" + std::string(table) + "\")";
  return context + ": ";
}

namespace {

Status Invalid(std::string message) { return Status(Code::kInvalidInput, std::move(message)); }

}  // namespace

bool SchemaVersion(std::string_view literal, std::int64_t* out) {
  if (literal.empty() || literal.find_first_not_of("0123456789") != std::string_view::npos) return false;
  auto [ptr, ec] = std::from_chars(literal.data(), literal.data() + literal.size(), *out);
  return ec == std::errc() && ptr == literal.data() + literal.size();
}

Status DecodeNumber(std::string_view literal, Value* out) {
  const char* begin = literal.data();
  const char* end = begin + literal.size();
  if (literal.find_first_of(".eE") == std::string_view::npos) {
    std::int64_t v;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (ec != std::errc() || ptr != end)
      return Invalid("integer " + std::string(literal) + " is out of the 64-bit range");
    *out = Value::Integer(v);
    return Status::Ok();
  }
  double v;
  if (!ParseDouble(literal, &v)) return Invalid("number " + std::string(literal) + " is out of the double range");
  *out = Value::Real(v);
  return Status::Ok();
}

// A value object with one member whose value is a string: {tag: payload}.
Status DecodeTag(std::string_view tag, std::string_view payload, Value* out) {
  if (tag == "blob") {
    std::string bytes;
    if (!Base64Decode(payload, &bytes)) return Invalid("blob is not valid base64");
    *out = Value::Blob(std::move(bytes));
    return Status::Ok();
  }
  if (tag == "real") {
    double v;
    if (payload == "NaN") {
      v = std::numeric_limits<double>::quiet_NaN();
    } else if (payload == "Infinity") {
      v = std::numeric_limits<double>::infinity();
    } else if (payload == "-Infinity") {
      v = -std::numeric_limits<double>::infinity();
    } else {
      if (!ParseDouble(payload, &v))
        return Invalid("real must be a decimal number, \"NaN\", \"Infinity\" or \"-Infinity\", got \"" +
                       std::string(payload.substr(0, 60)) + "\"");
    }
    *out = Value::Real(v);
    return Status::Ok();
  }
  return Invalid("a value object must be {\"blob\": base64} or {\"real\": \"NaN\"|\"Infinity\"|\"-Infinity\"}");
}

namespace {

Status DecodeTaggedValue(const Json& json, Value* out) {
  if (json.members.size() == 1 && json.members[0].second.is_string())
    return DecodeTag(json.members[0].first, json.members[0].second.text, out);
  return DecodeTag({}, {}, out);
}

}  // namespace

std::string RealToText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buf[kDoubleTextSize];
  std::string text(buf, FormatDouble(value, buf));
  // Always recognisably a float: 1 -> 1.0, 1e+300 -> 1.0e+300.
  if (text.find('.') == std::string::npos) {
    std::size_t exponent = text.find('e');
    text.insert(exponent == std::string::npos ? text.size() : exponent, ".0");
  }
  return text;
}

Status DecodeValue(const Json& json, Value* out) {
  switch (json.kind) {
    case Json::Kind::kNull: *out = Value::Null(); return Status::Ok();
    case Json::Kind::kFalse: *out = Value::Integer(0); return Status::Ok();
    case Json::Kind::kTrue: *out = Value::Integer(1); return Status::Ok();
    case Json::Kind::kNumber: return DecodeNumber(json.text, out);
    case Json::Kind::kString: *out = Value::Text(json.text); return Status::Ok();
    case Json::Kind::kObject: return DecodeTaggedValue(json, out);
    case Json::Kind::kArray: return Invalid("an array is not a column value");
  }
  return Invalid("unknown JSON value");
}

std::string ColumnsJson(const std::vector<ColumnValue>& columns) {
  std::string json;
  JsonWriter writer(&json);
  writer.BeginObject();
  for (const ColumnValue& column : columns) {
    writer.Key(column.column);
    WriteValue(writer, column.value);
  }
  writer.EndObject();
  return json;
}

void WriteValue(JsonWriter& writer, const Value& value) {
  switch (value.type) {
    case Value::Type::kNull: writer.Null(); return;
    case Value::Type::kInteger: writer.Int(value.integer); return;
    case Value::Type::kReal: {
      // A plain literal only where it survives every reader: jsonb turns
      // "1e+300" into an integer-looking literal and "-0.0" into "0.0", so
      // those, like NaN and the infinities, travel as tagged text.
      std::string text = RealToText(value.real);
      bool plain = std::isfinite(value.real) && text.find('e') == std::string::npos &&
                   !(value.real == 0 && std::signbit(value.real));
      if (plain) {
        writer.Raw(text);
      } else {
        writer.BeginObject();
        writer.Key("real");
        writer.String(text);
        writer.EndObject();
      }
      return;
    }
    case Value::Type::kText: writer.String(value.bytes); return;
    case Value::Type::kBlob:
      writer.BeginObject();
      writer.Key("blob");
      writer.String(Base64Encode(value.bytes));
      writer.EndObject();
      return;
  }
}

namespace {

Status DecodeColumns(const Json& json, const char* field, std::vector<ColumnValue>* out) {
  if (!json.is_object()) return Invalid(std::string("\"") + field + "\" must be an object");
  if (json.members.empty()) return Invalid(std::string("\"") + field + "\" is empty");
  out->reserve(json.members.size());
  for (const auto& [name, value_json] : json.members) {
    if (name.empty()) return Invalid(std::string("\"") + field + "\" has an empty column name");
    ColumnValue column{name, {}};
    Status status = DecodeValue(value_json, &column.value);
    if (!status.ok()) return status.WithPrefix("column \"" + name + "\": ");
    out->push_back(std::move(column));
  }
  return Status::Ok();
}

// {"hlc": "16 hex digits", "node": "uuid"}.
Status DecodeStamp(const Json& json, Stamp* out) {
  const Json* hlc = json.is_object() ? json.Find("hlc") : nullptr;
  const Json* node = json.is_object() ? json.Find("node") : nullptr;
  std::optional<Hlc> stamp;
  std::optional<std::string> node_id;
  if (hlc == nullptr || node == nullptr || json.members.size() != 2 || !hlc->is_string() || !node->is_string() ||
      !(stamp = HlcFromText(hlc->text)) || !(node_id = CanonicalNodeId(node->text)))
    return Invalid("a stamp is {\"hlc\": 16 hex digits, \"node\": a UUID}");
  *out = Stamp{*stamp, std::move(*node_id)};
  return Status::Ok();
}

// Format 2: "columns" (upserts) and "delete_stamp" (deletes).
Status DecodeColumnStamps(const Json& json, Change* change) {
  if (const Json* columns = json.Find("columns"); columns != nullptr) {
    if (change->op != Op::kUpsert) return Invalid("a delete carries no \"columns\"");
    if (!columns->is_object()) return Invalid("\"columns\" must be an object");
    for (const auto& [name, stamp_json] : columns->members) {
      bool carried = false;
      for (const ColumnValue& column : change->row)
        carried = carried || column.column == name;
      if (!carried) return Invalid("\"columns\" names \"" + name + "\", which \"row\" does not carry");
      Stamp stamp;
      Status status = DecodeStamp(stamp_json, &stamp);
      if (!status.ok()) return status.WithPrefix("\"columns\": \"" + name + "\": ");
      if (CompareStamps(stamp.hlc, stamp.node, change->hlc, change->node) > 0)
        return Invalid("\"columns\": \"" + name +
                       "\" is stamped after the change; a change's stamp is its row's latest");
      change->column_stamps.emplace_back(name, std::move(stamp));
    }
  }
  if (const Json* deleted = json.Find("delete_stamp"); deleted != nullptr) {
    if (change->op != Op::kDelete) return Invalid("an upsert carries no \"delete_stamp\"");
    Status status = DecodeStamp(*deleted, &change->delete_stamp);
    if (!status.ok()) return status.WithPrefix("\"delete_stamp\": ");
    if (CompareStamps(change->delete_stamp.hlc, change->delete_stamp.node, change->hlc, change->node) > 0)
      return Invalid("\"delete_stamp\" is after the change's stamp");
    change->has_delete_stamp = true;
  }
  return Status::Ok();
}

Status DecodeChange(const Json& json, int format, Change* change) {
  if (!json.is_object()) return Invalid("a change must be an object");
  static constexpr const char* kFields[] = {"table", "op",   "pk",      "row",         "clock",
                                            "hlc",   "node", "columns", "delete_stamp"};
  for (const auto& member : json.members) {
    bool known = false;
    for (const char* field : kFields)
      known = known || member.first == field;
    if (!known || (format < 2 && (member.first == "columns" || member.first == "delete_stamp")))
      return Invalid("unknown field \"" + member.first + "\"" + (known ? " (format 2 only)" : ""));
  }
  const Json* op = json.Find("op");
  if (op == nullptr || !op->is_string() || (op->text != "upsert" && op->text != "delete"))
    return Invalid("\"op\" must be \"upsert\" or \"delete\"");
  change->op = op->text == "upsert" ? Op::kUpsert : Op::kDelete;

  const Json* pk = json.Find("pk");
  if (pk == nullptr) return Invalid("missing \"pk\"");
  Status status = DecodeColumns(*pk, "pk", &change->pk);
  if (!status.ok()) return status;

  const Json* row = json.Find("row");
  if (change->op == Op::kUpsert) {
    if (row == nullptr) return Invalid("an upsert needs \"row\"");
    status = DecodeColumns(*row, "row", &change->row);
    if (!status.ok()) return status;
    for (const ColumnValue& key : change->pk) {
      const ColumnValue* match = nullptr;
      for (const ColumnValue& column : change->row) {
        if (column.column == key.column) match = &column;
      }
      if (match == nullptr) return Invalid("\"row\" lacks primary key column \"" + key.column + "\"");
      if (!SameValue(match->value, key.value))
        return Invalid("\"row\" and \"pk\" disagree on column \"" + key.column + "\"");
    }
  } else if (row != nullptr && !row->is_null()) {
    return Invalid("a delete carries no \"row\"");
  }

  const Json* clock = json.Find("clock");
  Value clock_value;
  if (clock == nullptr || !clock->is_number() || !DecodeValue(*clock, &clock_value).ok() ||
      clock_value.type != Value::Type::kInteger || clock_value.integer < 1)
    return Invalid("\"clock\" must be a positive integer");
  change->clock = clock_value.integer;

  const Json* hlc = json.Find("hlc");
  std::optional<Hlc> stamp;
  if (hlc == nullptr || !hlc->is_string() || !(stamp = HlcFromText(hlc->text)))
    return Invalid("\"hlc\" must be 16 hex digits");
  change->hlc = *stamp;

  const Json* node = json.Find("node");
  std::optional<std::string> node_id;
  if (node == nullptr || !node->is_string() || !(node_id = CanonicalNodeId(node->text)))
    return Invalid("\"node\" must be a UUID");
  change->node = std::move(*node_id);
  return DecodeColumnStamps(json, change);
}

}  // namespace

Status DecodeBatchTree(std::string_view text, Batch* out) {
  *out = Batch{};
  if (text.size() > kMaxBatchBytes)
    return Invalid("batch: " + std::to_string(text.size()) + " bytes is more than the limit of " +
                   std::to_string(kMaxBatchBytes >> 20) + " MiB; send it in smaller pages");
  Json json;
  Status status = ParseJson(text, &json);
  if (!status.ok()) return status.WithPrefix("batch: ");
  if (!json.is_object()) return Invalid("batch: must be a JSON object");
  for (const auto& member : json.members) {
    const std::string& name = member.first;
    if (name != "format" && name != "source" && name != "cursor" && name != "has_more" && name != "changes" &&
        name != "schema_version" && name != "schema")
      return Invalid("batch: unknown field \"" + name + "\"");
  }

  const Json* format = json.Find("format");
  if (format == nullptr) return Invalid("batch: missing \"format\"");
  if (!format->is_number() || (format->text != "1" && format->text != "2"))
    return Invalid("batch: unsupported format " + (format->is_number() ? format->text : JsonKindName(format->kind)) +
                   " (this node reads formats 1 and 2)");
  out->format = format->text == "2" ? 2 : 1;

  const Json* source = json.Find("source");
  std::optional<std::string> source_id;
  if (source == nullptr || !source->is_string() || !(source_id = CanonicalNodeId(source->text)))
    return Invalid("batch: \"source\" must be the producing node's UUID");
  out->source = std::move(*source_id);

  if (const Json* cursor = json.Find("cursor"); cursor != nullptr && !cursor->is_null()) {
    if (!cursor->is_string()) return Invalid("batch: \"cursor\" must be a string or null");
    out->cursor = cursor->text;
  }
  if (const Json* has_more = json.Find("has_more"); has_more != nullptr) {
    if (has_more->kind != Json::Kind::kTrue && has_more->kind != Json::Kind::kFalse)
      return Invalid("batch: \"has_more\" must be a boolean");
    out->has_more = has_more->kind == Json::Kind::kTrue;
  }
  if (const Json* version = json.Find("schema_version"); version != nullptr) {
    if (!version->is_number() || !SchemaVersion(version->text, &out->schema_version))
      return Invalid("batch: \"schema_version\" must be a non-negative integer");
  }
  if (const Json* schema = json.Find("schema"); schema != nullptr) {
    if (!schema->is_object()) return Invalid("batch: \"schema\" must be an object");
    out->schema = JsonText(*schema);
  }

  const Json* changes = json.Find("changes");
  if (changes == nullptr || !changes->is_array()) return Invalid("batch: \"changes\" must be an array");
  out->changes.resize(changes->items.size());
  for (std::size_t i = 0; i < changes->items.size(); ++i) {
    const Json& item = changes->items[i];
    if (!item.is_object()) return Invalid(ChangeContext(i, {}) + "a change must be an object");
    const Json* table = item.Find("table");
    if (table == nullptr || !table->is_string() || table->text.empty())
      return Invalid(ChangeContext(i, {}) + "\"table\" must be a non-empty string");
    out->changes[i].table = table->text;
    status = DecodeChange(item, out->format, &out->changes[i]);
    if (!status.ok()) return status.WithPrefix(ChangeContext(i, table->text));
  }
  return Status::Ok();
}

Status DecodeBatch(std::string_view text, Batch* out) {
  if (DecodeBatchStreaming(text, out)) return Status::Ok();
  return DecodeBatchTree(text, out);
}

BatchWriter::BatchWriter(std::string_view source) : writer_(&out_) {
  writer_.BeginObject();
  writer_.Key("format");
  format_at_ = out_.size();
  writer_.Int(1);
  writer_.Key("source");
  writer_.String(source);
  writer_.Key("changes");
  writer_.BeginArray();
}

void BatchWriter::Add(const Change& change) {
  writer_.BeginObject();
  writer_.Key("table");
  writer_.String(change.table);
  writer_.Key("op");
  writer_.String(change.op == Op::kUpsert ? "upsert" : "delete");
  writer_.Key("pk");
  writer_.BeginObject();
  for (const ColumnValue& column : change.pk) {
    writer_.Key(column.column);
    WriteValue(writer_, column.value);
  }
  writer_.EndObject();
  if (change.op == Op::kUpsert) {
    writer_.Key("row");
    writer_.BeginObject();
    for (const ColumnValue& column : change.row) {
      writer_.Key(column.column);
      WriteValue(writer_, column.value);
    }
    writer_.EndObject();
  }
  writer_.Key("clock");
  writer_.Int(change.clock);
  writer_.Key("hlc");
  writer_.String(HlcToText(change.hlc));
  writer_.Key("node");
  writer_.String(change.node);
  if (change.has_column_stamps()) {
    out_[format_at_] = '2';
    auto write_stamp = [this](const Stamp& stamp) {
      writer_.BeginObject();
      writer_.Key("hlc");
      writer_.String(HlcToText(stamp.hlc));
      writer_.Key("node");
      writer_.String(stamp.node);
      writer_.EndObject();
    };
    if (!change.column_stamps.empty()) {
      writer_.Key("columns");
      writer_.BeginObject();
      for (const auto& [column, stamp] : change.column_stamps) {
        writer_.Key(column);
        write_stamp(stamp);
      }
      writer_.EndObject();
    }
    if (change.has_delete_stamp) {
      writer_.Key("delete_stamp");
      write_stamp(change.delete_stamp);
    }
  }
  writer_.EndObject();
  ++count_;
}

Status BatchWriter::AddToPage(const Change& change, std::size_t max_bytes, bool* added) {
  const JsonWriter::Mark mark = writer_.GetMark();
  const char format = out_[format_at_];  // back to it when the change is left out
  Add(change);
  *added = true;
  if (count_ > 1 && size() > std::min(max_bytes, kMaxBatchBytes)) {
    writer_.Rewind(mark);
    out_[format_at_] = format;
    --count_;
    *added = false;
    return Status::Ok();
  }
  if (size() <= kMaxBatchBytes) return Status::Ok();
  const std::size_t bytes = out_.size() - mark.size;
  writer_.Rewind(mark);
  out_[format_at_] = format;
  --count_;
  *added = false;
  std::vector<const Value*> key;
  for (const ColumnValue& column : change.pk)
    key.push_back(&column.value);
  std::string key_text;
  if (!EncodeKeyOf(key, &key_text).ok()) key_text = "(a key that is not valid UTF-8)";
  return Status(Code::kTooLarge, "table \"" + change.table + "\", row " + key_text + ": its change takes " +
                                     std::to_string(bytes) + " bytes, more than a batch may hold (" +
                                     std::to_string(kMaxBatchBytes >> 20) + " MiB)")
      .WithHint("Make the row smaller (move large values out of the database, or split them over rows); until "
                "then, the pull stops at it.");
}

void BatchWriter::SetSchema(std::int64_t version, std::string document) {
  schema_version_ = version;
  schema_ = std::move(document);
}

std::string BatchWriter::Finish(std::string_view cursor, bool has_more) {
  writer_.EndArray();
  if (schema_version_ >= 0) {
    writer_.Key("schema_version");
    writer_.Int(schema_version_);
  }
  if (!schema_.empty()) {
    writer_.Key("schema");
    writer_.Raw(schema_);
  }
  writer_.Key("cursor");
  writer_.String(cursor);
  writer_.Key("has_more");
  writer_.Bool(has_more);
  writer_.EndObject();
  return std::move(out_);
}

}  // namespace syncline::core
