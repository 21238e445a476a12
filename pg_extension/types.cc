#include "pg_extension/types.h"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>

#include "pg_extension/pg_boundary.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

void LoadColumnType(Oid type, int32 typmod, MemoryContext context, ColumnType* out) {
  out->type = type;
  out->typmod = typmod;
  PgGuard([&] {
    int32 base_typmod = typmod;
    out->base = getBaseTypeAndTypmod(type, &base_typmod);
    out->base_typmod = base_typmod;
    Oid input_fn, output_fn, io_param;
    bool varlena;
    getTypeInputInfo(type, &input_fn, &io_param);
    getTypeOutputInfo(out->base, &output_fn, &varlena);
    out->io_param = io_param;
    fmgr_info_cxt(input_fn, &out->input, context);
    fmgr_info_cxt(output_fn, &out->output, context);
  });
}

Value DatumToValue(const ColumnType& column, Datum datum, bool isnull) {
  if (isnull) return Value::Null();
  switch (column.base) {
    case BOOLOID: return Value::Integer(DatumGetBool(datum) ? 1 : 0);
    case INT2OID: return Value::Integer(DatumGetInt16(datum));
    case INT4OID: return Value::Integer(DatumGetInt32(datum));
    case INT8OID: return Value::Integer(DatumGetInt64(datum));
    case FLOAT4OID: return Value::Real(static_cast<double>(DatumGetFloat4(datum)));
    case FLOAT8OID: return Value::Real(DatumGetFloat8(datum));
    case BYTEAOID: {
      const char* data = nullptr;
      std::size_t size = 0;
      PgGuard([&] {
        bytea* value = DatumGetByteaPP(datum);
        data = VARDATA_ANY(value);
        size = VARSIZE_ANY_EXHDR(value);
      });
      return Value::Blob(std::string(data, size));
    }
    default: {
      char* text = nullptr;
      const FmgrInfo* output = &column.output;
      PgGuard([&] { text = OutputFunctionCall(const_cast<FmgrInfo*>(output), datum); });
      return Value::Text(text);
    }
  }
}

namespace {

Status Mismatch(const ColumnType& column, const Value& value) {
  const char* type_name = nullptr;
  PgGuard([&] { type_name = format_type_with_typemod(column.type, column.typmod); });
  return Status(Code::kTypeMismatch, "column \"" + column.name + "\" expects " + std::string(type_name) + ", got " +
                                         core::TypeName(value.type));
}

Status Input(const ColumnType& column, const std::string& text, Datum* out) {
  if (std::memchr(text.data(), '\0', text.size()) != nullptr)
    return Status(Code::kTypeMismatch,
                  "column \"" + column.name + "\": text with a NUL byte cannot be stored in PostgreSQL");
  const char* cstring = text.c_str();
  FmgrInfo* input = const_cast<FmgrInfo*>(&column.input);
  Oid io_param = column.io_param;
  int32 typmod = column.typmod;
  PgGuard([&] { *out = InputFunctionCall(input, const_cast<char*>(cstring), io_param, typmod); });
  return Status::Ok();
}

std::string RealText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

}  // namespace

