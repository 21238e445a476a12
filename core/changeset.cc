#include "core/changeset.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "core/node_id.h"

namespace syncline::core {

std::string ChangeContext(std::size_t index, std::string_view table) {
  std::string context = "change " + std::to_string(index);
  if (!table.empty()) context += " (table \"" + std::string(table) + "\")";
  return context + ": ";
}

namespace {

Status Invalid(std::string message) { return Status(Code::kInvalidInput, std::move(message)); }

Status DecodeNumber(const std::string& literal, Value* out) {
  const char* begin = literal.data();
  const char* end = begin + literal.size();
  if (literal.find_first_of(".eE") == std::string::npos) {
    std::int64_t v;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (ec != std::errc() || ptr != end) return Invalid("integer " + literal + " is out of the 64-bit range");
    *out = Value::Integer(v);
    return Status::Ok();
  }
  double v;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v))
    return Invalid("number " + literal + " is out of the double range");
  *out = Value::Real(v);
  return Status::Ok();
}

Status DecodeTaggedValue(const Json& json, Value* out) {
  if (json.members.size() == 1 && json.members[0].second.is_string()) {
    const auto& [tag, payload] = json.members[0];
    if (tag == "blob") {
      std::string bytes;
      if (!Base64Decode(payload.text, &bytes)) return Invalid("blob is not valid base64");
      *out = Value::Blob(std::move(bytes));
      return Status::Ok();
    }
    if (tag == "real") {
      double v;
      if (payload.text == "NaN") {
        v = std::numeric_limits<double>::quiet_NaN();
      } else if (payload.text == "Infinity") {
        v = std::numeric_limits<double>::infinity();
      } else if (payload.text == "-Infinity") {
        v = -std::numeric_limits<double>::infinity();
      } else {
        const char* begin = payload.text.data();
        const char* end = begin + payload.text.size();
        auto [ptr, ec] = std::from_chars(begin, end, v);
        if (ec != std::errc() || ptr != end || !std::isfinite(v))
          return Invalid("real must be a decimal number, \"NaN\", \"Infinity\" or \"-Infinity\", got \"" +
                         payload.text.substr(0, 60) + "\"");
      }
      *out = Value::Real(v);
      return Status::Ok();
    }
  }
  return Invalid("a value object must be {\"blob\": base64} or {\"real\": \"NaN\"|\"Infinity\"|\"-Infinity\"}");
}

}  // namespace

std::string RealToText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  auto result = std::to_chars(buf, buf + sizeof buf, value);
  std::string text(buf, result.ptr);
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

Status DecodeChange(const Json& json, Change* change) {
  if (!json.is_object()) return Invalid("a change must be an object");
  static constexpr const char* kFields[] = {"table", "op", "pk", "row", "clock", "hlc", "node"};
  for (const auto& member : json.members) {
    bool known = false;
    for (const char* field : kFields)
      known = known || member.first == field;
    if (!known) return Invalid("unknown field \"" + member.first + "\"");
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
  return Status::Ok();
}

}  // namespace

Status DecodeBatch(std::string_view text, Batch* out) {
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
    if (name != "format" && name != "source" && name != "cursor" && name != "has_more" && name != "changes")
      return Invalid("batch: unknown field \"" + name + "\"");
  }

  const Json* format = json.Find("format");
  if (format == nullptr) return Invalid("batch: missing \"format\"");
  if (!format->is_number() || format->text != std::to_string(kBatchFormat))
    return Invalid("batch: unsupported format " + (format->is_number() ? format->text : JsonKindName(format->kind)) +
                   " (this node reads format " + std::to_string(kBatchFormat) + ")");

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
    status = DecodeChange(item, &out->changes[i]);
    if (!status.ok()) return status.WithPrefix(ChangeContext(i, table->text));
  }
  return Status::Ok();
}

BatchWriter::BatchWriter(std::string_view source) : writer_(&out_) {
  writer_.BeginObject();
  writer_.Key("format");
  writer_.Int(kBatchFormat);
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
  writer_.EndObject();
  ++count_;
}

std::string BatchWriter::Finish(std::string_view cursor, bool has_more) {
  writer_.EndArray();
  writer_.Key("cursor");
  writer_.String(cursor);
  writer_.Key("has_more");
  writer_.Bool(has_more);
  writer_.EndObject();
  return std::move(out_);
}

Status CheckDrift(const Change& change, const std::string& source, std::int64_t wall_ms, std::int64_t max_drift_ms) {
  if (change.node != source || HlcWithinDrift(change.hlc, wall_ms, max_drift_ms)) return Status::Ok();
  std::int64_t ahead_s = (HlcPhysicalMs(change.hlc) - wall_ms) / 1000;
  return Status(Code::kClockDrift, "hlc " + HlcToText(change.hlc) + " is " + std::to_string(ahead_s) +
                                       " s ahead of this node's clock (the bound is " +
                                       std::to_string(max_drift_ms / 1000) + " s); check the origin's clock");
}

Status CopiedDatabase(const std::string& docs_section) {
  return Status(Code::kCorruptBatch, "stamped with this database's own node id but newer than anything it wrote to "
                                     "that row; this database is probably a copy of another node's (see " +
                                         docs_section + ")");
}

std::string ApplySummary(const ApplyCounts& counts, const std::string& source, const std::string& cursor) {
  std::string summary;
  JsonWriter out(&summary);
  out.BeginObject();
  out.Key("applied");
  out.Int(counts.applied);
  out.Key("skipped");
  out.Int(counts.skipped);
  if (counts.rewritten >= 0) {
    out.Key("rewritten");
    out.Int(counts.rewritten);
  }
  out.Key("source");
  out.String(source);
  out.Key("cursor");
  if (cursor.empty())
    out.Null();
  else
    out.String(cursor);
  out.EndObject();
  return summary;
}

Value KeyForm(const Value& value) {
  if (value.type == Value::Type::kReal && std::isfinite(value.real) && value.real == std::floor(value.real) &&
      value.real >= -9223372036854775808.0 && value.real < 9223372036854775808.0)
    return Value::Integer(static_cast<std::int64_t>(value.real));
  return value;
}

Status EncodeKey(const std::vector<Value>& values, std::string* out) {
  out->clear();
  JsonWriter writer(out);
  writer.BeginArray();
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].type == Value::Type::kText && !IsValidUtf8(values[i].bytes))
      return Invalid("primary key column " + std::to_string(i + 1) + " is text that is not valid UTF-8");
    WriteValue(writer, KeyForm(values[i]));
  }
  writer.EndArray();
  return Status::Ok();
}

Status DecodeKey(std::string_view text, std::vector<Value>* out) {
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
