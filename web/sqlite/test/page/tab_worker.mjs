// A tab's worker in the several-tabs test: it joins tabs.db with
// openShared and runs the test's calls on it. `begin` and `rollback` use the
// leader's own Database to hold a transaction open, as a sync client's pull
// does across its network waits.
import { loadSqlite } from '../../index.mjs';

let changes = 0;
let leaderDb = null;
const shared = (async () => {
  const sqlite = await loadSqlite();
  const db = await sqlite.openShared('tabs.db', { onLeader: (local) => (leaderDb = local) });
  db.onChange(() => changes++);
  return db;
})();

const ops = {
  exec: (db, sql, params) => db.exec(sql, params),
  query: (db, sql, params) => db.query(sql, params),
  value: (db, sql, params) => db.value(sql, params),
  batch: (db, statements) => db.batch(statements),
  isLeader: (db) => db.isLeader,
  changes: () => changes,
  begin: (db, sql) => (leaderDb.exec('BEGIN IMMEDIATE'), leaderDb.exec(sql), true),
  rollback: () => (leaderDb.exec('ROLLBACK'), true),
  close: (db) => db.close().then(() => true),
};

self.onmessage = async ({ data }) => {
  try {
    const result = await ops[data.op](await shared, ...data.args);
    self.postMessage({ id: data.id, result });
  } catch (error) {
    self.postMessage({ id: data.id, error: error.message, code: error.code });
  }
};
