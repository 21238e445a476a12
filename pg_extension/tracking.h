// What track() sets up on a relation, shared with following partitions
// (partitions.h): the capture triggers and the backfill.
#pragma once

#include <string>

#include "core/status.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

// Installs (or replaces) the four capture triggers on relation `relid`,
// named `name` (quoted). Needs an SPI session.
void InstallCaptureTriggers(Oid relid, const std::string& name);
// The DROP TRIGGER statements for the capture triggers `relid` has.
std::string DropCaptureTriggersSql(Oid relid, const std::string& name);

// A local version for every row of `source` (the table or one of its
// partitions) that has no live one. Sets *backfilled to the rows written.
core::Status Backfill(const TableInfo& table, const std::string& source, int64* backfilled);

}  // namespace syncline::pg
