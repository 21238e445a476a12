// Garbage collection's state as pulls and pushes read it (docs/postgres.md,
// "Garbage collection"). syncline.gc() itself is SQL
// (sql/syncline--0.1--0.2.sql).
#pragma once

#include <string>

#include "core/hlc.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// The greatest version collected ("xid.seq"): a cursor below it is refused
// with "resync". False when nothing was ever collected, and under extension
// version 0.1. Needs an SPI session; read in a pull's snapshot.
bool ReadGcHorizon(std::string* position, Snapshot snapshot);

// The greatest stamp collected (0: none), in a snapshot taken after the
// versions an apply read.
core::Hlc ReadGcWatermark();

}  // namespace syncline::pg
