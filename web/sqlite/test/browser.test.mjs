// The WebAssembly build in a real browser (headless Chromium over the
// DevTools protocol, test/cdp.mjs): a Web Worker keeps a tracked database in
// the Origin Private File System, it survives a reload with its node id and
// metadata, a second worker cannot open it while the first holds it, and
// its batch applies in Node's copy of the module. Several tabs share one
// database through openShared: one leads, the others' statements go to it,
// and when its tab closes the next one leads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchChromium } from './cdp.mjs';
import { loadSqlite } from '../index.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
let server;
let browser;
let pageUrl;
let origin;

before(async () => {
  // Serves web/sqlite/ on 127.0.0.1 (a secure context, as OPFS needs).
  server = createServer(async (request, response) => {
    const path = normalize(join(root, decodeURIComponent(new URL(request.url, 'http://x').pathname)));
    if (!path.startsWith(root)) return response.writeHead(403).end();
    try {
      const body = await readFile(path);
      response.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  pageUrl = `${origin}/test/page/index.html`;
  browser = await launchChromium();
  await browser.session.open(pageUrl);
});

after(async () => {
  server?.close();
  await browser?.close();
});

const ask = (worker, message) => browser.session.evaluate(`window.ask(${JSON.stringify(worker)}, ${JSON.stringify(message)})`);

test('a tracked database in OPFS survives a reload, node id and metadata included', async () => {
  const first = await ask('a', { step: 'visit', file: 'notes.db', note: 'first visit' });
  assert.equal(first.error, undefined, first.error);
  assert.deepEqual(first.notes, ['first visit']);
  assert.equal(first.captured, 1);
  assert.match(first.node, /^[0-9a-f-]{36}$/);

  await browser.session.open(pageUrl); // the worker goes with the page
  const second = await ask('a', { step: 'visit', file: 'notes.db', note: 'second visit' });
  assert.deepEqual(second.notes, ['first visit', 'second visit']);
  assert.equal(second.node, first.node);
  assert.equal(second.captured, 2);

  // The browser's batch is a batch like any other.
  const db = (await loadSqlite()).open(':memory:');
  db.exec('CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)');
  db.track('notes');
  assert.equal(db.applyPush(second.batch).applied, 2);
  assert.deepEqual(db.query('SELECT body FROM notes ORDER BY id').map((row) => row.body), second.notes);
  db.close();
  await ask('a', { step: 'close' });
});

test('one worker at a time holds a database', async () => {
  assert.deepEqual(await ask('a', { step: 'open', file: 'shared.db' }), { open: true });
  const refused = await ask('b', { step: 'open', file: 'shared.db' });
  assert.equal(refused.code, 5); // SQLITE_BUSY
  assert.match(refused.error, /shared\.db is open in another tab or worker/);
  await ask('a', { step: 'close' });
  assert.deepEqual(await ask('b', { step: 'open', file: 'shared.db' }), { open: true });
  await ask('b', { step: 'close' });
});

// In a tab: window.call(op, ...args) in its worker (test/page/tab_worker.mjs).
const call = async (tab, op, ...args) => {
  const answer = await tab.evaluate(`window.call(${JSON.stringify(op)}, ...${JSON.stringify(args)})`);
  if (answer.error !== undefined) throw Object.assign(new Error(answer.error), { code: answer.code });
  return answer.result;
};
const bodies = async (tab) => (await call(tab, 'query', 'SELECT body FROM notes ORDER BY id')).map((row) => row.body);
const eventually = async (probe, what) => {
  for (let i = 0; i < 100; i++) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never: ${what}`);
};

test('several tabs share one database: one leads, the others go through it, the next leads when it closes', async () => {
  const tabUrl = `${origin}/test/page/tab.html`;
  const first = await browser.newTab(tabUrl);
  const second = await browser.newTab(tabUrl);
  // The first tab leads once its worker holds the Web Lock (it may still be
  // asking when the page answers); the second never does while it lives.
  await eventually(async () => (await call(first, 'isLeader')) === true, 'the first tab leads');
  assert.equal(await call(second, 'isLeader'), false);

  // A follower's statements run in the leader's database; both hear of the change.
  await call(second, 'exec', 'CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)');
  await call(second, 'exec', 'INSERT INTO notes(body) VALUES (?)', ['from the second tab']);
  assert.deepEqual(await bodies(first), ['from the second tab']);
  await eventually(async () => (await call(first, 'changes')) >= 1 && (await call(second, 'changes')) >= 1,
    'both tabs heard of the insert');

  // A batch is all or none; the leader's error comes back with its code.
  await assert.rejects(call(second, 'batch', [
    { sql: 'INSERT INTO notes(body) VALUES (?)', params: ['half'] },
    { sql: 'INSERT INTO notes(id, body) VALUES (1, ?)', params: ['duplicate'] },
  ]), (error) => error.code === 1555 && /UNIQUE constraint failed: notes.id/.test(error.message));
  assert.deepEqual(await bodies(second), ['from the second tab']);

  // A write made while the leader holds a transaction open (a sync client's
  // pull between pages) waits for it to end, so its rollback leaves the write.
  await call(first, 'begin', "INSERT INTO notes(body) VALUES ('a pull page, rolled back')");
  await second.evaluate(`window.start('write', 'exec', "INSERT INTO notes(body) VALUES ('written during the pull')")`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await second.evaluate("window.result('write')")).done, false, 'the write joined the open transaction');
  await call(first, 'rollback');
  await eventually(async () => (await second.evaluate("window.result('write')")).done, 'the write ran');
  assert.deepEqual(await bodies(second), ['from the second tab', 'written during the pull']);

  // A request the leader had not answered when its tab closed fails, saying
  // it may or may not have run; the next tab leads, with every row.
  await call(first, 'begin', 'SELECT 1');
  await second.evaluate(`window.start('orphan', 'exec', "INSERT INTO notes(body) VALUES ('orphaned')")`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await browser.closeTab(first);
  await eventually(async () => (await second.evaluate("window.result('orphan')")).done, 'the orphan was answered');
  const orphan = (await second.evaluate("window.result('orphan')")).answer;
  assert.equal(orphan.code, 5);
  assert.match(orphan.error, /closed before answering; the statement may or may not have run/);
  await eventually(() => call(second, 'isLeader'), 'the second tab leads');
  assert.deepEqual(await bodies(second), ['from the second tab', 'written during the pull']);

  const third = await browser.newTab(tabUrl);
  assert.equal(await call(third, 'isLeader'), false);
  await call(third, 'exec', 'INSERT INTO notes(body) VALUES (?)', ['from the third tab']);
  assert.deepEqual(await bodies(second), ['from the second tab', 'written during the pull', 'from the third tab']);
  await call(third, 'close');
  await call(second, 'close');
  await browser.closeTab(third);
  await browser.closeTab(second);
});
