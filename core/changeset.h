// The changeset codec. The format is specified once, in docs/protocol.md;
// this file follows it. Everything decoded here may come from an untrusted
// client: every field is checked and every error names the change at fault.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hlc.h"
#include "core/json.h"
#include "core/status.h"
#include "core/value.h"
#include "core/version_order.h"

namespace syncline::core {

// The newest format this node reads and writes. A batch is format 1 unless
// a change in it carries column stamps (format 2, docs/protocol.md,
// "Column-level merge").
inline constexpr int kBatchFormat = 2;
// A batch is a page: pulls cut them by changes and by bytes (kMaxPageBytes).
// A larger text is refused before it is parsed, so that memory stays bounded
// (the decoded tree takes a few times the text's size).
inline constexpr std::size_t kMaxBatchBytes = 64u << 20;
// A pull stops a page before it grows past this many bytes (the "max_bytes"
// pull option sets another cap, up to kMaxBatchBytes): well below what every
// reader accepts, so that the nodes that pull and apply a page hold it (and
// its decoded form, a few times larger) in little memory. Only a page of a
// single change may be larger, up to kMaxBatchBytes.
inline constexpr std::size_t kMaxPageBytes = 16u << 20;

enum class Op { kUpsert, kDelete };

struct ColumnValue {
  std::string column;
  Value value;
};

struct Change {
  std::string table;
  Op op = Op::kUpsert;
  std::vector<ColumnValue> pk;   // primary key columns, as the producer ordered them
  std::vector<ColumnValue> row;  // every column, upserts only
  std::int64_t clock = 0;
  Hlc hlc = 0;
  std::string node;  // canonical node id of the origin
  // Format 2, a column-merge table's row: the stamps of the carried columns
  // whose stamp is not the change's ("columns"), and a delete's own stamp
  // when the change's stamp is the row's version above it ("delete_stamp").
  std::vector<std::pair<std::string, Stamp>> column_stamps;
  bool has_delete_stamp = false;
  Stamp delete_stamp;
  bool has_column_stamps() const { return !column_stamps.empty() || has_delete_stamp; }
};

struct Batch {
  int format = 1;
  std::string source;  // canonical node id of the producer
  std::string cursor;  // where the producer's pull ended; may be empty
  bool has_more = false;
  std::vector<Change> changes;
  // A pull's page for a reader that named its schema version (pull option
  // "schema"): the server's schema version, and its schema document when the
  // reader's is older (docs/protocol.md, "Schema changes"). -1 and empty
  // when absent.
  std::int64_t schema_version = -1;
  std::string schema;  // the document's JSON text
};

// "change 3 (table \"notes\"): " — the prefix of every per-change error.
std::string ChangeContext(std::size_t index, std::string_view table);

Status DecodeValue(const Json& json, Value* out);
// Parts of the value encoding (docs/protocol.md, "Values"): a number literal
// (an integer that fits 64 bits, or a real), and a tagged object's tag and
// payload ({"real": "..."}, {"blob": "..."}).
Status DecodeNumber(std::string_view literal, Value* out);
Status DecodeTag(std::string_view tag, std::string_view payload, Value* out);
// The shortest text that reads back to the same double, always with a '.'
// ("1.0", "1.0e+300", "-0.0"); "NaN", "Infinity", "-Infinity".
std::string RealToText(double value);
void WriteValue(JsonWriter& writer, const Value& value);  // text must be valid UTF-8
// Columns as a JSON object, column -> value ("pk" and "row" of a change).
std::string ColumnsJson(const std::vector<ColumnValue>& columns);

Status DecodeBatch(std::string_view text, Batch* out);
// The two readers behind DecodeBatch, for tests. DecodeBatchStreaming reads
// a valid batch fast and returns false on anything else; DecodeBatchTree
// parses into a Json tree first and names what is wrong. Where the streaming
// reader accepts, both give the same batch.
bool DecodeBatchStreaming(std::string_view text, Batch* out);
Status DecodeBatchTree(std::string_view text, Batch* out);

// What a sync loop steers by, read without decoding the changes (they are
// counted): the cursor, has_more. Checks only what it reads; apply_push
// checks the rest.
struct BatchHeader {
  std::size_t changes = 0;
  std::string cursor;
  bool has_more = false;
  std::int64_t schema_version = -1;  // the server's, for a reader that named its own; -1 when absent
};
Status ReadBatchHeader(std::string_view text, BatchHeader* out);

// Streams a batch out change by change (a pull never holds the whole batch
// twice in memory).
class BatchWriter {
 public:
  explicit BatchWriter(std::string_view source);
  void Add(const Change& change);
  // Adds a change to a page capped at max_bytes (at most kMaxBatchBytes):
  // unless the page is empty, a change that would take it past the cap is
  // left out (*added is false; it opens the next page) and the page is as it
  // was. A change alone in its page may take it past the cap, but not past
  // kMaxBatchBytes, which no reader accepts: that change is an error naming
  // its table and key, and it is left out.
  Status AddToPage(const Change& change, std::size_t max_bytes, bool* added);
  // Pages for a reader that named its schema version: the server's version,
  // and its schema document (JSON text; empty: none), written by Finish.
  void SetSchema(std::int64_t version, std::string document);
  std::string Finish(std::string_view cursor, bool has_more);
  std::size_t count() const { return count_; }
  // The size the batch would have if finished now (with any cursor an
  // engine issues): an upper bound.
  std::size_t size() const { return out_.size() + kFinishBytes; }

 private:
  // What Finish appends, with a cursor of up to 254 bytes (core/cursor.h: a
  // node id, a fingerprint, a position of at most 200 characters).
  static constexpr std::size_t kFinishBytes = 320;

  std::string out_;
  JsonWriter writer_;
  std::size_t count_ = 0;
  std::size_t format_at_ = 0;  // the format's digit in out_: 1, or 2 once a change carries column stamps
  std::int64_t schema_version_ = -1;
  std::string schema_;
};

// A row's identity inside metadata: its primary key values as a JSON array in
// the changeset's value encoding, e.g. ["n1"] or [7,{"blob":"AAE="}]. A key
// identifies a row the way the engines' unique indexes do, where 2.0 and 2
// are one key: integral reals are written as integers (KeyForm).
// Fails on text that is not valid UTF-8.
Value KeyForm(const Value& value);
Status EncodeKey(const std::vector<Value>& values, std::string* out);
// The same, for values that stay where they are.
Status EncodeKeyOf(const std::vector<const Value*>& values, std::string* out);
Status DecodeKey(std::string_view text, std::vector<Value>* out);
// The two readers behind DecodeKey, for tests (as for DecodeBatch).
bool DecodeKeyStreaming(std::string_view text, std::vector<Value>* out);
Status DecodeKeyTree(std::string_view text, std::vector<Value>* out);

}  // namespace syncline::core
