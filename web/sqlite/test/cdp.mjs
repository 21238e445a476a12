// A headless Chromium driven over the DevTools protocol, just enough for the
// browser tests: open a page, evaluate an expression (awaiting its promise),
// load the page again, open and close more tabs of the same profile. Needs Node's WebSocket client (node
// --experimental-websocket on Node 20, built in from 22) and a chromium
// binary ($CHROMIUM, else chromium on PATH).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'syncline-chromium-'));
  const child = spawn(process.env.CHROMIUM ?? 'chromium', [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true }); // its own process group: its helpers go with it
  const port = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start:\n${log}`)), 30000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const found = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(Number(found[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${log}`)));
  });
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const page = targets.find((target) => target.type === 'page');
  const devtools = `http://127.0.0.1:${port}/json`;
  const session = await Session.connect(page.webSocketDebuggerUrl);
  session.targetId = page.id;
  return {
    session,
    /** Another tab, with url loaded: its session. */
    async newTab(url) {
      const target = await (await fetch(`${devtools}/new?about:blank`, { method: 'PUT' })).json();
      const tab = await Session.connect(target.webSocketDebuggerUrl);
      tab.targetId = target.id;
      await tab.open(url);
      return tab;
    },
    /** Closes a tab as its user would (its workers go with it). */
    async closeTab(tab) {
      tab.close();
      await fetch(`${devtools}/close/${tab.targetId}`);
    },
    async close() {
      session.close();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGKILL');
      await exited;
      // A helper process may still be finishing a write in the profile.
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

class Session {
  static async connect(url) {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Session(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.pending = new Map();
    this.waiters = [];
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.id !== undefined) {
        const { resolve, reject } = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) reject(new Error(`${message.error.message} (${message.error.code})`));
        else resolve(message.result);
      } else {
        this.waiters = this.waiters.filter((waiter) => !(waiter.method === message.method && waiter.resolve(message)));
      }
    };
  }

  send(method, params = {}) {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  next(method) {
    return new Promise((resolve) => this.waiters.push({ method, resolve: (message) => (resolve(message), true) }));
  }

  /** Loads url and waits for its load event. */
  async open(url) {
    await this.send('Page.enable');
    const loaded = this.next('Page.loadEventFired');
    await this.send('Page.navigate', { url });
    await loaded;
  }

  /** The value of a JS expression in the page, its promise awaited. */
  async evaluate(expression) {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate',
      { expression, awaitPromise: true, returnByValue: true });
    if (exceptionDetails) {
      throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
    }
    return result.value;
  }

  close() {
    this.socket.close();
  }
}
