// Expected failures are values, not exceptions (STYLE.md): a Status carries a
// code the engines map to their own error classes, and a message that names
// the change, table and column at fault; optionally a detail (what explains
// the message) and a hint (what to do), which PostgreSQL reports as DETAIL
// and HINT.
#pragma once

#include <string>
#include <utility>

namespace syncline::core {

enum class Code {
  kOk,
  kInvalidInput,      // malformed batch, option, cursor or value
  kUndefinedTable,    // unknown or untracked table
  kUndefinedColumn,   // unknown column or wrong primary key columns
  kTypeMismatch,      // a value the column cannot hold
  kClockDrift,        // a remote stamp too far ahead of the local wall clock
  kCorruptBatch,      // equal stamps with different content
  kConstraint,        // the engine refused the write (NOT NULL, UNIQUE, FK ...)
  kUnavailable,       // the server cannot be reached (worth retrying)
  kConflict,          // a concurrent transaction changed what this one read (worth retrying)
  kNotYet,            // to be tried again later (a stamp ahead of the server's clock, within reason)
  kPermissionDenied,  // the caller may not do this (not the table's owner, not authorised for a scope)
  kTooLarge,          // more than the format can carry (a row over a batch's size limit)
  kReadOnly,          // a write on a server that only reads (a hot standby)
  // History this request needs was collected (a cursor older than the
  // database's garbage collection horizon, a change stamped below its
  // watermark): the reader starts again from the current state.
  kResync,
  kInternal,
};

// The SQLSTATE (PostgreSQL's error classes) a code stands for: what
// PostgreSQL raises a Status with, and what conflict logs record on both
// engines.
inline const char* SqlStateOf(Code code) {
  switch (code) {
    case Code::kOk: return "00000";
    case Code::kInvalidInput: return "22023";      // invalid_parameter_value
    case Code::kUndefinedTable: return "42P01";    // undefined_table
    case Code::kUndefinedColumn: return "42703";   // undefined_column
    case Code::kTypeMismatch: return "42804";      // datatype_mismatch
    case Code::kClockDrift: return "22023";        // invalid_parameter_value
    case Code::kCorruptBatch: return "22000";      // data_exception
    case Code::kConstraint: return "23000";        // integrity_constraint_violation
    case Code::kUnavailable: return "08006";       // connection_failure
    case Code::kConflict: return "40001";          // serialization_failure
    case Code::kNotYet: return "55000";            // object_not_in_prerequisite_state
    case Code::kPermissionDenied: return "42501";  // insufficient_privilege
    case Code::kTooLarge: return "54000";          // program_limit_exceeded
    case Code::kReadOnly: return "25006";          // read_only_sql_transaction
    case Code::kResync: return "SL001";            // syncline's own class: resync from the current state
    case Code::kInternal: return "XX000";          // internal_error
  }
  return "XX000";
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }  // empty when none
  const std::string& hint() const { return hint_; }      // empty when none

  // Prepends context, e.g. "change 3 (table notes): " to a value error.
  Status WithPrefix(const std::string& prefix) const& { return Status(*this).WithPrefix(prefix); }
  Status WithPrefix(const std::string& prefix) && {
    message_.insert(0, prefix);
    return std::move(*this);
  }
  // Full sentences, e.g. "Batches name tables unqualified."
  Status WithDetail(std::string detail) const& { return Status(*this).WithDetail(std::move(detail)); }
  Status WithDetail(std::string detail) && {
    detail_ = std::move(detail);
    return std::move(*this);
  }
  Status WithHint(std::string hint) const& { return Status(*this).WithHint(std::move(hint)); }
  Status WithHint(std::string hint) && {
    hint_ = std::move(hint);
    return std::move(*this);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string detail_;
  std::string hint_;
};

}  // namespace syncline::core
