// The SQLite loadable extension's entry point and its SQL functions. Each
// function checks its arguments, calls into the extension's parts and turns a
// Status into sqlite3_result_error; no C++ exception leaves a callback.
#include <sqlite3ext.h>

#include <new>
#include <optional>
#include <string>

#include "core/changeset.h"
#include "core/hlc.h"
#include "sqlite_extension/column_capture.h"
#include "sqlite_extension/conflicts.h"
#include "sqlite_extension/ddl.h"
#include "sqlite_extension/gc.h"
#include "sqlite_extension/schema.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/state.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/sync_loop.h"
#include "sqlite_extension/syncline.h"
#include "sqlite_extension/tracking.h"

SQLITE_EXTENSION_INIT1

namespace syncline::sqlite {
namespace {

using core::Code;
using core::Status;

using Impl = Status (*)(ConnectionState&, sqlite3_context*, int, sqlite3_value**);

template <const char* kName, Impl kImpl> void Call(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* state = static_cast<ConnectionState*>(sqlite3_user_data(ctx));
  try {
    Status status = kImpl(*state, ctx, argc, argv);
    if (status.ok()) return;
    // SQLite has no place for a hint but the message (what to do matters
    // most for kResync, which the client acts on).
    std::string message = std::string(kName) + ": " + status.message();
    if (!status.hint().empty()) message += " (hint: " + status.hint() + ")";
    sqlite3_result_error(ctx, message.c_str(), static_cast<int>(message.size()));
    if (status.code() == Code::kConstraint) sqlite3_result_error_code(ctx, SQLITE_CONSTRAINT);
  } catch (const std::bad_alloc&) {
    sqlite3_result_error_nomem(ctx);
  } catch (const std::exception& e) {
    std::string message = std::string(kName) + ": internal error: " + e.what();
    sqlite3_result_error(ctx, message.c_str(), -1);
  } catch (...) {
    sqlite3_result_error(ctx, (std::string(kName) + ": internal error").c_str(), -1);
  }
}

// --- public functions -----------------------------------------------------

Status SqlTrack(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string table, options, result;
  Status status = RequiredText(argv[0], "table", &table);
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options);
  if (status.ok()) status = SyncSchema(state, false);
  if (status.ok()) status = Track(state, table, options, &result);
  if (status.ok()) status = SyncSchema(state, false);  // the authorizer now knows the table
  if (status.ok()) ResultText(ctx, result);
  return status;
}

Status SqlUntrack(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string table;
  bool was_tracked = false;
  Status status = RequiredText(argv[0], "table", &table);
  if (status.ok()) status = SyncSchema(state, false);
  if (status.ok()) status = Untrack(state, table, &was_tracked);
  if (status.ok()) sqlite3_result_int(ctx, was_tracked ? 1 : 0);
  return status;
}

Status SqlPullSince(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::optional<std::string> cursor;
  Status status = TextArg(argv[0], "cursor", true, &cursor);
  if (!status.ok()) return status;
  std::int64_t limit = 1000;
  int limit_type = sqlite3_value_type(argv[1]);
  if (limit_type == SQLITE_INTEGER)
    limit = sqlite3_value_int64(argv[1]);
  else if (limit_type != SQLITE_NULL)
    return Status(Code::kInvalidInput, "limit must be an integer or NULL");
  std::string options, batch;
  status = OptionalText(argc, argv, 2, "options", &options);
  // Best effort: a pull may run in a read-only transaction or inside a
  // writing statement, where triggers cannot change; it finds renamed tables
  // without writing (ResolveTrackedName).
  if (status.ok()) (void)SyncSchema(state, false);
  if (status.ok()) status = PullSince(state, cursor, limit, options, &batch);
  if (status.ok()) ResultText(ctx, batch);
  return status;
}

Status SqlApplyPush(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string batch, summary, options_text;
  Status status;
  // A blob is taken as the batch's bytes (readfile() returns one); the JSON
  // reader validates them as UTF-8 either way.
  if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
    const auto* bytes = static_cast<const char*>(sqlite3_value_blob(argv[0]));
    batch.assign(bytes == nullptr ? "" : bytes, static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  } else {
    status = RequiredText(argv[0], "batch", &batch);
  }
  ApplyOptions options;
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options_text);
  if (status.ok()) status = ParseApplyOptions(options_text, &options);
  if (status.ok()) status = SyncSchema(state, false);
  if (status.ok()) status = ApplyPush(state, batch, options, &summary);
  if (status.ok()) ResultText(ctx, summary);
  return status;
}

