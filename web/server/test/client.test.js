// The JavaScript sync client (web/client) end to end: SQLite as WebAssembly
// (web/sqlite, built by make wasm) on two devices, syncing through the Node
// handler with a real PostgreSQL. Offline edits on both, a server write,
// and every replica converges; a device's push the server refuses is
// logged on the device and does not stop the sync.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import Database from "better-sqlite3";

import { SyncClient } from "../../client/index.mjs";
import { loadSqlite } from "../../sqlite/index.mjs";
import { createDatabase, startServer } from "./helpers.js";

const name = "syncline_web_client";
let admin;
let server;
let sqlite;

before(async () => {
  admin = await createDatabase(name);
  server = await startServer(name);
  sqlite = await loadSqlite();
});

after(async () => {
  await server?.stop();
  await admin?.end();
});

// A device: an in-memory database and a client acting as `user`.
function device(user) {
  const db = sqlite.open(":memory:");
  const client = new SyncClient({ db, url: server.base, headers: { "X-User": user }, pageSize: 2 });
  return { db, client };
}

const notes = (db) => db.query("SELECT id, org_id, title FROM notes ORDER BY id").map((r) => `${r.id}:${r.title}`);
const serverNotes = async (org) =>
  (await admin.query("SELECT id, title FROM app.notes WHERE org_id = $1 ORDER BY id", [org])).rows.map(
    (r) => `${r.id}:${r.title}`,
  );

test("two devices and the server converge through the JS client", async () => {
  await admin.query("INSERT INTO app.notes VALUES ('n1', 1, 'from the server'), ('n2', 1, 'two'), ('x', 2, 'other org')");
  const laptop = device("alice");
  const phone = device("alice");
  // A clone brings the server's tables (from its schema document) and the
  // user's scope only.
  const cloned = await laptop.client.clone();
  assert.equal(cloned.pulled, 2);
  await phone.client.clone();
  assert.deepEqual(notes(laptop.db), ["n1:from the server", "n2:two"]);

  // Offline edits on both devices, and a server write.
  laptop.db.exec("UPDATE notes SET title = 'laptop edit' WHERE id = 'n1'");
  laptop.db.exec("INSERT INTO notes VALUES ('n3', 1, 'new on the laptop'), ('n4', 1, 'four'), ('n5', 1, 'five')");
  phone.db.exec("DELETE FROM notes WHERE id = 'n2'");
  await admin.query("INSERT INTO app.notes VALUES ('n6', 1, 'server again')");

  const pushed = await laptop.client.sync(); // pages of 2: the push goes out in pages
  assert.equal(pushed.pushed, 4);
  await phone.client.sync();
  await laptop.client.sync();
  const expected = ["n1:laptop edit", "n3:new on the laptop", "n4:four", "n5:five", "n6:server again"];
  assert.deepEqual(await serverNotes(1), expected);
  assert.deepEqual(notes(laptop.db), expected);
  assert.deepEqual(notes(phone.db), expected);
  // The server knows where each device's pulls have reached.
  const seen = await admin.query("SELECT count(*)::int AS n FROM syncline.devices WHERE pull_cursor IS NOT NULL");
  assert.equal(seen.rows[0].n, 2);
});

test("a change the server refuses is logged on the device, and the sync goes on", async () => {
  const tablet = device("alice");
  await tablet.client.clone();
  // A note of another organisation: the authorisation hook refuses it.
  tablet.db.exec("INSERT INTO notes VALUES ('stolen', 2, 'not mine'), ('mine', 1, 'fine')");
  const counts = await tablet.client.sync();
  assert.equal(counts.conflicts >= 1, true);
  assert.deepEqual(await serverNotes(2), ["x:other org"]);
  assert.ok((await serverNotes(1)).includes("mine:fine"));
  const logged = tablet.db.query("SELECT table_name, sqlstate FROM syncline_conflicts");
  assert.ok(logged.some((entry) => entry.table_name === "notes"), JSON.stringify(logged));
  assert.equal(notes(tablet.db).includes("stolen:not mine"), false);
});

test("a database that was never cloned is refused with a clear error", async () => {
  const fresh = device("alice");
  await assert.rejects(fresh.client.sync(), /was not cloned from a server \(call clone\)/);
});

