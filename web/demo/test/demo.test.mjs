// The notes demo in two headless Chromium profiles, each a device behind a
// proxy of its own that the test can cut: both devices edit, one of them
// offline; when its network is back, the devices and the server converge.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { launchChromium } from '../../sqlite/test/cdp.mjs';
import { startDemo } from '../server.mjs';

const pg = createRequire(new URL('../../server/index.js', import.meta.url))('pg');
const database = 'syncline_demo_test';
let pool;
let demo;
const devices = [];

// A proxy to the demo server that can be cut (every connection dropped, no
// new ones) and restored on the same port: the device's network.
async function networkTo(target) {
  const { port: targetPort } = new URL(target);
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, path: req.url, method: req.method,
      headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}/`,
    cut: () => new Promise((resolve) => {
      server.close(resolve);
      for (const socket of sockets) socket.destroy();
    }),
    restore: () => new Promise((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

async function openDevice() {
  const network = await networkTo(demo.url);
  const browser = await launchChromium();
  await browser.session.open(network.url);
  const device = {
    network,
    browser,
    ask: (op, args = {}) => browser.session.evaluate(`window.notes.ask(${JSON.stringify(op)}, ${JSON.stringify(args)})`),
    notes: async () => (await device.ask('list')).map((n) => `${n.id}:${n.title}:${n.body}`).sort(),
    status: () => browser.session.evaluate('document.body.dataset.sync ?? ""'),
  };
  devices.push(device);
  return device;
}

async function until(what, condition, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const serverNotes = async () =>
  (await pool.query('SELECT id, title, body FROM notes')).rows.map((n) => `${n.id}:${n.title}:${n.body}`).sort();

before(async () => {
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  pool = new pg.Pool({ database, max: 6 });
  demo = await startDemo({ pool });
});

after(async () => {
  for (const device of devices) {
    await device.browser.close();
    await device.network.close();
  }
  await demo?.close();
  await pool?.end();
});

test('two browser devices edit, one offline, and converge with the server', async () => {
  await pool.query("INSERT INTO notes VALUES ('n1', 'Shopping', 'eggs')");
  const laptop = await openDevice();
  const phone = await openDevice();
  for (const device of [laptop, phone])
    await until('the clone', async () => (await device.notes()).includes('n1:Shopping:eggs'));

  await phone.network.cut();
  await laptop.ask('update', { note: { id: 'n1', title: 'Shopping list' } });
  await until('the laptop\'s edit on the server', async () => (await serverNotes()).includes('n1:Shopping list:eggs'));

  // Offline: the phone keeps working on its own copy.
  await phone.ask('update', { note: { id: 'n1', body: 'eggs, milk' } });
  await phone.ask('add', { note: { id: 'n2', title: 'Made offline', body: 'on the phone' } });
  await until('the phone to notice', async () => (await phone.status()).startsWith('offline'));
  assert.deepEqual(await phone.notes(), ['n1:Shopping:eggs, milk', 'n2:Made offline:on the phone']);
  assert.equal((await serverNotes()).some((n) => n.startsWith('n2:')), false);

  // Back online: notes merge per column, so the laptop's title and the
  // phone's body are both kept; the phone's new note arrives everywhere.
  await phone.network.restore();
  const expected = ['n1:Shopping list:eggs, milk', 'n2:Made offline:on the phone'];
  await until('the server', async () => JSON.stringify(await serverNotes()) === JSON.stringify(expected));
  await until('the laptop', async () => JSON.stringify(await laptop.notes()) === JSON.stringify(expected));
  await until('the phone', async () => JSON.stringify(await phone.notes()) === JSON.stringify(expected));
});

test('a device\'s second tab shares its database and its sync, and takes both over when the first closes', async () => {
  const [laptop] = devices;
  const tab = await laptop.browser.newTab(laptop.network.url);
  const ask = (op, args = {}) => tab.evaluate(`window.notes.ask(${JSON.stringify(op)}, ${JSON.stringify(args)})`);
  const rendered = () => tab.evaluate("[...document.querySelectorAll('.note')].map((n) => n.dataset.id).sort().join()");
  assert.equal(await ask('leads'), false);
  assert.equal(await ask('nodeId'), await laptop.ask('nodeId'));

  // An edit in the second tab goes through the first tab's worker, which
  // pushes it; the server's change comes back and both tabs render it.
  await ask('add', { note: { id: 'n3', title: 'From the second tab', body: '' } });
  await until('the second tab\'s note on the server', async () => (await serverNotes()).includes('n3:From the second tab:'));
  await pool.query("INSERT INTO notes VALUES ('n4', 'From the server', '')");
  await until('both tabs to render the server\'s note', async () =>
    (await rendered()) === 'n1,n2,n3,n4' && (await laptop.ask('list')).length === 4);

  // The first tab closes: the second opens the database and syncs.
  await laptop.browser.closeTab(laptop.browser.session);
  await until('the second tab to lead', () => ask('leads'));
  await ask('update', { note: { id: 'n3', body: 'edited after the first tab closed' } });
  await until('that edit on the server', async () =>
    (await serverNotes()).includes('n3:From the second tab:edited after the first tab closed'));
  await pool.query("UPDATE notes SET body = 'the server again' WHERE id = 'n4'");
  await until('the server\'s edit in the second tab', async () =>
    (await ask('list')).some((note) => note.id === 'n4' && note.body === 'the server again'));
});
