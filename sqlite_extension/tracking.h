// Tracking a table: the capture triggers, the metadata rows, the backfill.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/value.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// A table's secondary UNIQUE constraints (the REPLACE guard covers them).
struct UniqueKeys {
  std::vector<std::vector<std::string>> keys;  // by column names
  std::string expression_index;                // name of a UNIQUE index on expressions, if any
};
core::Status LoadUniqueKeys(sqlite3* db, const TableInfo& table, UniqueKeys* out);

// A capture trigger, `sql` as SQLite keeps it in sqlite_schema.
struct CaptureTrigger {
  std::string name;
  std::string sql;
};
// "syncline_<event>_<table>", unquoted.
std::string CaptureTriggerName(const char* event, const std::string& table);
// The capture triggers of a table as it is now (docs/sqlite.md, "Capture").
std::vector<CaptureTrigger> CreateTriggers(const TableInfo& table, const UniqueKeys& unique);
// Triggers that refuse every write to `table` with `message` (a table whose
// metadata no longer matches its primary key).
std::vector<CaptureTrigger> BlockingTriggers(const std::string& table, const std::string& message);
std::string CreateSql(const std::vector<CaptureTrigger>& triggers);
// SQL that gives a tombstone to every row of table `tid` that the metadata
// holds as live but that is gone (removed without capture).
std::string TombstoneMissingSql(std::int64_t tid);
// Drops every capture (or blocking) trigger named after `table`.
std::string DropTriggers(const std::string& table);

// After metadata rows were deleted: when they held the highest local version
// (`highest`, read before), a sentinel row (tid 0, never pulled) keeps it, so
// that versions are never reused. Used by untrack, GC and resync.
core::Status KeepVersionHighWaterMark(sqlite3* db, std::int64_t highest);

core::Status Track(ConnectionState& state, const std::string& table, const std::string& options, std::string* result);
core::Status Untrack(ConnectionState& state, const std::string& table, bool* was_tracked);

// The metadata key (syncline_rows.pk, docs/sqlite.md, "Metadata") of a row
// whose primary key values, in key order and in the form SQLite stores them
// (a NaN as the text 'NaN', kNanText), are `values`: a key of one text column holding a UUID (8-4-4-4-12 hex
// digits, not mixed case) is a 17-byte blob, a tag byte and the 16 bytes;
// any other key is its protocol text (core::EncodeKey). syncline_key, which
// the capture triggers call, writes the same (the tests compare them).
core::Status EncodeMetadataKey(const std::vector<core::Value>& values, core::Value* out);
core::Status EncodeMetadataKey(const std::vector<const core::Value*>& values, core::Value* out);
// The compact form alone: true (and 17 bytes in `out`) when `text` is such a
// UUID.
bool CompactUuidKey(std::string_view text, unsigned char out[17]);
// A stored metadata key back into its values.
core::Status DecodeMetadataKey(const core::Value& stored, std::vector<core::Value>* values);
// A stored metadata key as its protocol text, for messages.
std::string MetadataKeyText(const core::Value& stored);

// Whether a tracked table still holds the row with this metadata key.
core::Status RowExists(sqlite3* db, std::int64_t tid, const core::Value& key, bool* exists);

// syncline_tables.pk_columns: the key's column names, a JSON array.
std::string PkColumnsJson(const TableInfo& table);

// SQL to select a row by its primary key, parameters ?1..?n in key order.
std::string KeyPredicate(const TableInfo& table);

}  // namespace syncline::sqlite