// syncline_gc(options): drops tombstones up to options' "through" (a local
// version); "through" is required, so a call without it collects nothing.
Status SqlGc(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string options, result;
  Status status = OptionalText(argc, argv, 0, "options", &options);
  if (status.ok()) status = CollectGarbage(state, options, &result);
  if (status.ok()) ResultText(ctx, result);
  return status;
}

// syncline_resync_begin(acked_cursor): the number of rows that the resync
// removes unless a page names them.
Status SqlResyncBegin(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::optional<std::string> acked;
  Status status = TextArg(argv[0], "acked_cursor", true, &acked);
  if (status.ok()) status = SyncSchema(state, false);
  std::int64_t candidates = 0;
  if (status.ok()) status = ResyncBegin(state, acked, &candidates);
  if (status.ok()) sqlite3_result_int64(ctx, candidates);
  return status;
}

Status SqlResyncEnd(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  std::string result;
  Status status = SyncSchema(state, false);
  if (status.ok()) status = ResyncEnd(state, &result);
  if (status.ok()) ResultText(ctx, result);
  return status;
}

// syncline_forget(table, pk, hlc): 1 when this device's copy of the row,
// still at the version the server refused, was dropped (not captured).
Status SqlForget(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string table, pk, hlc;
  Status status = RequiredText(argv[0], "table", &table);
  if (status.ok()) status = RequiredText(argv[1], "pk", &pk);
  if (status.ok()) status = RequiredText(argv[2], "hlc", &hlc);
  bool dropped = false;
  if (status.ok()) status = Forget(state, table, pk, hlc, &dropped);
  if (status.ok()) sqlite3_result_int(ctx, dropped ? 1 : 0);
  return status;
}

// syncline_note_conflict(entry): records an entry of the server's conflict
// log; 1 when it dropped the row's copy here.
Status SqlNoteConflict(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string entry;
  Status status = RequiredText(argv[0], "entry", &entry);
  bool dropped = false;
  if (status.ok()) status = NoteServerConflict(state, entry, &dropped);
  if (status.ok()) sqlite3_result_int(ctx, dropped ? 1 : 0);
  return status;
}

// syncline_prune_conflicts([resolved_days [, kept_days]]): drops resolved
// entries after 30 days and any after 90 (by default); returns how many.
Status SqlPruneConflicts(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::int64_t days[2] = {30, 90};
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) != SQLITE_INTEGER) return Status(Code::kInvalidInput, "days must be an integer");
    days[i] = sqlite3_value_int64(argv[i]);
  }
  std::int64_t pruned = 0;
  Status status = PruneConflicts(state.db, days[0], days[1], &pruned);
  if (status.ok()) sqlite3_result_int64(ctx, pruned);
  return status;
}

// syncline_resubmit_conflict(id [, row_json]): writes a refused row again
// as a new local write and resolves the entry.
Status SqlResubmitConflict(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER) return Status(Code::kInvalidInput, "id must be an integer");
  std::optional<std::string> row;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    std::string text;
    Status status = RequiredText(argv[1], "row", &text);
    if (!status.ok()) return status;
    row = std::move(text);
  }
  Status status = ResubmitConflict(state, sqlite3_value_int64(argv[0]), row);
  if (status.ok()) sqlite3_result_int(ctx, 1);
  return status;
}

// syncline_retry_conflicts(): applies the logged versions from the server
// again; returns how many were resolved.
Status SqlRetryConflicts(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  std::int64_t resolved = 0;
  Status status = RetryConflicts(state, &resolved);
  if (status.ok()) sqlite3_result_int64(ctx, resolved);
  return status;
}

Status SqlPeerCursor(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string node, options;
  std::optional<std::string> cursor;
  Status status = RequiredText(argv[0], "node id", &node);
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options);
  if (status.ok()) status = PeerCursor(state, node, options, &cursor);
  if (status.ok()) {
    if (cursor)
      ResultText(ctx, *cursor);
    else
      sqlite3_result_null(ctx);
  }
  return status;
}

Status SqlNodeId(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  std::string node;
  Status status = EnsureMetadata(state.db);
  if (status.ok()) status = LocalNodeId(state.db, &node);
  if (status.ok()) ResultText(ctx, node);
  return status;
}

Status SqlHlcNow(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  ResultText(ctx, core::HlcToText(NextStamp(state, 0)));
  return Status::Ok();
}

