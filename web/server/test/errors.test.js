// Bad requests get a clear 4xx with a JSON error body and write nothing;
// SQLSTATEs map to the statuses of docs/http.md, "Errors".
import assert from "node:assert/strict";
import http from "node:http";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import { createSyncHandler, statusForSqlstate } from "../index.js";
import { createDatabase, startServer } from "./helpers.js";

const DB = "web_errors";
let db;
let server;

before(async () => {
  db = await createDatabase(DB);
  server = await startServer(DB, { maxBodyBytes: 4096 });
});

after(async () => {
  await server?.stop();
  await db?.end();
});

// Everything a request could have written.
async function written() {
  const { rows } = await db.query(`SELECT (SELECT count(*) FROM app.notes) + (SELECT count(*) FROM syncline.rows)
    + (SELECT count(*) FROM syncline.conflicts) + (SELECT count(*) FROM syncline.devices) AS n`);
  return Number(rows[0].n);
}

function stamp(msAhead = 0) {
  return ((BigInt(Date.now() + msAhead) << 16n) | 1n).toString(16).padStart(16, "0");
}

// A hand-made batch (protocol.md, "Batches") of one note.
function batch({ node = randomUUID(), hlc = stamp(), id = "h1", org = 1 } = {}) {
  return JSON.stringify({
    format: 1,
    source: node,
    changes: [{ table: "notes", op: "upsert", pk: { id }, row: { id, org_id: org, title: "t" }, clock: 1, hlc, node }],
    cursor: null,
    has_more: false,
  });
}

async function refused(call, status, sqlstate, message) {
  const count = await written();
  const answer = await call();
  assert.equal(answer.status, status, answer.text);
  assert.ok(answer.json && answer.json.error, `a JSON error body: ${answer.text}`);
  if (sqlstate !== undefined) assert.equal(answer.json.error.sqlstate, sqlstate);
  if (message) assert.match(answer.json.error.message, message);
  assert.doesNotMatch(answer.text, /\bat .*\.js:\d+/, "no stack trace");
  assert.equal(await written(), count, "nothing written");
  return answer;
}

test("a hand-made batch applies (the fixture works)", async () => {
  const answer = await server.call("alice", "POST", "/push", batch({ id: "ok1" }));
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.applied, 1);
});

test("a push that is not JSON, or not a batch, is 400", async () => {
  await refused(() => server.call("alice", "POST", "/push", '{"format": 1, "changes": ['), 400, "22023");
  await refused(
    () => server.call("alice", "POST", "/push", batch().replace('"format":1', '"format":1,"extra":2')),
    400,
    "22023",
    /unknown|extra/,
  );
  await refused(() => server.call("alice", "POST", "/push", ""), 400, "22023");
});

test("a push that is not UTF-8 is 400, never re-encoded", async () => {
  const bytes = Buffer.concat([
    Buffer.from(batch().slice(0, -30)),
    Buffer.from([0xff, 0xfe]),
    Buffer.from(batch().slice(-30)),
  ]);
  await refused(() => server.call("alice", "POST", "/push", bytes), 400, "22021", /UTF-8/);
});

test("a pull or seen request that is not a JSON object, or has bad fields, is 400", async () => {
  await refused(() => server.call("alice", "POST", "/pull", "{cursor: null"), 400, "22P02", /not JSON/);
  await refused(() => server.call("alice", "POST", "/pull", "[1]"), 400, "22023");
  await refused(() => server.call("alice", "POST", "/pull", '{"limit": "ten"}'), 400, "22023", /limit/);
  await refused(() => server.call("alice", "POST", "/pull", '{"cursor": 5}'), 400, "22023", /cursor/);
  await refused(() => server.call("alice", "POST", "/pull", '{"cursor": "not-a-cursor"}'), 400, "22023");
  await refused(
    () => server.call("alice", "POST", "/pull", '{"options": {"speed": 1}}'),
    400,
    "22023",
    /unknown option/,
  );
  await refused(() => server.call("alice", "POST", "/seen", '{"cursor": null}'), 400, "22023", /node/);
  await refused(() => server.call("alice", "POST", "/seen", '{"node": "nope"}'), 400, "22P02");
  await refused(() => server.call("alice", "GET", "/conflicts"), 400, "22023", /node=/);
});

test("a body over maxBodyBytes is 413, with or without Content-Length", async () => {
  const big = batch({ id: "x".repeat(5000) });
  await refused(() => server.call("alice", "POST", "/push", big), 413, null, /larger than 4096 bytes/);
  // chunked: the size is known only while reading
  await refused(
    () =>
      new Promise((resolve, reject) => {
        const url = new URL(`${server.base}/push`);
        const req = http.request(
          url,
          { method: "POST", headers: { "X-User": "alice", "Content-Type": "application/json" } },
          (res) => {
            let text = "";
            res.on("data", (chunk) => (text += chunk));
            res.on("end", () => resolve({ status: res.statusCode, text, json: JSON.parse(text) }));
          },
        );
        req.on("error", reject);
        for (let i = 0; i < 10; i++) req.write(big.slice(i * 600, (i + 1) * 600));
        req.end();
      }),
    413,
  );
});

