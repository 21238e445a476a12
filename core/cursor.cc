#include "core/cursor.h"

#include <cstdint>

#include "core/changeset.h"
#include "core/node_id.h"

namespace syncline::core {

Status ParsePullOptions(std::string_view text, PullOptions* out) {
  *out = PullOptions{};
  if (text.empty()) return Status::Ok();
  Json json;
  Status status = ParseJson(text, &json);
  if (!status.ok()) return status.WithPrefix("options: ");
  if (!json.is_object()) return Status(Code::kInvalidInput, "options: must be a JSON object");
  for (const auto& [key, value] : json.members) {
    if (key == "origin") {
      if (!value.is_string() || value.text != "local")
        return Status(Code::kInvalidInput, "options: \"origin\" must be \"local\"");
      out->local_only = true;
    } else if (key == "exclude_origin") {
      std::optional<std::string> node;
      if (!value.is_string() || !(node = CanonicalNodeId(value.text)))
        return Status(Code::kInvalidInput, "options: \"exclude_origin\" must be a node id (UUID)");
      out->exclude_origin = std::move(*node);
    } else if (key == "scope") {
      Value scope;
      status = DecodeValue(value, &scope);
      if (!status.ok()) return status.WithPrefix("options: \"scope\": ");
      JsonWriter writer(&out->scope);
      WriteValue(writer, scope);
      out->has_scope = true;
    } else if (key == "max_bytes") {
      Value bytes;
      if (!value.is_number() || !DecodeValue(value, &bytes).ok() || bytes.type != Value::Type::kInteger ||
          bytes.integer < 1 || static_cast<std::uint64_t>(bytes.integer) > kMaxBatchBytes)
        return Status(Code::kInvalidInput,
                      "options: \"max_bytes\" must be an integer from 1 to " + std::to_string(kMaxBatchBytes));
      out->max_bytes = static_cast<std::size_t>(bytes.integer);
    } else if (key == "schema") {
      Value version;
      if (!value.is_number() || !DecodeValue(value, &version).ok() || version.type != Value::Type::kInteger ||
          version.integer < 0)
        return Status(Code::kInvalidInput, "options: \"schema\" must be a schema version (an integer from 0)");
      out->schema = version.integer;
    } else if (key == "format") {
      if (!value.is_number() || (value.text != "1" && value.text != "2"))
        return Status(Code::kInvalidInput, "options: \"format\" is the batch format the reader reads, 1 or 2");
      out->format = value.text == "2" ? 2 : 1;
    } else {
      return Status(Code::kInvalidInput, "options: unknown option \"" + key + "\"");
    }
  }
  return Status::Ok();
}

std::string FilterFingerprint(const PullOptions& options) {
  // max_bytes and schema are left out: a cursor stays valid whatever page
  // size follows it, and across schema versions.
  std::string canonical;
  if (options.local_only) canonical += "origin=local\n";
  if (!options.exclude_origin.empty()) canonical += "exclude_origin=" + options.exclude_origin + "\n";
  if (options.has_scope) canonical += "scope=" + options.scope + "\n";
  // FNV-1a, 64 bits: a fingerprint against mix-ups, not a security measure.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : canonical) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4)
    text[i] = kDigits[hash & 0xf];
  return text;
}

std::string EncodeCursor(const Cursor& cursor) { return cursor.node + ":" + cursor.filter + ":" + cursor.position; }

namespace {

bool IsPosition(std::string_view text) {
  if (text.empty() || text.size() > 200) return false;
  bool need_digit = true;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      need_digit = false;
    } else if (c == '.' && !need_digit) {
      need_digit = true;
    } else {
      return false;
    }
  }
  return !need_digit;
}

bool IsFingerprint(std::string_view text) {
  if (text.size() != 16) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Status DecodeCursor(std::string_view text, Cursor* out) {
  auto malformed = [&] {
    return Status(Code::kInvalidInput, "cursor \"" + std::string(text.substr(0, 120)) +
                                           "\" is malformed (expected <node id>:<filter>:<position>)");
  };
  std::size_t first = text.find(':');
  if (first == std::string_view::npos) return malformed();
  std::size_t second = text.find(':', first + 1);
  if (second == std::string_view::npos) return malformed();
  std::optional<std::string> node = CanonicalNodeId(text.substr(0, first));
  std::string_view filter = text.substr(first + 1, second - first - 1);
  std::string_view position = text.substr(second + 1);
  if (!node || !IsFingerprint(filter) || !IsPosition(position)) return malformed();
  *out = Cursor{std::move(*node), std::string(filter), std::string(position)};
  return Status::Ok();
}

Status CheckCursorIssuer(const Cursor& cursor, const std::string& node_id, const std::string& filter) {
  if (cursor.node != node_id)
    return Status(Code::kInvalidInput, "cursor was issued by another database (node " + cursor.node +
                                           "), not this one (node " + node_id + ")");
  if (cursor.filter != filter)
    return Status(Code::kInvalidInput, "cursor was taken with other pull options; pull with the options it was issued "
                                       "for, or start again from NULL");
  return Status::Ok();
}

Status DecodeIssuedCursor(std::string_view text, const std::string& node_id, const std::string& filter, Cursor* out) {
  Status status = DecodeCursor(text, out);
  return status.ok() ? CheckCursorIssuer(*out, node_id, filter) : status;
}

Status NeverIssued(const std::string& position) {
  return Status(Code::kInvalidInput, "cursor position " + position + " was never issued by this database");
}

Status CursorBeforeHorizon(const std::string& position, const std::string& horizon) {
  return Status(Code::kResync, "cursor position " + position +
                                   " is older than this database's garbage collection horizon (" + horizon +
                                   "): the deletes since it were collected; resync")
      .WithDetail("Tombstones up to the horizon were collected, so changes since the cursor can no longer be told "
                  "completely.")
      .WithHint("Resync: push local changes, then pull from the beginning (no cursor) and drop the rows the "
                "server no longer has. The syncline client does this on its own.");
}

int ComparePositions(std::string_view a, std::string_view b) {
  while (true) {
    std::size_t a_end = a.find('.'), b_end = b.find('.');
    std::string_view a_part = a.substr(0, a_end), b_part = b.substr(0, b_end);
    while (a_part.size() > 1 && a_part[0] == '0')
      a_part.remove_prefix(1);
    while (b_part.size() > 1 && b_part[0] == '0')
      b_part.remove_prefix(1);
    if (a_part.size() != b_part.size()) return a_part.size() < b_part.size() ? -1 : 1;
    if (int c = a_part.compare(b_part); c != 0) return c < 0 ? -1 : 1;
    if (a_end == std::string_view::npos || b_end == std::string_view::npos) {
      if (a_end == b_end) return 0;
      return a_end == std::string_view::npos ? -1 : 1;
    }
    a.remove_prefix(a_end + 1);
    b.remove_prefix(b_end + 1);
  }
}

}  // namespace syncline::core