// syncline_config(name [, value]): reads or sets a setting.
//   max_drift_ms   the drift bound, kept in the database
//   clock_skew_ms  this connection's clock offset from the wall clock, for
//                  tests that simulate skewed devices (not kept)
//   follow_schema, schema_version, schema_due: see schema.h
Status SqlConfig(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string name;
  Status status = RequiredText(argv[0], "name", &name);
  if (!status.ok()) return status;
  if (name == "clock_skew_ms") {
    if (argc > 1) {
      if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER)
        return Status(Code::kInvalidInput, "clock_skew_ms must be an integer (milliseconds)");
      state.clock_skew_ms = sqlite3_value_int64(argv[1]);
    }
    sqlite3_result_int64(ctx, state.clock_skew_ms);
    return Status::Ok();
  }
  if (IsSchemaSetting(name)) return SchemaSetting(state, ctx, name, argc > 1 ? argv[1] : nullptr);
  if (name != "max_drift_ms")
    return Status(Code::kInvalidInput,
                  "unknown setting \"" + name +
                      "\" (known: max_drift_ms, clock_skew_ms, follow_schema, schema_version, schema_due)");
  status = EnsureMetadata(state.db);
  if (!status.ok()) return status;
  if (argc > 1) {
    if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) < 0)
      return Status(Code::kInvalidInput, "max_drift_ms must be a non-negative integer (milliseconds)");
    status = WriteMeta(state.db, "max_drift_ms", std::to_string(sqlite3_value_int64(argv[1])));
    if (!status.ok()) return status;
  }
  sqlite3_result_int64(ctx, MaxDriftMs(state.db));
  return Status::Ok();
}

// --- functions the capture triggers call ----------------------------------

// syncline_capturing(): whether writes are captured now (not while
// apply_push writes). syncline_capturing(tid, key): whether this row's write
// is, which is every row but the one apply_push is writing: what a user's
// trigger writes during an apply is a local write.
Status SqlCapturing(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  // The first captured row after a schema change brings capture in line
  // (ddl.cc); every other row pays one test of the flag.
  if (state.schema_dirty) {
    Status status = SyncSchema(state, true);
    if (!status.ok()) return status;
  }
  bool capturing = state.applying == 0;
  if (!capturing && argc == 2) {
    const core::Value* applied = state.applied_key;
    capturing = applied == nullptr || sqlite3_value_int64(argv[0]) != state.applied_tid ||
                !core::SameValue(ValueFromSqlite(argv[1]), *applied);
  }
  sqlite3_result_int(ctx, capturing ? 1 : 0);
  return Status::Ok();
}

