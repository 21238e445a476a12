// One persistent database for all of an app's tabs (docs/web.md, "Several
// tabs"). An OPFS sync access handle is exclusive, so one worker at a time
// can open the file. Each tab's worker calls openShared: the worker that
// holds the Web Lock named after the database opens it and leads; the others
// send it their statements over a BroadcastChannel of the same name. When
// the leading tab closes, the browser releases its lock, and the next worker
// waiting for it opens the file and leads.
//
// The leader runs every statement, its own and the others', one request at
// a time and only while no transaction is open (Database.idle): a write
// never joins a sync client's pull transaction, so a failed pull's rollback
// cannot take it along.
import { SqliteError } from './index.mjs';

const SQLITE_BUSY = 5;
const SQLITE_MISUSE = 21;

export class SharedDatabase {
  #sqlite;
  #filename;
  #channel;
  #id = crypto.randomUUID();
  #leader = null; // the leading worker's id; this one's while it leads
  #db = null; // the Database, while this worker leads
  #onLeader;
  #cleanup = null; // what onLeader returned
  #release = null; // ends the lock's callback, which gives the lock up
  #abort = new AbortController();
  #work = Promise.resolve(); // the leader's requests, one after another
  #nextRequest = 1;
  #sent = new Map(); // request id -> { resolve, reject, leader }
  #waiting = []; // requests made while no leader is known
  #listeners = new Set();
  #closed = false;
  #ready;
  #readyResolve;
  #readyReject;

  constructor(sqlite, filename, onLeader) {
    this.#sqlite = sqlite;
    this.#filename = filename;
    this.#onLeader = onLeader;
    this.#channel = new BroadcastChannel(`syncline:${filename}`);
    this.#channel.onmessage = ({ data }) => this.#receive(data);
    this.#ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
  }

