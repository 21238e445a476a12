// Types of web/client/index.mjs: the syncline sync client over HTTP.

/** What the client needs of a database: @syncline/sqlite-wasm's Database fits. */
export interface SyncDatabase {
  value(sql: string, params?: unknown[]): unknown;
  exec(sql: string, params?: unknown[]): unknown;
}

/** The handle over a better-sqlite3 Database with the native extension loaded. */
export function betterSqlite3Database(db: {
  prepare(sql: string): unknown;
  exec(sql: string): unknown;
}): SyncDatabase;

/** A failure: `status` is the HTTP status (0: no answer), `sqlstate` the server's. */
export class SyncError extends Error {
  readonly status: number;
  readonly sqlstate: string;
}

export interface SyncCounts {
  pushed: number;
  pulled: number;
  conflicts: number;
  resynced: boolean;
  pushDeferred?: boolean;
  /** This file's tombstones collected after the server's collection passed them. */
  collected: number;
}

export type SyncState = "syncing" | "idle" | "offline" | "error";

export interface SyncClientOptions {
  db: SyncDatabase;
  /** Where the app mounted the protocol, "https://app.example/sync". */
  url: string;
  /** Added to every request (a token), or a function returning them. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  fetch?: typeof fetch;
  /** Changes a page, pushing and pulling (1000). */
  pageSize?: number;
}

export class SyncClient {
  constructor(options: SyncClientOptions);
  /** This database's node id. */
  readonly node: string;
  /** Log lines (a merged push page, a resync). */
  onLog?: (line: string) => void;
  /** First run on a new device: the server's tables and this user's rows. */
  clone(): Promise<SyncCounts>;
  /** Push, copy this device's conflict entries, pull (resyncing when told to). */
  sync(): Promise<SyncCounts>;
  /** Syncs on the server's events, every interval, and with backoff after failures, until aborted. */
  watch(options?: {
    intervalMs?: number;
    maxBackoffMs?: number;
    signal?: AbortSignal;
    onStatus?: (status: { state: SyncState; counts?: SyncCounts; error?: SyncError }) => void;
  }): Promise<void>;
  /** During watch: sync now (after a local write). */
  syncNow?: () => void;
}