// Whether JsonWriter::String would copy `text` unchanged: printable ASCII
// (hence valid UTF-8) without quotes or backslashes.
bool NeedsNoEscape(std::string_view text) {
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

// The metadata key of a row, on every captured write (EncodeMetadataKey,
// which the tests compare it with): a UUID key as its compact blob, any other
// key encoded straight from the arguments into a buffer the connection keeps.
Status SqlKey(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc == 1 && sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
    unsigned char compact[17];
    std::string_view text(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                          static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
    if (CompactUuidKey(text, compact)) {
      sqlite3_result_blob(ctx, compact, sizeof compact, SQLITE_TRANSIENT);
      return Status::Ok();
    }
  }
  std::string& key = state.key_buffer;
  key.clear();
  core::JsonWriter writer(&key);
  writer.BeginArray();
  for (int i = 0; i < argc; ++i) {
    switch (sqlite3_value_type(argv[i])) {
      case SQLITE_INTEGER: writer.Int(sqlite3_value_int64(argv[i])); break;
      case SQLITE_TEXT: {
        std::string_view text(reinterpret_cast<const char*>(sqlite3_value_text(argv[i])),
                              static_cast<std::size_t>(sqlite3_value_bytes(argv[i])));
        if (NeedsNoEscape(text)) {  // the common key (a UUID, a slug): printable ASCII, copied as it is
          writer.Raw({});           // the separator
          key.push_back('"');
          key.append(text);
          key.push_back('"');
          break;
        }
        if (!core::IsValidUtf8(text))
          return Status(Code::kInvalidInput,
                        "primary key column " + std::to_string(i + 1) + " is text that is not valid UTF-8");
        writer.String(text);
        break;
      }
      case SQLITE_NULL: writer.Null(); break;
      default: core::WriteValue(writer, core::KeyForm(ValueFromSqlite(argv[i]))); break;  // reals and blobs
    }
  }
  writer.EndArray();
  ResultText(ctx, key);
  return Status::Ok();
}

Status SqlStamp(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  core::Hlc floor = 0;
  if (sqlite3_value_type(argv[0]) == SQLITE_INTEGER) floor = static_cast<core::Hlc>(sqlite3_value_int64(argv[0]));
  sqlite3_result_int64(ctx, static_cast<std::int64_t>(NextStamp(state, floor)));
  return Status::Ok();
}

Status SqlRowExists(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  bool exists = false;
  Status status = RowExists(state.db, sqlite3_value_int64(argv[0]), ValueFromSqlite(argv[1]), &exists);
  if (status.ok()) sqlite3_result_int(ctx, exists ? 1 : 0);
  return status;
}

constexpr char kTrackName[] = "syncline_track";
constexpr char kUntrackName[] = "syncline_untrack";
constexpr char kPullName[] = "syncline_pull_since";
constexpr char kApplyName[] = "syncline_apply_push";
constexpr char kPeerCursorName[] = "syncline_peer_cursor";
constexpr char kNodeIdName[] = "syncline_node_id";
constexpr char kHlcNowName[] = "syncline_hlc_now";
constexpr char kConfigName[] = "syncline_config";
constexpr char kCapturingName[] = "syncline_capturing";
constexpr char kKeyName[] = "syncline_key";
constexpr char kStampName[] = "syncline_stamp";
constexpr char kColumnStampsName[] = "syncline_column_stamps";
constexpr char kRowExistsName[] = "syncline_row_exists";
constexpr char kForgetName[] = "syncline_forget";
constexpr char kRetryConflictsName[] = "syncline_retry_conflicts";
constexpr char kNoteConflictName[] = "syncline_note_conflict";
constexpr char kPruneConflictsName[] = "syncline_prune_conflicts";
constexpr char kResubmitConflictName[] = "syncline_resubmit_conflict";
constexpr char kFollowSchemaName[] = "syncline_follow_schema";
constexpr char kGcName[] = "syncline_gc";
constexpr char kResyncBeginName[] = "syncline_resync_begin";
constexpr char kResyncEndName[] = "syncline_resync_end";
constexpr char kPushBeginName[] = "syncline_push_begin";
constexpr char kPushPageName[] = "syncline_push_page";
constexpr char kPushAnswerName[] = "syncline_push_answer";
constexpr char kPushAckedName[] = "syncline_push_acked";
constexpr char kPullBeginName[] = "syncline_pull_begin";
constexpr char kPullNextName[] = "syncline_pull_next";
constexpr char kPullApplyName[] = "syncline_pull_apply";
constexpr char kPullCursorName[] = "syncline_pull_cursor";
constexpr char kGcSeenName[] = "syncline_gc_seen";

struct Function {
  const char* name;
  int min_args;
  int max_args;
  int flags;
  void (*call)(sqlite3_context*, int, sqlite3_value**);
};

// Functions that write or reveal sync state are DIRECTONLY: a hostile
// database file cannot call them from its own triggers or views. The ones the
// capture triggers call are INNOCUOUS so that triggers may use them under
// PRAGMA trusted_schema=OFF; only syncline_key is deterministic.
constexpr int kDirect = SQLITE_UTF8 | SQLITE_DIRECTONLY;
constexpr int kTrigger = SQLITE_UTF8 | SQLITE_INNOCUOUS;

constexpr Function kFunctions[] = {
    {kTrackName, 1, 2, kDirect, Call<kTrackName, SqlTrack>},
    {kUntrackName, 1, 1, kDirect, Call<kUntrackName, SqlUntrack>},
    {kPullName, 2, 3, kDirect, Call<kPullName, SqlPullSince>},
    {kApplyName, 1, 2, kDirect, Call<kApplyName, SqlApplyPush>},
    {kGcName, 0, 1, kDirect, Call<kGcName, SqlGc>},
    {kResyncBeginName, 1, 1, kDirect, Call<kResyncBeginName, SqlResyncBegin>},
    {kResyncEndName, 0, 0, kDirect, Call<kResyncEndName, SqlResyncEnd>},
    {kPushBeginName, 1, 2, kDirect, Call<kPushBeginName, SqlPushBegin>},
    {kPushPageName, 0, 0, kDirect, Call<kPushPageName, SqlPushPage>},
    {kPushAnswerName, 3, 3, kDirect, Call<kPushAnswerName, SqlPushAnswer>},
    {kPushAckedName, 0, 0, kDirect, Call<kPushAckedName, SqlPushAcked>},
    {kPullBeginName, 1, 2, kDirect, Call<kPullBeginName, SqlPullBegin>},
    {kPullNextName, 1, 1, kDirect, Call<kPullNextName, SqlPullNext>},
    {kPullApplyName, 1, 1, kDirect, Call<kPullApplyName, SqlPullApply>},
    {kPullCursorName, 1, 2, kDirect, Call<kPullCursorName, SqlPullCursor>},
    {kGcSeenName, 1, 1, kDirect, Call<kGcSeenName, SqlGcSeen>},
    {kForgetName, 3, 3, kDirect, Call<kForgetName, SqlForget>},
    {kRetryConflictsName, 0, 0, kDirect, Call<kRetryConflictsName, SqlRetryConflicts>},
    {kNoteConflictName, 1, 1, kDirect, Call<kNoteConflictName, SqlNoteConflict>},
    {kPruneConflictsName, 0, 2, kDirect, Call<kPruneConflictsName, SqlPruneConflicts>},
    {kResubmitConflictName, 1, 2, kDirect, Call<kResubmitConflictName, SqlResubmitConflict>},
    {kPeerCursorName, 1, 2, kDirect, Call<kPeerCursorName, SqlPeerCursor>},
    {kFollowSchemaName, 1, 1, kDirect, Call<kFollowSchemaName, SqlFollowSchema>},
    {kNodeIdName, 0, 0, kDirect, Call<kNodeIdName, SqlNodeId>},
    {kHlcNowName, 0, 0, kDirect, Call<kHlcNowName, SqlHlcNow>},
    {kConfigName, 1, 2, kDirect, Call<kConfigName, SqlConfig>},
    {kCapturingName, 0, 2, kTrigger, Call<kCapturingName, SqlCapturing>},
    {kKeyName, -1, -1, kTrigger | SQLITE_DETERMINISTIC, Call<kKeyName, SqlKey>},
    {kStampName, 1, 1, kTrigger, Call<kStampName, SqlStamp>},
    {kColumnStampsName, -1, -1, kTrigger, Call<kColumnStampsName, SqlColumnStamps>},
    {kRowExistsName, 2, 2, kTrigger, Call<kRowExistsName, SqlRowExists>},
};

void ReleaseState(void* data) {
  auto* state = static_cast<ConnectionState*>(data);
  if (--state->function_refs == 0) delete state;
}

}  // namespace
}  // namespace syncline::sqlite

