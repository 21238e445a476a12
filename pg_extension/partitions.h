// Declaratively partitioned tables (docs/postgres.md, "Partitioned tables"):
// a statement fires the statement triggers of the table it names only, so
// every partition, at every level, has capture triggers of its own that
// write under the root's tracking (tables.h, FindTrackedForCapture).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

struct Partition {
  Oid relid = InvalidOid;
  std::string name;       // schema.name, quoted
  bool captured = false;  // has syncline's capture triggers
  bool tracked = false;   // tracked as a table of its own (which it cannot stay)
};

// Every partition below partitioned table `root`, all levels, parents
// first. Needs an SPI session.
std::vector<Partition> ListPartitions(Oid root);

// Partitions tracked on their own cannot be part of a tracked table: their
// rows would be captured twice, under two names.
core::Status CheckNoneTracked(const TableInfo& table, const std::vector<Partition>& partitions);

// A tombstone for every live version of `table` whose row is no longer in
// it: after a partition was truncated, detached or dropped, statements that
// fire no row-level capture. Reads the whole table and its live metadata.
core::Status TombstoneVanished(const TableInfo& table, int64* tombstoned);

}  // namespace syncline::pg
