#include "client/sync_client.h"

#include <chrono>
#include <ctime>
#include <thread>

#include "client/collect.h"
#include "client/connections.h"
#include "client/schema.h"
#include "core/changeset.h"
#include "core/cursor.h"
#include "core/json.h"

namespace syncline::client {

using core::Code;
using core::Status;

namespace {

using Args = std::vector<std::optional<std::string>>;

// A pull a read server answered with "not yet" (it has not replayed up to
// the cursor) or cancelled for a recovery conflict is tried again, this
// often, after 0.1 s, 0.2 s, ... (3.1 s in all); a "not yet" that lasts is
// a cursor the read server will not reach, and is reported.
constexpr int kPullRetries = 5;
// Before a pull from a read server, the client waits this long at most for
// it to replay what the primary held when the sync began.
constexpr int kReplayWaitMs = 5000;

using PageInfo = core::BatchHeader;

// One pass of the tokenizer, no tree: the extension decodes the batch when
// it applies it, so a page is parsed once on the device.
Status ReadPage(const std::string& batch, PageInfo* out) {
  Status status = core::ReadBatchHeader(batch, out);
  if (!status.ok()) return Status(Code::kInternal, "a pulled batch cannot be read: " + status.message());
  return Status::Ok();
}

std::int64_t SummaryRefusals(const std::string& summary) {
  if (summary.find("\"refused\"") == std::string::npos) return 0;
  core::Json json;
  if (!core::ParseJson(summary, &json).ok()) return 0;
  const core::Json* refused = json.Find("refused");
  return refused != nullptr && refused->is_array() ? static_cast<std::int64_t>(refused->items.size()) : 0;
}

std::int64_t SummaryCount(const std::string& summary, const char* field) {
  core::Json json;
  if (!core::ParseJson(summary, &json).ok()) return 0;
  const core::Json* value = json.Find(field);
  return value != nullptr && value->is_number() ? std::stoll(value->text) : 0;
}

// --scope as JSON: an integer stays a number, anything else is text.
std::string ScopeJson(const std::string& scope) {
  if (scope.empty()) return "";
  std::string json;
  core::JsonWriter writer(&json);
  bool integer = scope.find_first_not_of("0123456789", scope[0] == '-' ? 1 : 0) == std::string::npos &&
                 scope.size() < 19 && scope != "-";
  if (integer)
    writer.Int(std::stoll(scope));
  else
    writer.String(scope);
  return json;
}

std::string NowUtc() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

class Session {
 public:
  explicit Session(const Options& options) : options_(options) {}

  Status OpenLocal(bool create) {
    Status status = local_.Open(options_.db_path, options_.extension, create);
    if (!status.ok()) return status;
    status = local_.Exec(kClientStateTable);
    if (!status.ok()) return status;
    std::optional<std::string> node;
    status = local_.Text("SELECT syncline_node_id()", {}, &node);
    if (status.ok()) node_ = node.value_or("");
    return status;
  }

  Status ConnectServer() {
    Status status = server_.Connect(options_.server);
    if (!status.ok()) return status;
    std::optional<std::string> node;
    status = server_.Text("SELECT syncline.node_id()::text", {}, &node);
    if (!status.ok()) return status;
    server_node_ = node.value_or("");
    if (options_.read_server.empty()) return Status::Ok();
    // Pulls go to the read server: it must serve the same database.
    status = reader_.Connect(options_.read_server);
    if (status.ok()) status = reader_.Text("SELECT syncline.node_id()::text", {}, &node);
    if (!status.ok()) return status.WithPrefix("read server: ");
    if (node.value_or("") != server_node_)
      return Status(Code::kInvalidInput, "the read server is syncline node " + node.value_or("(none)") +
                                             ", the server " + server_node_ + ": it is not a replica of the server");
    return Status::Ok();
  }

  Status State(const char* key, std::optional<std::string>* value) {
    return local_.Text("SELECT value FROM syncline_client WHERE key = ?1", {std::string(key)}, value);
  }
  Status SetState(const char* key, const std::string& value) {
    std::optional<std::string> ignored;
    return local_.Text("INSERT OR REPLACE INTO syncline_client(key, value) VALUES (?1, ?2)", {std::string(key), value},
                       &ignored);
  }

