// Summary (core/merge_internal.h): apply_push's answer, written once the
// merge has applied a batch: its counts, the ignored columns and the
// refusals (docs/protocol.md, "Conflicts").
#include <string>

#include "core/merge.h"
#include "core/merge_internal.h"

namespace syncline::core {

// apply_push's summary: {"applied", "skipped", ["rewritten",] ["refused",]
// "source", "cursor"}.
std::string Summary(const Batch& batch, const MergeResult& result, bool count_rewritten, const std::string& cursor) {
  std::string summary;
  JsonWriter out(&summary);
  out.BeginObject();
  out.Key("applied");
  out.Int(result.applied);
  out.Key("skipped");
  out.Int(result.skipped);
  if (count_rewritten) {
    out.Key("rewritten");
    out.Int(result.rewritten);
  }
  if (!result.ignored_columns.empty()) {
    out.Key("ignored_columns");
    out.BeginArray();
    for (const std::string& column : result.ignored_columns)
      out.String(column);
    out.EndArray();
  }
  if (!result.refusals.empty()) {
    out.Key("refused");
    out.BeginArray();
    for (const Refusal& refusal : result.refusals) {
      const Change& change = batch.changes[refusal.index];
      out.BeginObject();
      out.Key("change");
      out.Int(static_cast<std::int64_t>(refusal.index));
      out.Key("table");
      out.String(change.table);
      out.Key("pk");
      out.BeginObject();
      for (const ColumnValue& column : change.pk) {
        out.Key(column.column);
        WriteValue(out, column.value);
      }
      out.EndObject();
      out.Key("hlc");
      out.String(HlcToText(change.hlc));
      out.Key("sqlstate");
      out.String(refusal.sqlstate);
      out.Key("reason");
      out.String(refusal.reason.message());
      out.Key("forget");
      out.Bool(refusal.forget);
      out.EndObject();
    }
    out.EndArray();
  }
  out.Key("source");
  out.String(batch.source);
  out.Key("cursor");
  if (cursor.empty())
    out.Null();
  else
    out.String(cursor);
  out.EndObject();
  return summary;
}

}  // namespace syncline::core
