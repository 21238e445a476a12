#include "core/column_merge.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "core/json.h"
#include "core/node_id.h"

namespace syncline::core {

namespace {

bool Greater(const Stamp& a, const Stamp& b) { return CompareStamps(a, b) > 0; }

ColumnMerge Nothing(const ColumnRow& row, std::size_t count) {
  ColumnMerge out;
  out.take.assign(count, false);
  out.clear.assign(count, false);
  out.after = row;
  return out;
}

ColumnMerge Tombstone(std::size_t count, const Stamp& stamp) {
  ColumnMerge out;
  out.take.assign(count, false);
  out.clear.assign(count, false);
  out.kind = ColumnMerge::Kind::kTombstone;
  out.after.exists = true;
  out.after.deleted = true;
  out.after.stamps.assign(count, stamp);
  return out;
}

// A delete: every column older than it is cleared at its stamp; when that
// is every column, the row is gone.
ColumnMerge MergeDelete(const ColumnRow& row, const ColumnVersion& version) {
  const std::size_t count = version.columns.size();
  if (!row.exists) return Tombstone(count, version.stamp);
  if (row.deleted)
    return Greater(version.stamp, LatestStamp(row.stamps)) ? Tombstone(count, version.stamp) : Nothing(row, count);
  ColumnMerge out = Nothing(row, count);
  std::size_t cleared = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!Greater(version.stamp, row.stamps[i])) continue;
    out.clear[i] = true;
    out.after.stamps[i] = version.stamp;
    ++cleared;
  }
  if (cleared == count) return Tombstone(count, version.stamp);
  if (cleared > 0) out.kind = ColumnMerge::Kind::kWrite;
  return out;
}

}  // namespace

Stamp LatestStamp(const std::vector<Stamp>& stamps) {
  Stamp latest;
  for (const Stamp& stamp : stamps)
    if (Greater(stamp, latest)) latest = stamp;
  return latest;
}

ColumnMerge MergeColumns(const ColumnRow& row, const ColumnVersion& version) {
  if (version.deleted) return MergeDelete(row, version);
  const std::size_t count = version.columns.size();
  ColumnMerge out = Nothing(row, count);
  if (!row.exists) out.after.stamps.assign(count, Stamp());
  bool taken = false;
  for (std::size_t i = 0; i < count; ++i) {
    const std::optional<Stamp>& stamp = version.columns[i];
    if (!stamp || !Greater(*stamp, out.after.stamps[i])) continue;
    out.take[i] = true;
    out.after.stamps[i] = *stamp;
    taken = true;
  }
  if (!taken) return Nothing(row, count);
  out.kind = ColumnMerge::Kind::kWrite;
  out.revives = !row.exists || row.deleted;
  out.after.exists = true;
  out.after.deleted = false;
  if (row.exists && row.deleted) {
    // What the version does not carry is not the row's content before the
    // delete (which nobody keeps): NULL, at the delete's stamp.
    for (std::size_t i = 0; i < count; ++i)
      if (!out.take[i]) out.clear[i] = true;
  }
  return out;
}

namespace {

// A stamp relative to the latest one: 0, d, or [d, "node"].
void WriteRelative(JsonWriter& writer, const Stamp& stamp, const Stamp& latest) {
  const Hlc delta = latest.hlc - stamp.hlc;
  if (stamp.node == latest.node) {
    writer.Int(static_cast<std::int64_t>(delta));
    return;
  }
  writer.BeginArray();
  writer.Int(static_cast<std::int64_t>(delta));
  writer.String(stamp.node);
  writer.EndArray();
}

Status BadText(const std::string& what) { return Status(Code::kInternal, "column stamps in metadata: " + what); }

Status ReadRelative(const Json& json, const Stamp& latest, Stamp* out) {
  const Json* delta = &json;
  std::string node = latest.node;
  if (json.is_array()) {
    if (json.items.size() != 2 || !json.items[1].is_string()) return BadText("a stamp is d or [d, \"node\"]");
    delta = &json.items[0];
    node = json.items[1].text;
    if (!CanonicalNodeId(node)) return BadText("\"" + node + "\" is not a node id");
  }
  std::uint64_t d = 0;
  const std::string& text = delta->text;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (!delta->is_number() || error != std::errc() || end != text.data() + text.size() || d > latest.hlc)
    return BadText("a stamp's distance from the row's is an integer from 0 to its hlc, not " + JsonText(*delta));
  out->hlc = latest.hlc - d;
  out->node = std::move(node);
  return Status::Ok();
}

}  // namespace

std::string ColumnStampsText(const std::vector<std::string>& columns, const std::vector<Stamp>& stamps,
                             const Stamp& latest) {
  // The base is the stamp most columns share (the latest when tied), so
  // that a row edited in one column names only that one.
  std::map<std::pair<Hlc, std::string>, std::size_t> counts;
  for (const Stamp& stamp : stamps)
    ++counts[{stamp.hlc, stamp.node}];
  Stamp base = latest;
  std::size_t most = counts[{latest.hlc, latest.node}];
  for (const auto& [stamp, count] : counts) {
    if (count > most) {
      most = count;
      base = Stamp{stamp.first, stamp.second};
    }
  }
  if (most == stamps.size() && CompareStamps(base, latest) == 0) return "";
  std::string out;
  JsonWriter writer(&out);
  writer.BeginArray();
  WriteRelative(writer, base, latest);
  writer.BeginObject();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (CompareStamps(stamps[i], base) == 0) continue;
    writer.Key(columns[i]);
    WriteRelative(writer, stamps[i], latest);
  }
  writer.EndObject();
  writer.EndArray();
  return out;
}

Status ReadColumnStamps(std::string_view text, const std::vector<std::string>& columns, const Stamp& latest,
                        std::vector<Stamp>* stamps) {
  stamps->assign(columns.size(), latest);
  if (text.empty()) return Status::Ok();
  Json json;
  Status status = ParseJson(text, &json);
  if (!status.ok()) return BadText(status.message());
  if (!json.is_array() || json.items.size() != 2 || !json.items[1].is_object())
    return BadText("expected [base, {\"column\": stamp}], not " + std::string(text.substr(0, 100)));
  Stamp base;
  status = ReadRelative(json.items[0], latest, &base);
  if (!status.ok()) return status;
  stamps->assign(columns.size(), base);
  for (const auto& [name, stamp] : json.items[1].members) {
    auto column = std::find(columns.begin(), columns.end(), name);
    if (column == columns.end()) continue;  // dropped since
    status = ReadRelative(stamp, latest, &(*stamps)[column - columns.begin()]);
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace syncline::core
