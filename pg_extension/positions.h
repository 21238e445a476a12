// Positions of PostgreSQL cursors (docs/postgres.md, "Cursors and
// failover"): where a pull stopped, on which WAL timeline, and under which
// garbage collection horizon.
//
//   <xid>.<seq>.<timeline>.<lsn>[.<gc xid>.<gc seq>]
//
// xid.seq is the last version delivered (the page's horizon at its end).
// timeline.lsn is the server's WAL timeline and position when it issued the
// cursor (a primary's insert position, a standby's replay position):
// everything delivered was written before it, so a server that promoted
// past that point on the same history has all of it. Below the garbage
// collection horizon a page's cursor carries the horizon it was issued
// under. Cursors issued before extension 0.2 have xid.seq only, and no
// timeline to check.
#pragma once

#include <string>

#include "core/status.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

struct Position {
  uint64 xid = 0;
  int64 seq = 0;
  uint32 timeline = 0;  // 0: a cursor from before timelines were recorded
  uint64 lsn = 0;
  std::string issued_under;  // "<gc xid>.<gc seq>", or empty
};

bool ParsePosition(const std::string& text, Position* out);
std::string VersionText(const Position& position);   // "<xid>.<seq>"
std::string PositionText(const Position& position);  // the whole position

// This server's WAL timeline and position: a primary's insertion timeline
// and insert position, a standby's replay timeline and position.
struct WalPoint {
  uint32 timeline = 0;
  uint64 lsn = 0;
  bool in_recovery = false;
};
WalPoint CurrentWalPoint();

// A cursor from another timeline: fine when this server's history passed
// through the cursor's timeline beyond its position; issued on a timeline a
// failover left behind before that point, it is answered with "resync"
// (kResync); from a timeline this server has not reached, "not yet" on a
// standby and "never issued" on a primary.
core::Status CheckTimeline(const Position& cursor, const WalPoint& now);

// A cursor past this server's horizon (`horizon`: the first xid a pull may
// not deliver yet): "not yet" on a standby, "never issued" on a primary.
core::Status CursorAhead(const Position& cursor, uint64 horizon, const WalPoint& now);

}  // namespace syncline::pg