test("unknown paths are 404, wrong methods 405, other content types 415", async () => {
  await refused(() => server.call("alice", "GET", "/nothing"), 404, null, /no such syncline endpoint/);
  const wrong = await refused(() => server.call("alice", "GET", "/push"), 405, null);
  assert.equal(wrong.headers.get("allow"), "POST");
  await refused(() => server.call("alice", "DELETE", "/state"), 405);
  await refused(() => server.call("alice", "POST", "/push", batch(), { "Content-Type": "text/plain" }), 415);
});

test("no user is 401; a hook's 403 is 403; a hook's bug is a bare 500, logged", async () => {
  await refused(() => server.call(null, "POST", "/push", batch()), 401);
  const answers = [
    Object.assign(new Error("suspended account"), { status: 403 }),
    new Error("secret internals at /srv/app/auth.js:12"),
  ];
  const strict = await startServer(DB, {
    authorize: async () => {
      throw answers.shift();
    },
  });
  try {
    await refused(() => strict.call("alice", "POST", "/push", batch()), 403, null, /suspended account/);
    const bug = await refused(() => strict.call("alice", "POST", "/push", batch()), 500);
    assert.deepEqual(bug.json.error, { sqlstate: null, message: "internal error", detail: null, hint: null });
    assert.equal(strict.logged.length, 1);
  } finally {
    await strict.stop();
  }
});

test("a role the server cannot take is the server's fault: a bare 500, logged", async () => {
  const wrong = await startServer(DB, { authorize: async () => ({ role: 'no "such" role' }) });
  try {
    const answer = await refused(() => wrong.call("alice", "POST", "/pull", "{}"), 500);
    assert.equal(answer.json.error.message, "internal error");
    assert.match(wrong.logged[0].message, /cannot take/);
  } finally {
    await wrong.stop();
  }
});

test("a stamp ahead of the server's clock defers the push: 503 with Retry-After", async () => {
  const answer = await refused(
    () => server.call("alice", "POST", "/push", batch({ hlc: stamp(10 * 60 * 1000) })),
    503,
    "55000",
  );
  assert.ok(Number(answer.headers.get("retry-after")) > 0);
});

test("a cursor older than the garbage collection horizon is 409 SL001: resync", async () => {
  await db.query("INSERT INTO app.settings SELECT 's' || g, 'v' FROM generate_series(1, 5) g");
  const old = await server.call("carol", "POST", "/pull", JSON.stringify({ cursor: null }));
  assert.equal(old.status, 200, old.text);
  await db.query("DELETE FROM app.settings");
  await db.query(`SELECT syncline.gc('{"min_age": "0", "device_window": "0"}')`);
  const answer = await refused(
    () => server.call("carol", "POST", "/pull", JSON.stringify({ cursor: old.json.cursor })),
    409,
    "SL001",
    /resync/,
  );
  assert.ok(answer.json.error.message.startsWith("syncline.pull_since"));
  // a full pull is never refused
  assert.equal((await server.call("carol", "POST", "/pull", JSON.stringify({ cursor: null }))).status, 200);
});

test("mounted under a path, as Express does, and next() for paths it does not serve", async () => {
  const handler = createSyncHandler({ pool: server.pool, authorize: async () => ({ role: `${DB}_alice`, scope: 1 }) });
  const app = http.createServer((req, res) => {
    // what app.use('/sync', handler) does: req.url relative to the mount
    if (req.url.startsWith("/sync/")) {
      req.url = req.url.slice("/sync".length);
      return handler(req, res, () => {
        res.writeHead(299).end("next");
      });
    }
    res.writeHead(404).end();
  });
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  try {
    const base = `http://127.0.0.1:${app.address().port}`;
    const state = await fetch(`${base}/sync/state`);
    assert.equal(state.status, 200);
    assert.equal((await state.json()).scope, 1);
    const other = await fetch(`${base}/sync/elsewhere`);
    assert.equal(other.status, 299);
  } finally {
    await new Promise((resolve) => app.close(resolve));
    await handler.close();
  }
});

test("every SQLSTATE class has its status", () => {
  const cases = {
    SL001: 409,
    55000: 503,
    25006: 503,
    40001: 503,
    "40P01": 503,
    42501: 403,
    44000: 403,
    23505: 422,
    23503: 422,
    P0001: 422,
    22023: 400,
    22000: 400,
    "22P02": 400,
    "42P01": 400,
    42883: 501,
    54000: 500,
    XX000: 500,
    57014: 503,
  };
  for (const [code, status] of Object.entries(cases)) assert.equal(statusForSqlstate(code)[0], status, code);
});
