// The pull half of the sync loop (sync_loop.h): which cursor and options a
// pull asks the server for, how its pages apply, when they commit, and a
// resync's beginning and end.
#include <cstdint>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/node_id.h"
#include "sqlite_extension/conflicts.h"
#include "sqlite_extension/gc.h"
#include "sqlite_extension/schema.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/sync_loop.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

namespace {

// Pages commit together, this often (docs/client.md, "sync"): fewer commits
// spare the file most of its writes; a crash loses at most the pages since
// the last one, which the next pull fetches again.
constexpr std::int64_t kCommitChanges = 50000;
constexpr std::int64_t kCommitMs = 1000;

Status NotBegun() {
  return Status(Code::kInvalidInput, "no pull in progress").WithHint("Call syncline_pull_begin first.");
}

// The file's usual pull options: everything of its scope but its own
// changes (exclude_own), as the server's pull_since and the peer cursor
// name them.
std::string FilterOptions(const std::string& node, const std::string& scope, bool exclude_own) {
  std::string out;
  core::JsonWriter writer(&out);
  writer.BeginObject();
  if (exclude_own) {
    writer.Key("exclude_origin");
    writer.String(node);
  }
  if (!scope.empty()) {
    writer.Key("scope");
    writer.Raw(scope);
  }
  writer.EndObject();
  return out;
}

// The options of begin and cursor: the scope as JSON text ("" for none).
Status ParseLoopOptions(const std::string& text, std::string* scope, core::Json* json) {
  scope->clear();
  if (text.empty()) return Status::Ok();
  if (!core::ParseJson(text, json).ok() || !json->is_object())
    return Status(Code::kInvalidInput, "options must be a JSON object");
  const core::Json* value = json->Find("scope");
  if (value != nullptr && !value->is_null()) *scope = core::JsonText(*value);
  return Status::Ok();
}

bool Flag(const core::Json& json, const char* name) {
  const core::Json* value = json.Find(name);
  return value != nullptr && value->kind == core::Json::Kind::kTrue;
}

// {"cursor", "limit", "options"}: the next request, with the file's schema
// version unless the server has none.
Status Request(ConnectionState& state, const std::optional<std::string>& cursor, std::string* out) {
  PullState& pull = state.pull;
  std::string options = pull.request_options;
  if (!pull.legacy_schema) {
    std::int64_t version = 0;
    Status status = FileSchemaVersion(state.db, &version);
    if (!status.ok()) return status;
    options.pop_back();
    options += std::string(options.size() > 1 ? "," : "") + "\"schema\":" + std::to_string(version) + "}";
  }
  bool columns = false;
  Status status = HasColumnMergeTables(state.db, &columns);
  if (!status.ok()) return status;
  if (columns) {
    options.pop_back();
    options += std::string(options.size() > 1 ? "," : "") + "\"format\":2}";
  }
  out->clear();
  core::JsonWriter writer(out);
  writer.BeginObject();
  writer.Key("cursor");
  if (cursor)
    writer.String(*cursor);
  else
    writer.Null();
  writer.Key("limit");
  writer.Int(pull.page_size);
  writer.Key("options");
  writer.String(options);
  writer.EndObject();
  return Status::Ok();
}

// A resync's full pull delivered everything the usual pulls would have: its
// last cursor, relabelled with their filter, becomes theirs (an empty page
// applied as a resync's, which replaces the old cursor even if older).
Status RelabelCursor(ConnectionState& state, const std::string& last_cursor) {
  core::Cursor cursor;
  core::PullOptions usual;
  Status status = core::DecodeCursor(last_cursor, &cursor);
  if (status.ok()) status = core::ParsePullOptions(state.pull.usual_options, &usual);
  if (!status.ok()) return status;
  cursor.filter = core::FilterFingerprint(usual);
  std::string page;
  core::JsonWriter writer(&page);
  writer.BeginObject();
  writer.Key("format");
  writer.Int(1);
  writer.Key("source");
  writer.String(state.pull.server_node);
  writer.Key("changes");
  writer.Raw("[]");
  writer.Key("cursor");
  writer.String(core::EncodeCursor(cursor));
  writer.EndObject();
  ApplyOptions options;
  options.from_server = true;
  options.resync = true;
  std::string ignored;
  return ApplyPush(state, page, options, &ignored);
}

}  // namespace

