// The client's reports on its file: status, and the conflict log
// (docs/client.md, "status", "conflicts"). They read the file only.
#include <optional>
#include <string>
#include <vector>

#include "client/connections.h"
#include "client/sync_client.h"
#include "core/json.h"

namespace syncline::client {

using core::Code;
using core::Status;

namespace {

// The client file as the reports read it (no server).
class ClientFile {
 public:
  Status Open(const Options& options) {
    Status status = local_.Open(options.db_path, options.extension, /*create=*/false);
    if (status.ok()) status = local_.Exec(kClientStateTable);
    std::optional<std::string> node;
    if (status.ok()) status = local_.Text("SELECT syncline_node_id()", {}, &node);
    node_ = node.value_or("");
    return status;
  }
  Status State(const char* key, std::optional<std::string>* value) {
    return local_.Text("SELECT value FROM syncline_client WHERE key = ?1", {std::string(key)}, value);
  }
  LocalDb& local() { return local_; }
  const std::string& node() const { return node_; }

 private:
  LocalDb local_;
  std::string node_;
};

// Open entries of the conflict log (0 when the file has none yet).
Status OpenConflicts(LocalDb& local, std::string* count) {
  std::optional<std::string> exists, open;
  Status status = local.Text("SELECT 1 FROM sqlite_schema WHERE name = 'syncline_conflicts'", {}, &exists);
  if (status.ok() && exists)
    status = local.Text("SELECT count(*) FROM syncline_conflicts WHERE resolved_at IS NULL", {}, &open);
  *count = open.value_or("0");
  return status;
}

std::string JsonText(const std::optional<std::string>& text) {
  std::string out;
  core::JsonWriter writer(&out);
  if (text)
    writer.String(*text);
  else
    writer.Null();
  return out;
}

}  // namespace

Status Describe(const Options& options, bool json, std::string* report) {
  ClientFile session;
  Status status = session.Open(options);
  if (!status.ok()) return status;
  std::optional<std::string> server, scope, last_sync, acked, cursor, pending;
  std::string conflicts;
  status = session.State("server_node", &server);
  if (status.ok()) status = session.State("scope", &scope);
  if (status.ok()) status = session.State("last_sync", &last_sync);
  if (status.ok()) status = session.local().Text(kAckedPushQuery, {}, &acked);
  if (!status.ok()) return status;
  // Local changes after the last push the server acknowledged.
  std::string position = acked ? acked->substr(acked->rfind(':') + 1) : "0";
  status = session.local().Text("SELECT count(*) FROM syncline_rows WHERE tid > 0 AND node = 0 AND version > ?1",
                                {position}, &pending);
  if (status.ok() && server)
    status = session.local().Text("SELECT cursor FROM syncline_peers WHERE node_id = ?1", {*server}, &cursor);
  if (status.ok()) status = OpenConflicts(session.local(), &conflicts);
  // Garbage collection: the greatest local version collected, and the
  // checkpoint the next collection waits for (client/collect.cc).
  std::optional<std::string> gc_horizon, checkpoint;
  if (status.ok())
    status = session.local().Text("SELECT value FROM syncline_meta WHERE key = 'gc_horizon'", {}, &gc_horizon);
  if (status.ok())
    status = session.local().Text("SELECT nullif(value, '') FROM syncline_meta WHERE key = 'gc_checkpoint'", {},
                                  &checkpoint);
  if (!status.ok()) return status;
  std::optional<std::string> through, bound;
  if (checkpoint && checkpoint->find(' ') != std::string::npos) {
    through = checkpoint->substr(0, checkpoint->find(' '));
    bound = checkpoint->substr(checkpoint->find(' ') + 1);
  }
  if (json) {
    *report = "{\"node\":" + JsonText(session.node()) + ",\"server_node\":" + JsonText(server) +
              ",\"scope\":" + (scope.value_or("").empty() ? "null" : *scope) +
              ",\"pending_local\":" + pending.value_or("0") + ",\"open_conflicts\":" + conflicts +
              ",\"last_cursor\":" + JsonText(cursor) + ",\"last_sync\":" + JsonText(last_sync) +
              ",\"gc\":{\"collected_through\":" + gc_horizon.value_or("0") +
              ",\"next_through\":" + through.value_or("null") +
              ",\"next_once_server_bound_passes\":" + JsonText(bound) + "}}\n";
    return Status::Ok();
  }
  *report = "node:           " + session.node() + "\n" + "server node:    " + server.value_or("(not cloned)") + "\n" +
            "scope:          " + (scope.value_or("").empty() ? "(none)" : *scope) + "\n" +
            "pending local:  " + pending.value_or("0") + " changes\n" + "open conflicts: " + conflicts +
            (conflicts != "0" ? " (syncline conflicts --db FILE)" : "") + "\n" +
            "last cursor:    " + cursor.value_or("(none)") + "\n" + "last sync:      " + last_sync.value_or("never") +
            "\n" + "gc collected:   tombstones through local version " + gc_horizon.value_or("0") + "\n" +
            "gc next:        " +
            (through ? "through local version " + *through + ", once the server's collection passes " + *bound
                     : std::string("(no checkpoint yet: set by the next sync)")) +
            "\n";
  return Status::Ok();
}

Status ListConflicts(const Options& options, bool all, bool json, std::string* report) {
  ClientFile session;
  Status status = session.Open(options);
  if (!status.ok()) return status;
  std::string open;
  status = OpenConflicts(session.local(), &open);
  if (!status.ok()) return status;
  report->clear();
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::optional<std::string> exists;
  status = session.local().Text("SELECT 1 FROM sqlite_schema WHERE name = 'syncline_conflicts'", {}, &exists);
  if (status.ok() && exists) {
    const std::string columns = "id, at, side, table_name, pk, op, \"row\", hlc, sqlstate, reason, answer, resolved_at";
    status = session.local().Rows(
        json ? "SELECT json_group_array(json_object('id', id, 'at', at, 'side', side, 'table', table_name, 'pk', "
               "json(pk), 'op', op, 'row', json(\"row\"), 'hlc', hlc, 'sqlstate', sqlstate, 'reason', reason, "
               "'answer', answer, 'resolved_at', resolved_at)) FROM (SELECT " +
                   columns + " FROM syncline_conflicts" + (all ? "" : " WHERE resolved_at IS NULL") + " ORDER BY id)"
             : "SELECT " + columns + " FROM syncline_conflicts" + (all ? "" : " WHERE resolved_at IS NULL") +
                   " ORDER BY id",
        &rows);
  }
  if (!status.ok()) return status;
  if (json) {
    *report = (rows.empty() ? std::string("[]") : rows[0][0].value_or("[]")) + "\n";
    return Status::Ok();
  }
  for (const auto& row : rows) {
    // "#3 2026-12-02T09:00:00Z server tags {"id":"..."} upsert: 23505 duplicate key ..."
    *report += "#" + row[0].value_or("") + " " + row[1].value_or("") + " " + row[2].value_or("") + " " +
               row[3].value_or("") + " " + row[4].value_or("") + " " + row[5].value_or("") + ": " +
               row[8].value_or("") + " " + row[9].value_or("") + (row[11] ? " (resolved)" : "") + "\n";
  }
  if (rows.empty()) *report = "no " + std::string(all ? "" : "open ") + "conflicts\n";
  return Status::Ok();
}

Status ResolveConflict(const Options& options, std::int64_t id) {
  ClientFile session;
  Status status = session.Open(options);
  if (!status.ok()) return status;
  std::optional<std::string> done;
  status = session.local().Text("UPDATE syncline_conflicts SET resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                                "WHERE id = ?1 AND resolved_at IS NULL RETURNING id",
                                {std::to_string(id)}, &done);
  if (status.ok() && !done) return Status(Code::kInvalidInput, "no open conflict #" + std::to_string(id));
  return status;
}

}  // namespace syncline::client
