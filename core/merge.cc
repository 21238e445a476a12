// The merge (core/merge.h): the conflict rule's parts (Decide, CheckDrift,
// IsConflict) and the Merger, which takes a batch through its store:
// decisions, writes in order (WriteInOrder), versions, rewrites, a server's
// answers, the cursor. A change's mapping onto its table is in
// core/merge_mapping.cc, the summary in core/merge_summary.cc.
#include "core/merge.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <unordered_map>

#include "core/merge_internal.h"

namespace syncline::core {

namespace {

// Two changes of one row with the same stamp in one batch: the same write?
bool SameWrite(const MergeChange& a, const MergeChange& b) {
  if (a.change->op != b.change->op) return false;
  for (std::size_t c = 0; c < a.row.size(); ++c) {
    if ((a.row[c] == nullptr) != (b.row[c] == nullptr)) return false;
    if (a.row[c] != nullptr && !SameValue(*a.row[c], *b.row[c])) return false;
  }
  return true;
}

struct RowId {
  const MergeTable* table;
  const Value* key;
  bool operator==(const RowId& other) const {
    return table == other.table && SameValue(*key, *other.key) && key->type == other.key->type;
  }
};

struct RowIdHash {
  std::size_t operator()(const RowId& id) const {
    std::size_t h = std::hash<const void*>()(id.table);
    const Value& key = *id.key;
    if (key.type == Value::Type::kInteger) return h ^ std::hash<std::int64_t>()(key.integer);
    return h ^ std::hash<std::string>()(key.bytes) ^ static_cast<std::size_t>(key.type);
  }
};

Status WithContext(const Status& status, const MergeChange& change) {
  return status.WithPrefix(ChangeContext(change.index, change.change->table));
}

// Decides whether a change the engine could not apply is refused on its own
// (recorded in the result) or rejects the batch.
using Refuse = std::function<bool(MergeChange& change, const Status& reason)>;

// Writes the winning changes in batch order, a run of one table and op at a
// time. A change the engine refuses with a constraint error may only need
// another change written first (a UNIQUE value handed from one row to
// another, a parent that comes later): it is put aside and retried after the
// rest, until a round writes nothing more. What then still fails, and any
// other refused write, is refused on its own if `refuse` agrees.
Status WriteInOrder(const std::vector<MergeChange*>& winners, MergeStore& store, const Refuse& refuse,
                    std::size_t* failed) {
  std::vector<MergeChange*> waiting;
  std::vector<Status> reasons;
  std::vector<MergeChange*> run;
  auto write_runs = [&](const std::vector<MergeChange*>& changes) -> Status {
    std::size_t i = 0;
    while (i < changes.size()) {
      run.clear();
      run.push_back(changes[i]);
      while (i + run.size() < changes.size() && changes[i + run.size()]->table == run[0]->table &&
             changes[i + run.size()]->write_op == run[0]->write_op)
        run.push_back(changes[i + run.size()]);
      std::size_t written = 0;
      Status status = store.WriteRows(run, &written);
      if (status.ok()) {
        i += run.size();
        continue;
      }
      if (written >= run.size()) return status;
      if (status.code() == Code::kConstraint) {
        waiting.push_back(run[written]);
        reasons.push_back(status);
      } else if (!refuse(*run[written], WithContext(status, *run[written]))) {
        *failed = run[written]->index;
        return WithContext(status, *run[written]);
      }
      i += written + 1;
    }
    return Status::Ok();
  };
  Status status = write_runs(winners);
  while (status.ok() && !waiting.empty()) {
    std::vector<MergeChange*> retry;
    retry.swap(waiting);
    std::vector<Status> retry_reasons;
    retry_reasons.swap(reasons);
    status = write_runs(retry);
    if (!status.ok() || waiting.size() < retry.size()) continue;
    // No order writes them: each is refused on its own, or the batch fails.
    std::vector<MergeChange*> unrefused;
    for (std::size_t i = 0; i < waiting.size(); ++i)
      if (!refuse(*waiting[i], WithContext(reasons[i], *waiting[i]))) unrefused.push_back(waiting[i]);
    if (unrefused.empty()) return Status::Ok();
    std::string others;
    for (std::size_t i = 1; i < unrefused.size(); ++i)
      others += (i > 1 ? ", " : "") + std::to_string(unrefused[i]->index);
    std::size_t at = std::find(waiting.begin(), waiting.end(), unrefused[0]) - waiting.begin();
    *failed = unrefused[0]->index;
    Status first = WithContext(reasons[at], *unrefused[0]);
    if (others.empty()) return first;
    return Status(first.code(), first.message() + " (nor could change" + (unrefused.size() > 2 ? "s " : " ") + others +
                                    " be applied in any order)");
  }
  return status;
}

// The version a change won with, as the next change of its row sees it.
RowVersion VersionOf(const MergeChange& change) {
  RowVersion version;
  version.exists = true;
  version.hlc = change.hlc;
  version.node = change.node;
  version.deleted = change.deleted;
  version.cols = change.cols;
  return version;
}

bool HasKey(const MergeChange& change) { return change.table != nullptr && change.meta_key.type != Value::Type::kNull; }

}  // namespace

Verdict Decide(const Change& change, const RowVersion& current, const std::string& local_node) {
  if (current.exists) {
    int order = CompareStamps(change.hlc, change.node, current.hlc, current.node);
    if (order < 0) return Verdict::kOlder;
    if (order == 0) return Verdict::kSameStamp;
  }
  if (change.node == local_node) return Verdict::kCopiedDatabase;
  return Verdict::kApply;
}

Status BatchCursor(const Batch& batch, Cursor* out) {
  if (batch.cursor.empty()) return Status::Ok();
  Status status = DecodeCursor(batch.cursor, out);
  if (!status.ok()) return status.WithPrefix("batch: ");
  if (out->node != batch.source)
    return Status(Code::kInvalidInput,
                  "batch: cursor was issued by node " + out->node + ", not by the batch's source " + batch.source);
  return Status::Ok();
}

Status CheckDrift(Hlc hlc, std::int64_t wall_ms, std::int64_t max_drift_ms) {
  if (HlcWithinDrift(hlc, wall_ms, max_drift_ms)) return Status::Ok();
  std::int64_t ahead_s = (HlcPhysicalMs(hlc) - wall_ms) / 1000;
  return Status(Code::kClockDrift, "hlc " + HlcToText(hlc) + " is " + std::to_string(ahead_s) +
                                       " s ahead of this node's clock (the bound is " +
                                       std::to_string(max_drift_ms / 1000) + " s); check the origin's clock");
}

bool IsConflict(Code code) {
  switch (code) {
    case Code::kUndefinedTable:
    case Code::kUndefinedColumn:
    case Code::kTypeMismatch:
    case Code::kConstraint:
    case Code::kPermissionDenied:
    case Code::kClockDrift:
    case Code::kResync: return true;
    default: return false;
  }
}

Status CopiedDatabase(const std::string& docs_section) {
  return Status(Code::kCorruptBatch, "stamped with this database's own node id but newer than anything it wrote to "
                                     "that row; this database is probably a copy of another node's (see " +
                                         docs_section + ")");
}

namespace {

// One apply: the batch, the store, what was decided so far.
class Merger {
 public:
  Merger(const Batch& batch, MergeStore& store, const MergeOptions& options, MergeResult* result)
      : batch_(batch), store_(store), options_(options), result_(result), changes_(batch.changes.size()),
        wins_(batch.changes.size(), false), refused_(batch.changes.size(), false) {}