extern "C" __attribute__((visibility("default"))) int sqlite3_syncline_init(sqlite3* db, char** error,
                                                                            const sqlite3_api_routines* api) {
  SQLITE_EXTENSION_INIT2(api);
  using namespace syncline::sqlite;
  auto* state = new (std::nothrow) ConnectionState();
  if (state == nullptr) return SQLITE_NOMEM;
  state->db = db;
  // Each registration holds a reference; the state goes with the last one
  // (when the connection closes or the functions are replaced).
  state->function_refs = 1;
  for (const Function& function : kFunctions) {
    for (int args = function.min_args; args <= function.max_args; ++args) {
      ++state->function_refs;
      int rc = sqlite3_create_function_v2(db, function.name, args, function.flags, state, function.call, nullptr,
                                          nullptr, ReleaseState);
      if (rc != SQLITE_OK) {
        // create_function_v2 calls the destructor itself when it fails.
        *error = sqlite3_mprintf("syncline: cannot register %s: %s", function.name, sqlite3_errmsg(db));
        ReleaseState(state);
        return rc;
      }
    }
  }
  // The authorizer notes the app's schema changes and refuses writes that
  // would go uncaptured (ddl.cc); its cost is at prepare time, not per row.
  sqlite3_set_authorizer(db, AuthorizeForCapture, state);
  // Brings triggers made by an older build, or left behind by another
  // connection's migration, in line now if the file can be written.
  (void)SyncSchema(*state, false);
  ReleaseState(state);  // drop the loader's own reference
  return SQLITE_OK;
}

#ifdef SQLITE_CORE
// Linked in with SQLite (make static, make wasm; sqlite_extension/syncline.h).
extern "C" __attribute__((visibility("default"))) int syncline_register(void) {
  return sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(sqlite3_syncline_init));
}
#endif
