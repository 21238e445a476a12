// The notes demo in the browser (docs/web.md, "The demo"): the reference
// handler at /sync, and the page, its worker, SQLite as WebAssembly and the
// JS client as static files. Each browser profile is a device; it keeps its
// notes in OPFS and syncs through this server.
//
//   node web/demo/server.mjs [PORT]     (PG* variables name the database)
import { readFile } from "node:fs/promises";
import http from "node:http";
import { createRequire } from "node:module";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

import { createSyncHandler } from "../server/index.js";

// pg as the handler's package has it (web/server: npm ci).
const pg = createRequire(new URL("../server/index.js", import.meta.url))("pg");

const web = fileURLToPath(new URL("..", import.meta.url));
// URL prefix -> directory; nothing else is served.
const STATIC = { "/sqlite/": "sqlite/", "/client/": "client/", "/": "demo/page/" };
const TYPES = { ".html": "text/html", ".mjs": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

/** Creates the demo's table if missing (a tracked notes table, merged per
 * column: edits of a note's title and body on two devices are both kept). */
export async function prepareDatabase(pool) {
  await pool.query(`
    CREATE EXTENSION IF NOT EXISTS syncline;
    CREATE TABLE IF NOT EXISTS notes (id text PRIMARY KEY, title text NOT NULL DEFAULT '', body text NOT NULL DEFAULT '');
    SELECT syncline.track('notes', '{"merge": "column"}');`);
}

/** The demo's server on `port` (0: any); resolves with {url, close}. */
export async function startDemo({ pool, port = 0 }) {
  await prepareDatabase(pool);
  // Everyone is the database's user here: a real app maps its users to
  // roles and scopes (docs/security.md, docs/http.md).
  const sync = createSyncHandler({ pool, authorize: async () => ({}) });
  const server = http.createServer(async (req, res) => {
    if (req.url.startsWith("/sync/")) {
      req.url = req.url.slice("/sync".length);
      return sync(req, res);
    }
    const path = new URL(req.url, "http://x").pathname;
    const prefix = Object.keys(STATIC).find((p) => path.startsWith(p));
    const file = normalize(join(web, STATIC[prefix], path.slice(prefix.length) || "index.html"));
    if (!file.startsWith(join(web, STATIC[prefix]))) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await sync.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pool = new pg.Pool();
  const demo = await startDemo({ pool, port: Number(process.argv[2] ?? 8080) });
  console.log(`syncline notes demo: open ${demo.url} in two browser profiles (each is a device)`);
}