  // The scope this client syncs: the one it was cloned with; a different
  // --scope is refused rather than silently mixing two scopes in one file.
  Status ResolveScope() {
    std::optional<std::string> cloned;
    Status status = State("scope", &cloned);
    if (!status.ok()) return status;
    std::string wanted = ScopeJson(options_.scope);
    if (!options_.scope.empty() && wanted != cloned.value_or(""))
      return Status(Code::kInvalidInput, "this file was cloned with scope " +
                                             (cloned.value_or("").empty() ? "(none)" : cloned.value_or("")) + ", not " +
                                             wanted + "; clone the other scope into a new file");
    scope_json_ = cloned.value_or("");
    std::optional<std::string> server;
    status = State("server_node", &server);
    if (!status.ok()) return status;
    if (!server) return Status(Code::kInvalidInput, options_.db_path + " was not cloned from a server (run clone)");
    if (*server != server_node_)
      return Status(Code::kInvalidInput, "this file was cloned from server node " + *server + ", but the server is " +
                                             server_node_ + "; clone anew for another server");
    return Status::Ok();
  }

  // Push: this device's changes after the last one the server acknowledged.
  // The acknowledgement is what the server recorded for this client in the
  // same transaction as its apply, so a lost reply means a harmless re-push.
  // What to send, and what to do with each answer, the extension decides
  // (sqlite_extension/sync_loop.h); this sends and reports.
  Status Push(Counts* counts) {
    std::optional<std::string> ack, ignored;
    Status status =
        server_.Text("SELECT syncline.peer_cursor($1::uuid, $2::jsonb)", {node_, R"({"origin":"local"})"}, &ack);
    if (status.ok())
      status = local_.Text("SELECT syncline_push_begin(?1, ?2)",
                           {ack, R"({"page_size":)" + std::to_string(options_.page_size) + "}"}, &ignored);
    while (status.ok()) {
      std::optional<std::string> batch, summary, decision;
      status = local_.Text("SELECT syncline_push_page()", {}, &batch);
      if (!status.ok() || !batch) return status;
      std::string sqlstate;
      Status applied = server_.Text("SELECT syncline.apply_push($1::text)::text", {batch}, &summary, &sqlstate);
      if (!applied.ok() && sqlstate.empty()) return applied.WithPrefix("push: ");  // no answer: the connection
      std::optional<std::string> error_state, error_message;
      if (!applied.ok()) {
        error_state = sqlstate;
        error_message = applied.message();
      }
      status = local_.Text("SELECT syncline_push_answer(?1, ?2, ?3)", {summary, error_state, error_message}, &decision);
      if (!status.ok()) return status;
      core::Json json;
      if (!core::ParseJson(decision.value_or(""), &json).ok())
        return Status(Code::kInternal, "push: an answer " + decision.value_or("NULL"));
      const std::string action = core::StringMember(json, "action");
      if (!core::StringMember(json, "log").empty()) Log(core::StringMember(json, "log"));
      if (action == "failed") return applied.WithPrefix(core::StringMember(json, "prefix"));
      if (action == "deferred") {
        counts->push_deferred = true;
        return Status::Ok();
      }
      if (action == "next" || action == "done") {
        counts->pushed += SummaryCount(summary.value_or(""), "applied");
        ++counts->pages;
        Progress("push: " + std::to_string(counts->pushed) + " changes");
      }
      if (action == "done") return Status::Ok();
    }
    return status;
  }