  Status Run() {
    Cursor cursor;
    Status status = BatchCursor(batch_, &cursor);
    if (status.ok()) status = PrepareAll();
    if (status.ok()) status = DecideAll();
    std::vector<MergeChange*> winners;
    for (MergeChange& change : changes_)
      if (wins_[change.index]) winners.push_back(&change);
    if (status.ok()) {
      status = WriteInOrder(
          winners, store_, [this](MergeChange& change, const Status& reason) { return Refused(change, reason); },
          &result_->failed);
    }
    if (status.ok()) status = WriteVersions(winners);
    std::sort(result_->refusals.begin(), result_->refusals.end(),
              [](const Refusal& a, const Refusal& b) { return a.index < b.index; });
    for (Refusal& refusal : result_->refusals)
      if (status.ok()) status = store_.LogRefusal(changes_[refusal.index], &refusal);
    if (status.ok() && !batch_.cursor.empty()) {
      bool found = false;
      std::string position;
      status = store_.ReadPeer(cursor, &found, &position);
      // A page delivered late (after a newer one) must not move the cursor
      // back, but in a resync, which starts over.
      if (status.ok() && (!found || options_.replace_cursor || ComparePositions(cursor.position, position) > 0))
        status = store_.WritePeer(cursor);
    }
    if (!status.ok()) return status;
    result_->summary =
        Summary(batch_, *result_, options_.count_rewritten, batch_.cursor.empty() ? "" : EncodeCursor(cursor));
    return Status::Ok();
  }

