// @syncline/server: the syncline HTTP protocol (docs/http.md) as one
// request handler for node:http and Express. Each request is one
// transaction as the role authorize() names, around one of syncline's SQL
// functions; batches pass through as text, never parsed here.
import pg from "pg";

import { HttpError, errorAnswer } from "./errors.js";
import { EventHub, sameScope } from "./events.js";
import { parseObject, readBody, sendJsonText } from "./http.js";

export { statusForSqlstate } from "./errors.js";

const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024; // the largest batch a reader takes (protocol.md, "Pulling")
const DEFAULT_PULL_LIMIT = 1000;
const PUSH_ACK_OPTIONS = '{"origin":"local"}'; // what a device's push queue is pulled with

// method -> path -> route
const ROUTES = {
  "/state": { GET: state },
  "/pull": { POST: pull },
  "/push": { POST: push },
  "/seen": { POST: seen },
  "/conflicts": { GET: conflicts },
  "/events": { GET: events },
};

export function createSyncHandler(options) {
  const { pool, authorize } = options ?? {};
  if (!pool || typeof pool.connect !== "function") throw new TypeError("createSyncHandler: `pool` must be a pg.Pool");
  if (typeof authorize !== "function") throw new TypeError("createSyncHandler: `authorize` must be a function");
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)
    throw new TypeError("createSyncHandler: `maxBodyBytes` must be a positive integer");
  const log = options.log ?? ((error) => console.error("syncline:", error));
  const hub = new EventHub({
    connect: options.listenClient ?? (() => new pg.Client(pool.options)),
    heartbeatMs: options.heartbeatMs ?? 15000,
    log,
  });
  const context = { pool, authorize, maxBodyBytes, hub };

  const handler = (req, res, next) => {
    handle(context, req, res, next).catch((error) => {
      const { status, headers, body } = errorAnswer(error, log);
      sendJsonText(res, status, body, headers);
    });
  };
  handler.close = () => hub.close();
  Object.defineProperty(handler, "subscribers", { get: () => hub.subscribers.size });
  return handler;
}

async function handle(context, req, res, next) {
  // Under Express, req.url is relative to the mount path already.
  const url = new URL(req.url ?? "/", "http://localhost");
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
  const route = Object.prototype.hasOwnProperty.call(ROUTES, path) ? ROUTES[path] : undefined;
  if (route === undefined) {
    if (typeof next === "function") return next();
    throw new HttpError(404, `no such syncline endpoint: ${path}`);
  }
  const run = route[req.method];
  if (run === undefined) {
    throw new HttpError(405, `${path} takes ${Object.keys(route).join(", ")}, not ${req.method}`, {
      headers: { Allow: Object.keys(route).join(", ") },
    });
  }
  // Only JSON bodies: a form or a text/plain POST from another site cannot
  // push in a signed-in user's name without a CORS preflight.
  if (req.method === "POST" && !/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
    throw new HttpError(415, `${path} takes a body of type application/json`);
  }
  const grant = await authorizeRequest(context, req);
  await run(context, req, res, url, grant);
}

// {scope, role} from the app's hook; null or false means "who are you?".
async function authorizeRequest(context, req) {
  let grant;
  try {
    grant = await context.authorize(req);
  } catch (error) {
    const status = error?.status ?? error?.statusCode;
    if (status === 401 || status === 403) throw new HttpError(status, error.message || "not allowed");
    throw error;
  }
  if (!grant) throw new HttpError(401, "not authenticated", { headers: { "WWW-Authenticate": "Bearer" } });
  if (grant.role !== undefined && grant.role !== null && (typeof grant.role !== "string" || grant.role === ""))
    throw new TypeError("authorize() returned a role that is not a non-empty string");
  return { scope: grant.scope ?? undefined, role: grant.role ?? undefined };
}

// The scope a request runs under: the granted one, which a client may
// repeat but not change; without one, the client's own filter (security.md:
// the scope is a filter, row-level security and the hook decide).
function effectiveScope(grant, asked, askedGiven) {
  if (grant.scope === undefined) return askedGiven && asked !== null ? asked : undefined;
  if (askedGiven && asked !== null && !sameScope(asked, grant.scope)) {
    throw new HttpError(403, `scope ${JSON.stringify(asked)} is not this user's scope`, { sqlstate: "42501" });
  }
  return grant.scope;
}

