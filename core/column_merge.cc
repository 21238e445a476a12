#include "core/column_merge.h"

#include <algorithm>
#include <map>

#include "core/changeset.h"

namespace syncline::core {

namespace {

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
    return StampAbove(version.stamp, LatestStamp(row.stamps)) ? Tombstone(count, version.stamp) : Nothing(row, count);
  ColumnMerge out = Nothing(row, count);
  std::size_t cleared = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!StampAbove(version.stamp, row.stamps[i])) continue;
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
    if (StampAbove(stamp, latest)) latest = stamp;
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
    if (!stamp || !StampAbove(*stamp, out.after.stamps[i])) continue;
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

// The metadata encoding (docs/protocol.md, "Column-level merge"): unsigned
// LEB128 varints; a stamp is a tag byte, 0 (the row's stamp), 1 (varint d:
// the row's hlc minus d, the row's node), 2 (varint d and the node id's 16
// bytes) or 3 (never written: a column a new row's first change did not
// carry, which any write beats).
void PutVarint(std::string* out, std::uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void PutStamp(std::string* out, const Stamp& stamp, const Stamp& latest) {
  if (stamp.node.empty()) {
    out->push_back(3);
    return;
  }
  const Hlc delta = latest.hlc - stamp.hlc;
  if (stamp.node == latest.node) {
    out->push_back(delta == 0 ? 0 : 1);
    if (delta != 0) PutVarint(out, delta);
    return;
  }
  out->push_back(2);
  PutVarint(out, delta);
  // A canonical node id: 32 lower-case hex digits and four dashes.
  for (std::size_t i = 0; i + 1 < stamp.node.size(); ++i) {
    if (stamp.node[i] == '-') continue;
    out->push_back(static_cast<char>(HexDigit(stamp.node[i]) * 16 + HexDigit(stamp.node[i + 1])));
    ++i;
  }
}

Status Corrupt(const std::string& what) { return Status(Code::kInternal, "column stamps in metadata: " + what); }

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return at_ == bytes_.size(); }
  std::size_t position() const { return at_; }

  Status Varint(std::uint64_t* out) {
    *out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) return Corrupt("cut short in a number");
      const auto byte = static_cast<unsigned char>(bytes_[at_++]);
      *out |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return Status::Ok();
    }
    return Corrupt("a number longer than 64 bits");
  }

  Status Name(std::string* out) {
    std::uint64_t size = 0;
    Status status = Varint(&size);
    if (!status.ok()) return status;
    if (size > bytes_.size() - at_) return Corrupt("cut short in a column name");
    out->assign(bytes_.substr(at_, size));
    at_ += size;
    return Status::Ok();
  }

  Status StampOf(const Stamp& latest, Stamp* out) {
    if (done()) return Corrupt("cut short before a stamp");
    const auto tag = static_cast<unsigned char>(bytes_[at_++]);
    if (tag == 3) {
      *out = Stamp{};
      return Status::Ok();
    }
    if (tag > 3) return Corrupt("unknown stamp tag " + std::to_string(tag));
    std::uint64_t delta = 0;
    if (tag > 0) {
      Status status = Varint(&delta);
      if (!status.ok()) return status;
      if (delta > latest.hlc) return Corrupt("a stamp before 0");
    }
    out->hlc = latest.hlc - delta;
    out->node = latest.node;
    if (tag == 2) {
      if (bytes_.size() - at_ < 16) return Corrupt("cut short in a node id");
      static const char kHex[] = "0123456789abcdef";
      out->node.clear();
      for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out->node.push_back('-');
        const auto byte = static_cast<unsigned char>(bytes_[at_++]);
        out->node.push_back(kHex[byte >> 4]);
        out->node.push_back(kHex[byte & 15]);
      }
    }
    return Status::Ok();
  }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

}  // namespace

std::string EncodeColumnStamps(const std::vector<std::string>& columns, const std::vector<Stamp>& stamps,
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
  PutStamp(&out, base, latest);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (CompareStamps(stamps[i], base) == 0) continue;
    PutVarint(&out, columns[i].size());
    out += columns[i];
    PutStamp(&out, stamps[i], latest);
  }
  return out;
}

Status DecodeColumnStamps(std::string_view bytes, const std::vector<std::string>& columns, const Stamp& latest,
                          std::vector<Stamp>* stamps) {
  stamps->assign(columns.size(), latest);
  if (bytes.empty()) return Status::Ok();
  Reader reader(bytes);
  Stamp base;
  Status status = reader.StampOf(latest, &base);
  if (!status.ok()) return status;
  stamps->assign(columns.size(), base);
  std::string name;
  while (!reader.done()) {
    status = reader.Name(&name);
    Stamp stamp;
    if (status.ok()) status = reader.StampOf(latest, &stamp);
    if (!status.ok()) return status;
    auto column = std::find(columns.begin(), columns.end(), name);
    if (column != columns.end()) (*stamps)[column - columns.begin()] = std::move(stamp);  // else dropped since
  }
  return Status::Ok();
}

Status StampChangedColumns(std::string_view cols, const std::vector<std::string>& columns, const Stamp& before,
                           const std::vector<bool>& changed, const Stamp& now, std::string* out) {
  std::vector<Stamp> stamps;
  Status status = DecodeColumnStamps(cols, columns, before, &stamps);
  if (!status.ok()) return status;
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (i >= changed.size() || changed[i]) stamps[i] = now;
  *out = EncodeColumnStamps(columns, stamps, now);
  return Status::Ok();
}

Status AddColumnStamps(const std::vector<std::string>& columns, std::string_view cols, Change* change) {
  if (cols.empty()) return Status::Ok();
  const Stamp latest{change->hlc, change->node};
  std::vector<Stamp> stamps;
  Status status = DecodeColumnStamps(cols, columns, latest, &stamps);
  if (!status.ok()) return status;
  if (change->op == Op::kDelete) {
    change->has_delete_stamp = CompareStamps(stamps.empty() ? latest : stamps[0], latest) != 0;
    if (change->has_delete_stamp) change->delete_stamp = stamps[0];
    return Status::Ok();
  }
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (CompareStamps(stamps[i], latest) != 0) change->column_stamps.emplace_back(columns[i], stamps[i]);
  return Status::Ok();
}

Status RenameColumnStamps(std::string_view cols, std::string_view from, std::optional<std::string_view> to,
                          std::string* out) {
  out->clear();
  if (cols.empty()) return Status::Ok();
  // Stamps are copied as they are; any stamp to read them against will do.
  const Stamp anywhere{kHlcMax, ""};
  Reader reader(cols);
  Stamp ignored;
  Status status = reader.StampOf(anywhere, &ignored);
  if (!status.ok()) return status;
  out->assign(cols.substr(0, reader.position()));
  std::string name;
  while (!reader.done()) {
    status = reader.Name(&name);
    const std::size_t stamp_at = reader.position();
    if (status.ok()) status = reader.StampOf(anywhere, &ignored);
    if (!status.ok()) return status;
    // A stale entry under the new name (a column dropped before) goes.
    if (to && name == *to) continue;
    if (name == from) {
      if (!to) continue;
      name = std::string(*to);
    }
    PutVarint(out, name.size());
    *out += name;
    out->append(cols.substr(stamp_at, reader.position() - stamp_at));
  }
  return Status::Ok();
}

}  // namespace syncline::core
