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

  /** syncline_node_id(): this database's node id. */
  nodeId(): string;
  /** syncline_track(table, options): captures the table's writes. */
  track(table: string, options?: object): SqlValue | undefined;
  /** syncline_pull_since(cursor, limit, options): a batch (JSON text). */
  pullSince(cursor?: string | null, limit?: number, options?: object): string;
  /** syncline_apply_push(batch, options): the summary, parsed. */
  applyPush(batch: string, options?: object): { applied: number; [field: string]: unknown };
}
