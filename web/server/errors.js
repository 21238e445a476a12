// How a failure becomes an HTTP answer: the status for each SQLSTATE
// (docs/http.md, "Errors") and the JSON error body. PostgreSQL's message,
// detail and hint go to the client as they are: they name the change and
// the reason, as they do for a libpq client. Anything else (a bug in this
// package or in the app's hook) is logged and answered with a bare "internal
// error": no stack traces leave the server.

// An error this package raises itself, before or without PostgreSQL.
export class HttpError extends Error {
  constructor(status, message, { sqlstate = null, headers = {} } = {}) {
    super(message);
    this.status = status;
    this.sqlstate = sqlstate;
    this.headers = headers;
  }
}

// Seconds a client should wait before it tries again.
const RETRY_SOON = 1; // a serialization failure or deadlock: the next try usually goes through
const RETRY_LATER = 5; // a standby behind, a stamp ahead, a server starting or stopping

// [status, Retry-After seconds or null] for a PostgreSQL SQLSTATE.
export function statusForSqlstate(sqlstate) {
  const code = String(sqlstate || "");
  const cls = code.slice(0, 2);
  if (code === "SL001") return [409, null]; // resync: pull again from a null cursor
  if (code === "55000") return [503, RETRY_LATER]; // not yet: a standby behind, a push deferred
  if (code === "25006") return [503, RETRY_LATER]; // a write on a read-only standby
  if (cls === "40") return [503, RETRY_SOON]; // 40001, 40P01: rolled back whole, apply again
  if (code === "42501" || cls === "44" || cls === "28") return [403, null];
  if (cls === "23" || code === "P0001") return [422, null]; // a page that needs the next one
  if (code === "42883") return [501, null]; // a function this extension version lacks
  if (cls === "22" || cls === "42") return [400, null];
  if (cls === "08" || cls === "53" || cls === "57") return [503, RETRY_LATER];
  return [500, null];
}

// {status, headers, body} for any error a request ended with.
export function errorAnswer(error, log) {
  if (error instanceof HttpError) return answer(error.status, error.headers, error.sqlstate, error.message);
  // node-postgres sets `code` to the SQLSTATE of an error the server sent.
  if (error && typeof error.code === "string" && /^[0-9A-Z]{5}$/.test(error.code)) {
    const [status, retry] = statusForSqlstate(error.code);
    if (status >= 500 && status !== 503) log(error);
    const headers = retry === null ? {} : { "Retry-After": String(retry) };
    return answer(status, headers, error.code, error.message, error.detail, error.hint);
  }
  // A lost connection to PostgreSQL: the client may try again.
  if (error && /ECONNREFUSED|ECONNRESET|ENOENT|Connection terminated/.test(`${error.code} ${error.message}`)) {
    log(error);
    return answer(503, { "Retry-After": String(RETRY_LATER) }, null, "the database is not reachable");
  }
  log(error);
  return answer(500, {}, null, "internal error");
}

function answer(status, headers, sqlstate, message, detail = null, hint = null) {
  const error = { sqlstate, message, detail: detail ?? null, hint: hint ?? null };
  return { status, headers, body: JSON.stringify({ error }) };
}
