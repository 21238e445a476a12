// Types of web/sqlite/index.mjs: SQLite with syncline, as WebAssembly.

/** A value SQLite stores: integers beyond 2^53 come back as bigint. */
export type SqlValue = null | number | bigint | string | Uint8Array;
/** What a parameter may be: booleans bind as 0 and 1. */
export type SqlParam = SqlValue | boolean | undefined;
/** Positional (?, ?1) or named (:name, @name, $name) parameters. */
export type SqlParams = SqlParam[] | Record<string, SqlParam>;
export type Row = Record<string, SqlValue>;

/** An SQLite error; `code` is SQLite's extended result code (5: SQLITE_BUSY). */
export class SqliteError extends Error {
  readonly code: number;
}

export interface LoadOptions {
  /** The .wasm bytes, when the page or bundler provides them. */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Where sqlite-core.wasm is, when a bundler moved it. */
  locateFile?: (path: string, prefix: string) => string;
}

/** Loads the module; every database it opens has syncline's functions. */
export function loadSqlite(options?: LoadOptions): Promise<Sqlite>;

export interface Sqlite {
  /** SQLite's version, "3.53.2". */
  readonly version: string;
  /** A database in memory (":memory:") or in the module's memory file system. */
  open(filename: string): Database;
  /**
   * A database in the Origin Private File System, kept across page reloads.
   * Dedicated Web Workers only; rejects with SQLITE_BUSY (5) while another
   * tab's worker holds the same database.
   */
  openPersistent(filename: string): Promise<Database>;
  /**
   * One persistent database for all of an app's tabs. Every tab's worker
   * calls it; the one holding the Web Lock "syncline:<filename>" opens the
   * file and runs every tab's statements; when its tab closes, the next
   * leads. Resolves once a leader is known.
   */
  openShared(filename: string, options?: SharedOptions): Promise<SharedDatabase>;
}

export interface SharedOptions {
  /**
   * Called in the worker that comes to hold the database, with it: start
   * what one tab should run (the sync client) here. What it returns (or
   * resolves to) is called when that worker closes the shared database.
   */
  onLeader?: (db: Database) => void | (() => void | Promise<void>) | Promise<void | (() => void | Promise<void>)>;
}

/**
 * A database shared by an app's tabs. Every call is a request the leading
 * worker runs in turn, once no transaction is open. A request in flight
 * when the leading tab closes fails with SQLITE_BUSY (5): it may or may not
 * have run.
 */
export interface SharedDatabase {
  /** Whether this worker holds the database now. */
  readonly isLeader: boolean;
  exec(sql: string, params?: SqlParams): Promise<{ changes: number }>;
  query(sql: string, params?: SqlParams): Promise<Row[]>;
  value(sql: string, params?: SqlParams): Promise<SqlValue | undefined>;
  /** The statements in one transaction, all or none; each one's changes. */
  batch(statements: { sql: string; params?: SqlParams }[]): Promise<{ changes: number }[]>;
  /** listener() after each commit that changed rows, in any tab; returns a remover. */
  onChange(listener: () => void): () => void;
  /** Leaves; a leader finishes what it accepted and hands the database on. */
  close(): Promise<void>;
}

export interface Database {
  /** Runs one statement with params, or several without; rows changed by the last. */
  exec(sql: string, params?: SqlParams): { changes: number };
  /** The rows of one statement. */
  query(sql: string, params?: SqlParams): Row[];
  /** The first column of the first row, or undefined. */
  value(sql: string, params?: SqlParams): SqlValue | undefined;
  /** Runs fn in BEGIN IMMEDIATE ... COMMIT; ROLLBACK if it throws. */
  transaction<T>(fn: (db: Database) => T): T;
  /** Closes the database (and releases its OPFS files). */
  close(): void;
  /**
   * Resolves once no transaction is open. A sync client keeps a pull's
   * transaction open across network waits: writes of the app's own that
   * wait for idle() never join it (SharedDatabase waits for it itself).
   */
  idle(): Promise<void>;
  /** Whether a transaction is open. */
  readonly inTransaction: boolean;
  /** listener() after statements that changed rows, once committed; returns a remover. */
  onChange(listener: () => void): () => void;

  /** syncline_node_id(): this database's node id. */
  nodeId(): string;
  /** syncline_track(table, options): captures the table's writes. */
  track(table: string, options?: object): SqlValue | undefined;
  /** syncline_pull_since(cursor, limit, options): a batch (JSON text). */
  pullSince(cursor?: string | null, limit?: number, options?: object): string;
  /** syncline_apply_push(batch, options): the summary, parsed. */
  applyPush(batch: string, options?: object): { applied: number; [field: string]: unknown };
}
