// Types of @syncline/server (docs/http.md).
import type { IncomingMessage, ServerResponse } from "node:http";

// The parts of node-postgres used here, written out so that the types need
// no @types/pg (a pg.Pool and a pg.Client fit them).
export interface PoolClientLike {
  query(config: { text: string; values?: unknown[]; rowMode?: "array" } | string): Promise<{ rows: any[] }>;
  release(destroy?: boolean | Error): void;
}
export interface PoolLike {
  connect(): Promise<PoolClientLike>;
  /** The pool's connection options, used for the LISTEN connection by default. */
  options?: object;
}
export interface ListenClientLike {
  connect(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  end(): Promise<unknown>;
  on(event: "notification", listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/** A scope value as batches carry it: the scope column's value (7, "acme"). */
export type Scope = string | number | boolean | null | Scope[] | { [key: string]: Scope };

/** What authorize() grants a request. */
export interface Grant {
  /**
   * The scope the user is held to. A client may repeat it; naming another
   * is refused (403). Absent or null: the client's own scope, if any, is a
   * filter only, and row-level security and the authorisation hook decide.
   */
  scope?: Scope;
  /**
   * The PostgreSQL role the request runs as (SET LOCAL ROLE), so that
   * privileges, row-level security and the hook judge this user. Absent:
   * the pool's own role, which must then be no superuser.
   */
  role?: string | null;
}

export interface SyncHandlerOptions {
  /** Connections for the requests, each request one transaction. */
  pool: PoolLike;
  /**
   * Who is asking. Resolve to a Grant, or to null for 401. Throw an error
   * whose `status` (or `statusCode`) is 401 or 403 to answer that status
   * with the error's message; any other error is a 500, logged.
   */
  authorize: (request: IncomingMessage) => Promise<Grant | null | undefined> | Grant | null | undefined;
  /**
   * Makes a new, unconnected client for the one LISTEN connection of
   * GET /events (called again after the connection is lost). Default: a
   * pg.Client with the pool's options.
   */
  listenClient?: () => ListenClientLike;
  /** The largest request body taken, in bytes (413 past it). Default 64 MiB, the largest batch. */
  maxBodyBytes?: number;
  /** Milliseconds between heartbeat comments on event streams. Default 15000. */
  heartbeatMs?: number;
  /** Where unexpected errors go (not sent to clients). Default console.error. */
  log?: (error: unknown) => void;
}

/** A request handler for node:http, and Express middleware. */
export interface SyncHandler {
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void;
  /** Ends every event stream and the LISTEN connection. */
  close(): Promise<void>;
  /** How many event streams are open. */
  readonly subscribers: number;
}

export function createSyncHandler(options: SyncHandlerOptions): SyncHandler;

/** The HTTP status for a SQLSTATE, and the Retry-After seconds or null. */
export function statusForSqlstate(sqlstate: string): [status: number, retryAfter: number | null];
