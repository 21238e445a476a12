// json_choice_bench.cc - measure candidate JSON libraries on a syncline
// changeset batch, and probe the semantics we care about (UTF-8 validation,
// int64 exactness, float-vs-integer literals, NaN, double round-trips).
//
// Candidates (Debian bookworm packages):
//   rapidjson-dev 1.1.0, nlohmann-json3-dev 3.11.2, libsimdjson-dev 3.0.1
//
// Usage:
//   ./json_choice_bench --checks-only
//   ./json_choice_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Every parser result and every serializer output is checked against the
// generated batch before any benchmark runs; a mismatch aborts the program.

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// Data model: what syncline holds in memory for one changeset batch.
// ---------------------------------------------------------------------------

struct Row {
  std::string id;
  int64_t org_id = 0;
  std::string title;
  double score = 0;
  std::string blob;  // base64 text, kept as text

  bool operator==(const Row& o) const {
    return id == o.id && org_id == o.org_id && title == o.title &&
           score == o.score && blob == o.blob;
  }
};

struct Change {
  std::string table;
  std::string op;  // "upsert" or "delete"
  std::string pk_id;
  bool has_row = false;  // deletes carry no "row"
  Row row;
  int64_t clock = 0;
  std::string hlc;
  std::string node;

  bool operator==(const Change& o) const {
    return table == o.table && op == o.op && pk_id == o.pk_id &&
           has_row == o.has_row && (!has_row || row == o.row) &&
           clock == o.clock && hlc == o.hlc && node == o.node;
  }
};

struct Batch {
  int64_t format = 0;
  std::string source;
  std::string cursor;
  bool has_more = false;
  std::vector<Change> changes;

  bool operator==(const Batch& o) const {
    return format == o.format && source == o.source && cursor == o.cursor &&
           has_more == o.has_more && changes == o.changes;
  }
};

// ---------------------------------------------------------------------------
// Deterministic workload generator.
// ---------------------------------------------------------------------------

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

std::string hex(uint64_t v, int digits) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 0xf];
  return out;
}

// Random (version 4) UUID in canonical text form.
std::string make_uuid(SplitMix64& rng) {
  uint64_t hi = rng.next(), lo = rng.next();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;                       // version 4
  lo = (lo & ~(0xcULL << 60)) | (0x8ULL << 60);             // RFC 4122 variant
  std::string h = hex(hi, 16) + hex(lo, 16);
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-' +
         h.substr(16, 4) + '-' + h.substr(20, 12);
}

std::string base64(const uint8_t* data, size_t len) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  for (size_t i = 0; i < len; i += 3) {
    uint32_t n = uint32_t(data[i]) << 16;
    if (i + 1 < len) n |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < len) n |= uint32_t(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < len ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < len ? kAlphabet[n & 63] : '=';
  }
  return out;
}

Batch make_batch(size_t n_changes, uint64_t seed) {
  // Titles are mostly non-ASCII text; a few need JSON escaping.
  static const char* const kTitles[] = {
      "some unicode text é 日本",
      "Réunion — ordre du jour",
      "買い物リスト: 牛乳, 卵",
      "Quote \"inside\" and back\\slash",
      "emoji 🚀 and a\ttab",
      "plain ascii title",
  };
  SplitMix64 rng(seed);
  std::vector<std::string> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(make_uuid(rng));

  Batch b;
  b.format = 1;
  b.source = make_uuid(rng);
  b.cursor = "c1:" + hex(rng.next(), 16) + ":" + std::to_string(n_changes);
  b.has_more = false;
  b.changes.reserve(n_changes);

  uint64_t hlc = 0x0000019ab3c4d5e6ULL;
  for (size_t i = 0; i < n_changes; ++i) {
    Change c;
    c.table = "notes";
    c.pk_id = make_uuid(rng);
    c.has_row = (i % 10) != 3;  // exactly 10% deletes
    c.op = c.has_row ? "upsert" : "delete";
    if (c.has_row) {
      c.row.id = c.pk_id;
      // Mostly small ids; every 50th exceeds 2^53 to catch lossy int64 paths.
      c.row.org_id = (i % 50 == 0) ? int64_t(9007199254740993LL + int64_t(i))
                                   : int64_t(100 + rng.next() % 900);
      c.row.title = std::string(kTitles[i % 6]) + " #" + std::to_string(i);
      // Two-decimal scores (not exactly representable), with some integral
      // values such as 7.0 that a writer must not turn into an integer.
      uint64_t cents = rng.next() % 100000;
      if (i % 20 == 0) cents -= cents % 100;
      c.row.score = double(cents) / 100.0;
      uint8_t raw[32];
      for (size_t k = 0; k < sizeof raw; k += 8) {
        uint64_t r = rng.next();
        std::memcpy(raw + k, &r, 8);
      }
      c.row.blob = base64(raw, sizeof raw);
    }
    c.clock = int64_t(1 + rng.next() % 64);
    hlc += 1 + rng.next() % 1000;
    c.hlc = hex(hlc, 16);
    c.node = nodes[i % nodes.size()];
    b.changes.push_back(std::move(c));
  }
  return b;
}