Status ValueToDatum(const ColumnType& column, const Value& value, Datum* out, bool* isnull) {
  *isnull = value.type == Value::Type::kNull;
  if (*isnull) {
    *out = (Datum)0;
    return Status::Ok();
  }
  // Domains go through their input function, which checks the domain's
  // constraints; so do values that arrive as text.
  bool is_domain = column.type != column.base;
  switch (column.base) {
    case BOOLOID:
      if (value.type == Value::Type::kInteger && (value.integer == 0 || value.integer == 1) && !is_domain) {
        *out = BoolGetDatum(value.integer == 1);
        return Status::Ok();
      }
      if (value.type == Value::Type::kInteger && (value.integer == 0 || value.integer == 1))
        return Input(column, value.integer == 1 ? "true" : "false", out);
      if (value.type == Value::Type::kText) return Input(column, value.bytes, out);
      return Mismatch(column, value);
    case INT2OID:
    case INT4OID:
    case INT8OID: {
      if (value.type != Value::Type::kInteger) return Mismatch(column, value);
      std::int64_t v = value.integer;
      if ((column.base == INT2OID && (v < PG_INT16_MIN || v > PG_INT16_MAX)) ||
          (column.base == INT4OID && (v < PG_INT32_MIN || v > PG_INT32_MAX)))
        return Status(Code::kTypeMismatch,
                      "column \"" + column.name + "\": " + std::to_string(v) + " is out of range for its type");
      if (is_domain) return Input(column, std::to_string(v), out);
      *out = column.base == INT2OID   ? Int16GetDatum(static_cast<int16>(v))
             : column.base == INT4OID ? Int32GetDatum(static_cast<int32>(v))
                                      : Int64GetDatum(v);
      return Status::Ok();
    }
    case FLOAT4OID:
    case FLOAT8OID: {
      double v;
      if (value.type == Value::Type::kInteger)
        v = static_cast<double>(value.integer);
      else if (value.type == Value::Type::kReal)
        v = value.real;
      else
        return Mismatch(column, value);
      if (column.base == FLOAT4OID && std::isfinite(v) && std::fabs(v) > FLT_MAX)
        return Status(Code::kTypeMismatch,
                      "column \"" + column.name + "\": " + RealText(v) + " is out of range for real");
      if (is_domain) return Input(column, RealText(v), out);
      *out = column.base == FLOAT4OID ? Float4GetDatum(static_cast<float>(v)) : Float8GetDatum(v);
      return Status::Ok();
    }
    case NUMERICOID:
      if (value.type == Value::Type::kInteger) return Input(column, std::to_string(value.integer), out);
      if (value.type == Value::Type::kReal) return Input(column, RealText(value.real), out);
      if (value.type == Value::Type::kText) return Input(column, value.bytes, out);
      return Mismatch(column, value);
    case BYTEAOID: {
      if (value.type != Value::Type::kBlob) return Mismatch(column, value);
      const std::string& bytes = value.bytes;
      PgGuard([&] {
        bytea* result = static_cast<bytea*>(palloc(bytes.size() + VARHDRSZ));
        SET_VARSIZE(result, bytes.size() + VARHDRSZ);
        memcpy(VARDATA(result), bytes.data(), bytes.size());
        *out = PointerGetDatum(result);
      });
      if (is_domain) {
        // Round-trip through the domain's input to check its constraints.
        char* text = nullptr;
        Datum raw = *out;
        PgGuard([&] { text = DatumGetCString(DirectFunctionCall1(byteaout, raw)); });
        return Input(column, text, out);
      }
      return Status::Ok();
    }
    default:
      if (value.type == Value::Type::kText) return Input(column, value.bytes, out);
      return Mismatch(column, value);
  }
}

bool OutputDependsOnSettings(Oid base) {
  switch (base) {
    case BOOLOID:
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case FLOAT4OID:
    case FLOAT8OID:
    case NUMERICOID:
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
    case BYTEAOID:
    case UUIDOID:
    case OIDOID:
    case NAMEOID:
    case JSONOID:
    case JSONBOID: return false;
    default: return true;
  }
}

CanonicalOutput::CanonicalOutput() {
  PgGuard([&] {
    nest_level_ = NewGUCNestLevel();
    (void)set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("lc_monetary", "C", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  });
}

// Runs while a PgError unwinds, so it must not longjmp; AtEOXact_GUC runs
// the restored settings' assign hooks and is not promised never to raise.
CanonicalOutput::~CanonicalOutput() {
  int nest_level = nest_level_;
  PgGuardInDestructor([nest_level] { AtEOXact_GUC(true, nest_level); });
}

}  // namespace syncline::pg
