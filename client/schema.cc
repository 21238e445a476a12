// Following the server's schema from the client's side (docs/client.md,
// "Following the server's schema"): a server without schema versions, the
// log lines of what following changed, and the messages of a file that
// follows by hand.
#include "client/schema.h"

#include "core/changeset.h"
#include "core/json.h"

namespace syncline::client {

using core::Code;
using core::Status;

namespace {

std::string SchemaDueMessage(const std::string& server, const std::string& file) {
  return "the server's schema is at version " + server + ", this file at " + file +
         ": migrate this file's schema, then call syncline_config('schema_version', " + server +
         ") (this file follows the server's schema by hand: syncline_config('follow_schema') is 'manual')";
}

}  // namespace

Status CheckSchemaDue(LocalDb& local, std::int64_t* schema_due, const Log& log) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  Status status = local.Rows("SELECT syncline_config('follow_schema'), syncline_config('schema_version'), "
                             "syncline_config('schema_due')",
                             &rows);
  if (!status.ok() || rows.empty() || rows[0][0].value_or("") != "manual" || !rows[0][2]) return status;
  *schema_due = std::stoll(*rows[0][2]);
  if (log) log(SchemaDueMessage(*rows[0][2], rows[0][1].value_or("0")));
  return Status::Ok();
}

Status FollowTableDescriptions(LocalDb& local, Server& server, const Log& log) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  Status status = server.Rows("SELECT table_name, to_jsonb(primary_key)::text, columns::text, foreign_keys::text "
                              "FROM syncline.tracked_tables ORDER BY table_name",
                              &rows);
  if (!status.ok()) return status;
  if (rows.empty()) return Status(Code::kInvalidInput, "the server tracks no tables (call syncline.track there)");
  std::string document = R"({"version":null,"tables":[)";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string name;
    core::JsonWriter(&name).String(rows[i][0].value_or(""));
    document += std::string(i > 0 ? "," : "") + "{\"name\":" + name +
                ",\"primary_key\":" + rows[i][1].value_or("null") + ",\"columns\":" + rows[i][2].value_or("null") +
                ",\"foreign_keys\":" + rows[i][3].value_or("[]") + "}";
  }
  document += "]}";
  std::optional<std::string> summary;
  status = local.Text("SELECT syncline_follow_schema(?1)", {document}, &summary);
  if (!status.ok()) return status.WithPrefix("the server's table descriptions (syncline.tracked_tables): ");
  LogSchemaChanges("{\"schema\":" + summary.value_or("{}") + "}", log);
  return Status::Ok();
}

void LogSchemaChanges(const std::string& summary, const Log& log) {
  if (!log) return;
  if (summary.find("\"schema\"") == std::string::npos) return;
  core::Json json;
  if (!core::ParseJson(summary, &json).ok()) return;
  const core::Json* schema = json.Find("schema");
  if (schema == nullptr || !schema->is_object() || schema->Find("unchanged") || schema->Find("manual")) return;
  std::string changes;
  auto list = [&](const char* key, const char* what) {
    const core::Json* items = schema->Find(key);
    if (items == nullptr || !items->is_array()) return;
    for (const core::Json& item : items->items) {
      std::string text = item.is_string() ? item.text : "";
      if (const core::Json* table = item.Find("table"); table != nullptr && !item.Find("from")) text = table->text;
      if (const core::Json* column = item.Find("column")) text += "." + column->text;
      if (const core::Json* from = item.Find("from")) text = from->text + " -> " + item.Find("to")->text;
      if (const core::Json* as = item.Find("as")) text += " as " + as->text;
      changes += std::string(changes.empty() ? "" : ", ") + what + " " + text;
    }
  };
  list("created", "created");
  list("renamed", "renamed");
  list("added", "added");
  list("dropped", "dropped");
  list("rebuilt", "rebuilt");
  list("untracked", "untracked (rows kept)");
  list("set_aside", "set aside");
  if (const core::Json* merges = schema->Find("merge"); merges != nullptr && merges->is_array()) {
    for (const core::Json& item : merges->items) {
      const core::Json *table = item.Find("table"), *merge = item.Find("merge");
      if (table != nullptr && merge != nullptr)
        changes += std::string(changes.empty() ? "" : ", ") + "merges " + table->text + " by " + merge->text;
    }
  }
  const core::Json* version = schema->Find("version");
  log("followed the server's schema" +
      (version != nullptr && version->is_number() ? " to version " + version->text : std::string()) + ": " +
      (changes.empty() ? "nothing to change" : changes));
  if (const core::Json* warnings = schema->Find("warnings"); warnings != nullptr && warnings->is_array()) {
    for (const core::Json& warning : warnings->items) {
      const core::Json *table = warning.Find("table"), *column = warning.Find("column"), *note = warning.Find("note");
      if (table != nullptr && column != nullptr && note != nullptr)
        log("column " + table->text + "." + column->text + ": " + note->text);
    }
  }
}

Status ExplainRefusedPage(LocalDb& local, Status status, const std::string& batch) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  if (!local.Rows("SELECT syncline_config('follow_schema'), syncline_config('schema_version')", &rows).ok() ||
      rows.empty() || rows[0][0].value_or("") != "manual")
    return status;
  core::Batch page;
  if (!core::DecodeBatch(batch, &page).ok() || page.schema_version <= std::stoll(rows[0][1].value_or("0")))
    return status;
  return Status(status.code(), status.message() + "; " +
                                   SchemaDueMessage(std::to_string(page.schema_version), rows[0][1].value_or("0")));
}

}  // namespace syncline::client