  // Pull: the server's changes after the cursor this file recorded with the
  // last page it applied. Which cursor and options to ask for, how each page
  // applies and when the pages commit, the extension decides
  // (sqlite_extension/sync_loop.h, docs/sync-loop.md); this
  // sends the requests and runs the transactions. Each page applies
  // atomically; pages commit together, once the foreign keys hold (a child
  // may arrive a page before its parent). The next page is requested before
  // this one is applied, so the server reads it while the client writes.
  //
  // A resync (the server collected deletes this file's cursor has not
  // seen) pulls everything from the beginning in one transaction, then
  // removes the rows the server no longer has, but this file's own
  // unacknowledged ones: the app sees the old rows until the new ones
  // (docs/client.md, "Resync").
  Status Pull(Counts* counts, bool resync = false) {
    std::optional<std::string> batch;
    Status status = BeginPull(resync, &batch);
    // A server without schema versions (0.1) refuses the option: the file
    // follows its table descriptions instead.
    if (!status.ok() && !legacy_schema_ && status.message().find("unknown option \"schema\"") != std::string::npos) {
      legacy_schema_ = true;
      status = FollowTableDescriptions(local_, puller(), options_.log);
      if (status.ok()) status = BeginPull(resync, &batch);
    }
    if (!status.ok()) return status;
    status = Begin();
    if (!status.ok()) return Abandon(status);
    Counts pending;  // counted into *counts once committed: a pull may be tried again
    for (bool first = true;; first = false) {
      if (!first) status = puller().Receive(&batch);
      if (!status.ok()) return Abandon(status);
      // A server whose library takes the option but whose SQL keeps no
      // schema versions (0.1, before ALTER EXTENSION syncline UPDATE) sends
      // none: the file follows its table descriptions, as above.
      PageInfo page;
      if (first && !legacy_schema_ && ReadPage(batch.value_or(""), &page).ok() && page.schema_version < 0) {
        legacy_schema_ = true;
        status = FollowTableDescriptions(local_, puller(), options_.log);
        if (!status.ok()) return Abandon(status);
      }
      std::optional<std::string> next, result;
      status = local_.Text("SELECT syncline_pull_next(?1)", {batch}, &next);
      if (status.ok() && next) status = SendPull(*next);
      if (!status.ok()) return Abandon(status);
      status = local_.Text("SELECT syncline_pull_apply(?1)", {batch}, &result);
      if (!status.ok()) return Abandon(ExplainRefusedPage(local_, status, batch.value_or("")).WithPrefix("pull: "));
      core::Json applied;
      if (!core::ParseJson(result.value_or(""), &applied).ok() || applied.Find("summary") == nullptr)
        return Abandon(Status(Code::kInternal, "pull: " + result.value_or("")));
      const std::string summary = core::JsonText(*applied.Find("summary"));
      LogSchemaChanges(summary, options_.log);
      LogResync(applied.Find("resync"));
      pending.pulled += SummaryCount(summary, "applied");
      pending.conflicts += SummaryRefusals(summary);
      ++pending.pages;
      Progress("pull: " + std::to_string(counts->pulled + pending.pulled) + " changes, page " +
               std::to_string(counts->pages + pending.pages));
      if (const core::Json* retried = applied.Find("retried"); retried != nullptr && retried->text != "0")
        Log("resolved " + retried->text + " conflicts by applying again");
      const bool last = next == std::nullopt;
      if (applied.Find("commit") == nullptr || applied.Find("commit")->kind != core::Json::Kind::kTrue) continue;
      // COMMIT fails while a deferred foreign key is violated and leaves the
      // transaction open: keep going, the parent is in a later page. Any
      // other failure (a full disk) ends the transaction: stop there, the
      // next pull starts again from the last commit.
      Status committed = local_.Exec("COMMIT");
      if (committed.ok()) {
        counts->pulled += pending.pulled;
        counts->conflicts += pending.conflicts;
        counts->pages += pending.pages;
        pending = Counts();
        if (last) return Status::Ok();
        status = Begin();
        if (!status.ok()) return Abandon(status);
      } else if (sqlite3_extended_errcode(local_.handle()) != SQLITE_CONSTRAINT_FOREIGNKEY ||
                 !local_.in_transaction()) {
        return Abandon(committed.WithPrefix("pull: commit: "));
      } else if (last) {
        return Abandon(Status(Code::kConstraint, "pull: the pulled rows break a foreign key of this file; nothing of "
                                                 "this pull was kept"));
      }
    }
  }

