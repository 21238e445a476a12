// libFuzzer target: everything core/ decodes from untrusted bytes.
//
// The same input is read as a batch, as pull options, as a cursor and as a
// metadata row key. Besides "no crash, no sanitizer report", each decoder that
// accepts the input must round-trip: what we encode from its result decodes
// back to an equal result, and encoding that again yields the same bytes (the
// encoded form is canonical). A broken property aborts with a message, which
// libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/hlc.h"
#include "core/json.h"
#include "core/node_id.h"
#include "core/value.h"

namespace syncline::fuzz {
namespace {

using core::Batch;
using core::Change;
using core::ColumnValue;
using core::Status;
using core::Value;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "decode_fuzz: %s\n  %s\n", what, detail.substr(0, 2000).c_str());
  std::abort();
}

void Check(bool ok, const char* what, const std::string& detail = "") {
  if (!ok) Fail(what, detail);
}

bool SameColumns(const std::vector<ColumnValue>& a, const std::vector<ColumnValue>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].column != b[i].column || !core::SameValue(a[i].value, b[i].value)) return false;
  }
  return true;
}

bool SameChange(const Change& a, const Change& b) {
  if (a.column_stamps.size() != b.column_stamps.size() || a.has_delete_stamp != b.has_delete_stamp) return false;
  for (std::size_t i = 0; i < a.column_stamps.size(); ++i)
    if (a.column_stamps[i].first != b.column_stamps[i].first ||
        core::CompareStamps(a.column_stamps[i].second, b.column_stamps[i].second) != 0)
      return false;
  if (a.has_delete_stamp && core::CompareStamps(a.delete_stamp, b.delete_stamp) != 0) return false;
  return a.table == b.table && a.op == b.op && SameColumns(a.pk, b.pk) && SameColumns(a.row, b.row) &&
         a.clock == b.clock && a.hlc == b.hlc && a.node == b.node;
}

std::string Encode(const Batch& batch) {
  core::BatchWriter writer(batch.source);
  for (const Change& change : batch.changes)
    writer.Add(change);
  Check(writer.count() == batch.changes.size(), "BatchWriter::count differs from the changes added");
  return writer.Finish(batch.cursor, batch.has_more);
}

// DecodeBatch's two readers: the streaming one accepts exactly what the tree
// reader accepts in format 1 and reads it the same (format 2 is the tree
// reader's alone); DecodeBatch says what the tree says.
void CheckReadersAgree(std::string_view input, const Batch& streamed, bool fast, const Batch& tree,
                       const Status& status) {
  const bool format2 = status.ok() && tree.format == 2;
  Check(!(format2 && fast), "the streaming reader accepted a format-2 batch", std::string(input));
  Check(fast == status.ok() || format2,
        fast ? "the streaming reader accepted a batch the tree reader refuses"
             : "the streaming reader refused a batch the tree reader accepts",
        status.message() + "\n  input: " + std::string(input));
  if (fast) {
    Check(streamed.format == tree.format && streamed.source == tree.source && streamed.cursor == tree.cursor &&
              streamed.has_more == tree.has_more && streamed.changes.size() == tree.changes.size(),
          "the readers disagree on the batch header", std::string(input));
    for (std::size_t i = 0; i < tree.changes.size(); ++i)
      Check(SameChange(streamed.changes[i], tree.changes[i]), "the readers disagree on a change",
            "change " + std::to_string(i) + "\n  input: " + std::string(input));
  }
  Batch decoded;
  Status result = core::DecodeBatch(input, &decoded);
  Check(result.ok() == status.ok() && result.message() == status.message() && result.code() == status.code(),
        "DecodeBatch's status differs from the tree reader's", result.message() + "\n  vs " + status.message());
}

