// Test fixtures: a fresh database with the extension (on the cluster of
// tests/pg/with_cluster.sh), roles and tables as security.md recommends, a
// handler on an ephemeral port, SQLite client files through the sqlite3
// shell, and an SSE reader.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import pg from "pg";

import { createSyncHandler } from "../index.js";

const EXTENSION = process.env.SYNCLINE_EXTENSION ?? fileURLToPath(new URL("../../../build/syncline", import.meta.url));

// Users of the app as authorize() knows them: a role each; alice and bob
// are held to their organisation's scope, carol is not (row-level security
// alone decides what she sees), dave's role may not read the tables.
export function users(prefix) {
  return {
    alice: { role: `${prefix}_alice`, scope: 1 },
    bob: { role: `${prefix}_bob`, scope: 2 },
    carol: { role: `${prefix}_carol` },
    dave: { role: `${prefix}_dave` },
  };
}

// Creates database `name` (dropped first) with tracked tables, roles and policies.
export async function createDatabase(name) {
  const admin = new pg.Client({ database: "postgres" });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const roles = users(name);
  for (const { role } of Object.values(roles)) {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} NOLOGIN`);
  }
  await admin.end();
  const db = new pg.Client({ database: name });
  await db.connect();
  await db.query(`
    CREATE EXTENSION syncline;
    CREATE SCHEMA app;
    CREATE TABLE app.memberships (member name NOT NULL, org_id int NOT NULL, PRIMARY KEY (member, org_id));
    INSERT INTO app.memberships VALUES ('${roles.alice.role}', 1), ('${roles.bob.role}', 2), ('${roles.carol.role}', 2);
    CREATE TABLE app.notes (id text PRIMARY KEY, org_id int NOT NULL, title text);
    CREATE TABLE app.settings (id text PRIMARY KEY, value text);
    CREATE TABLE app.tags (id text PRIMARY KEY, name text UNIQUE);
    GRANT USAGE ON SCHEMA app TO ${roles.alice.role}, ${roles.bob.role}, ${roles.carol.role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes, app.settings, app.tags TO ${roles.alice.role}, ${roles.bob.role}, ${roles.carol.role};
    GRANT SELECT ON app.memberships TO ${roles.alice.role}, ${roles.bob.role}, ${roles.carol.role};
    ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY member_rows ON app.notes
      USING (org_id IN (SELECT org_id FROM app.memberships WHERE member = current_user))
      WITH CHECK (org_id IN (SELECT org_id FROM app.memberships WHERE member = current_user));
    CREATE FUNCTION app.may_access_org(scope jsonb) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = app AS $$
      SELECT EXISTS (SELECT 1 FROM memberships WHERE member = current_user AND org_id = (scope #>> '{}')::int) $$;
    SELECT syncline.track('app.notes', '{"scope": "org_id", "authorize": "app.may_access_org"}');
    SELECT syncline.track('app.settings');
    SELECT syncline.track('app.tags');
  `);
  return db;
}

// A handler on an ephemeral port; authorize() reads the user from the
// X-User header, as an app would read a session or a token.
export async function startServer(database, options = {}) {
  const pool = new pg.Pool({ database, max: 8 });
  const roles = users(database);
  const logged = [];
  const handler = createSyncHandler({
    pool,
    authorize: async (req) => roles[req.headers["x-user"]] ?? null,
    log: (error) => logged.push(error),
    ...options,
  });
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    pool,
    handler,
    logged,
    // fetch as a user: the body as text, the status, and the JSON when it is JSON
    async call(user, method, url, body, headers = {}) {
      const response = await fetch(base + url, {
        method,
        headers: {
          ...(user ? { "X-User": user } : {}),
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
          ...headers,
        },
        body,
      });
      const text = await response.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: response.status, headers: response.headers, text, json };
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await handler.close();
      await pool.end();
    },
  };
}

// A SQLite client file with the extension loaded: sql(...) runs statements
// through the sqlite3 shell and returns its output.
export function sqliteFile(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "syncline-web-"));
  const file = path.join(dir, `${name}.db`);
  const sql = (text) =>
    execFileSync("sqlite3", ["-batch", "-cmd", `.load ${EXTENSION}`, file], { input: text, encoding: "utf8" }).trim();
  return { dir, file, sql, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// Reads Server-Sent Events from GET /events.
export async function openEvents(base, user, query = "") {
  const controller = new AbortController();
  const response = await fetch(`${base}/events${query}`, { headers: { "X-User": user }, signal: controller.signal });
  const events = [];
  const waiters = [];
  let buffer = "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { event: "message", data: "", comment: false };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) event.comment = true;
            else if (line.startsWith("event: ")) event.event = line.slice(7);
            else if (line.startsWith("data: ")) event.data += line.slice(6);
          }
          events.push(event);
          for (const waiter of waiters.splice(0)) waiter();
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    status: response.status,
    events,
    // the first event from index `from` on that matches, or a timeout
    async next(match, from = 0, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.slice(from).find(match);
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no matching event after ${timeoutMs} ms: ${JSON.stringify(events)}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => controller.abort(),
  };
}