  // Pull, tried again after a pause when a read server is not there yet
  // or a recovery conflict cancelled it (each try starts from the last
  // commit); first, with a read server, waits for it to replay what the
  // primary holds.
  Status PullRetrying(Counts* counts, bool resync = false) {
    Status status = WaitForReplay();
    for (int attempt = 1; status.ok(); ++attempt) {
      status = Pull(counts, resync);
      const bool transient = status.code() == Code::kNotYet || status.code() == Code::kConflict;
      if (status.ok() || !transient || attempt > kPullRetries) break;
      const int delay_ms = 100 << (attempt - 1);
      Log("pull: " + status.message() + "; retry " + std::to_string(attempt) + " of " + std::to_string(kPullRetries) +
          " in " + std::to_string(delay_ms) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      status = Status::Ok();
    }
    return status;
  }

  // With a read server: waits until it has replayed up to the primary's WAL
  // position as of now, so that a pull right after a notification (or this
  // device's own push) sees what the primary has. A read server that stays
  // behind is pulled from anyway, after kReplayWaitMs.
  Status WaitForReplay() {
    if (options_.read_server.empty()) return Status::Ok();
    std::optional<std::string> target, caught_up;
    Status status = server_.Text("SELECT pg_catalog.pg_current_wal_lsn()::text", {}, &target);
    if (!status.ok()) return status.WithPrefix("reading the primary's WAL position: ");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReplayWaitMs);
    while (true) {
      // A read server out of recovery (promoted) has all it will get.
      status = reader_.Text(
          "SELECT NOT pg_catalog.pg_is_in_recovery() OR pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_catalog.pg_lsn",
          {target}, &caught_up);
      if (!status.ok()) return status.WithPrefix("read server: ");
      if (caught_up.value_or("f") == "t") return Status::Ok();
      if (std::chrono::steady_clock::now() >= deadline) {
        Log("read server: not replayed up to the primary's WAL " + target.value_or("") + " after " +
            std::to_string(kReplayWaitMs / 1000) + " s; pulling what it has");
        return Status::Ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The server collected deletes past this file's cursor (`why`): start
  // again from the server's state; local changes are pushed already.
  Status Resync(Counts* counts, const Status& why) {
    Log(why.message());
    counts->resynced = true;
    return PullRetrying(counts, /*resync=*/true);
  }

  Status CheckSchemaDue(Counts* counts) { return client::CheckSchemaDue(local_, &counts->schema_due, options_.log); }

  // Copies this device's entries of the server's conflict log that this
  // file lacks (the server's log is the record: a reply lost after a
  // refusal loses nothing), dropping the rows the server says a pull will
  // not bring back. Runs after a push, before the pull that brings the
  // server's answers.
  Status CopyServerConflicts(Counts* counts) {
    std::optional<std::string> after;
    Status status = State("conflicts_after", &after);
    if (!status.ok()) return status;
    std::vector<std::vector<std::optional<std::string>>> rows;
    status = server_.Rows(
        "SELECT c.id::text, json_build_object('id', c.id, 'table_name', c.table_name, 'pk', c.pk::text, 'op', c.op, "
        "'row', c.\"row\"::text, 'hlc', c.hlc, 'origin', c.origin, 'sqlstate', c.sqlstate, 'reason', c.reason, "
        "'answer', c.answer, 'forget', c.forget)::text FROM syncline.conflicts_for('" +
            node_ + "'::uuid, " + std::to_string(after ? std::stoll(*after) : 0) + ") c",
        &rows);
    if (!status.ok()) return status.WithPrefix("conflicts: ");
    for (const auto& row : rows) {
      std::optional<std::string> dropped;
      status = local_.Text("SELECT syncline_note_conflict(?1)", {row[1]}, &dropped);
      if (status.ok()) status = SetState("conflicts_after", row[0].value_or("0"));
      if (!status.ok()) return status.WithPrefix("conflicts: ");
      ++counts->conflicts;
    }
    return Status::Ok();
  }

  // The log is bounded: resolved entries go after 30 days, any after 90.
  Status PruneConflicts() {
    std::optional<std::string> pruned;
    return local_.Text("SELECT syncline_prune_conflicts()", {}, &pruned);
  }

  // Reports this file's pull position to the server and collects the
  // tombstones the server's collection has passed (client/collect.h).
  Status ReportPosition(Counts* counts) {
    PullPosition position{node_, std::nullopt, scope_json_};
    Status status =
        local_.Text("SELECT syncline_pull_cursor(?1, ?2)",
                    {server_node_, scope_json_.empty() ? "{}" : R"({"scope":)" + scope_json_ + "}"}, &position.cursor);
    if (status.ok()) status = ReportAndCollect(local_, server_, position, &counts->collected, options_.log);
    return status;
  }

  Status Finish() { return SetState("last_sync", NowUtc()); }

  LocalDb& local() { return local_; }
  Server& server() { return server_; }
  const std::string& node() const { return node_; }
  const std::string& server_node() const { return server_node_; }
  void set_scope_json(std::string scope) { scope_json_ = std::move(scope); }
  void Log(const std::string& line) {
    if (options_.log) options_.log(line);
  }

 private:
  // The pull's first request (syncline_pull_begin), sent, and its page.
  Status BeginPull(bool resync, std::optional<std::string>* batch) {
    std::string options = R"({"page_size":)" + std::to_string(options_.page_size);
    if (!scope_json_.empty()) options += R"(,"scope":)" + scope_json_;
    if (resync) options += R"(,"resync":true)";
    if (legacy_schema_) options += R"(,"legacy_schema":true)";
    options += "}";
    std::optional<std::string> request;
    Status status = local_.Text("SELECT syncline_pull_begin(?1, ?2)", {server_node_, options}, &request);
    if (status.ok()) status = SendPull(request.value_or(""));
    if (status.ok()) status = puller().Receive(batch);
    return status;
  }

  // Sends a request of the extension's ({"cursor", "limit", "options"}).
  Status SendPull(const std::string& request) {
    core::Json json;
    if (!core::ParseJson(request, &json).ok()) return Status(Code::kInternal, "pull: a request " + request);
    const core::Json* cursor = json.Find("cursor");
    const core::Json* limit = json.Find("limit");
    std::optional<std::string> cursor_text;
    if (cursor != nullptr && cursor->is_string()) cursor_text = cursor->text;
    return puller().Send("SELECT syncline.pull_since($1, $2::int, $3::jsonb)::text",
                         {cursor_text, limit != nullptr ? limit->text : "1000", core::StringMember(json, "options")});
  }

  void LogResync(const core::Json* resync) {
    if (resync == nullptr) return;
    if (const core::Json* candidates = resync->Find("candidates"); candidates != nullptr)
      Log("resync: pulling the server's state; " + candidates->text + " rows to check");
    else
      Log("resync: done, " + core::JsonText(*resync));
  }

  Status Begin() {
    Status status = local_.Exec("BEGIN IMMEDIATE");
    if (status.ok()) status = local_.Exec("PRAGMA defer_foreign_keys = ON");
    return status;
  }
  Status Abandon(Status status) {
    puller().Discard();
    if (local_.in_transaction()) (void)local_.Exec("ROLLBACK");
    return status;
  }
  void Progress(const std::string& line) {
    if (options_.progress) options_.progress(line);
  }

  // Where pulls go: the read server if there is one (docs/client.md, "Read
  // servers"); pushes, conflicts and position reports go to the server.
  Server& puller() { return options_.read_server.empty() ? server_ : reader_; }

  const Options& options_;
  LocalDb local_;
  Server server_;
  Server reader_;
  std::string node_, server_node_, scope_json_;
  bool legacy_schema_ = false;  // the server sends no schema (0.1): see FollowTableDescriptions
};

}  // namespace

Status Clone(const Options& options, Counts* counts) {
  Session session(options);
  Status status = session.OpenLocal(/*create=*/true);
  if (!status.ok()) return status;
  std::optional<std::string> tables;
  status = session.local().Text(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'syncline\\_%' ESCAPE '\\'", {},
      &tables);
  if (!status.ok()) return status;
  if (tables.value_or("0") != "0")
    return Status(Code::kInvalidInput, options.db_path + " already holds tables; clone needs a new, empty file");
  status = session.ConnectServer();
  if (!status.ok()) return status;
  std::string scope = ScopeJson(options.scope);
  status = session.SetState("server_node", session.server_node());
  if (status.ok()) status = session.SetState("scope", scope);
  if (!status.ok()) return status;
  session.set_scope_json(scope);
  // The first page brings the server's schema document (this file's
  // version is 0), and with it the tables. A collection while the clone
  // runs can pass its cursor: it then goes on as a resync.
  status = session.PullRetrying(counts);
  if (status.code() == Code::kResync) status = session.Resync(counts, status);
  if (status.ok()) status = session.CheckSchemaDue(counts);
  std::optional<std::string> tracked;
  if (status.ok()) status = session.local().Text("SELECT count(*) FROM syncline_tables", {}, &tracked);
  if (status.ok() && tracked.value_or("0") == "0" && counts->schema_due == 0)
    return Status(Code::kInvalidInput, "the server tracks no tables (call syncline.track there)");
  if (status.ok()) status = session.ReportPosition(counts);
  if (status.ok()) status = session.Finish();
  return status;
}

Status Sync(const Options& options, Counts* counts) {
  Session session(options);
  Status status = session.OpenLocal(/*create=*/false);
  if (status.ok()) status = session.ConnectServer();
  if (status.ok()) status = session.ResolveScope();
  // A write of the app's between this push and this pull may break a
  // foreign key against the pulled rows (a child of a parent deleted on the
  // server): nothing of the pull is kept, and one more cycle pushes that
  // write, which the server refuses and answers, and pulls again.
  for (int cycle = 0; status.ok() && cycle < 2; ++cycle) {
    status = session.Push(counts);
    if (status.ok()) status = session.CopyServerConflicts(counts);
    if (status.ok()) status = session.PullRetrying(counts);
    // The server collected deletes this file has not pulled: its local
    // changes are pushed already; start again from the server's state.
    if (status.code() == Code::kResync) status = session.Resync(counts, status);
    if (status.code() != Code::kConstraint || cycle == 1) break;
    session.Log(status.message() + "; pushing and pulling again");
    status = Status::Ok();
  }
  if (status.ok()) status = session.CheckSchemaDue(counts);
  if (status.ok()) status = session.PruneConflicts();
  if (status.ok()) status = session.ReportPosition(counts);
  if (status.ok()) status = session.Finish();
  return status;
}

}  // namespace syncline::client
