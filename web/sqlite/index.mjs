// SQLite with syncline linked in, as WebAssembly, for browsers (in a Web
// Worker) and Node (docs/web.md). A small synchronous API over SQLite's C
// functions: open, exec and query with bound parameters, transactions, and
// syncline's functions. The module is SQLite 3.53.2 with the extension
// registered for every connection (syncline_register), so tracked tables
// capture writes as with the native extension.
import createCore from './dist/sqlite-core.mjs';
import { SharedDatabase } from './shared.mjs';

export { SharedDatabase };

const SQLITE_OK = 0;
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_OPEN_READWRITE = 0x2;
const SQLITE_OPEN_CREATE = 0x4;
const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_TEXT = 3;
const SQLITE_BLOB = 4;
const SQLITE_TRANSIENT = -1; // SQLite copies what it binds

/** An SQLite error: `code` is SQLite's extended result code. */
export class SqliteError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'SqliteError';
    this.code = code;
  }
}

/**
 * Loads the WebAssembly module. `options.wasmBinary` (bytes) or
 * `options.locateFile` tell it where the .wasm file is when the bundler
 * moved it.
 */
export async function loadSqlite(options = {}) {
  // In Node the module is handed its .wasm bytes (it is built for browsers,
  // which fetch them).
  if (options.wasmBinary === undefined && options.locateFile === undefined && typeof process === 'object' &&
      process.versions?.node !== undefined) {
    const { readFile } = await import('node:fs/promises');
    options = { ...options, wasmBinary: await readFile(new URL('./dist/sqlite-core.wasm', import.meta.url)) };
  }
  const core = await createCore(options);
  let rc = core._syncline_register();
  if (rc === SQLITE_OK) rc = core._syncline_opfs_register();
  if (rc !== SQLITE_OK) throw new SqliteError(`registering syncline failed (${rc})`, rc);
  core.opfs = new OpfsFiles(core);
  return new Sqlite(core);
}

class Sqlite {
  constructor(core) {
    this.core = core;
    this.version = core.UTF8ToString(core._sqlite3_libversion());
  }

  /**
   * Opens (creating it) a database kept in the Origin Private File System,
   * which persists across page reloads. Only in a dedicated Web Worker (sync
   * access handles); one worker at a time holds a database: another tab's
   * attempt fails with SQLITE_BUSY while it is open (docs/web.md).
   */
  async openPersistent(filename) {
    if (!/^[\w.-]+$/.test(filename))
      throw new SqliteError(`a persistent database is a plain file name, not "${filename}"`, 21);
    await this.core.opfs.openFiles([filename, `${filename}-journal`]);
    try {
      const db = this.open(filename, { vfs: 'opfs' });
      db.onClose = () => this.core.opfs.closeFiles([filename, `${filename}-journal`]);
      return db;
    } catch (error) {
      this.core.opfs.closeFiles([filename, `${filename}-journal`]);
      throw error;
    }
  }

  /**
   * One persistent database for all of an app's tabs: each tab's worker
   * calls this; one of them opens the file and runs every tab's statements
   * (shared.mjs). onLeader(db) runs in the worker that holds it, with the
   * Database, to start what only one tab should run (the sync client); what
   * it returns is called when that worker closes.
   */
  openShared(filename, { onLeader = undefined } = {}) {
    return new SharedDatabase(this, filename, onLeader).start();
  }

  /** Opens (creating it) a database; ':memory:' for one in memory. */
  open(filename, { vfs = null } = {}) {
    const core = this.core;
    return withScratch(core, (scratch) => {
      const name = scratch.string(filename);
      const vfsName = vfs === null ? 0 : scratch.string(vfs);
      const out = scratch.alloc(4);
      const rc = core._sqlite3_open_v2(name, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfsName);
      const handle = core.getValue(out, 'i32');
      if (rc !== SQLITE_OK) {
        const message = handle ? core.UTF8ToString(core._sqlite3_errmsg(handle)) : `cannot open ${filename}`;
        if (handle) core._sqlite3_close_v2(handle);
        throw new SqliteError(message, rc);
      }
      return new Database(core, handle);
    });
  }
}

export class Database {
  #idleWaiters = [];
  #changeListeners = new Set();
  #changesSeen = 0;

  constructor(core, handle) {
    this.core = core;
    this.handle = handle;
  }

  /** Whether a transaction is open. */
  get inTransaction() {
    return this.handle !== 0 && !this.core._sqlite3_get_autocommit(this.handle);
  }

