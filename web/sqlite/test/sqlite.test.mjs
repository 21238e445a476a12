// The WebAssembly build in Node: the API, syncline's capture and merge, and
// batches exchanged both ways with the native extension (build/syncline.so
// in the sqlite3 shell), reals spelled the same by both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadSqlite, SqliteError } from '../index.mjs';

const sqlite = await loadSqlite();
const nativeExtension = process.env.SYNCLINE_EXTENSION;

function notesDb() {
  const db = sqlite.open(':memory:');
  db.exec('CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, score REAL, data BLOB)');
  db.track('notes');
  return db;
}

test('the module is SQLite 3.53.2 with syncline registered', () => {
  assert.equal(sqlite.version, '3.53.2');
  const db = sqlite.open(':memory:');
  assert.match(db.nodeId(), /^[0-9a-f-]{36}$/);
  db.close();
});

test('values bind and read back as they were', () => {
  const db = sqlite.open(':memory:');
  db.exec('CREATE TABLE t(i INTEGER, big INTEGER, r REAL, s TEXT, b BLOB, n)');
  const blob = new Uint8Array([0, 1, 254, 255]);
  db.exec('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)', [42, 2n ** 62n, 0.1, 'naïve ✓', blob, null]);
  const row = db.query('SELECT * FROM t')[0];
  assert.deepEqual(row, { i: 42, big: 2n ** 62n, r: 0.1, s: 'naïve ✓', b: blob, n: null });
  db.exec('INSERT INTO t(i, s) VALUES (:i, :s)', { i: 7, s: 'named' });
  assert.equal(db.value('SELECT s FROM t WHERE i = ?', [7]), 'named');
  db.close();
});

test('a transaction rolls back when its function throws', () => {
  const db = notesDb();
  assert.throws(() => db.transaction(() => {
    db.exec("INSERT INTO notes(id, title) VALUES (1, 'gone')");
    throw new Error('the app changed its mind');
  }), /changed its mind/);
  assert.equal(db.value('SELECT count(*) FROM notes'), 0);
  assert.equal(db.value('SELECT count(*) FROM syncline_rows WHERE tid > 0'), 0);
  db.close();
});

test('errors are SqliteErrors with SQLite\'s message', () => {
  const db = sqlite.open(':memory:');
  assert.throws(() => db.exec('SELEC 1'), (error) => error instanceof SqliteError && /syntax error/.test(error.message));
  assert.throws(() => db.applyPush('{"format": 1'), /syncline_apply_push: batch: malformed JSON/);
  db.close();
});

test('two databases sync both ways and converge', () => {
  const laptop = notesDb();
  const phone = notesDb();
  assert.notEqual(laptop.nodeId(), phone.nodeId());
  laptop.exec("INSERT INTO notes(id, title, score) VALUES (1, 'groceries', 0.5), (2, 'plans', 2.25)");
  assert.equal(phone.applyPush(laptop.pullSince()).applied, 2);
  phone.exec("UPDATE notes SET title = 'groceries and milk' WHERE id = 1");
  phone.exec('DELETE FROM notes WHERE id = 2');
  laptop.applyPush(phone.pullSince(null, 1000, { origin: 'local' }));
  const rows = (db) => db.query('SELECT id, title, score FROM notes ORDER BY id');
  assert.deepEqual(rows(laptop), [{ id: 1, title: 'groceries and milk', score: 0.5 }]);
  assert.deepEqual(rows(laptop), rows(phone));
  laptop.close();
  phone.close();
});

// The "row" objects of a batch, as the text that carried them (values nest
// one level: {"real": "1.0e+300"}).
const rowTexts = (batch) => (batch.match(/"row":\{(?:[^{}]|\{[^{}]*\})*\}/g) ?? []).sort();

test('batches cross between the WebAssembly and the native build, reals spelled alike',
  { skip: nativeExtension === undefined && 'SYNCLINE_EXTENSION is not set' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncline-wasm-'));
    try {
      const file = join(dir, 'native.db');
      const native = (sql) => execFileSync('sqlite3', ['-batch', '-bail', file],
        { input: `.load ${nativeExtension}\n${sql}\n`, encoding: 'utf8' });
      native(`CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, score REAL, data BLOB);
              SELECT syncline_track('notes');
              INSERT INTO notes(id, title, score) VALUES (1, 'a', 0.1), (2, 'b', 1e300), (3, 'c', 4.9e-324),
                (4, 'd', 123456789012345680000.0), (5, 'e', -2.5e-7), (6, 'f', 100.0);`);
      const fromNative = native('SELECT syncline_pull_since(NULL, 1000);').trim();
      const db = notesDb();
      assert.equal(db.applyPush(fromNative).applied, 6);
      const fromWasm = db.pullSince();
      assert.deepEqual(rowTexts(fromWasm), rowTexts(fromNative));
      assert.ok(rowTexts(fromWasm).some((row) => row.includes('"score":{"real":"1.0e+300"}')), rowTexts(fromWasm).join('\n'));

      db.exec("INSERT INTO notes(id, title, score) VALUES (7, 'from wasm', 0.30000000000000004)");
      const back = db.pullSince(null, 1000, { origin: 'local' });
      const summary = native(`SELECT syncline_apply_push('${back.replaceAll("'", "''")}');`);
      assert.match(summary, /"applied":1/);
      assert.equal(native('SELECT score FROM notes WHERE id = 7;').trim(), '0.3');
      assert.equal(native("SELECT printf('%!.17g', score) FROM notes WHERE id = 7;").trim(), '0.30000000000000004');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('idle() waits for the open transaction; onChange hears committed writes, a merge\'s too', async () => {
  const db = notesDb();
  let heard = 0;
  const remove = db.onChange(() => heard++);
  await db.idle(); // nothing open: at once

  db.exec('BEGIN IMMEDIATE');
  db.exec("INSERT INTO notes(title) VALUES ('inside')");
  let waited = false;
  const idle = db.idle().then(() => (waited = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(waited, false, 'idle() resolved inside a transaction');
  assert.equal(heard, 0, 'a change was announced before its commit');
  db.exec('COMMIT');
  await idle;
  await Promise.resolve();
  assert.equal(heard, 1);

  // A failed statement that ends the transaction lets the waiters go too.
  db.exec('BEGIN');
  const afterRollback = db.idle();
  db.exec('ROLLBACK');
  await afterRollback;

  // Rows a pull merges are changes like the app's own.
  const other = notesDb();
  other.exec("INSERT INTO notes(title) VALUES ('from elsewhere')");
  db.applyPush(other.pullSince());
  await Promise.resolve();
  assert.equal(heard, 2);
  db.exec('SELECT 1'); // no change, no call
  await Promise.resolve();
  assert.equal(heard, 2);
  remove();
  db.exec("INSERT INTO notes(title) VALUES ('unheard')");
  await Promise.resolve();
  assert.equal(heard, 2);
  other.close();
  db.close();
});
