// Schema changes of tracked tables (docs/postgres.md, "Schema changes"): the
// schema version and document pulls carry, and the history that maps a
// change from a device behind the server's schema. The event triggers that
// keep the history are SQL (sql/syncline--0.1--0.2.sql).
#pragma once

#include <string>

#include "core/merge.h"
#include "core/status.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// The server's schema version; false under extension version 0.1, which
// keeps none. Needs an SPI session. Read in `snapshot` (a pull's), so that a
// page's rows and its schema agree.
bool ReadSchemaVersion(int64* version, Snapshot snapshot = InvalidSnapshot);

// The schema document for a reader at version `since` (syncline.schema_document).
std::string SchemaDocument(int64 since, Snapshot snapshot = InvalidSnapshot);

// Fills the former names and dropped columns of a tracked table from its
// history (core::MergeTable), renames followed to the column's current name.
void LoadColumnHistory(int32 tid, core::MergeTable* table);

// The current name of a table once named `name`, or "" when none is tracked
// under a name it had (it was dropped or untracked, or never tracked).
std::string RenamedTable(const std::string& name);

}  // namespace syncline::pg