 private:
  void NoteIgnored(const std::string& column) {
    std::vector<std::string>& ignored = result_->ignored_columns;
    if (std::find(ignored.begin(), ignored.end(), column) == ignored.end()) ignored.push_back(column);
  }

  // Maps every change onto its table and checks its stamp first: a
  // malformed change is reported before anything is read or written.
  Status PrepareAll() {
    std::vector<MergeChange*> keyed;
    for (std::size_t i = 0; i < changes_.size(); ++i) {
      MergeChange& change = changes_[i];
      change.index = i;
      change.change = &batch_.changes[i];
      Status status = store_.Table(change.change->table, &change.table);
      std::vector<std::string> ignored;
      if (status.ok()) status = MapChange(change, &ignored);
      for (const std::string& column : ignored)
        NoteIgnored(change.change->table + "." + column);
      if (status.ok()) status = store_.Prepare(change);
      if (status.ok()) status = CheckStamp(change);
      if (!status.ok() && !Refused(change, WithContext(status, change), /*forget=*/true)) {
        result_->failed = change.index;  // the engine may hold its own error for it
        return WithContext(status, change);
      }
      if (HasKey(change)) keyed.push_back(&change);
    }
    Status status = store_.ReadVersions(keyed);
    if (status.ok() && options_.role == MergeRole::kServer) status = store_.ReadGcWatermark(&gc_watermark_);
    return status;
  }

  // The drift bound (docs/protocol.md, "Stamps"). A server checks every
  // change: one ahead of its clock by more than the bound waits (the batch
  // fails, and the next sync tries again), one ahead by more than the
  // refusal bound is refused. A device trusts its server. Otherwise the
  // bound is checked where a change enters from its origin; a relay
  // forwards what its first hop accepted.
  Status CheckStamp(const MergeChange& change) {
    const Hlc hlc = change.change->hlc;
    switch (options_.role) {
      case MergeRole::kDevice: return Status::Ok();
      case MergeRole::kStrict:
        if (change.change->node != batch_.source) return Status::Ok();
        return CheckDrift(hlc, options_.wall_ms, options_.max_drift_ms);
      case MergeRole::kServer: {
        Status refuse = CheckDrift(hlc, options_.wall_ms, options_.refuse_drift_ms);
        if (!refuse.ok()) return refuse;
        Status wait = CheckDrift(hlc, options_.wall_ms, options_.max_drift_ms);
        if (wait.ok()) return wait;
        return Status(Code::kNotYet, wait.message() + "; the batch waits until then")
            .WithHint("Sync again later: a change up to " + std::to_string(options_.refuse_drift_ms / 1000) +
                      " s ahead is accepted once this server's clock catches up.");
      }
    }
    return Status::Ok();
  }

  // Decides in batch order. A row's current version is the stored one, or
  // the one an earlier change of this batch won with.
  Status DecideAll() {
    for (MergeChange& change : changes_) {
      if (refused_[change.index]) continue;
      const Change& incoming = *change.change;
      MergeChange*& previous = latest_[RowId{change.table, &change.meta_key}];
      if (change.table->merge == MergeMode::kColumn) {
        Status status = DecideColumns(change, previous);
        if (!status.ok()) return status;
        continue;
      }
      RowVersion current = change.stored;
      if (previous != nullptr) current = VersionOf(*previous);
      Status status;
      switch (Decide(incoming, current, options_.local_node)) {
        case Verdict::kOlder: ++result_->skipped; continue;
        case Verdict::kSameStamp: {
          bool same = false;
          if (previous != nullptr)
            same = SameWrite(change, *previous);
          else if ((incoming.op == Op::kDelete) != change.stored.deleted)
            same = false;
          else if (incoming.op == Op::kDelete)
            same = true;
          else
            status = store_.SameContent(change, &same);
          if (!status.ok()) return WithContext(status, change);
          if (!same)
            return WithContext(Status(Code::kCorruptBatch, "stamp " + HlcToText(incoming.hlc) + "/" + incoming.node +
                                                               " is already known for this row with different content"),
                               change);
          ++result_->skipped;
          continue;
        }
        case Verdict::kCopiedDatabase: return WithContext(CopiedDatabase(options_.copied_database_docs), change);
        case Verdict::kApply: break;
      }
      status = CheckWatermark(change, current);
      if (status.ok()) status = store_.Admit(change);
      if (!status.ok()) {
        if (Refused(change, WithContext(status, change))) continue;
        result_->failed = change.index;
        return WithContext(status, change);
      }
      change.clock = incoming.clock;
      change.hlc = incoming.hlc;
      change.node = incoming.node;
      change.deleted = incoming.op == Op::kDelete;
      change.write_op = incoming.op;
      if (previous != nullptr) wins_[previous->index] = false;
      wins_[change.index] = true;
      previous = &change;
      ++result_->applied;
    }
    return Status::Ok();
  }

