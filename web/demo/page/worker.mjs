// The device: the notes database in OPFS, and the sync client watching the
// server. Answers the page's requests; tells it the sync state.
import { loadSqlite } from '/sqlite/index.mjs';
import { SyncClient } from '/client/index.mjs';

// Requests that come before the database is open wait for it.
const ready = (async () => {
  const sqlite = await loadSqlite();
  const db = await sqlite.openPersistent('notes.db');
  return { db, client: new SyncClient({ db, url: `${self.location.origin}/sync` }) };
})();

const hasTable = (db, name) => db.value('SELECT count(*) FROM sqlite_schema WHERE name = ?', [name]) === 1;

const ops = {
  // Before the first clone brings the table, there are no notes.
  list: (db) => (hasTable(db, 'notes') ? db.query('SELECT id, title, body FROM notes ORDER BY rowid') : []),
  add: (db, { note }) => db.exec('INSERT INTO notes(id, title, body) VALUES (?, ?, ?)', [note.id, note.title, note.body]),
  update: (db, { note }) => {
    for (const field of ['title', 'body'])
      if (note[field] !== undefined) db.exec(`UPDATE notes SET ${field} = ? WHERE id = ?`, [note[field], note.id]);
  },
  remove: (db, { note }) => db.exec('DELETE FROM notes WHERE id = ?', [note.id]),
  nodeId: (db) => db.nodeId(),
};

self.onmessage = async ({ data }) => {
  try {
    const { db, client } = await ready;
    const result = ops[data.op](db, data);
    if (data.op === 'add' || data.op === 'update' || data.op === 'remove') client.syncNow?.();
    self.postMessage({ id: data.id, result });
  } catch (error) {
    self.postMessage({ id: data.id, error: error.message });
  }
};

// A new device clones first (retrying until the server answers); then it
// keeps syncing, offline or not.
const { db, client } = await ready;
const cloned = () => hasTable(db, 'syncline_client') &&
  db.value("SELECT count(*) FROM syncline_client WHERE key = 'server_node'") === 1;
for (let delay = 500; !cloned(); delay = Math.min(delay * 2, 5000)) {
  try {
    await client.clone();
  } catch (error) {
    self.postMessage({ status: `offline: ${error.message}` });
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
client.watch({ intervalMs: 5000, maxBackoffMs: 2000, onStatus: ({ state }) => self.postMessage({ status: state }) });
