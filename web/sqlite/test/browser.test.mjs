// The WebAssembly build in a real browser (headless Chromium over the
// DevTools protocol, test/cdp.mjs): a Web Worker keeps a tracked database in
// the Origin Private File System, it survives a reload with its node id and
// metadata, a second worker cannot open it while the first holds it, and
// its batch applies in Node's copy of the module.
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
  pageUrl = `http://127.0.0.1:${server.address().port}/test/page/index.html`;
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
