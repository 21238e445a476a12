// Steps the browser test runs in a dedicated worker, where OPFS sync access
// handles exist. Each message names a step; the answer is plain data, or
// {error} with the SqliteError's message and code.
import { loadSqlite } from '../../index.mjs';

const sqlite = loadSqlite();
let db = null;

const steps = {
  // Opens notes.db in OPFS, creating and tracking its table the first time,
  // and adds a row for this visit.
  async visit({ file, note }) {
    db = await (await sqlite).openPersistent(file);
    db.exec('CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)');
    db.track('notes'); // a no-op once tracked
    db.exec('INSERT INTO notes(body) VALUES (?)', [note]);
    return {
      node: db.nodeId(),
      notes: db.query('SELECT body FROM notes ORDER BY id').map((row) => row.body),
      captured: db.value('SELECT count(*) FROM syncline_rows WHERE tid > 0'),
      batch: db.pullSince(),
    };
  },
  async open({ file }) {
    db = await (await sqlite).openPersistent(file);
    return { open: true };
  },
  async close() {
    db?.close();
    db = null;
    return { closed: true };
  },
};

self.onmessage = async (event) => {
  try {
    self.postMessage(await steps[event.data.step](event.data));
  } catch (error) {
    self.postMessage({ error: error.message, code: error.code });
  }
};