// Runs fn(client) in one transaction as the granted role, so that
// privileges, row-level security and the authorisation hook judge the
// user, as for a client connected as that role.
async function inTransaction(context, grant, fn) {
  const client = await context.pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN");
    if (grant.role !== undefined) await setRole(client, grant.role);
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {
      broken = true; // the connection is gone or unusable: do not pool it
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

// A role the server cannot take (no such role, no membership) is the
// server's set-up, not the client's request: a 500, logged.
async function setRole(client, role) {
  try {
    await client.query(`SET LOCAL ROLE ${quoteIdentifier(role)}`);
  } catch (error) {
    if (error.code !== "22023" && error.code !== "42501") throw error; // a lost connection stays a 503
    throw new Error(`authorize() named role "${role}", which this server cannot take: ${error.message}`);
  }
}

function quoteIdentifier(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

async function value(context, grant, sql, params) {
  return inTransaction(context, grant, async (client) => {
    const result = await client.query({ text: sql, values: params, rowMode: "array" });
    return result.rows[0][0];
  });
}

// GET /state?node=<device>: the server's node id and what it acknowledged
// of the device's pushes.
async function state(context, req, res, url, grant) {
  const node = url.searchParams.get("node");
  const [server, ackedPush] = await inTransaction(context, grant, async (client) => {
    const result = await client.query({
      text: `SELECT syncline.node_id()::text,
               CASE WHEN $1::uuid IS NULL THEN NULL ELSE syncline.peer_cursor($1::uuid, $2::jsonb) END`,
      values: [node, PUSH_ACK_OPTIONS],
      rowMode: "array",
    });
    return result.rows[0];
  });
  const body = { server, acked_push: ackedPush ?? null, scope: grant.scope ?? null };
  sendJsonText(res, 200, JSON.stringify(body));
}

// POST /pull {"cursor", "limit", "options"}: a page, as pull_since wrote it.
async function pull(context, req, res, url, grant) {
  const request = parseObject(await readBody(req, context.maxBodyBytes), "pull");
  const { cursor = null, limit = DEFAULT_PULL_LIMIT, options = {} } = request;
  if (cursor !== null && typeof cursor !== "string") throw badInput('pull: "cursor" must be a string or null');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 2147483647)
    throw badInput('pull: "limit" must be a positive integer');
  if (options === null || typeof options !== "object" || Array.isArray(options))
    throw badInput('pull: "options" must be a JSON object');
  const scope = effectiveScope(grant, options.scope, Object.prototype.hasOwnProperty.call(options, "scope"));
  const pullOptions = { ...options };
  if (scope === undefined) delete pullOptions.scope;
  else pullOptions.scope = scope;
  const batch = await value(context, grant, "SELECT syncline.pull_since($1, $2::int, $3::jsonb)::text", [
    cursor,
    limit,
    JSON.stringify(pullOptions),
  ]);
  sendJsonText(res, 200, batch);
}

// POST /push <batch>: apply_push's summary. The batch's rows are judged by
// privileges, row-level security and the hook, not by the granted scope.
async function push(context, req, res, url, grant) {
  const batch = await readBody(req, context.maxBodyBytes);
  const summary = await value(context, grant, "SELECT syncline.apply_push($1::text)::text", [batch]);
  sendJsonText(res, 200, summary);
}

// POST /seen {"node", "cursor", "scope"?}: where the device's pulls reached.
async function seen(context, req, res, url, grant) {
  const request = parseObject(await readBody(req, context.maxBodyBytes), "seen");
  const { node, cursor = null } = request;
  if (typeof node !== "string") throw badInput('seen: "node" must be the device\'s node id');
  if (cursor !== null && typeof cursor !== "string") throw badInput('seen: "cursor" must be a string or null');
  const scope = effectiveScope(grant, request.scope, Object.prototype.hasOwnProperty.call(request, "scope"));
  const answer = await value(context, grant, "SELECT syncline.device_seen($1::uuid, $2, $3::jsonb)::text", [
    node,
    cursor,
    scope === undefined ? null : JSON.stringify(scope),
  ]);
  sendJsonText(res, 200, answer);
}

// GET /conflicts?node=<device>&after=<id>: the device's entries of the
// server's conflict log, each in the form syncline_note_conflict() takes
// (the C++ client's, client/sync_client.cc).
async function conflicts(context, req, res, url, grant) {
  const node = url.searchParams.get("node");
  if (node === null) throw badInput("conflicts: the query needs node=<the device's node id>");
  const after = url.searchParams.get("after") ?? "0";
  const list = await value(
    context,
    grant,
    `SELECT coalesce(json_agg(json_build_object('id', c.id, 'table_name', c.table_name, 'pk', c.pk::text,
       'op', c.op, 'row', c."row"::text, 'hlc', c.hlc, 'origin', c.origin, 'sqlstate', c.sqlstate,
       'reason', c.reason, 'answer', c.answer, 'forget', c.forget) ORDER BY c.id), '[]')::text
     FROM syncline.conflicts_for($1::uuid, $2::bigint) c`,
    [node, after],
  );
  sendJsonText(res, 200, `{"conflicts":${list}}`);
}

// GET /events[?scope=<json>]: Server-Sent Events for the granted scope.
async function events(context, req, res, url, grant) {
  let asked = null;
  const text = url.searchParams.get("scope");
  if (text !== null) {
    try {
      asked = JSON.parse(text);
    } catch {
      throw badInput('events: scope must be a JSON value (7, "acme")');
    }
  }
  context.hub.subscribe(req, res, effectiveScope(grant, asked, text !== null));
}

function badInput(message) {
  return new HttpError(400, message, { sqlstate: "22023" });
}