Status PullBegin(ConnectionState& state, const std::string& server_node, const std::string& options,
                 std::string* request) {
  PullState pull;
  std::optional<std::string> canonical = core::CanonicalNodeId(server_node);
  if (!canonical)
    return Status(Code::kInvalidInput, "server node id \"" + server_node.substr(0, 60) + "\" is not a UUID");
  core::Json json;
  std::string scope, node;
  Status status = ParseLoopOptions(options, &scope, &json);
  if (status.ok()) status = LocalNodeId(state.db, &node);
  if (!status.ok()) return status;
  status = PageSizeOption(json, &pull.page_size);
  if (!status.ok()) return status;
  pull.active = true;
  pull.resync = Flag(json, "resync");
  pull.legacy_schema = Flag(json, "legacy_schema");
  pull.server_node = *canonical;
  pull.usual_options = FilterOptions(node, scope, true);
  pull.request_options = pull.resync ? FilterOptions(node, scope, false) : pull.usual_options;
  pull.since_commit_ms = state.WallMs();
  state.pull = pull;
  std::optional<std::string> cursor;
  if (!pull.resync) status = PeerCursor(state, pull.server_node, pull.usual_options, &cursor);
  if (status.ok()) status = Request(state, cursor, request);
  return status;
}

Status PullNext(ConnectionState& state, const std::string& page, std::optional<std::string>* request) {
  if (!state.pull.active) return NotBegun();
  core::BatchHeader header;
  Status status = core::ReadBatchHeader(page, &header);
  if (!status.ok()) return Status(Code::kInvalidInput, "a pulled batch cannot be read: " + status.message());
  request->reset();
  if (!header.has_more) return Status::Ok();
  std::string text;
  status = Request(state, header.cursor, &text);
  if (status.ok()) *request = std::move(text);
  return status;
}

Status PullApply(ConnectionState& state, const std::string& page, std::string* result) {
  PullState& pull = state.pull;
  if (!pull.active) return NotBegun();
  core::BatchHeader header;
  Status status = core::ReadBatchHeader(page, &header);
  if (!status.ok()) return Status(Code::kInvalidInput, "a pulled batch cannot be read: " + status.message());
  std::string resync;
  // A resync's first page: every row of the file is a candidate for
  // removal but its changes the server has not acknowledged; each page
  // clears the rows it names.
  if (pull.resync && !pull.resync_begun) {
    std::optional<std::string> acked;
    std::int64_t candidates = 0;
    status = PushAcked(state, &acked);
    if (status.ok()) status = ResyncBegin(state, acked, &candidates);
    if (!status.ok()) return status;
    pull.resync_begun = true;
    resync = "{\"candidates\":" + std::to_string(candidates) + "}";
  }
  ApplyOptions options;
  options.from_server = true;
  options.resync = pull.resync;
  std::string summary;
  status = ApplyPush(state, page, options, &summary);
  if (!status.ok()) return status;
  pull.uncommitted += static_cast<std::int64_t>(header.changes);
  const bool last = !header.has_more;
  const bool commit =
      last ||
      (!pull.resync && (pull.uncommitted >= kCommitChanges || state.WallMs() - pull.since_commit_ms >= kCommitMs));
  std::int64_t retried = 0;
  if (commit) {
    if (pull.resync && last) {
      status = RelabelCursor(state, header.cursor);
      if (status.ok()) status = ResyncEnd(state, &resync);
      if (!status.ok()) return status.WithPrefix("resync: ");
    }
    // Versions skipped in an earlier page may fit now (a UNIQUE value a
    // later page's tombstone freed), and their children need them.
    status = RetryConflicts(state, &retried);
    if (!status.ok()) return status;
    pull.uncommitted = 0;
    pull.since_commit_ms = state.WallMs();
    if (last) pull.active = false;
  }
  *result = "{\"summary\":" + summary + ",\"commit\":" + (commit ? "true" : "false") +
            ",\"last\":" + (last ? "true" : "false") + ",\"retried\":" + std::to_string(retried) +
            (resync.empty() ? "" : ",\"resync\":" + resync) + "}";
  return Status::Ok();
}

Status PullCursor(ConnectionState& state, const std::string& server_node, const std::string& options,
                  std::optional<std::string>* cursor) {
  core::Json json;
  std::string scope, node;
  Status status = ParseLoopOptions(options, &scope, &json);
  if (status.ok()) status = LocalNodeId(state.db, &node);
  if (status.ok()) status = PeerCursor(state, server_node, FilterOptions(node, scope, true), cursor);
  return status;
}

}  // namespace syncline::sqlite