  /**
   * Resolves when no transaction is open: at once, or at the COMMIT or
   * ROLLBACK that ends the open one. A sync client keeps a pull's
   * transaction open across network waits; a write that waits for idle()
   * never joins it, so a failed pull's rollback cannot take it along.
   */
  idle() {
    if (!this.inTransaction) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Calls listener (asynchronously) after statements that changed rows, once
   * no transaction is open: the app's own writes and a sync's alike. Returns
   * a function that removes it.
   */
  onChange(listener) {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Runs SQL: one statement with `params`, or several without. */
  exec(sql, params = undefined) {
    let changes = 0;
    this.#each(sql, params, (stmt) => {
      while (this.#step(stmt) === SQLITE_ROW);
      changes += this.core._sqlite3_changes(this.handle);
    });
    return { changes };
  }

  /** The rows of one statement, as objects keyed by column name. */
  query(sql, params = undefined) {
    const rows = [];
    this.#each(sql, params, (stmt) => {
      const names = [];
      const count = this.core._sqlite3_column_count(stmt);
      for (let i = 0; i < count; i++) names.push(this.core.UTF8ToString(this.core._sqlite3_column_name(stmt, i)));
      while (this.#step(stmt) === SQLITE_ROW) {
        const row = {};
        for (let i = 0; i < count; i++) row[names[i]] = this.#column(stmt, i);
        rows.push(row);
      }
    });
    return rows;
  }

  /** The first column of the first row, or undefined. */
  value(sql, params = undefined) {
    const row = this.query(sql, params)[0];
    return row === undefined ? undefined : Object.values(row)[0];
  }

  /** Runs fn() in a transaction (BEGIN IMMEDIATE): COMMIT, or ROLLBACK if it throws. */
  transaction(fn) {
    this.exec('BEGIN IMMEDIATE');
    try {
      const result = fn(this);
      this.exec('COMMIT');
      return result;
    } catch (error) {
      if (!this.core._sqlite3_get_autocommit(this.handle)) this.exec('ROLLBACK');
      throw error;
    }
  }

  close() {
    if (this.handle) this.core._sqlite3_close_v2(this.handle);
    this.handle = 0;
    this.#settle();
    this.onClose?.();
    this.onClose = null;
  }

  // syncline's functions (docs/sqlite.md), for convenience.
  nodeId() {
    return this.value('SELECT syncline_node_id()');
  }
  track(table, options = undefined) {
    return this.value('SELECT syncline_track(?1' + (options === undefined ? ')' : ', ?2)'),
      options === undefined ? [table] : [table, JSON.stringify(options)]);
  }
  /** A batch (JSON text) of the changes after `cursor` (null: all). */
  pullSince(cursor = null, limit = 1000, options = undefined) {
    return this.value('SELECT syncline_pull_since(?1, ?2' + (options === undefined ? ')' : ', ?3)'),
      options === undefined ? [cursor, limit] : [cursor, limit, JSON.stringify(options)]);
  }
  /** Applies a batch (JSON text); its summary, parsed. */
  applyPush(batch, options = undefined) {
    const summary = this.value('SELECT syncline_apply_push(?1' + (options === undefined ? ')' : ', ?2)'),
      options === undefined ? [batch] : [batch, JSON.stringify(options)]);
    return JSON.parse(summary);
  }

  // After statements ran: once no transaction is open, the idle() waiters go
  // on and the change listeners hear of rows changed since they last did.
  #settle() {
    if (this.inTransaction) return;
    const waiters = this.#idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
    if (!this.handle) return;
    const total = this.core._sqlite3_total_changes(this.handle);
    if (total === this.#changesSeen) return;
    this.#changesSeen = total;
    for (const listener of this.#changeListeners) queueMicrotask(listener);
  }

  // Prepares each statement of `sql` in turn and hands it to fn.
  #each(sql, params, fn) {
    if (!this.handle) throw new SqliteError('the database is closed', 21 /* SQLITE_MISUSE */);
    try {
      this.#eachStatement(sql, params, fn);
    } finally {
      this.#settle();
    }
  }

  #eachStatement(sql, params, fn) {
    const core = this.core;
    withScratch(core, (scratch) => {
      let tail = scratch.string(sql);
      const end = tail + core.lengthBytesUTF8(sql);
      const stmtOut = scratch.alloc(4);
      const tailOut = scratch.alloc(4);
      let statements = 0;
      while (tail < end) {
        const rc = core._sqlite3_prepare_v2(this.handle, tail, end - tail, stmtOut, tailOut);
        if (rc !== SQLITE_OK) this.#fail(rc);
        const stmt = core.getValue(stmtOut, 'i32');
        tail = core.getValue(tailOut, 'i32');
        if (!stmt) continue; // whitespace or a comment
        try {
          if (++statements > 1 && params !== undefined)
            throw new SqliteError('parameters go with one statement at a time', 21);
          if (params !== undefined) this.#bind(stmt, params, scratch);
          fn(stmt);
        } finally {
          core._sqlite3_finalize(stmt);
        }
      }
    });
  }

  #step(stmt) {
    const rc = this.core._sqlite3_step(stmt);
    if (rc !== SQLITE_ROW && rc !== SQLITE_DONE) this.#fail(rc);
    return rc;
  }

  #bind(stmt, params, scratch) {
    const core = this.core;
    const values = Array.isArray(params) ? params : null;
    const count = core._sqlite3_bind_parameter_count(stmt);
    for (let i = 1; i <= count; i++) {
      let value;
      if (values !== null) {
        value = values[i - 1];
      } else {
        // Named parameters (:name, @name, $name) from an object's keys.
        const name = core.UTF8ToString(core._sqlite3_bind_parameter_name(stmt, i));
        value = params[name.slice(1)];
      }
      let rc;
      if (value === null || value === undefined) {
        rc = core._sqlite3_bind_null(stmt, i);
      } else if (typeof value === 'bigint') {
        rc = core._sqlite3_bind_int64(stmt, i, value);
      } else if (typeof value === 'number') {
        rc = Number.isSafeInteger(value) ? core._sqlite3_bind_int64(stmt, i, BigInt(value))
          : core._sqlite3_bind_double(stmt, i, value);
      } else if (typeof value === 'boolean') {
        rc = core._sqlite3_bind_int64(stmt, i, value ? 1n : 0n);
      } else if (typeof value === 'string') {
        rc = core._sqlite3_bind_text(stmt, i, scratch.string(value), core.lengthBytesUTF8(value), SQLITE_TRANSIENT);
      } else if (value instanceof Uint8Array) {
        const bytes = scratch.alloc(Math.max(value.length, 1));
        core.HEAPU8.set(value, bytes);
        rc = core._sqlite3_bind_blob(stmt, i, bytes, value.length, SQLITE_TRANSIENT);
      } else {
        throw new SqliteError(`parameter ${i}: cannot bind a ${typeof value}`, 20 /* SQLITE_MISMATCH */);
      }
      if (rc !== SQLITE_OK) this.#fail(rc);
    }
  }

  #column(stmt, i) {
    const core = this.core;
    switch (core._sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER: {
        const value = core._sqlite3_column_int64(stmt, i);
        return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(value) : value;
      }
      case SQLITE_FLOAT:
        return core._sqlite3_column_double(stmt, i);
      case SQLITE_TEXT:
        return core.UTF8ToString(core._sqlite3_column_text(stmt, i), core._sqlite3_column_bytes(stmt, i));
      case SQLITE_BLOB: {
        const bytes = core._sqlite3_column_bytes(stmt, i);
        const at = core._sqlite3_column_blob(stmt, i);
        return core.HEAPU8.slice(at, at + bytes);
      }
      default:
        return null;
    }
  }

  #fail(rc) {
    const message = this.core.UTF8ToString(this.core._sqlite3_errmsg(this.handle));
    throw new SqliteError(message, this.core._sqlite3_extended_errcode(this.handle) || rc);
  }
}

