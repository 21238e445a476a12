// `make bench`, the WebAssembly build (web/sqlite, in Node, databases in
// memory): capture, pull and apply against the same work without syncline,
// in the same module and run, interleaved. One JSON line a metric on stdout,
// as bench/run.sh's other benchmarks write them; progress on stderr.
//
//   node bench/wasm.mjs --rows 100000 --runs 5
import { loadSqlite } from '../web/sqlite/index.mjs';

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean)
  .map((pair) => pair.trim().split(/\s+/)));
const rows = Number(args.rows ?? 100000);
const runs = Number(args.runs ?? 5);
const sqlite = await loadSqlite();

const TABLE = 'CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, s TEXT, r REAL, b BLOB)';
// The native benchmark's row shape: a random 32-hex-digit key, an integer,
// ~40 characters of text, a real, a 32-byte blob.
const INSERT = `WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < ${rows})
  INSERT INTO items SELECT lower(hex(randomblob(16))), k, 'text value for row ' || k || ', lorem ipsum',
  k * 0.5 + 0.25, randomblob(32) FROM i`;

function items(tracked) {
  const db = sqlite.open(':memory:');
  db.exec(TABLE);
  if (tracked) db.track('items');
  return db;
}

const time = (fn) => {
  const start = performance.now();
  fn();
  return performance.now() - start;
};
const check = (ok, what) => {
  if (!ok) throw new Error(`bench/wasm.mjs: ${what}`);
};
const emit = (name, unit, samples, baseline) =>
  console.log(JSON.stringify({ name, unit, samples, baseline_samples: baseline }));
const progress = (text) => console.error(`  wasm ${text}`);

// syncline's pages of 1000, each asked from the last one's cursor.
function pullAll(db) {
  const pages = [];
  for (let cursor = null, more = true; more;) {
    const page = db.pullSince(cursor, 1000);
    pages.push(page);
    ({ cursor, has_more: more } = JSON.parse(page));
  }
  return pages;
}
// The baseline: the same rows as JSON pages of 1000 by key.
function jsonPages(db) {
  const pages = [];
  for (let last = '', count = 1000; count === 1000;) {
    const [page] = db.query(`SELECT json_group_array(json_object('id', id, 'n', n, 's', s, 'r', r, 'b', hex(b)))
      AS page, max(id) AS last, count(*) AS count FROM (SELECT * FROM items WHERE id > ? ORDER BY id LIMIT 1000)`,
    [last]);
    pages.push(page.page);
    ({ last, count } = page);
  }
  return pages;
}
const UPSERT = `INSERT INTO items SELECT value->>'id', value->>'n', value->>'s', value->>'r', unhex(value->>'b')
  FROM json_each(?) WHERE true ON CONFLICT(id) DO UPDATE SET n = excluded.n, s = excluded.s, r = excluded.r,
  b = excluded.b`;

const ms = { insert: [[], []], update: [[], []] };
const rates = { pull: [[], []], apply: [[], []] };
for (let run = 0; run < runs; run++) {
  // Tracked (0) and plain (1) in turn, the first one alternating by run.
  for (const tracked of run % 2 ? [false, true] : [true, false]) {
    const who = tracked ? 0 : 1;
    const db = items(tracked);
    ms.insert[who].push(time(() => db.exec(INSERT)));
    ms.update[who].push(time(() => db.exec('UPDATE items SET n = n + 1')));
    check(db.value('SELECT count(*) FROM items') === rows, 'wrong row count');
    if (tracked) check(db.value('SELECT count(*) FROM syncline_rows WHERE tid > 0') === rows, 'rows not captured');

    let pages;
    const pulled = time(() => (pages = tracked ? pullAll(db) : jsonPages(db)));
    rates.pull[who].push(rows / (pulled / 1000));
    db.close();

    const target = items(tracked);
    const applied = time(() => {
      for (const page of pages) {
        if (tracked) target.applyPush(page);
        else target.transaction(() => target.exec(UPSERT, [page]));
      }
    });
    check(target.value('SELECT count(*) FROM items') === rows, 'apply: wrong row count');
    rates.apply[who].push(rows / (applied / 1000));
    target.close();
  }
  const last = (pair) => pair.map((samples) => Math.round(samples.at(-1))).join(' / ');
  progress(`run ${run + 1}: insert ${last(ms.insert)} ms, update ${last(ms.update)} ms, pull ${last(rates.pull)}, ` +
    `apply ${last(rates.apply)} changes/s (syncline / plain)`);
}
emit('wasm.insert_1_txn', 'ms', ...ms.insert);
emit('wasm.update_all', 'ms', ...ms.update);
emit('wasm.pull', 'changes/s', ...rates.pull);
emit('wasm.apply', 'changes/s', ...rates.apply);