// ---------------------------------------------------------------------------
// RapidJSON
// ---------------------------------------------------------------------------
namespace rj {

using rapidjson::Value;

constexpr unsigned kParseFlags =
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseFullPrecisionFlag;

const Value* member(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

bool read(const Value& obj, const char* key, std::string& out) {
  const Value* v = member(obj, key);
  if (!v || !v->IsString()) return false;
  out.assign(v->GetString(), v->GetStringLength());
  return true;
}

bool read(const Value& obj, const char* key, int64_t& out) {
  const Value* v = member(obj, key);
  if (!v || !v->IsInt64()) return false;  // rejects 1.0 and > INT64_MAX
  out = v->GetInt64();
  return true;
}

bool read(const Value& obj, const char* key, double& out) {
  const Value* v = member(obj, key);
  if (!v || !v->IsNumber()) return false;  // integers are fine for doubles
  out = v->GetDouble();
  return true;
}

bool read(const Value& obj, const char* key, bool& out) {
  const Value* v = member(obj, key);
  if (!v || !v->IsBool()) return false;
  out = v->GetBool();
  return true;
}

bool read_change(const Value& v, Change& c) {
  if (!v.IsObject()) return false;
  const Value* pk = member(v, "pk");
  if (!read(v, "table", c.table) || !read(v, "op", c.op) || !pk ||
      !pk->IsObject() || !read(*pk, "id", c.pk_id))
    return false;
  if (const Value* row = member(v, "row")) {
    if (!row->IsObject()) return false;
    const Value* data = member(*row, "data");
    if (!read(*row, "id", c.row.id) || !read(*row, "org_id", c.row.org_id) ||
        !read(*row, "title", c.row.title) ||
        !read(*row, "score", c.row.score) || !data || !data->IsObject() ||
        !read(*data, "blob", c.row.blob))
      return false;
    c.has_row = true;
  }
  return read(v, "clock", c.clock) && read(v, "hlc", c.hlc) &&
         read(v, "node", c.node);
}

bool parse(std::string_view json, Batch& b) {
  rapidjson::Document doc;
  doc.Parse<kParseFlags>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  const Value* changes = member(doc, "changes");
  if (!read(doc, "format", b.format) || !read(doc, "source", b.source) ||
      !read(doc, "cursor", b.cursor) || !read(doc, "has_more", b.has_more) ||
      !changes || !changes->IsArray())
    return false;
  b.changes.resize(changes->Size());
  for (rapidjson::SizeType i = 0; i < changes->Size(); ++i)
    if (!read_change((*changes)[i], b.changes[i])) return false;
  return true;
}

// Every Writer call returns false on failure (NaN/Inf, or invalid UTF-8 when
// kWriteValidateEncodingFlag is set) but has already emitted the separator,
// so the output is corrupt from then on: results must be checked. This wrapper
// keeps one sticky flag instead of testing each call.
template <unsigned kWriteFlags>
class BatchWriter {
 public:
  explicit BatchWriter(rapidjson::StringBuffer& out) : w_(out) {}

  bool write(const Batch& b) {
    w_.StartObject();
    num("format", b.format);
    str("source", b.source);
    str("cursor", b.cursor);
    ok_ &= w_.Key("has_more") && w_.Bool(b.has_more);
    w_.Key("changes");
    w_.StartArray();
    for (const Change& c : b.changes) write(c);
    w_.EndArray();
    w_.EndObject();
    return ok_ && w_.IsComplete();
  }

 private:
  void write(const Change& c) {
    w_.StartObject();
    str("table", c.table);
    str("op", c.op);
    open("pk");
    str("id", c.pk_id);
    close();
    if (c.has_row) {
      open("row");
      str("id", c.row.id);
      num("org_id", c.row.org_id);
      str("title", c.row.title);
      ok_ &= w_.Key("score") && w_.Double(c.row.score);
      open("data");
      str("blob", c.row.blob);
      close();
      close();
    }
    num("clock", c.clock);
    str("hlc", c.hlc);
    str("node", c.node);
    w_.EndObject();
  }

  void str(const char* key, const std::string& v) {
    ok_ &= w_.Key(key) && w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  void num(const char* key, int64_t v) { ok_ &= w_.Key(key) && w_.Int64(v); }
  void open(const char* key) {
    w_.Key(key);
    w_.StartObject();
  }
  void close() { w_.EndObject(); }

  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                    rapidjson::CrtAllocator, kWriteFlags>
      w_;
  bool ok_ = true;
};

template <unsigned kWriteFlags = rapidjson::kWriteDefaultFlags>
bool serialize(const Batch& b, rapidjson::StringBuffer& out) {
  return BatchWriter<kWriteFlags>(out).write(b);
}

constexpr unsigned kWriteValidate = rapidjson::kWriteValidateEncodingFlag;

}  // namespace rj

// ---------------------------------------------------------------------------
// nlohmann/json (reports errors by throwing)
// ---------------------------------------------------------------------------
namespace nl {

using nlohmann::json;

[[noreturn]] void fail(const char* key) {
  throw std::runtime_error(std::string("bad field: ") + key);
}

void read(const json& obj, const char* key, std::string& out) {
  out = obj.at(key).get_ref<const std::string&>();  // throws if not a string
}

void read(const json& obj, const char* key, int64_t& out) {
  const json& v = obj.at(key);
  // is_number_integer() is also true for values parsed as uint64 > INT64_MAX.
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(key);
  if (!v.is_number_integer()) fail(key);  // get<int64_t>() would truncate 1.5
  out = v.get<int64_t>();
}

void read(const json& obj, const char* key, double& out) {
  const json& v = obj.at(key);
  if (!v.is_number()) fail(key);
  out = v.get<double>();
}

void read(const json& obj, const char* key, bool& out) {
  out = obj.at(key).get_ref<const bool&>();
}

void read_change(const json& v, Change& c) {
  read(v, "table", c.table);
  read(v, "op", c.op);
  read(v.at("pk"), "id", c.pk_id);
  auto row = v.find("row");
  if (row != v.end()) {
    read(*row, "id", c.row.id);
    read(*row, "org_id", c.row.org_id);
    read(*row, "title", c.row.title);
    read(*row, "score", c.row.score);
    read(row->at("data"), "blob", c.row.blob);
    c.has_row = true;
  }
  read(v, "clock", c.clock);
  read(v, "hlc", c.hlc);
  read(v, "node", c.node);
}

bool parse(std::string_view text, Batch& b) {
  try {
    const json doc = json::parse(text);
    read(doc, "format", b.format);
    read(doc, "source", b.source);
    read(doc, "cursor", b.cursor);
    read(doc, "has_more", b.has_more);
    const json& changes = doc.at("changes");
    if (!changes.is_array()) return false;
    b.changes.resize(changes.size());
    for (size_t i = 0; i < changes.size(); ++i) read_change(changes[i], b.changes[i]);
    return true;
  } catch (const json::exception&) {
    return false;
  } catch (const std::runtime_error&) {
    return false;
  }
}

// nlohmann has no streaming writer: build the DOM, then dump() it. The
// default json type keeps object keys in a std::map, so output keys come out
// sorted (ordered_json would preserve insertion order at extra cost).
json to_json(const Change& c) {
  json j = {{"table", c.table},
            {"op", c.op},
            {"pk", {{"id", c.pk_id}}},
            {"clock", c.clock},
            {"hlc", c.hlc},
            {"node", c.node}};
  if (c.has_row)
    j["row"] = {{"id", c.row.id},
                {"org_id", c.row.org_id},
                {"title", c.row.title},
                {"score", c.row.score},
                {"data", {{"blob", c.row.blob}}}};
  return j;
}

std::string serialize(const Batch& b) {
  json changes = json::array();
  for (const Change& c : b.changes) changes.push_back(to_json(c));
  json doc = {{"format", b.format},
              {"source", b.source},
              {"cursor", b.cursor},
              {"has_more", b.has_more},
              {"changes", std::move(changes)}};
  return doc.dump();
}

}  // namespace nl

// ---------------------------------------------------------------------------
// simdjson (error codes, no exceptions). The walker is shared between the
// On-Demand and DOM front ends; their object/array APIs line up.
// ---------------------------------------------------------------------------
namespace sj {

using simdjson::error_code;
using simdjson::SUCCESS;

template <class Field>
error_code read(Field&& f, std::string& out) {
  std::string_view sv;
  error_code e = std::forward<Field>(f).get_string().get(sv);
  if (!e) out.assign(sv);
  return e;
}
template <class Field>
error_code read(Field&& f, int64_t& out) {
  return std::forward<Field>(f).get_int64().get(out);  // rejects 1.0
}
template <class Field>
error_code read(Field&& f, double& out) {
  return std::forward<Field>(f).get_double().get(out);  // accepts 7 too
}
template <class Field>
error_code read(Field&& f, bool& out) {
  return std::forward<Field>(f).get_bool().get(out);
}

#define SJ_TRY(expr)                          \
  do {                                        \
    if (error_code e_ = (expr)) return e_;    \
  } while (0)

template <class Object>
error_code read_change(Object& ch, Change& c) {
  SJ_TRY(read(ch["table"], c.table));
  SJ_TRY(read(ch["op"], c.op));
  Object pk;
  SJ_TRY(ch["pk"].get_object().get(pk));
  SJ_TRY(read(pk["id"], c.pk_id));
  Object row;
  error_code e = ch["row"].get_object().get(row);
  if (e == SUCCESS) {
    SJ_TRY(read(row["id"], c.row.id));
    SJ_TRY(read(row["org_id"], c.row.org_id));
    SJ_TRY(read(row["title"], c.row.title));
    SJ_TRY(read(row["score"], c.row.score));
    Object data;
    SJ_TRY(row["data"].get_object().get(data));
    SJ_TRY(read(data["blob"], c.row.blob));
    c.has_row = true;
  } else if (e != simdjson::NO_SUCH_FIELD) {
    return e;
  }
  SJ_TRY(read(ch["clock"], c.clock));
  SJ_TRY(read(ch["hlc"], c.hlc));
  SJ_TRY(read(ch["node"], c.node));
  return SUCCESS;
}

template <class Object, class Array>
error_code read_batch(Object& root, Batch& b) {
  SJ_TRY(read(root["format"], b.format));
  SJ_TRY(read(root["source"], b.source));
  SJ_TRY(read(root["cursor"], b.cursor));
  SJ_TRY(read(root["has_more"], b.has_more));
  Array changes;
  SJ_TRY(root["changes"].get_array().get(changes));
  for (auto item : changes) {
    Object ch;
    SJ_TRY(item.get_object().get(ch));
    b.changes.emplace_back();
    SJ_TRY(read_change(ch, b.changes.back()));
  }
  return SUCCESS;
}

// simdjson needs SIMDJSON_PADDING readable bytes past the end of the input.
// Here the padded copy is made once, outside the timed loop; a real caller
// would receive the network buffer with spare capacity or pay one memcpy.
bool parse_ondemand(simdjson::ondemand::parser& parser,
                    const simdjson::padded_string& json, Batch& b) {
  namespace od = simdjson::ondemand;
  od::document doc;
  od::object root;
  if (parser.iterate(json).get(doc) || doc.get_object().get(root)) return false;
  return read_batch<od::object, od::array>(root, b) == SUCCESS;
}

bool parse_dom(simdjson::dom::parser& parser, const simdjson::padded_string& json,
               Batch& b) {
  simdjson::dom::object root;
  if (parser.parse(json).get_object().get(root)) return false;
  return read_batch<simdjson::dom::object, simdjson::dom::array>(root, b) == SUCCESS;
}

#undef SJ_TRY

// simdjson 3.0 has no public writer. internal::mini_formatter (used by its
// minify/to_string) is documented as "not part of our public API and subject
// to change"; it is measured only to show what a writer would cost.
using Formatter = simdjson::internal::mini_formatter;

void write_change(Formatter& f, const Change& c) {
  f.start_object();
  f.key("table"); f.string(c.table); f.comma();
  f.key("op"); f.string(c.op); f.comma();
  f.key("pk"); f.start_object(); f.key("id"); f.string(c.pk_id); f.end_object(); f.comma();
  if (c.has_row) {
    f.key("row");
    f.start_object();
    f.key("id"); f.string(c.row.id); f.comma();
    f.key("org_id"); f.number(c.row.org_id); f.comma();
    f.key("title"); f.string(c.row.title); f.comma();
    f.key("score"); f.number(c.row.score); f.comma();
    f.key("data"); f.start_object(); f.key("blob"); f.string(c.row.blob); f.end_object();
    f.end_object();
    f.comma();
  }
  f.key("clock"); f.number(c.clock); f.comma();
  f.key("hlc"); f.string(c.hlc); f.comma();
  f.key("node"); f.string(c.node);
  f.end_object();
}

void serialize_internal(const Batch& b, Formatter& f) {
  f.start_object();
  f.key("format"); f.number(b.format); f.comma();
  f.key("source"); f.string(b.source); f.comma();
  f.key("cursor"); f.string(b.cursor); f.comma();
  f.key("has_more"); b.has_more ? f.true_atom() : f.false_atom(); f.comma();
  f.key("changes");
  f.start_array();
  for (size_t i = 0; i < b.changes.size(); ++i) {
    if (i) f.comma();
    write_change(f, b.changes[i]);
  }
  f.end_array();
  f.end_object();
}

}  // namespace sj

// ---------------------------------------------------------------------------
// Shared fixture data
// ---------------------------------------------------------------------------

constexpr size_t kChanges = 1000;

const Batch& the_batch() {
  static const Batch b = make_batch(kChanges, 0x5eed5eedULL);
  return b;
}

// The parse input is the RapidJSON serialization of the batch (keys in the
// order given in the spec, compact, raw UTF-8).
const std::string& the_json() {
  static const std::string s = [] {
    rapidjson::StringBuffer sb;
    if (!rj::serialize(the_batch(), sb)) std::abort();
    return std::string(sb.GetString(), sb.GetSize());
  }();
  return s;
}

const simdjson::padded_string& the_padded_json() {
  static const simdjson::padded_string s(the_json());
  return s;
}

void set_rates(benchmark::State& state, size_t bytes_per_iter) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes_per_iter));
  state.counters["changes/s"] = benchmark::Counter(
      double(state.iterations()) * double(kChanges), benchmark::Counter::kIsRate);
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

