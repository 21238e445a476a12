// The merge's use of the column rule (core/column_merge.h): from a change and
// a row's stored version to what is written and recorded.
#include <algorithm>

#include "core/column_merge.h"
#include "core/merge.h"

namespace syncline::core {

namespace {

const Value kNullValue;

// The stamp a change gives each column it carries: its own, or the one
// "columns" names.
Stamp CarriedStamp(const Change& change, const std::string& column) {
  for (const auto& [name, stamp] : change.column_stamps)
    if (name == column) return stamp;
  return Stamp{change.hlc, change.node};
}

// Whether a row after a merge is exactly the version sent: every column at
// the stamp the version gave it (a delete's, for a delete).
bool AsSent(const ColumnVersion& version, const ColumnRow& after) {
  if (after.deleted != version.deleted) return false;
  for (std::size_t c = 0; c < version.columns.size(); ++c) {
    if (version.deleted) {
      if (CompareStamps(after.stamps[c], version.stamp) != 0) return false;
    } else if (!version.columns[c] || CompareStamps(after.stamps[c], *version.columns[c]) != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status PlanColumnWrite(const RowVersion& stored, const MergeChange* previous, MergeChange& change,
                       ColumnMerge::Kind* kind) {
  const MergeTable& table = *change.table;
  const std::size_t count = table.columns.size();
  const Change& incoming = *change.change;
  ColumnRow row;
  if (previous != nullptr) {
    row = previous->columns;
  } else if (stored.exists) {
    row.exists = true;
    row.deleted = stored.deleted;
    Status status = DecodeColumnStamps(stored.cols, table.columns, Stamp{stored.hlc, stored.node}, &row.stamps);
    if (!status.ok()) return status;
  }
  ColumnVersion version;
  version.deleted = incoming.op == Op::kDelete;
  version.stamp = incoming.has_delete_stamp ? incoming.delete_stamp : Stamp{incoming.hlc, incoming.node};
  version.columns.resize(count);
  if (!version.deleted) {
    for (std::size_t c = 0; c < count; ++c)
      if (change.row[c] != nullptr) version.columns[c] = CarriedStamp(incoming, table.columns[c]);
  }
  const ColumnMerge merge = MergeColumns(row, version);
  *kind = merge.kind;
  change.columns = merge.after;
  change.as_sent = AsSent(version, merge.after);
  if (merge.kind == ColumnMerge::Kind::kNothing) return Status::Ok();
  change.took = merge.take;
  if (merge.kind == ColumnMerge::Kind::kTombstone) {
    change.write_op = Op::kDelete;
    change.row.clear();
    change.partial = false;
    return Status::Ok();
  }
  change.write_op = Op::kUpsert;
  std::vector<const Value*> write(count, nullptr);
  for (std::size_t c = 0; c < count; ++c) {
    if (merge.take[c]) write[c] = change.row[c];
    if (merge.clear[c]) write[c] = &kNullValue;
  }
  // An earlier change of the row in this batch, no longer written itself:
  // what it wrote and this one does not stays.
  if (previous != nullptr && previous->write_op == Op::kUpsert) {
    for (std::size_t c = 0; c < count; ++c) {
      if (write[c] != nullptr || previous->row.empty() || previous->row[c] == nullptr) continue;
      write[c] = previous->row[c];
      if (previous->took[c]) change.took[c] = true;
    }
  }
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    write[table.pk[k]] = change.key[k];
  change.partial = std::find(write.begin(), write.end(), nullptr) != write.end();
  change.row = std::move(write);
  return Status::Ok();
}

void StampColumnWrite(const RowVersion& stored, const MergeChange* previous, bool serves_format1,
                      const std::string& local_node, MergeChange& change) {
  Stamp before;
  if (previous != nullptr)
    before = Stamp{previous->hlc, previous->node};
  else if (stored.exists)
    before = Stamp{stored.hlc, stored.node};
  const Stamp natural = LatestStamp(change.columns.stamps);
  Stamp latest = StampAbove(natural, before) ? natural : before;
  // Restamped by this node: a row that is no longer what its sender sent
  // (it keeps columns of others, or this node's own): under the sender's
  // stamp, the pulls that skip the sender's own versions (exclude_origin)
  // would never bring it the rest, and a device's push of its own writes
  // (origin local) would leave out its edit the merge kept. And on a node
  // that serves format-1 readers, a row changed beneath its version's stamp
  // (they would see one stamp with two contents).
  if (!change.as_sent || (serves_format1 && !StampAbove(natural, before)))
    latest = Stamp{NextHlc(latest.hlc), local_node};
  change.hlc = latest.hlc;
  change.node = latest.node;
  change.clock = change.change->clock;
  change.deleted = change.columns.deleted;
  change.cols = EncodeColumnStamps(change.table->columns, change.columns.stamps, latest);
}

void RestampTakenColumns(MergeChange& change) {
  const Stamp latest{change.hlc, change.node};
  for (std::size_t c = 0; c < change.took.size() && c < change.columns.stamps.size(); ++c)
    if (change.took[c]) change.columns.stamps[c] = latest;
  change.cols = EncodeColumnStamps(change.table->columns, change.columns.stamps, latest);
}

}  // namespace syncline::core