void FuzzBatch(std::string_view input) {
  Batch first;
  bool fast = core::DecodeBatchStreaming(input, &first);
  Batch tree;
  Status tree_status = core::DecodeBatchTree(input, &tree);
  CheckReadersAgree(input, first, fast, tree, tree_status);
  if (!tree_status.ok()) return;
  if (!fast) first = tree;  // format 2
  std::string encoded = Encode(first);
  // The writer says format 2 only where a change carries column stamps.
  bool stamps = false;
  for (const Change& change : first.changes)
    stamps = stamps || change.has_column_stamps();
  first.format = stamps ? 2 : 1;
  Batch second;
  Status status = core::DecodeBatch(encoded, &second);
  Check(status.ok(), "a re-encoded batch does not decode", status.message() + "\n  encoded: " + encoded);
  Check(first.format == second.format && first.source == second.source && first.cursor == second.cursor &&
            first.has_more == second.has_more,
        "re-decoded batch header differs", encoded);
  Check(first.changes.size() == second.changes.size(), "re-decoded batch has another number of changes", encoded);
  for (std::size_t i = 0; i < first.changes.size(); ++i)
    Check(SameChange(first.changes[i], second.changes[i]), "re-decoded change differs",
          "change " + std::to_string(i) + "\n  encoded: " + encoded);
  Check(Encode(second) == encoded, "encoding is not canonical (encode(decode(encode(x))) != encode(x))", encoded);
  // Every accepted stamp is below 2^63 and its text reads back.
  for (const Change& change : first.changes) {
    Check(change.hlc <= core::kHlcMax, "decoded hlc above 2^63 - 1", core::HlcToText(change.hlc));
    Check(core::HlcFromText(core::HlcToText(change.hlc)) == change.hlc, "hlc text does not round-trip");
    Check(core::CanonicalNodeId(change.node) == change.node, "decoded node id is not canonical", change.node);
  }
}

void FuzzOptions(std::string_view input) {
  core::PullOptions options;
  if (!core::ParsePullOptions(input, &options).ok()) return;
  // Rebuild the options as JSON from what was parsed: same options, same
  // fingerprint (the fingerprint guards cursors against option mix-ups).
  std::string text;
  core::JsonWriter writer(&text);
  writer.BeginObject();
  if (options.local_only) {
    writer.Key("origin");
    writer.String("local");
  }
  if (!options.exclude_origin.empty()) {
    writer.Key("exclude_origin");
    writer.String(options.exclude_origin);
  }
  if (options.has_scope) {
    writer.Key("scope");
    writer.Raw(options.scope);
  }
  writer.EndObject();
  core::PullOptions again;
  Status status = core::ParsePullOptions(text, &again);
  Check(status.ok(), "rebuilt pull options do not parse", status.message() + "\n  options: " + text);
  Check(again.local_only == options.local_only && again.exclude_origin == options.exclude_origin &&
            again.has_scope == options.has_scope && again.scope == options.scope,
        "rebuilt pull options differ", text);
  std::string fingerprint = core::FilterFingerprint(options);
  Check(fingerprint.size() == 16, "fingerprint is not 16 characters", fingerprint);
  Check(core::FilterFingerprint(again) == fingerprint, "rebuilt pull options have another fingerprint", text);
}

void FuzzCursor(std::string_view input) {
  core::Cursor cursor;
  if (!core::DecodeCursor(input, &cursor).ok()) return;
  std::string encoded = core::EncodeCursor(cursor);
  core::Cursor again;
  Status status = core::DecodeCursor(encoded, &again);
  Check(status.ok(), "an encoded cursor does not decode", status.message() + "\n  cursor: " + encoded);
  Check(again.node == cursor.node && again.filter == cursor.filter && again.position == cursor.position,
        "re-decoded cursor differs", encoded);
  Check(core::EncodeCursor(again) == encoded, "cursor encoding is not canonical", encoded);
  Check(core::CheckCursorIssuer(cursor, cursor.node, cursor.filter).ok(), "a cursor is refused by its own issuer",
        encoded);
  Check(core::ComparePositions(cursor.position, cursor.position) == 0, "a position differs from itself",
        cursor.position);
}