// Floor: building the same C++ values (allocations, copies) without any JSON.
void BM_Baseline_CopyBatch(benchmark::State& state) {
  const Batch& src = the_batch();
  for (auto _ : state) {
    Batch b = src;
    benchmark::DoNotOptimize(b.changes.data());
  }
  set_rates(state, the_json().size());
}

void BM_Parse_RapidJSON(benchmark::State& state) {
  const std::string& json = the_json();
  for (auto _ : state) {
    Batch b;
    if (!rj::parse(json, b)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(b.changes.data());
  }
  set_rates(state, json.size());
}

void BM_Parse_Nlohmann(benchmark::State& state) {
  const std::string& json = the_json();
  for (auto _ : state) {
    Batch b;
    if (!nl::parse(json, b)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(b.changes.data());
  }
  set_rates(state, json.size());
}

void BM_Parse_SimdjsonOnDemand(benchmark::State& state) {
  const simdjson::padded_string& json = the_padded_json();
  simdjson::ondemand::parser parser;  // reused across documents, as intended
  for (auto _ : state) {
    Batch b;
    if (!sj::parse_ondemand(parser, json, b)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(b.changes.data());
  }
  set_rates(state, json.size());
}

void BM_Parse_SimdjsonDOM(benchmark::State& state) {
  const simdjson::padded_string& json = the_padded_json();
  simdjson::dom::parser parser;
  for (auto _ : state) {
    Batch b;
    if (!sj::parse_dom(parser, json, b)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(b.changes.data());
  }
  set_rates(state, json.size());
}

template <unsigned kWriteFlags>
void BM_Serialize_RapidJSON(benchmark::State& state) {
  const Batch& b = the_batch();
  size_t bytes = 0;
  for (auto _ : state) {
    rapidjson::StringBuffer sb;
    if (!rj::serialize<kWriteFlags>(b, sb)) state.SkipWithError("write failed");
    bytes = sb.GetSize();
    benchmark::DoNotOptimize(sb.GetString());
  }
  set_rates(state, bytes);
}

void BM_Serialize_Nlohmann(benchmark::State& state) {
  const Batch& b = the_batch();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = nl::serialize(b);
    bytes = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  set_rates(state, bytes);
}

void BM_Serialize_SimdjsonInternal(benchmark::State& state) {
  const Batch& b = the_batch();
  size_t bytes = 0;
  for (auto _ : state) {
    sj::Formatter f;
    sj::serialize_internal(b, f);
    bytes = f.str().size();
    benchmark::DoNotOptimize(f.str().data());
  }
  set_rates(state, bytes);
}

BENCHMARK(BM_Baseline_CopyBatch);
BENCHMARK(BM_Parse_RapidJSON);
BENCHMARK(BM_Parse_Nlohmann);
BENCHMARK(BM_Parse_SimdjsonOnDemand);
BENCHMARK(BM_Parse_SimdjsonDOM);
BENCHMARK_TEMPLATE(BM_Serialize_RapidJSON, rapidjson::kWriteDefaultFlags)
    ->Name("BM_Serialize_RapidJSON");
BENCHMARK_TEMPLATE(BM_Serialize_RapidJSON, rj::kWriteValidate)
    ->Name("BM_Serialize_RapidJSON_ValidateUTF8");
BENCHMARK(BM_Serialize_Nlohmann);
BENCHMARK(BM_Serialize_SimdjsonInternal);

// ---------------------------------------------------------------------------
// Correctness gate and semantic probes (printed before the benchmarks)
// ---------------------------------------------------------------------------

// Escape control and non-ASCII bytes so probe output stays readable.
std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char ch : bytes) {
    if (ch >= 0x20 && ch < 0x7f) {
      out += char(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", ch);
      out += buf;
    }
  }
  return out;
}

// "[json.exception.parse_error.101] parse error at line 1, column 9: syntax
// error while parsing value - invalid string: ...; last read: ..." -> the
// part that says what went wrong.
std::string short_nlohmann_message(std::string msg) {
  size_t pos = msg.find("column");
  if (pos != std::string::npos && (pos = msg.find(": ", pos)) != std::string::npos)
    msg.erase(0, pos + 2);
  const std::string prefix = "syntax error while parsing value - ";
  if (msg.compare(0, prefix.size(), prefix) == 0) msg.erase(0, prefix.size());
  size_t cut = msg.find("; last read");
  if (cut != std::string::npos) msg.erase(cut);
  return printable(msg.substr(0, 90));
}

// Parse {"v": <literal>} and describe what each library makes of the value.
std::string describe_rapidjson(const std::string& doc_text, bool syncline_flags) {
  rapidjson::Document d;
  if (syncline_flags)
    d.Parse<rj::kParseFlags>(doc_text.data(), doc_text.size());
  else
    d.Parse<rapidjson::kParseDefaultFlags>(doc_text.data(), doc_text.size());
  if (d.HasParseError())
    return std::string("error: ") + rapidjson::GetParseError_En(d.GetParseError());
  const rapidjson::Value& v = d["v"];
  char buf[64];
  if (v.IsString()) return "string";
  if (v.IsDouble()) std::snprintf(buf, sizeof buf, "double %.17g", v.GetDouble());
  else if (v.IsInt64()) std::snprintf(buf, sizeof buf, "int64 %" PRId64, v.GetInt64());
  else std::snprintf(buf, sizeof buf, "uint64 %" PRIu64, v.GetUint64());
  return buf;
}

std::string describe_nlohmann(const std::string& doc_text) {
  try {
    const nlohmann::json d = nlohmann::json::parse(doc_text);
    const nlohmann::json& v = d.at("v");
    char buf[64];
    if (v.is_string()) return "string";
    if (v.is_number_float()) std::snprintf(buf, sizeof buf, "double %.17g", v.get<double>());
    else if (v.is_number_unsigned()) std::snprintf(buf, sizeof buf, "uint64 %" PRIu64, v.get<uint64_t>());
    else std::snprintf(buf, sizeof buf, "int64 %" PRId64, v.get<int64_t>());
    return buf;
  } catch (const nlohmann::json::exception& e) {
    return "error: " + short_nlohmann_message(e.what());
  }
}

std::string describe_ondemand(const std::string& doc_text) {
  namespace od = simdjson::ondemand;
  simdjson::padded_string padded(doc_text);
  od::parser parser;
  od::document doc;
  od::value v;
  simdjson::error_code e = parser.iterate(padded).get(doc);
  if (!e) e = doc["v"].get(v);
  od::json_type t{};
  if (!e) e = v.type().get(t);
  char buf[64];
  if (!e && t == od::json_type::string) {
    std::string_view sv;
    e = v.get_string().get(sv);  // On-Demand unescapes lazily
    if (!e) return "string";
  } else if (!e && t == od::json_type::number) {
    od::number_type nt{};
    e = v.get_number_type().get(nt);
    if (!e && nt == od::number_type::floating_point_number) {
      double d = 0;
      if (!(e = v.get_double().get(d))) std::snprintf(buf, sizeof buf, "double %.17g", d);
    } else if (!e && nt == od::number_type::signed_integer) {
      int64_t i = 0;
      if (!(e = v.get_int64().get(i))) std::snprintf(buf, sizeof buf, "int64 %" PRId64, i);
    } else if (!e) {
      uint64_t u = 0;
      if (!(e = v.get_uint64().get(u))) std::snprintf(buf, sizeof buf, "uint64 %" PRIu64, u);
    }
    if (!e) return buf;
  } else if (!e && t == od::json_type::null) {
    // type() only peeks at the first byte; is_null() checks the whole atom.
    bool is_null = false;
    if (!(e = v.is_null().get(is_null)))
      return is_null ? "null" : "error: not a valid null atom (is_null() == false)";
  } else if (!e) {
    return "unexpected type";
  }
  return std::string("error: ") + simdjson::error_message(e);
}

std::string describe_dom(const std::string& doc_text) {
  simdjson::dom::parser parser;
  simdjson::dom::element v;
  simdjson::error_code e = parser.parse(doc_text)["v"].get(v);
  if (e) return std::string("error: ") + simdjson::error_message(e);
  char buf[64];
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: return "string";
    case simdjson::dom::element_type::DOUBLE:
      std::snprintf(buf, sizeof buf, "double %.17g", double(v)); return buf;
    case simdjson::dom::element_type::INT64:
      std::snprintf(buf, sizeof buf, "int64 %" PRId64, int64_t(v)); return buf;
    case simdjson::dom::element_type::UINT64:
      std::snprintf(buf, sizeof buf, "uint64 %" PRIu64, uint64_t(v)); return buf;
    default: return "unexpected type";
  }
}

void print_row(const char* label, const std::string& doc_text) {
  std::printf("  %-26s\n", label);
  std::printf("    rapidjson(validate+fullprec): %s\n", describe_rapidjson(doc_text, true).c_str());
  std::printf("    rapidjson(default flags)    : %s\n", describe_rapidjson(doc_text, false).c_str());
  std::printf("    nlohmann                    : %s\n", describe_nlohmann(doc_text).c_str());
  std::printf("    simdjson ondemand           : %s\n", describe_ondemand(doc_text).c_str());
  std::printf("    simdjson dom                : %s\n", describe_dom(doc_text).c_str());
}

void probe_numbers() {
  std::printf("\n== Number literals: {\"v\": <literal>} ==\n");
  static const char* const kLiterals[] = {
      "1", "1.0", "1e0", "-0", "-0.0",
      "9007199254740993",        // 2^53 + 1: not representable as double
      "9223372036854775807",     // INT64_MAX
      "-9223372036854775808",    // INT64_MIN
      "9223372036854775808",     // INT64_MAX + 1
      "18446744073709551615",    // UINT64_MAX
      "18446744073709551616",    // UINT64_MAX + 1
      "1e400", "NaN", "-Infinity", "nan",
  };
  for (const char* lit : kLiterals) print_row(lit, std::string("{\"v\":") + lit + "}");
}

void probe_utf8() {
  std::printf("\n== UTF-8 validation: {\"v\":\"<bytes>\"} ==\n");
  struct Case { const char* label; const char* bytes; };
  static const Case kCases[] = {
      {"valid: e-acute + CJK", "\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC"},
      {"bad continuation C3 28", "\xC3\x28"},
      {"stray continuation 80", "a\x80z"},
      {"overlong C0 AF", "\xC0\xAF"},
      {"UTF-16 surrogate ED A0 80", "\xED\xA0\x80"},
      {"above U+10FFFF F4 90 80 80", "\xF4\x90\x80\x80"},
      {"truncated E6 97", "\xE6\x97"},
      {"lone escape \\ud800", "\\ud800"},
  };
  for (const Case& c : kCases)
    print_row(c.label, std::string("{\"v\":\"") + c.bytes + "\"}");
  // Invalid bytes in a key, which the walker never reads as a value.
  print_row("bad byte FF inside a key", "{\"v\":\"ok\",\"k\xFF\":1}");
}

void probe_writers() {
  std::printf("\n== Writers: what 1.0, 2^53+1 (int64), NaN and invalid UTF-8 become ==\n");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartArray();
    w.Double(1.0);
    w.Int64(9007199254740993LL);
    bool nan_ok = w.Double(nan);
    bool bad_ok = w.String("\xC3\x28");
    w.EndArray();
    rapidjson::StringBuffer sb2;
    rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                      rapidjson::CrtAllocator, rj::kWriteValidate>
        validating(sb2);
    bool bad_ok_validating = validating.String("\xC3\x28");
    std::printf("  rapidjson Writer        : %s\n"
                "                            Double(NaN) -> %s; String(bad UTF-8) -> %s,"
                " with kWriteValidateEncodingFlag -> %s\n",
                printable({sb.GetString(), sb.GetSize()}).c_str(),
                nan_ok ? "true" : "false", bad_ok ? "true" : "false",
                bad_ok_validating ? "true" : "false");
  }
  {
    nlohmann::json j = nlohmann::json::array({1.0, int64_t(9007199254740993LL), nan});
    std::printf("  nlohmann dump()         : %s\n", j.dump().c_str());
    j.push_back("\xC3\x28");
    try {
      (void)j.dump();
      std::printf("  nlohmann dump(bad utf8) : accepted\n");
    } catch (const nlohmann::json::exception& e) {
      std::printf("  nlohmann dump(bad utf8) : throws (%s)\n",
                  printable(std::string(e.what()).substr(0, 70)).c_str());
    }
  }
  {
    sj::Formatter f;
    f.start_array();
    f.number(1.0); f.comma();
    f.number(int64_t(9007199254740993LL)); f.comma();
    f.number(nan);
    f.end_array();
    std::printf("  simdjson mini_formatter : %.*s   (internal API)\n",
                int(f.str().size()), f.str().data());
  }
}

// Random finite doubles printed with %.17g must parse back bit-exactly, and
// each writer's output must parse back (with strtod) to the same double.
void probe_double_roundtrip() {
  constexpr int kN = 100000;
  SplitMix64 rng(42);
  int rj_full = 0, rj_default = 0, nl_bad = 0, od_bad = 0, dom_bad = 0;
  int rj_write_bad = 0, nl_write_bad = 0;
  simdjson::ondemand::parser od_parser;
  simdjson::dom::parser dom_parser;
  for (int i = 0; i < kN; ++i) {
    double x;
    do {
      uint64_t bits = rng.next();
      std::memcpy(&x, &bits, sizeof x);
    } while (!std::isfinite(x));
    char text[40];
    std::snprintf(text, sizeof text, "[%.17g]", x);
    std::string s = text;

    rapidjson::Document d1, d2;
    d1.Parse<rj::kParseFlags>(s.c_str());
    d2.Parse<rapidjson::kParseDefaultFlags>(s.c_str());
    if (d1.HasParseError() || d1[0].GetDouble() != x) ++rj_full;
    if (d2.HasParseError() || d2[0].GetDouble() != x) ++rj_default;
    if (nlohmann::json::parse(s)[0].get<double>() != x) ++nl_bad;

    simdjson::padded_string p(s);
    double y = 0;
    simdjson::ondemand::document od_doc;
    if (od_parser.iterate(p).get(od_doc) || od_doc.at(0).get_double().get(y) || y != x)
      ++od_bad;
    if (dom_parser.parse(p).at(0).get_double().get(y) || y != x) ++dom_bad;

    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.Double(x);
    if (std::strtod(sb.GetString(), nullptr) != x) ++rj_write_bad;
    if (std::strtod(nlohmann::json(x).dump().c_str(), nullptr) != x) ++nl_write_bad;
  }
  std::printf("\n== Double round-trip over %d random finite doubles (mismatches) ==\n", kN);
  std::printf("  parse %%.17g text: rapidjson(fullprec)=%d rapidjson(default)=%d "
              "nlohmann=%d simdjson-ondemand=%d simdjson-dom=%d\n",
              rj_full, rj_default, nl_bad, od_bad, dom_bad);
  std::printf("  write then strtod: rapidjson=%d nlohmann=%d\n", rj_write_bad, nl_write_bad);
}

// Every implementation must reproduce the generated batch exactly.
bool verify_all() {
  const Batch& want = the_batch();
  bool ok = true;
  auto check = [&](const char* what, bool parsed, const Batch& got) {
    bool good = parsed && got == want;
    std::printf("  %-44s %s\n", what, good ? "OK" : "MISMATCH");
    ok = ok && good;
  };

  std::printf("== Correctness gate (%zu changes, %zu bytes of JSON) ==\n",
              want.changes.size(), the_json().size());
  {
    Batch b;
    check("parse rapidjson", rj::parse(the_json(), b), b);
  }
  {
    Batch b;
    check("parse nlohmann", nl::parse(the_json(), b), b);
  }
  {
    simdjson::ondemand::parser p;
    Batch b;
    check("parse simdjson ondemand", sj::parse_ondemand(p, the_padded_json(), b), b);
  }
  {
    simdjson::dom::parser p;
    Batch b;
    check("parse simdjson dom", sj::parse_dom(p, the_padded_json(), b), b);
  }
  {
    Batch b;
    std::string out = nl::serialize(want);
    check("nlohmann output -> rapidjson parse", rj::parse(out, b), b);
    std::printf("    (nlohmann output %zu bytes, keys sorted; identical to rapidjson's: %s)\n",
                out.size(), out == the_json() ? "yes" : "no");
  }
  {
    rapidjson::StringBuffer sb;
    bool wrote = rj::serialize<rj::kWriteValidate>(want, sb);
    Batch b;
    check("rapidjson validating writer -> parse", wrote && rj::parse({sb.GetString(), sb.GetSize()}, b), b);
  }
  {
    sj::Formatter f;
    sj::serialize_internal(want, f);
    Batch b;
    check("simdjson internal output -> rapidjson parse", rj::parse(f.str(), b), b);
    std::printf("    (simdjson internal output identical to rapidjson's: %s)\n",
                f.str() == the_json() ? "yes" : "no");
  }
  {
    // A trailing-garbage document must be rejected by the batch parsers.
    std::string bad = the_json() + "x";
    simdjson::padded_string padded_bad(bad);
    simdjson::ondemand::parser p1;
    simdjson::dom::parser p2;
    Batch b1, b2, b3, b4;
    std::printf("  trailing garbage rejected: rapidjson=%s nlohmann=%s "
                "simdjson-ondemand=%s simdjson-dom=%s\n",
                rj::parse(bad, b1) ? "no" : "yes", nl::parse(bad, b2) ? "no" : "yes",
                sj::parse_ondemand(p1, padded_bad, b3) ? "no" : "yes",
                sj::parse_dom(p2, padded_bad, b4) ? "no" : "yes");
  }
  return ok;
}

void print_environment() {
  std::printf("\n== Build/runtime facts ==\n");
  std::printf("  rapidjson %s, nlohmann %d.%d.%d, simdjson %d.%d.%d\n", RAPIDJSON_VERSION_STRING,
              NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
              NLOHMANN_JSON_VERSION_PATCH, simdjson::SIMDJSON_VERSION_MAJOR,
              simdjson::SIMDJSON_VERSION_MINOR, simdjson::SIMDJSON_VERSION_REVISION);
  // simdjson::builtin_implementation() reports the *library's* build, not
  // this binary's, so read the macro that selects the inline kernel instead.
  std::printf("  simdjson kernel inlined here (On-Demand value parsing; chosen by -march): %s\n",
              SIMDJSON_STRINGIFY(SIMDJSON_BUILTIN_IMPLEMENTATION));
  std::printf("  simdjson kernel in libsimdjson.so (DOM, and On-Demand stage 1 incl. UTF-8 "
              "check; runtime dispatch): %s\n",
              simdjson::get_active_implementation()->name().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  bool checks_only = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--checks-only") == 0) checks_only = true;
    else args.push_back(argv[i]);
  }

  bool ok = verify_all();
  print_environment();
  probe_numbers();
  probe_utf8();
  probe_writers();
  probe_double_roundtrip();
  std::fflush(stdout);
  if (!ok) {
    std::fprintf(stderr, "correctness gate failed; not benchmarking\n");
    return 1;
  }
  if (checks_only) return 0;

  int bench_argc = int(args.size());
  std::printf("\n");
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