test("watch syncs on the server's events, and stops when asked", async () => {
  const desk = device("alice");
  await desk.client.clone();
  const states = [];
  const stop = new AbortController();
  // A long interval: only the server's event can bring the change soon.
  const watching = desk.client.watch({ intervalMs: 60000, signal: stop.signal, onStatus: (s) => states.push(s.state) });
  const until = async (condition) => {
    const deadline = Date.now() + 10000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out; states ${states.join(",")}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await until(() => states.includes("idle"));
  await admin.query("INSERT INTO app.notes VALUES ('live', 1, 'pushed by the server')");
  await until(() => notes(desk.db).includes("live:pushed by the server"));
  // A local write goes out at syncNow().
  desk.db.exec("INSERT INTO notes VALUES ('from-desk', 1, 'desk')");
  desk.client.syncNow();
  await until(async () => (await serverNotes(1)).includes("from-desk:desk"));
  stop.abort();
  await watching;
});

// Runs the device process; resolves with its output. With `killAt`, kills
// it (SIGKILL) once it has sent that many requests of that kind.
function runDevice(file, command, { pageSize = 1000, killAt = null } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL("./fixtures/device.mjs", import.meta.url)), file, server.base, "alice", command, String(pageSize)],
      { env: process.env, stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    let seen = 0;
    child.stdout.on("data", (chunk) => {
      output += chunk;
      if (killAt === null) return;
      seen = output.split("\n").filter((line) => line === killAt.request).length;
      if (seen >= killAt.count) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve({ code, signal, output }));
  });
}

test("a device killed mid-push and mid-pull loses nothing (better-sqlite3, a real file)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "syncline-kill-"));
  const file = path.join(dir, "device.db");
  try {
    assert.equal((await runDevice(file, "clone")).code, 0);
    const db = new Database(file);
    db.loadExtension(process.env.SYNCLINE_EXTENSION);
    db.exec("INSERT INTO notes SELECT 'k' || value, 1, 'offline ' || value FROM json_each(json_array(" +
      Array.from({ length: 1000 }, (_, i) => i).join(",") + "))");
    db.close();
    const killed = await runDevice(file, "sync", { pageSize: 20, killAt: { request: "POST /push", count: 5 } });
    assert.equal(killed.signal, "SIGKILL");
    const partial = (await admin.query("SELECT count(*)::int AS n FROM app.notes WHERE id LIKE 'k%'")).rows[0].n;
    assert.ok(partial < 1000, `the push had finished (${partial}) before the kill`);

    // Rows for the device to pull, then a kill in the middle of the pull.
    await admin.query("INSERT INTO app.notes SELECT 's' || g, 1, 'server ' || g FROM generate_series(1, 1000) g");
    const resumed = await runDevice(file, "sync", { pageSize: 20, killAt: { request: "POST /pull", count: 10 } });
    assert.equal(resumed.signal, "SIGKILL");
    const finished = await runDevice(file, "sync", { pageSize: 20 });
    assert.equal(finished.code, 0, finished.output.slice(-500));

    const server = (await admin.query("SELECT id, title FROM app.notes WHERE org_id = 1 ORDER BY id")).rows;
    assert.equal(server.filter((row) => row.id.startsWith("k")).length, 1000);
    const check = new Database(file);
    const local = check.prepare("SELECT id, title FROM notes ORDER BY id").all();
    check.close();
    assert.deepEqual(local, server);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a device drops its tombstones once the server's collection has passed them", async () => {
  await admin.query("INSERT INTO app.notes VALUES ('g1', 1, 'a'), ('g2', 1, 'b'), ('g3', 1, 'c')");
  const pad = device("alice");
  await pad.client.clone();
  pad.db.exec("DELETE FROM notes WHERE id LIKE 'g%'");
  await pad.client.sync(); // pushed and acknowledged: the device records a checkpoint
  const tombstones = () => pad.db.value("SELECT count(*) FROM syncline_rows WHERE tid > 0 AND deleted");
  const held = tombstones(); // its 3, and those it pulled from the earlier tests
  assert.ok(held >= 3, String(held));
  // Other devices of this file's tests are behind: they would hold the bound.
  const gc = await admin.query(`SELECT syncline.gc('{"min_age": "0", "device_window": "0"}') AS r`);
  assert.ok(gc.rows[0].r.collected >= 3, JSON.stringify(gc.rows[0].r));
  const counts = await pad.client.sync();
  assert.equal(counts.collected, held);
  assert.equal(tombstones(), 0);
});
