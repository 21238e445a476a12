#include "pg_extension/positions.h"

#include <charconv>
#include <vector>

#include "core/cursor.h"
#include "pg_extension/pg_boundary.h"

extern "C" {
#include "access/timeline.h"
#include "nodes/pg_list.h"
}

namespace syncline::pg {

using core::Code;
using core::Status;

namespace {

template <typename T> bool ParseNumber(std::string_view text, T* out) {
  auto result = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && result.ec == std::errc() && result.ptr == text.data() + text.size();
}

std::string LsnText(uint64 lsn) {
  char text[32];
  // LSN_FORMAT_ARGS, whose type check does not compile as C++.
  snprintf(text, sizeof text, "%X/%X", static_cast<uint32>(lsn >> 32), static_cast<uint32>(lsn));
  return text;
}

// "734.0 (timeline 1, WAL 0/348A100)": the parts of a position a reader can
// compare with pg_current_wal_lsn() and pg_stat_replication.
std::string Describe(const Position& position) {
  if (position.timeline == 0) return VersionText(position);
  return VersionText(position) + " (timeline " + std::to_string(position.timeline) + ", WAL " + LsnText(position.lsn) +
         ")";
}

Status NotYetOnThisReplica(const Position& cursor, const std::string& why) {
  return Status(Code::kNotYet, "this replica has not replayed up to the cursor yet (cursor at " + Describe(cursor) +
                                   ", " + why + "); retry, or pull from the primary")
      .WithDetail("A hot standby delivers only what it has replayed; the cursor comes from the primary or a "
                  "replica further ahead.")
      .WithHint("Retry after a moment. A cursor that stays ahead was not issued by this database's primary.");
}

}  // namespace

bool ParsePosition(const std::string& text, Position* out) {
  std::vector<std::string_view> parts;
  std::string_view rest(text);
  while (true) {
    std::size_t dot = rest.find('.');
    parts.push_back(rest.substr(0, dot));
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (parts.size() != 2 && parts.size() != 4 && parts.size() != 6) return false;
  *out = Position();
  if (!ParseNumber(parts[0], &out->xid) || !ParseNumber(parts[1], &out->seq)) return false;
  if (parts.size() >= 4 &&
      (!ParseNumber(parts[2], &out->timeline) || out->timeline == 0 || !ParseNumber(parts[3], &out->lsn)))
    return false;
  if (parts.size() == 6) {
    uint64 xid = 0;
    int64 seq = 0;
    if (!ParseNumber(parts[4], &xid) || !ParseNumber(parts[5], &seq)) return false;
    out->issued_under = std::string(parts[4]) + "." + std::string(parts[5]);
  }
  return true;
}

std::string VersionText(const Position& position) {
  return std::to_string(position.xid) + "." + std::to_string(position.seq);
}

std::string PositionText(const Position& position) {
  std::string text = VersionText(position);
  if (position.timeline != 0) text += "." + std::to_string(position.timeline) + "." + std::to_string(position.lsn);
  if (!position.issued_under.empty()) text += "." + position.issued_under;
  return text;
}

WalPoint CurrentWalPoint() {
  WalPoint point;
  PgGuard([&] {
    point.in_recovery = RecoveryInProgress();
    if (point.in_recovery) {
      TimeLineID timeline = 0;
      point.lsn = GetXLogReplayRecPtr(&timeline);
      point.timeline = timeline;
    } else {
      point.lsn = GetXLogInsertRecPtr();
      point.timeline = GetWALInsertionTimeLine();
    }
  });
  return point;
}

Status CheckTimeline(const Position& cursor, const WalPoint& now) {
  if (cursor.timeline == 0) return Status::Ok();
  if (cursor.timeline == now.timeline) {
    if (cursor.lsn <= now.lsn) return Status::Ok();
    if (now.in_recovery) return NotYetOnThisReplica(cursor, "replayed up to WAL " + LsnText(now.lsn));
    return core::NeverIssued(PositionText(cursor));
  }
  if (cursor.timeline > now.timeline) {
    if (now.in_recovery)
      return NotYetOnThisReplica(cursor, "this replica replays timeline " + std::to_string(now.timeline));
    return core::NeverIssued(PositionText(cursor));
  }
  // An older timeline: where did this server's history leave it?
  bool found = false;
  uint64 end = 0;
  PgGuard([&] {
    List* history = readTimeLineHistory(now.timeline);
    ListCell* cell;
    foreach (cell, history) {
      auto* entry = static_cast<TimeLineHistoryEntry*>(lfirst(cell));
      if (entry->tli == cursor.timeline) {
        found = true;
        end = entry->end;
      }
    }
    list_free_deep(history);
  });
  if (found && cursor.lsn <= end) return Status::Ok();
  const std::string where =
      found ? "left it at WAL " + LsnText(end) + ", before the cursor's " + LsnText(cursor.lsn) : "never was on it";
  return Status(Code::kResync, "cursor position " + Describe(cursor) + " was issued on timeline " +
                                   std::to_string(cursor.timeline) + ", which this server's history (timeline " +
                                   std::to_string(now.timeline) + ") " + where +
                                   ": a failover lost what the cursor had seen; resync")
      .WithDetail("After a failover the new primary lacks the transactions the old one wrote past the switch "
                  "point, and reuses their transaction ids.")
      .WithHint("Resync: push local changes, then pull from the beginning (no cursor) and drop the rows the "
                "server no longer has. The syncline client does this on its own.");
}

Status CursorAhead(const Position& cursor, uint64 horizon, const WalPoint& now) {
  if (!now.in_recovery) return core::NeverIssued(PositionText(cursor));
  return NotYetOnThisReplica(cursor, "replayed up to " + std::to_string(horizon) + ".0, WAL " + LsnText(now.lsn));
}

}  // namespace syncline::pg