// Memory for one call's arguments, freed when it returns.
function withScratch(core, fn) {
  const blocks = [];
  const scratch = {
    alloc(size) {
      const at = core._malloc(size);
      if (!at) throw new SqliteError('out of memory', 7 /* SQLITE_NOMEM */);
      blocks.push(at);
      return at;
    },
    string(text) {
      const size = core.lengthBytesUTF8(text) + 1;
      const at = scratch.alloc(size);
      core.stringToUTF8(text, at, size);
      return at;
    },
  };
  try {
    return fn(scratch);
  } finally {
    for (const at of blocks) core._free(at);
  }
}

// The OPFS files web/sqlite/opfs_vfs.c reads and writes, by name and id.
// Their sync access handles are opened here, asynchronously, before SQLite
// asks for them; each call the VFS makes answers -1 for a handle that threw.
class OpfsFiles {
  constructor(core) {
    this.core = core;
    this.byName = new Map();
    this.handles = [];
    this.lastError = null;
  }

  async openFiles(names) {
    if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory)
      throw new SqliteError('no Origin Private File System here: openPersistent needs a browser\'s Web Worker', 14);
    const root = await navigator.storage.getDirectory();
    const opened = [];
    try {
      for (const name of names) {
        if (this.byName.has(name)) throw new SqliteError(`${name} is open already`, 5 /* SQLITE_BUSY */);
        const file = await root.getFileHandle(name, { create: true });
        let handle;
        try {
          handle = await file.createSyncAccessHandle();
        } catch (error) {
          // Another worker (tab) holds it: NoModificationAllowedError.
          throw new SqliteError(`${name} is open in another tab or worker (${error.name})`, 5 /* SQLITE_BUSY */);
        }
        opened.push(name);
        this.byName.set(name, this.handles.length);
        this.handles.push(handle);
      }
    } catch (error) {
      this.closeFiles(opened);
      throw error;
    }
  }

  closeFiles(names) {
    for (const name of names) {
      const id = this.byName.get(name);
      if (id === undefined) continue;
      this.handles[id].close();
      this.handles[id] = null;
      this.byName.delete(name);
    }
  }

  find(name) {
    return this.byName.get(name) ?? -1;
  }
  #call(fn) {
    try {
      return fn();
    } catch (error) {
      this.lastError = error;
      return -1;
    }
  }
  read(id, at, amount, offset) {
    return this.#call(() => this.handles[id].read(this.core.HEAPU8.subarray(at, at + amount), { at: offset }));
  }
  write(id, at, amount, offset) {
    return this.#call(() => this.handles[id].write(this.core.HEAPU8.subarray(at, at + amount), { at: offset }));
  }
  truncate(id, size) {
    return this.#call(() => (this.handles[id].truncate(size), 0));
  }
  flush(id) {
    return this.#call(() => (this.handles[id].flush(), 0));
  }
  size(id) {
    return this.#call(() => this.handles[id].getSize());
  }
}
