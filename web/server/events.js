// GET /events: the server's NOTIFY syncline (postgres.md, "NOTIFY") as
// Server-Sent Events. One connection LISTENs for the whole handler, not one
// per browser tab: PostgreSQL connections are dear, streams are many.

const CHANNEL = "syncline";
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;

// Same scope value: notifications and authorize() both give JSON values (7, "acme").
export function sameScope(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Whether a subscriber of `scope` (undefined: every scope) gets a payload.
// Unscoped table notes and schema notes go to everyone: every device syncs
// those tables, and every device follows the schema.
export function wants(scope, payload) {
  if (scope === undefined || payload === null || typeof payload !== "object") return true;
  if (!Object.prototype.hasOwnProperty.call(payload, "scope")) return true;
  return sameScope(scope, payload.scope);
}

export class EventHub {
  // connect: () => an unconnected pg.Client for the LISTEN connection.
  constructor({ connect, heartbeatMs, log }) {
    this.connect = connect;
    this.heartbeatMs = heartbeatMs;
    this.log = log;
    this.subscribers = new Set();
    this.client = null;
    this.listening = false;
    this.closed = false;
    this.failures = 0;
    this.retryTimer = null;
    this.heartbeat = null;
  }

  // Streams events to `res` until the client goes away.
  subscribe(req, res, scope) {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no", // nginx would otherwise hold the stream back
    });
    res.write("retry: 2000\n\n");
    const subscriber = { res, scope };
    this.subscribers.add(subscriber);
    const drop = () => this.subscribers.delete(subscriber);
    req.on("close", drop);
    res.on("close", drop);
    res.on("error", drop);
    if (this.listening) send(res, "ready", "{}");
    this.start();
  }

  start() {
    if (this.heartbeat === null && !this.closed) {
      // A comment line keeps proxies from closing an idle stream and lets
      // the client notice a dead one.
      this.heartbeat = setInterval(() => {
        for (const { res } of this.subscribers) res.write(": ping\n\n");
      }, this.heartbeatMs);
      this.heartbeat.unref();
    }
    if (this.client === null && this.retryTimer === null && !this.closed) this.listen();
  }

  async listen() {
    const client = this.connect();
    this.client = client;
    // Registered before connect(): an error event with no listener would
    // crash the process.
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("the LISTEN connection ended")));
    client.on("notification", (note) => {
      if (note.channel === CHANNEL) this.publish(note.payload ?? "");
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.client !== client) return;
    this.failures = 0;
    this.listening = true;
    // Notifications sent while nobody listened are lost: every subscriber
    // syncs now, and then on each notification.
    for (const { res } of this.subscribers) send(res, "ready", "{}");
  }

  // The LISTEN connection failed: try again with exponential backoff and
  // jitter, so that many servers do not return to a recovering database in step.
  lost(client, error) {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    client.removeAllListeners("end");
    client.on("error", () => {}); // a late error of a dropped connection
    client.end().catch(() => {});
    if (this.closed) return;
    this.log(new Error(`syncline events: ${error.message}; listening again`));
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(this.failures, 10));
    this.failures += 1;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.start();
      },
      delay * (0.5 + Math.random()),
    );
    this.retryTimer.unref();
  }

  publish(text) {
    let payload = null;
    try {
      payload = JSON.parse(text);
    } catch {
      // not syncline's: sent to everyone as it is
    }
    for (const { res, scope } of this.subscribers) {
      if (wants(scope, payload)) send(res, "change", text);
    }
  }

  // Ends every stream and the LISTEN connection (server shutdown, tests).
  async close() {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    for (const { res } of this.subscribers) res.end();
    this.subscribers.clear();
    const client = this.client;
    this.client = null;
    this.listening = false;
    if (client !== null) {
      client.removeAllListeners("end");
      await client.end().catch(() => {});
    }
  }
}

// One event; a payload never holds a newline (NOTIFY payloads are one line
// of JSON), but split anyway so that one could not end the event early.
function send(res, event, data) {
  const lines = String(data)
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join("");
  res.write(`event: ${event}\n${lines}\n`);
}
