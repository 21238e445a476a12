// GET /events: NOTIFY syncline as Server-Sent Events, one LISTEN
// connection for all streams, each device sent only its scope's notes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { createDatabase, openEvents, startServer } from "./helpers.js";

const DB = "web_events";
let db;
let server;

before(async () => {
  db = await createDatabase(DB);
  server = await startServer(DB, { heartbeatMs: 200 });
});

after(async () => {
  await server?.stop();
  await db?.end();
});

const change = (payload) => (event) => event.event === "change" && event.data === JSON.stringify(payload);

async function listeners() {
  const { rows } = await db.query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN syncline'",
    [DB],
  );
  return Number(rows[0].n);
}

async function until(condition, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("a commit reaches the streams of its scope only; unscoped tables reach all", async () => {
  const alice = await openEvents(server.base, "alice");
  const bob = await openEvents(server.base, "bob");
  const carol = await openEvents(server.base, "carol");
  try {
    assert.equal(alice.status, 200);
    for (const stream of [alice, bob, carol]) await stream.next((e) => e.event === "ready");
    assert.equal(await listeners(), 1, "one LISTEN connection for every stream");

    await db.query("INSERT INTO app.notes VALUES ('a1', 1, 'for org 1')");
    await alice.next(change({ table: "notes", scope: 1 }));
    await carol.next(change({ table: "notes", scope: 1 }), 0);
    await db.query("INSERT INTO app.notes VALUES ('b1', 2, 'for org 2')");
    await bob.next(change({ table: "notes", scope: 2 }));
    assert.ok(!bob.events.some(change({ table: "notes", scope: 1 })), "bob is not told of org 1's writes");

    await db.query("INSERT INTO app.settings VALUES ('theme', 'dark')");
    for (const stream of [alice, bob, carol]) await stream.next(change({ table: "settings" }));
    assert.ok(!alice.events.some(change({ table: "notes", scope: 2 })), "alice is not told of org 2's writes");

    // a schema change goes to everyone
    await db.query("ALTER TABLE app.settings ADD COLUMN note text");
    for (const stream of [alice, bob, carol])
      await stream.next((e) => e.event === "change" && "schema" in JSON.parse(e.data));

    // heartbeats: comment lines
    await alice.next((e) => e.comment);
  } finally {
    for (const stream of [alice, bob, carol]) stream.close();
  }
  await until(() => server.handler.subscribers === 0, "the closed streams to be dropped");
});

test("a lost LISTEN connection comes back, and the streams are told to sync", async () => {
  const alice = await openEvents(server.base, "alice");
  try {
    await alice.next((e) => e.event === "ready");
    const seen = alice.events.length;
    await db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN syncline'",
      [DB],
    );
    await alice.next((e) => e.event === "ready", seen, 10000);
    await db.query("INSERT INTO app.notes VALUES ('a2', 1, 'after the reconnect')");
    await alice.next(change({ table: "notes", scope: 1 }), seen);
    assert.ok(server.logged.some((error) => /listening again/.test(error.message)));
  } finally {
    alice.close();
  }
});

test("a stream needs a user", async () => {
  const answer = await server.call(null, "GET", "/events");
  assert.equal(answer.status, 401);
});
