// The syncline sync client for JavaScript (docs/web.md): a thin driver of
// the sync loop the SQLite extension decides (docs/sqlite.md, "The sync
// loop"), over the HTTP protocol (docs/http.md). The same file runs in a
// browser's Web Worker (with @syncline/sqlite-wasm) and in Node.
//
// `db` is any handle with value(sql, params) and exec(sql): the
// WebAssembly module's Database, or a small adapter over better-sqlite3.

/** An error of the server's or of this client's: `status` (HTTP), `sqlstate`. */
export class SyncError extends Error {
  constructor(message, { status = 0, sqlstate = '' } = {}) {
    super(message);
    this.name = 'SyncError';
    this.status = status;
    this.sqlstate = sqlstate;
  }
}

/**
 * The database handle the client needs, over a better-sqlite3 Database with
 * the native extension loaded (`db.loadExtension("path/to/syncline")`):
 * Node, Electron and desktop apps keep a real file this way.
 */
export function betterSqlite3Database(db) {
  return {
    value(sql, params = []) {
      const statement = db.prepare(sql);
      if (!statement.reader) {
        statement.run(...params);
        return undefined;
      }
      const row = statement.raw().get(...params);
      return row === undefined ? undefined : row[0];
    },
    exec(sql, params = undefined) {
      if (params === undefined) db.exec(sql);
      else db.prepare(sql).run(...params);
    },
  };
}

// A COMMIT that a deferred foreign key refuses (better-sqlite3 names the
// code, the WebAssembly module numbers it).
const isForeignKeyError = (error) => error.code === 787 || error.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';

// The client's own bookkeeping, as the C++ client keeps it (client.md,
// "Client-side bookkeeping"): a file may move between the two.
const STATE_TABLE = 'CREATE TABLE IF NOT EXISTS syncline_client(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID';

