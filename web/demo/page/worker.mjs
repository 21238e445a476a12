// The device: the notes database in OPFS, shared by the app's tabs
// (openShared: one tab's worker holds the file and runs the sync client, the
// others send it their statements). Answers the page's requests; tells it
// the sync state and when the notes changed.
import { loadSqlite } from '/sqlite/index.mjs';
import { SyncClient } from '/client/index.mjs';

// Between this app's tabs: the sync state, from the tab that syncs, and
// "wrote", to it, so that an edit in any tab is pushed at once.
const tabs = new BroadcastChannel('notes-demo');
let syncNow = () => tabs.postMessage({ wrote: true });
tabs.onmessage = ({ data }) => {
  if (data.status !== undefined) self.postMessage({ status: data.status });
  if (data.wrote) syncNow();
};
const tellStatus = (status) => {
  self.postMessage({ status });
  tabs.postMessage({ status });
};

// In the tab that holds the database: a new device clones first (retrying
// until the server answers); then it keeps syncing, offline or not, until
// the tab closes and another one takes over.
function startSync(db) {
  const client = new SyncClient({ db, url: `${self.location.origin}/sync` });
  const stop = new AbortController();
  syncNow = () => client.syncNow?.();
  const cloned = () => db.value("SELECT count(*) FROM sqlite_schema WHERE name = 'syncline_client'") === 1 &&
    db.value("SELECT count(*) FROM syncline_client WHERE key = 'server_node'") === 1;
  const running = (async () => {
    for (let delay = 500; !cloned() && !stop.signal.aborted; delay = Math.min(delay * 2, 5000)) {
      try {
        await client.clone();
      } catch (error) {
        tellStatus(`offline: ${error.message}`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    await client.watch({ intervalMs: 5000, maxBackoffMs: 2000, signal: stop.signal,
      onStatus: ({ state }) => tellStatus(state) });
  })();
  return async () => {
    stop.abort();
    await running;
  };
}

const db = loadSqlite().then((sqlite) => sqlite.openShared('notes.db', { onLeader: startSync }));
db.then((shared) => shared.onChange(() => self.postMessage({ changed: true })));

// Before the first clone brings the table, there are no notes.
const hasNotes = async (shared) =>
  (await shared.value("SELECT count(*) FROM sqlite_schema WHERE name = 'notes'")) === 1;

const ops = {
  list: async (shared) => ((await hasNotes(shared))
    ? shared.query('SELECT id, title, body FROM notes ORDER BY rowid') : []),
  add: (shared, { note }) =>
    shared.exec('INSERT INTO notes(id, title, body) VALUES (?, ?, ?)', [note.id, note.title, note.body]),
  update: (shared, { note }) => shared.batch(['title', 'body'].filter((field) => note[field] !== undefined)
    .map((field) => ({ sql: `UPDATE notes SET ${field} = ? WHERE id = ?`, params: [note[field], note.id] }))),
  remove: (shared, { note }) => shared.exec('DELETE FROM notes WHERE id = ?', [note.id]),
  nodeId: (shared) => shared.value('SELECT syncline_node_id()'),
  leads: (shared) => shared.isLeader,
};

self.onmessage = async ({ data }) => {
  try {
    const result = await ops[data.op](await db, data);
    if (data.op === 'add' || data.op === 'update' || data.op === 'remove') syncNow();
    self.postMessage({ id: data.id, result });
  } catch (error) {
    self.postMessage({ id: data.id, error: error.message });
  }
};
