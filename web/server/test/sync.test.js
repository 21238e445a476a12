// A device's sync loop over HTTP (docs/http.md, "A sync"): a real SQLite
// client file pushes through POST /push, the acknowledgement comes back in
// GET /state, pages from POST /pull apply to another file, and the role and
// scope that authorize() grants decide what each user reads and writes.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { createDatabase, sqliteFile, startServer, users } from "./helpers.js";

const DB = "web_sync";
let db;
let server;
const files = [];

before(async () => {
  db = await createDatabase(DB);
  server = await startServer(DB);
});

after(async () => {
  await server?.stop();
  await db?.end();
  for (const file of files) file.remove();
});

// A client file with the server's tables, tracked, holding some writes.
function device(name, writes) {
  const file = sqliteFile(name);
  files.push(file);
  file.sql(`CREATE TABLE notes (id TEXT PRIMARY KEY, org_id INTEGER NOT NULL, title TEXT);
            CREATE TABLE settings (id TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE tags (id TEXT PRIMARY KEY, name TEXT UNIQUE);
            SELECT syncline_track('notes'); SELECT syncline_track('settings'); SELECT syncline_track('tags');
            ${writes}`);
  file.node = file.sql("SELECT syncline_node_id();");
  return file;
}

function pushQueue(file, ack = null) {
  const cursor = ack === null ? "NULL" : `'${ack}'`;
  return file.sql(`SELECT syncline_pull_since(${cursor}, 1000, '{"origin":"local"}');`);
}

async function count(sql) {
  return Number((await db.query(sql)).rows[0].count);
}

test("GET /state names the server and, before any push, no acknowledgement", async () => {
  const { status, json } = await server.call("alice", "GET", "/state?node=0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11");
  assert.equal(status, 200);
  const node = (await db.query("SELECT syncline.node_id()::text AS id")).rows[0].id;
  assert.deepEqual(json, { server: node, acked_push: null, scope: 1 });
});

test("a push from a SQLite file applies, is acknowledged, and pulls into another file", async () => {
  const phone = device(
    "phone",
    "INSERT INTO notes VALUES ('n1', 1, 'hello'), ('n2', 1, 'héllo ✓'); INSERT INTO settings VALUES ('theme', 'dark');",
  );
  const batch = pushQueue(phone);
  const pushed = await server.call("alice", "POST", "/push", batch);
  assert.equal(pushed.status, 200, pushed.text);
  assert.equal(pushed.json.applied, 3);
  assert.equal(pushed.json.source, phone.node);
  assert.equal(await count("SELECT count(*) FROM app.notes WHERE org_id = 1"), 2);

  // The server recorded the page's cursor with the changes: the device's
  // next push starts after it, and finds nothing new.
  const state = await server.call("alice", "GET", `/state?node=${phone.node}`);
  assert.equal(state.json.acked_push, JSON.parse(batch).cursor);
  const again = JSON.parse(pushQueue(phone, state.json.acked_push));
  assert.equal(again.changes.length, 0);

  // Another of alice's devices pulls the server's state, page by page.
  const laptop = device("laptop", "");
  let cursor = null;
  for (let page = 0; ; page++) {
    const pulled = await server.call(
      "alice",
      "POST",
      "/pull",
      JSON.stringify({ cursor, limit: 2, options: { exclude_origin: laptop.node, schema: 0 } }),
    );
    assert.equal(pulled.status, 200, pulled.text);
    const file = path.join(laptop.dir, `page${page}.json`);
    fs.writeFileSync(file, pulled.text);
    laptop.sql(`SELECT syncline_apply_push(CAST(readfile('${file}') AS TEXT), '{"from_server":true}');`);
    cursor = pulled.json.cursor;
    if (!pulled.json.has_more) break;
  }
  assert.equal(
    laptop.sql("SELECT group_concat(id || '=' || title, ',') FROM (SELECT * FROM notes ORDER BY id);"),
    "n1=hello,n2=héllo ✓",
  );
  assert.equal(laptop.sql("SELECT value FROM settings;"), "dark");

  // The device reports where its pulls reached.
  const reported = await server.call("alice", "POST", "/seen", JSON.stringify({ node: laptop.node, cursor }));
  assert.equal(reported.status, 200, reported.text);
  assert.ok("bound" in reported.json && "position" in reported.json);
});

test("the granted scope and row-level security decide what a pull holds", async () => {
  await db.query("INSERT INTO app.notes VALUES ('b1', 2, 'bob''s')");
  const ids = async (user, options = {}) => {
    const { status, json, text } = await server.call(user, "POST", "/pull", JSON.stringify({ cursor: null, options }));
    assert.equal(status, 200, text);
    return json.changes
      .filter((c) => c.table === "notes")
      .map((c) => c.pk.id)
      .sort();
  };
  assert.deepEqual(await ids("alice"), ["n1", "n2"]);
  assert.deepEqual(await ids("bob"), ["b1"]);
  assert.deepEqual(await ids("bob", { scope: 2 }), ["b1"], "a client may repeat its scope");
  // carol has no granted scope: row-level security alone hides org 1's rows
  assert.deepEqual(await ids("carol"), ["b1"]);
  assert.deepEqual(await ids("carol", { scope: 1 }), []);
});