export class SyncClient {
  /**
   * url: where the app mounted the protocol ("https://app.example/sync").
   * headers: added to every request (a token), or a function returning them.
   */
  constructor({ db, url, headers = {}, fetch: fetchImpl = undefined, pageSize = 1000 }) {
    this.db = db;
    this.url = url.replace(/\/$/, '');
    this.headers = headers;
    // A browser's fetch must be called on the global object, not on this.
    this.fetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));
    this.pageSize = pageSize;
    db.exec(STATE_TABLE);
    this.node = db.value('SELECT syncline_node_id()');
  }

  /** First run on a new device: the server's tables and rows. */
  async clone() {
    const state = await this.#request('GET', `/state?node=${this.node}`);
    this.#setState('server_node', state.server);
    this.#setState('scope', state.scope === null ? '' : JSON.stringify(state.scope));
    const counts = { pushed: 0, pulled: 0, conflicts: 0, resynced: false, collected: 0 };
    await this.#pullOrResync(state.server, counts);
    await this.#reportPosition(state.server, counts);
    this.#setState('last_sync', new Date().toISOString());
    return counts;
  }

  /** One cycle: push this device's changes, copy its conflict entries, pull. */
  async sync() {
    const server = this.#state('server_node');
    if (server === undefined) throw new SyncError('this database was not cloned from a server (call clone)');
    const state = await this.#request('GET', `/state?node=${this.node}`);
    if (state.server !== server)
      throw new SyncError(`this database was cloned from server node ${server}, but the server is ${state.server}`);
    const counts = { pushed: 0, pulled: 0, conflicts: 0, resynced: false, pushDeferred: false, collected: 0 };
    await this.#push(state.acked_push, counts);
    await this.#copyConflicts(counts);
    await this.#pullOrResync(server, counts);
    this.db.value('SELECT syncline_prune_conflicts()');
    await this.#reportPosition(server, counts);
    this.#setState('last_sync', new Date().toISOString());
    return counts;
  }

  /**
   * Keeps syncing until `signal` aborts: when the server says something
   * changed (its Server-Sent Events), every `intervalMs` (to push local
   * writes; call `syncNow()` after one for less delay), and after a failure
   * with exponential backoff and jitter, whatever the failure: sync never
   * stops for good. `onStatus` hears {state: "syncing" | "idle" | "offline"
   * | "error", counts?, error?}.
   */
  async watch({ intervalMs = 30000, maxBackoffMs = 30000, signal = undefined, onStatus = () => {} } = {}) {
    let failures = 0;
    // A change heard while a sync runs may have committed after it read:
    // one more sync follows at once.
    let changed = false;
    let wake = () => {};
    const trigger = () => {
      changed = true;
      wake();
    };
    this.syncNow = trigger;
    const listening = this.#listen(signal, trigger);
    while (!signal?.aborted) {
      let delay = intervalMs;
      changed = false;
      onStatus({ state: 'syncing' });
      try {
        const counts = await this.sync();
        failures = 0;
        onStatus({ state: 'idle', counts });
      } catch (error) {
        failures++;
        onStatus({ state: error.status === 0 || error.status >= 500 ? 'offline' : 'error', error });
        delay = Math.min(maxBackoffMs, 500 * 2 ** Math.min(failures - 1, 10)) * (0.5 + Math.random());
      }
      if (changed && failures === 0) continue;
      await new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done); // no listener left behind per wait
          resolve();
        };
        const timer = setTimeout(done, delay);
        wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    await listening;
  }

  // Reads GET /events until `signal` aborts, calling onChange on each event
  // ("ready" too: the stream may have missed changes while it was down);
  // reconnects after a pause when the stream ends or fails.
  async #listen(signal, onChange) {
    while (!signal?.aborted) {
      try {
        const headers = typeof this.headers === 'function' ? await this.headers() : this.headers;
        const response = await this.fetch(`${this.url}/events`, { headers, signal });
        if (!response.ok) throw new SyncError(`events: HTTP ${response.status}`, { status: response.status });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (/^event: (ready|change)$/m.test(block)) onChange();
          }
        }
      } catch {
        // the server is away, or the stream was aborted
      }
      if (!signal?.aborted) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  async #push(acked, counts) {
    const db = this.db;
    db.value('SELECT syncline_push_begin(?, ?)', [acked, JSON.stringify({ page_size: this.pageSize })]);
    for (;;) {
      const page = db.value('SELECT syncline_push_page()');
      if (page === null) return;
      let summary = null;
      let error = null;
      try {
        summary = await this.#request('POST', '/push', page, { raw: true });
      } catch (caught) {
        if (!(caught instanceof SyncError) || !caught.sqlstate) throw caught; // no answer: try again later
        error = caught;
      }
      const decision = JSON.parse(db.value('SELECT syncline_push_answer(?, ?, ?)',
        [summary, error?.sqlstate ?? null, error?.message ?? null]));
      if (decision.log) this.#log(decision.log);
      if (decision.action === 'failed') throw new SyncError(decision.prefix + error.message, error);
      if (decision.action === 'deferred') {
        counts.pushDeferred = true;
        return;
      }
      if (decision.action === 'next' || decision.action === 'done') counts.pushed += decision.applied;
      if (decision.action === 'done') return;
    }
  }

  // This device's entries of the server's conflict log it lacks.
  async #copyConflicts(counts) {
    const after = Number(this.#state('conflicts_after') ?? 0);
    const { conflicts } = await this.#request('GET', `/conflicts?node=${this.node}&after=${after}`);
    for (const entry of conflicts) {
      this.db.value('SELECT syncline_note_conflict(?)', [JSON.stringify(entry)]);
      this.#setState('conflicts_after', String(entry.id));
      counts.conflicts++;
    }
  }

  async #pullOrResync(server, counts) {
    try {
      await this.#pull(server, counts, false);
    } catch (error) {
      if (error.sqlstate !== 'SL001') throw error;
      // The server collected deletes past this file's cursor: its local
      // changes are pushed already; start again from the server's state.
      this.#log(error.message);
      counts.resynced = true;
      await this.#pull(server, counts, true);
    }
  }

  // Requests as the extension gives them, the next one sent before this
  // page applies; the transactions as it says (docs/sqlite.md, "Pulling").
  async #pull(server, counts, resync) {
    const db = this.db;
    const scope = this.#state('scope');
    const options = { page_size: this.pageSize, resync };
    if (scope) options.scope = JSON.parse(scope);
    let page = await this.#pullPage(db.value('SELECT syncline_pull_begin(?, ?)', [server, JSON.stringify(options)]));
    const begin = () => {
      db.exec('BEGIN IMMEDIATE');
      db.exec('PRAGMA defer_foreign_keys = ON');
      open = true;
    };
    let open = false;
    let pending = { pulled: 0, conflicts: 0 };
    try {
      for (;;) {
        const next = db.value('SELECT syncline_pull_next(?)', [page]);
        const nextPage = next === null ? null : this.#pullPage(next);
        nextPage?.catch(() => {}); // awaited below; an early failure must not go unhandled
        // Begun only once the page is here: between a commit and the next
        // page the app's own writes run outside the pull's transaction.
        if (!open) begin();
        const result = JSON.parse(db.value('SELECT syncline_pull_apply(?)', [page]));
        pending.pulled += result.summary.applied ?? 0;
        pending.conflicts += result.summary.refused?.length ?? 0;
        if (result.commit) {
          try {
            db.exec('COMMIT');
            open = false;
            counts.pulled += pending.pulled;
            counts.conflicts += pending.conflicts;
            pending = { pulled: 0, conflicts: 0 };
          } catch (error) {
            // A deferred foreign key still violated: the parent is in a later
            // page. On the last page nothing of the pull is kept.
            if (!isForeignKeyError(error) || next === null) throw error;
          }
        }
        if (next === null) return;
        page = await nextPage;
      }
    } finally {
      // A failed pull keeps nothing since its last commit; the next pull
      // fetches those pages again.
      if (open) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // SQLite ended the transaction itself (a full disk)
        }
      }
    }
  }

  #pullPage(requestText) {
    const request = JSON.parse(requestText);
    return this.#request('POST', '/pull',
      JSON.stringify({ cursor: request.cursor, limit: request.limit, options: JSON.parse(request.options) }),
      { raw: true });
  }

  // Where this device's pulls have reached, for the server's garbage
  // collection (a server without it answers 501); its answer tells the
  // extension when this file's own tombstones may go.
  async #reportPosition(server, counts) {
    const scope = this.#state('scope');
    const cursor = this.db.value('SELECT syncline_pull_cursor(?, ?)',
      [server, scope ? JSON.stringify({ scope: JSON.parse(scope) }) : '{}']);
    let answer;
    try {
      answer = await this.#request('POST', '/seen', JSON.stringify({ node: this.node, cursor }), { raw: true });
    } catch (error) {
      if (error.status !== 501) throw error;
      return;
    }
    const { collected } = JSON.parse(this.db.value('SELECT syncline_gc_seen(?)', [answer]));
    if (collected > 0) this.#log(`collected ${collected} tombstones of this file`);
    counts.collected += collected;
  }

  // One request; its JSON (or, raw, its text). An error answer becomes a
  // SyncError with the server's SQLSTATE and message.
  async #request(method, path, body = undefined, { raw = false } = {}) {
    const headers = { ...(typeof this.headers === 'function' ? await this.headers() : this.headers) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await this.fetch(this.url + path, { method, headers, body });
    } catch (error) {
      throw new SyncError(`cannot reach the server: ${error.message}`, { status: 0 });
    }
    const text = await response.text();
    if (!response.ok) {
      let detail = {};
      try {
        detail = JSON.parse(text).error ?? {};
      } catch {
        // not the protocol's error body (a proxy's page)
      }
      throw new SyncError(`server: ${detail.message ?? `HTTP ${response.status}`}`,
        { status: response.status, sqlstate: detail.sqlstate ?? '' });
    }
    return raw ? text : JSON.parse(text);
  }

  #state(key) {
    const value = this.db.value('SELECT value FROM syncline_client WHERE key = ?', [key]);
    return value === undefined || value === null ? undefined : value;
  }
  #setState(key, value) {
    this.db.exec('INSERT OR REPLACE INTO syncline_client(key, value) VALUES (?, ?)', [key, value]);
  }
  #log(line) {
    this.onLog?.(line);
  }
}