// Two cursors (the input split at its first newline): positions compare as an
// antisymmetric order.
void FuzzPositions(std::string_view input) {
  std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return;
  core::Cursor a, b;
  if (!core::DecodeCursor(input.substr(0, newline), &a).ok() || !core::DecodeCursor(input.substr(newline + 1), &b).ok())
    return;
  int ab = core::ComparePositions(a.position, b.position);
  int ba = core::ComparePositions(b.position, a.position);
  Check(ab >= -1 && ab <= 1 && ab == -ba, "ComparePositions is not antisymmetric", a.position + " vs " + b.position);
}

void FuzzKey(std::string_view input) {
  // DecodeKey's two readers agree, as DecodeBatch's do.
  std::vector<Value> values, tree;
  bool fast = core::DecodeKeyStreaming(input, &values);
  Status tree_status = core::DecodeKeyTree(input, &tree);
  Check(fast == tree_status.ok(),
        fast ? "the streaming key reader accepted a key the tree reader refuses"
             : "the streaming key reader refused a key the tree reader accepts",
        tree_status.message() + "\n  input: " + std::string(input));
  if (fast) {
    Check(values.size() == tree.size(), "the key readers disagree on the arity", std::string(input));
    for (std::size_t i = 0; i < values.size(); ++i)
      Check(core::SameValue(values[i], tree[i]), "the key readers disagree on a value", std::string(input));
  }
  std::vector<Value> decoded;
  Status status = core::DecodeKey(input, &decoded);
  Check(status.ok() == tree_status.ok() && status.message() == tree_status.message(),
        "DecodeKey's status differs from the tree reader's", status.message() + "\n  vs " + tree_status.message());
  if (!fast) return;
  std::string encoded;
  status = core::EncodeKey(values, &encoded);
  Check(status.ok(), "a decoded key does not encode", status.message());
  std::vector<Value> again;
  status = core::DecodeKey(encoded, &again);
  Check(status.ok(), "an encoded key does not decode", status.message() + "\n  key: " + encoded);
  Check(again.size() == values.size(), "re-decoded key has another arity", encoded);
  // Keys are written in key form (integral reals as integers), so a round
  // trip gives the key form of each value.
  for (std::size_t i = 0; i < values.size(); ++i)
    Check(core::SameValue(core::KeyForm(values[i]), again[i]), "re-decoded key value differs",
          "value " + std::to_string(i) + " of " + encoded);
  std::string twice;
  Check(core::EncodeKey(again, &twice).ok() && twice == encoded, "key encoding is not canonical", encoded);
}

void FuzzScalars(std::string_view input) {
  if (std::optional<core::Hlc> hlc = core::HlcFromText(input)) {
    Check(*hlc <= core::kHlcMax, "HlcFromText accepted a stamp above 2^63 - 1", std::string(input));
    Check(core::HlcFromText(core::HlcToText(*hlc)) == hlc, "hlc text does not round-trip", std::string(input));
  }
  if (std::optional<std::string> node = core::CanonicalNodeId(input))
    Check(core::CanonicalNodeId(*node) == node, "canonical node id is not a fixed point", *node);
  std::string bytes;
  if (core::Base64Decode(input, &bytes))
    Check(core::Base64Encode(bytes) == input, "base64 decoding accepted a non-canonical text", std::string(input));
  if (core::IsValidUtf8(input)) {
    // Valid UTF-8 text survives the JSON string writer and reader.
    std::string json;
    core::JsonWriter writer(&json);
    writer.String(input);
    core::Json parsed;
    Status status = core::ParseJson(json, &parsed);
    Check(status.ok() && parsed.is_string() && parsed.text == input, "a JSON string does not round-trip",
          status.message() + "\n  json: " + json);
  }
}

}  // namespace
}  // namespace syncline::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  syncline::fuzz::FuzzBatch(input);
  syncline::fuzz::FuzzOptions(input);
  syncline::fuzz::FuzzCursor(input);
  syncline::fuzz::FuzzPositions(input);
  syncline::fuzz::FuzzKey(input);
  syncline::fuzz::FuzzScalars(input);
  return 0;
}