  // A change of a column-merge table: merged column by column
  // (core/column_merge.h). No same-stamp or copied-database check: a
  // column's equal stamp is the same write, and is skipped.
  Status DecideColumns(MergeChange& change, MergeChange*& previous) {
    ColumnMerge::Kind kind;
    Status status = PlanColumnWrite(change.stored, previous, change, &kind);
    if (!status.ok()) return WithContext(status, change);
    if (kind == ColumnMerge::Kind::kNothing) {
      ++result_->skipped;
      return Status::Ok();
    }
    const RowVersion current = previous != nullptr ? VersionOf(*previous) : change.stored;
    status = CheckWatermark(change, current);
    if (status.ok()) status = store_.Admit(change);
    if (!status.ok()) {
      if (Refused(change, WithContext(status, change))) return Status::Ok();
      result_->failed = change.index;
      return WithContext(status, change);
    }
    // A node that serves format-1 readers (all but a device) shows them a
    // changed row as a new version; every node makes a row that keeps
    // columns the sender lacks a version of its own.
    StampColumnWrite(change.stored, previous, options_.role != MergeRole::kDevice, options_.local_node, change);
    if (CompareStamps(change.hlc, change.node, change.change->hlc, change.change->node) > 0)
      store_.ReceiveStamp(change.hlc);
    if (previous != nullptr) wins_[previous->index] = false;
    wins_[change.index] = true;
    previous = &change;
    ++result_->applied;
    return Status::Ok();
  }

  // A row the server does not know, stamped at or below the stamps of the
  // tombstones it collected: an edit (the sender had an earlier version)
  // may be older than a delete collected since, and is refused, the device
  // forgetting its copy; a row new at its origin is taken, stamped above
  // the watermark.
  Status CheckWatermark(MergeChange& change, const RowVersion& current) const {
    const Change& incoming = *change.change;
    if (options_.role != MergeRole::kServer || current.exists || incoming.op != Op::kUpsert ||
        incoming.hlc > gc_watermark_)
      return Status::Ok();
    if (incoming.clock <= 1) {
      change.above_watermark = true;
      return Status::Ok();
    }
    return Status(Code::kResync, "an edit of a row unknown here, stamped " + HlcToText(incoming.hlc) +
                                     ", at or below the stamps of the deleted rows this server has forgotten (" +
                                     HlcToText(gc_watermark_) +
                                     "); the row may have been deleted since, so it is not brought back")
        .WithHint("The device was offline past the server's garbage collection horizon; insert the row anew "
                  "if it is still wanted.");
  }

  // Whether a change is refused on its own (then recorded) rather than
  // rejecting the batch.
  bool Refused(MergeChange& change, const Status& reason, bool forget = false) {
    if (options_.role == MergeRole::kStrict || !IsConflict(reason.code())) return false;
    // A constraint may hold once a later page is written (a parent, a
    // UNIQUE value freed): the sender merges pages and sends them again.
    if (options_.role == MergeRole::kServer && reason.code() == Code::kConstraint && batch_.has_more) return false;
    Refusal refusal;
    refusal.index = change.index;
    refusal.reason = reason;
    const Code code = reason.code();
    refusal.forget = options_.role == MergeRole::kServer &&
                     (forget || !HasKey(change) || code == Code::kPermissionDenied || code == Code::kUndefinedTable ||
                      code == Code::kClockDrift || code == Code::kResync);
    result_->refusals.push_back(std::move(refusal));
    refused_[change.index] = true;
    if (wins_[change.index]) {
      wins_[change.index] = false;
      --result_->applied;
    }
    return true;
  }

  // Records the versions of the rows written: the ones received, new local
  // versions for what the engine stored differently, and a server's
  // answers to the changes it refused.
  Status WriteVersions(const std::vector<MergeChange*>& winners) {
    // Every stamp of the batch advances the clock, but a refused one's: a
    // refusal must not move the server's clock (and so its answers and its
    // next local writes) ahead.
    for (const MergeChange& change : changes_)
      if (!refused_[change.index]) store_.ReceiveStamp(change.change->hlc);
    std::vector<const MergeChange*> versions;
    std::deque<MergeChange> added;
    for (MergeChange* change : winners) {
      if (refused_[change->index]) continue;
      Status status = Rewrite(*change, added);
      if (!status.ok()) return status;
      versions.push_back(change);
      written_[RowId{change->table, &change->meta_key}] = change;
    }
    if (options_.role == MergeRole::kServer) {
      for (Refusal& refusal : result_->refusals)
        Answer(changes_[refusal.index], &refusal, added);
    }
    for (const MergeChange& version : added)
      versions.push_back(&version);
    return store_.WriteVersions(versions);
  }

