// Pull options and cursors (docs/protocol.md, "Pulling").
//
// A cursor describes itself: "<node id>:<filter fingerprint>:<position>". The
// node id says which database issued it, the fingerprint which pull options
// it was taken with, and the position (dot-separated decimal integers, its
// meaning private to the issuing engine) where the pull stopped. A cursor from
// another database, taken with other options or never issued is refused
// rather than silently skipping rows.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/changeset.h"
#include "core/json.h"
#include "core/status.h"

namespace syncline::core {

struct PullOptions {
  bool local_only = false;     // {"origin": "local"}
  std::string exclude_origin;  // {"exclude_origin": "<node id>"}, canonical
  std::string scope;           // {"scope": value}, the value's canonical JSON; empty when absent
  bool has_scope = false;
  // {"max_bytes": n}: where a page stops (BatchWriter::AddToPage). Not part of
  // the filter: it changes how rows are cut into pages, not which rows.
  std::size_t max_bytes = kMaxPageBytes;
  // {"schema": n}: the schema version the reader has; pages then carry the
  // server's, and its schema document when n is older (docs/protocol.md,
  // "Schema changes"). -1 when absent. Not part of the filter either.
  std::int64_t schema = -1;
  // {"format": 2}: the reader reads format 2, in which changes of
  // column-merge tables carry their columns' stamps (docs/protocol.md,
  // "Column-level merge"); format 1 (the default) gets each row as one
  // version. Not part of the filter.
  int format = 1;
};

// Parses pull options; an empty or NULL text means no options. Unknown keys
// are errors, so a misspelt option never silently widens a pull.
Status ParsePullOptions(std::string_view text, PullOptions* out);

// 16 hex digits that identify the set of rows the options select.
std::string FilterFingerprint(const PullOptions& options);

struct Cursor {
  std::string node;
  std::string filter;
  std::string position;
};

std::string EncodeCursor(const Cursor& cursor);
Status DecodeCursor(std::string_view text, Cursor* out);

// Checks that a cursor was issued by this database (node_id) for pulls with
// these options (filter); the engine then checks its position.
Status CheckCursorIssuer(const Cursor& cursor, const std::string& node_id, const std::string& filter);
// DecodeCursor, then CheckCursorIssuer: what a pull does with its cursor.
Status DecodeIssuedCursor(std::string_view text, const std::string& node_id, const std::string& filter, Cursor* out);
Status NeverIssued(const std::string& position);
// A cursor older than the issuer's garbage collection horizon: deletes it
// has not delivered are gone, so the reader must resync (kResync).
Status CursorBeforeHorizon(const std::string& position, const std::string& horizon);

// Orders positions as sequences of unsigned decimal integers: <0, 0, >0.
int ComparePositions(std::string_view a, std::string_view b);

}  // namespace syncline::core
