// The package as published: `npm pack` makes a tarball that installs into
// a scratch project and imports, with its types and without the tests.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));

test("npm pack makes a tarball that installs and imports", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "syncline-pack-"));
  try {
    const run = (command, args, cwd) =>
      execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], PACKAGE));
    const files = packed.files.map((file) => file.path).sort();
    assert.deepEqual(files, [
      "README.md",
      "errors.js",
      "events.js",
      "http.js",
      "index.d.ts",
      "index.js",
      "package.json",
    ]);

    const project = path.join(dir, "app");
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "scratch", private: true, type: "module" }),
    );
    run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", path.join(dir, packed.filename)],
      project,
    );
    const out = run(
      "node",
      [
        "--input-type=module",
        "-e",
        `import pg from "pg";
         import { createSyncHandler, statusForSqlstate } from "@syncline/server";
         const handler = createSyncHandler({ pool: new pg.Pool(), authorize: async () => null });
         console.log(typeof handler, handler.length, statusForSqlstate("SL001")[0]);
         await handler.close();`,
      ],
      project,
    );
    assert.equal(out.trim(), "function 3 409");
    assert.ok(fs.existsSync(path.join(project, "node_modules/@syncline/server/index.d.ts")));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the browser packages pack and install too: SQLite as WebAssembly, and the client", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "syncline-pack-web-"));
  try {
    const run = (command, args, cwd) =>
      execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const pack = (name) => {
      const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], fileURLToPath(new URL(`../../${name}`, import.meta.url))));
      return packed;
    };
    const sqlite = pack("sqlite");
    assert.deepEqual(sqlite.files.map((file) => file.path).sort(), [
      "dist/sqlite-core.mjs",
      "dist/sqlite-core.wasm",
      "index.d.ts",
      "index.mjs",
      "package.json",
      "shared.mjs",
    ]);
    const client = pack("client");
    assert.deepEqual(client.files.map((file) => file.path).sort(), ["index.d.ts", "index.mjs", "package.json"]);

    const project = path.join(dir, "app");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
    run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error",
      path.join(dir, sqlite.filename), path.join(dir, client.filename)], project);
    const out = run("node", ["--input-type=module", "-e",
      `import { loadSqlite } from "@syncline/sqlite-wasm";
       import { SyncClient } from "@syncline/client";
       const sqlite = await loadSqlite();
       const db = sqlite.open(":memory:");
       const client = new SyncClient({ db, url: "http://127.0.0.1:1/sync" });
       console.log(sqlite.version, client.node === db.nodeId());`], project);
    assert.equal(out.trim(), "3.53.2 true");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