  /** Starts: asks who leads, and queues for the lock. Resolves once a leader is known. */
  async start() {
    if (typeof navigator === 'undefined' || !navigator.locks)
      throw new SqliteError('no Web Locks here: openShared needs a browser\'s Web Worker', 14);
    navigator.locks.request(`syncline:${this.#filename}`, { signal: this.#abort.signal }, () => this.#lead())
      .catch((error) => {
        if (error.name !== 'AbortError') this.#readyReject(error);
      });
    this.#channel.postMessage({ kind: 'hello', from: this.#id });
    await this.#ready;
    return this;
  }

  /** Whether this worker holds the database now. */
  get isLeader() {
    return this.#db !== null;
  }

  exec(sql, params = undefined) {
    return this.#request({ op: 'exec', sql, params });
  }
  query(sql, params = undefined) {
    return this.#request({ op: 'query', sql, params });
  }
  value(sql, params = undefined) {
    return this.#request({ op: 'value', sql, params });
  }
  /** Runs the statements in one transaction: all or none. Each one's { changes }. */
  batch(statements) {
    return this.#request({ op: 'batch', statements });
  }

  /** Calls listener after each commit that changed rows, in whichever tab it was. */
  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Leaves: a leader answers what it accepted, runs onLeader's cleanup,
   * closes the file and gives the lock to the next tab.
   */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    const closed = new SqliteError(`${this.#filename}: the shared database is closed`, SQLITE_MISUSE);
    for (const { reject } of this.#waiting.splice(0)) reject(closed);
    for (const [id, { reject }] of this.#sent) {
      this.#sent.delete(id);
      reject(closed);
    }
    if (this.#db !== null) {
      await this.#work;
      try {
        await this.#cleanup?.();
      } finally {
        this.#db.close();
        this.#db = null;
        this.#channel.postMessage({ kind: 'leaving', from: this.#id });
        this.#release();
      }
    }
    this.#channel.close();
  }

  // The lock is this worker's: open the file, announce it, serve until close.
  async #lead() {
    if (this.#closed) return;
    let db;
    try {
      db = await this.#openPersistent();
    } catch (error) {
      for (const { reject } of this.#waiting.splice(0)) reject(error);
      this.#readyReject(error);
      return; // gives the lock up
    }
    this.#db = db;
    this.#leader = this.#id;
    db.onChange(() => {
      this.#channel.postMessage({ kind: 'changed', from: this.#id });
      this.#changed();
    });
    this.#orphanSent();
    this.#channel.postMessage({ kind: 'leader', from: this.#id });
    for (const request of this.#waiting.splice(0)) this.#dispatch(request);
    this.#readyResolve();
    const released = new Promise((resolve) => (this.#release = resolve));
    try {
      const cleanup = await this.#onLeader?.(db);
      if (typeof cleanup === 'function') this.#cleanup = cleanup;
    } catch (error) {
      console.error(`syncline: onLeader for ${this.#filename} failed`, error);
    }
    await released;
  }

  // The tab that led before may still be closing: its handles go with it.
  // Tries for about 15 s before it gives up, then gives the lock up.
  async #openPersistent() {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#sqlite.openPersistent(this.#filename);
      } catch (error) {
        if (error.code !== SQLITE_BUSY || attempt === 20) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));
    }
  }

  #request(request) {
    if (this.#closed)
      return Promise.reject(new SqliteError(`${this.#filename}: the shared database is closed`, SQLITE_MISUSE));
    return new Promise((resolve, reject) => this.#dispatch({ ...request, resolve, reject }));
  }

  // Runs a request here while leading, sends it to the leader otherwise, or
  // keeps it until a leader is known.
  #dispatch(request) {
    const { resolve, reject, ...message } = request;
    if (this.#db !== null) {
      this.#run(message).then(resolve, reject);
    } else if (this.#leader === null) {
      this.#waiting.push(request);
    } else {
      const id = this.#nextRequest++;
      this.#sent.set(id, { resolve, reject, leader: this.#leader, request });
      this.#channel.postMessage({ kind: 'request', from: this.#id, to: this.#leader, id, request: message });
    }
  }

  // The leader's queue: each request once the last is done and no
  // transaction is open.
  #run(message) {
    const result = this.#work.then(async () => {
      const db = this.#db;
      if (db === null) throw new SqliteError(`${this.#filename}: this tab no longer holds the database`, SQLITE_BUSY);
      // A transaction may begin again between idle()'s resolution and here.
      while (db.inTransaction) await db.idle();
      return execute(db, message);
    });
    this.#work = result.catch(() => {});
    return result;
  }

  #receive(message) {
    switch (message.kind) {
      case 'hello':
        if (this.#db !== null) this.#channel.postMessage({ kind: 'leader', from: this.#id });
        break;
      case 'leader':
        if (message.from === this.#leader) break;
        this.#leader = message.from;
        this.#orphanSent();
        for (const request of this.#waiting.splice(0)) this.#dispatch(request);
        this.#readyResolve();
        break;
      case 'leaving':
        if (message.from === this.#leader) this.#leader = null;
        this.#orphanSent();
        break;
      case 'request':
        if (message.to !== this.#id) break;
        this.#run(message.request).then(
          (result) => this.#channel.postMessage({ kind: 'response', to: message.from, id: message.id, result }),
          (error) => this.#channel.postMessage({
            kind: 'response', to: message.from, id: message.id, error: { message: error.message, code: error.code },
          }));
        break;
      case 'response': {
        const sent = message.to === this.#id && this.#sent.get(message.id);
        if (!sent) break;
        this.#sent.delete(message.id);
        if (message.error) sent.reject(new SqliteError(message.error.message, message.error.code));
        else sent.resolve(message.result);
        break;
      }
      case 'changed':
        this.#changed();
        break;
    }
  }

  // Requests sent to a leader that is gone. Whether a write among them ran
  // cannot be known, so none is sent again: each fails, saying so.
  #orphanSent() {
    for (const [id, sent] of this.#sent) {
      if (sent.leader === this.#leader) continue;
      this.#sent.delete(id);
      sent.reject(new SqliteError(`${this.#filename}: the tab that held the database closed before answering; ` +
        'the statement may or may not have run', SQLITE_BUSY));
    }
  }

  #changed() {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        console.error('syncline: an onChange listener failed', error);
      }
    }
  }
}

function execute(db, { op, sql, params, statements }) {
  switch (op) {
    case 'exec':
      return db.exec(sql, params);
    case 'query':
      return db.query(sql, params);
    case 'value':
      return db.value(sql, params);
    case 'batch':
      if (!Array.isArray(statements)) throw new SqliteError('batch takes an array of { sql, params }', SQLITE_MISUSE);
      return db.transaction(() => statements.map(({ sql: text, params: values }) => db.exec(text, values)));
    default:
      throw new SqliteError(`unknown request ${op}`, SQLITE_MISUSE);
  }
}
