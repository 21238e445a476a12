// The sync loop's SQL functions (sync_loop.h): arguments in, results out.
#include "sqlite_extension/ddl.h"
#include "sqlite_extension/gc.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/sync_loop.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

// The push half of the sync loop (sync_loop.h).
Status SqlPushBegin(ConnectionState& state, sqlite3_context*, int argc, sqlite3_value** argv) {
  std::optional<std::string> acked;
  std::string options;
  Status status = TextArg(argv[0], "acked", true, &acked);
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options);
  if (status.ok()) status = PushBegin(state, acked, options);
  return status;
}

Status SqlPushPage(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  std::optional<std::string> batch;
  Status status = SyncSchema(state, false);
  if (status.ok()) status = PushPage(state, &batch);
  if (status.ok() && batch) ResultText(ctx, *batch);
  return status;
}

Status SqlPushAnswer(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::optional<std::string> summary, sqlstate, message;
  std::string decision;
  Status status = TextArg(argv[0], "summary", true, &summary);
  if (status.ok()) status = TextArg(argv[1], "sqlstate", true, &sqlstate);
  if (status.ok()) status = TextArg(argv[2], "message", true, &message);
  if (status.ok() && !summary && !sqlstate)
    status = Status(Code::kInvalidInput, "an answer is a summary or an error's sqlstate");
  if (status.ok()) status = PushAnswer(state, summary, sqlstate.value_or(""), message.value_or(""), &decision);
  if (status.ok()) ResultText(ctx, decision);
  return status;
}

Status SqlPushAcked(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value**) {
  std::optional<std::string> acked;
  Status status = PushAcked(state, &acked);
  if (status.ok() && acked) ResultText(ctx, *acked);
  return status;
}

// The pull half of the sync loop (sync_loop.h).
Status SqlPullBegin(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string server, options, request;
  Status status = RequiredText(argv[0], "server", &server);
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options);
  if (status.ok()) status = SyncSchema(state, false);
  if (status.ok()) status = PullBegin(state, server, options, &request);
  if (status.ok()) ResultText(ctx, request);
  return status;
}

Status SqlPullNext(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string page;
  std::optional<std::string> request;
  Status status = RequiredText(argv[0], "page", &page);
  if (status.ok()) status = PullNext(state, page, &request);
  if (status.ok() && request) ResultText(ctx, *request);
  return status;
}

Status SqlPullApply(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string page, result;
  Status status = RequiredText(argv[0], "page", &page);
  if (status.ok()) status = SyncSchema(state, false);
  if (status.ok()) status = PullApply(state, page, &result);
  if (status.ok()) ResultText(ctx, result);
  return status;
}

Status SqlPullCursor(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string server, options;
  std::optional<std::string> cursor;
  Status status = RequiredText(argv[0], "server", &server);
  if (status.ok()) status = OptionalText(argc, argv, 1, "options", &options);
  if (status.ok()) status = PullCursor(state, server, options, &cursor);
  if (status.ok() && cursor) ResultText(ctx, *cursor);
  return status;
}

// syncline_gc_seen(answer): device_seen's answer in; {"collected": n} out.
Status SqlGcSeen(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::string answer, result;
  Status status = RequiredText(argv[0], "answer", &answer);
  if (status.ok()) status = GcSeen(state, answer, &result);
  if (status.ok()) ResultText(ctx, result);
  return status;
}

}  // namespace syncline::sqlite
