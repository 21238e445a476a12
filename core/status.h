// Expected failures are values, not exceptions (STYLE.md): a Status carries a
// code the engines map to their own error classes, and a message that names
// the change, table and column at fault.
#pragma once

#include <string>
#include <utility>

namespace syncline::core {

enum class Code {
  kOk,
  kInvalidInput,     // malformed batch, option, cursor or value
  kUndefinedTable,   // unknown or untracked table
  kUndefinedColumn,  // unknown column or wrong primary key columns
  kTypeMismatch,     // a value the column cannot hold
  kClockDrift,       // a remote stamp too far ahead of the local wall clock
  kCorruptBatch,     // equal stamps with different content
  kConstraint,       // the engine refused the write (NOT NULL, UNIQUE, FK ...)
  kUnavailable,      // the server cannot be reached (worth retrying)
  kConflict,         // a concurrent transaction changed what this one read (worth retrying)
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prepends context, e.g. "change 3 (table notes): " to a value error.
  Status WithPrefix(const std::string& prefix) const { return Status(code_, prefix + message_); }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace syncline::core