test("a client naming another scope gets 403", async () => {
  for (const [url, body] of [
    ["/pull", { cursor: null, options: { scope: 1 } }],
    ["/pull", { cursor: null, options: { scope: "2" } }],
    ["/seen", { node: "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", cursor: null, scope: 1 }],
  ]) {
    const { status, json } = await server.call("bob", "POST", url, JSON.stringify(body));
    assert.equal(status, 403, url);
    assert.equal(json.error.sqlstate, "42501");
    assert.match(json.error.message, /not this user's scope/);
  }
  const events = await server.call("bob", "GET", "/events?scope=1");
  assert.equal(events.status, 403);
});

test("a role without SELECT gets 403 from pull_since, with nothing written", async () => {
  const before = await count("SELECT count(*) FROM syncline.devices");
  const { status, json } = await server.call("dave", "POST", "/pull", JSON.stringify({ cursor: null }));
  assert.equal(status, 403);
  assert.equal(json.error.sqlstate, "42501");
  assert.match(json.error.message, /permission denied/);
  assert.equal(await count("SELECT count(*) FROM syncline.devices"), before);
});

test("a push under a device bound to another role is refused whole (403), nothing written", async () => {
  const phone = device("bobs-copy", "INSERT INTO notes VALUES ('x1', 2, 'mine');");
  const batch = pushQueue(phone);
  assert.equal((await server.call("bob", "POST", "/push", batch)).status, 200);
  const [notes, conflicts] = [
    await count("SELECT count(*) FROM app.notes"),
    await count("SELECT count(*) FROM syncline.conflicts"),
  ];
  // carol replays bob's device's page under its node id
  phone.sql("INSERT INTO notes VALUES ('x2', 2, 'forged');");
  const forged = pushQueue(phone, JSON.parse(batch).cursor);
  const { status, json } = await server.call("carol", "POST", "/push", forged);
  assert.equal(status, 403, JSON.stringify(json));
  assert.equal(json.error.sqlstate, "42501");
  assert.equal(await count("SELECT count(*) FROM app.notes"), notes);
  assert.equal(await count("SELECT count(*) FROM syncline.conflicts"), conflicts);
});

test("a change the role may not make is refused on its own and listed by GET /conflicts", async () => {
  const phone = device("alices-tablet", "INSERT INTO notes VALUES ('o2', 2, 'into org 2'), ('o1', 1, 'into org 1');");
  const pushed = await server.call("alice", "POST", "/push", pushQueue(phone));
  assert.equal(pushed.status, 200, pushed.text);
  assert.equal(pushed.json.applied, 1);
  assert.equal(pushed.json.refused.length, 1);
  assert.equal(await count("SELECT count(*) FROM app.notes WHERE id = 'o2'"), 0);
  const listed = await server.call("alice", "GET", `/conflicts?node=${phone.node}&after=0`);
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.json.conflicts.length, 1);
  const entry = listed.json.conflicts[0];
  assert.equal(entry.table_name, "notes");
  assert.equal(entry.forget, true);
  assert.equal(typeof entry.pk, "string", "pk as text, as syncline_note_conflict() takes it");
  // the device copies it into its own log
  phone.sql(`SELECT syncline_note_conflict('${JSON.stringify(entry).replace(/'/g, "''")}');`);
  assert.equal(phone.sql("SELECT count(*) FROM notes WHERE id = 'o2';"), "0", "the device dropped its copy");
  // another role cannot read that device's entries
  const other = await server.call("bob", "GET", `/conflicts?node=${phone.node}&after=0`);
  assert.ok(other.status === 403 || (other.status === 200 && other.json.conflicts.length === 0), other.text);
  const later = await server.call("alice", "GET", `/conflicts?node=${phone.node}&after=${entry.id}`);
  assert.deepEqual(later.json, { conflicts: [] });
});

test("a page that needs the next one (a constraint, has_more) is refused whole with 422", async () => {
  // tag t2 takes the name t1 holds; t1 gives it up only in the next page
  const phone = device("tags", "INSERT INTO tags VALUES ('t1', 'red');");
  await server.call("alice", "POST", "/push", pushQueue(phone));
  const ack = (await server.call("alice", "GET", `/state?node=${phone.node}`)).json.acked_push;
  // the queue holds t2 = red first, then t1's later edit that frees "red" on the server
  phone.sql(
    "UPDATE tags SET name = 'green' WHERE id = 't1'; INSERT INTO tags VALUES ('t2', 'red'); UPDATE tags SET name = 'yellow' WHERE id = 't1';",
  );
  const page = phone.sql(`SELECT syncline_pull_since('${ack}', 1, '{"origin":"local"}');`);
  assert.equal(JSON.parse(page).has_more, true);
  const names = await count("SELECT count(*) FROM app.tags");
  const { status, json } = await server.call("alice", "POST", "/push", page);
  assert.equal(status, 422, JSON.stringify(json));
  assert.match(json.error.sqlstate, /^23/);
  assert.equal(await count("SELECT count(*) FROM app.tags"), names);
});