  // What the engine stored differently becomes a new local version: the
  // least stamp above the one received, which beats it (and nothing older
  // was stored) yet loses to any later edit elsewhere, as the received one
  // would. A row stored under another key than sent gets a tombstone for
  // the key as sent.
  Status Rewrite(MergeChange& change, std::deque<MergeChange>& added) {
    // No stamp is above the greatest: the new version could not beat the
    // received one, and the replicas would disagree for good.
    if ((change.rewritten || change.has_sent_key) && change.change->hlc == kHlcMax)
      return WithContext(Status(Code::kInvalidInput, "stamp " + HlcToText(kHlcMax) +
                                                         " is the greatest possible; the form this node stores "
                                                         "cannot be stamped above it"),
                         change);
    if (change.rewritten || change.above_watermark) {
      change.hlc = NextHlc(change.above_watermark ? std::max(change.hlc, gc_watermark_) : change.hlc);
      change.clock = NextClock(change.clock);
      change.node = options_.local_node;
      store_.ReceiveStamp(change.hlc);
      if (change.table->merge == MergeMode::kColumn) RestampTakenColumns(change);
    }
    if (change.rewritten || change.above_watermark || change.has_sent_key) ++result_->rewritten;
    if (change.has_sent_key) {
      MergeChange& tombstone = added.emplace_back(change);
      tombstone.meta_key = change.sent_key;
      tombstone.has_sent_key = false;
      tombstone.hlc = NextHlc(change.change->hlc);
      tombstone.clock = NextClock(change.change->clock);
      tombstone.node = options_.local_node;
      tombstone.deleted = true;
      tombstone.cols.clear();
      store_.ReceiveStamp(tombstone.hlc);
    }
    return Status::Ok();
  }

  // The server's answer to a refused change (docs/protocol.md,
  // "Conflicts"): its current state of the row (its content, or a tombstone
  // when it has none) at the least stamp above the refused one, so that the
  // device's copy is overwritten by the ordinary merge of its next pull; or,
  // when the device is to forget its copy, at the least stamp above the
  // server's own version.
  // Nothing to answer when the row cannot be named, or when the server's
  // version already beats the refused one.
  void Answer(const MergeChange& change, Refusal* refusal, std::deque<MergeChange>& added) {
    if (!HasKey(change)) return;
    RowVersion current = change.stored;
    auto winner = written_.find(RowId{change.table, &change.meta_key});
    if (winner != written_.end()) current = VersionOf(*winner->second);
    const Change& refused = *change.change;
    if (current.exists && CompareStamps(refused.hlc, refused.node, current.hlc, current.node) <= 0) return;
    refusal->answered = true;
    MergeChange& answer = added.emplace_back(change);
    answer.answer = true;
    answer.has_sent_key = false;
    // A device that forgets its copy needs no answer above its stamp, only
    // a new version to pull: the least stamp above the server's own, which
    // beats no edit made since (an answer above the refused stamp would let
    // anyone stamp another tenant's row ahead of its owners' next edits).
    const Hlc above = refusal->forget ? (current.exists ? current.hlc : 0) : refused.hlc;
    answer.hlc = NextHlc(above);
    answer.clock = NextClock(refused.clock);
    answer.node = options_.local_node;
    answer.deleted = !current.exists || current.deleted;
    answer.cols.clear();  // a column-merge row: every column at the answer's stamp
    store_.ReceiveStamp(answer.hlc);
  }

  const Batch& batch_;
  MergeStore& store_;
  const MergeOptions& options_;
  MergeResult* result_;
  std::vector<MergeChange> changes_;
  std::vector<bool> wins_, refused_;
  Hlc gc_watermark_ = 0;                                        // kServer: MergeStore::ReadGcWatermark
  std::unordered_map<RowId, MergeChange*, RowIdHash> latest_;   // the winner so far, per row
  std::unordered_map<RowId, MergeChange*, RowIdHash> written_;  // the winners written, per row
};

}  // namespace

Status Merge(const Batch& batch, MergeStore& store, const MergeOptions& options, MergeResult* result) {
  *result = MergeResult();
  return Merger(batch, store, options, result).Run();
}

}  // namespace syncline::core
