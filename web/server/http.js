// Reading requests and writing answers with node:http alone, so that the
// handler works under node:http and as Express middleware alike.
import { HttpError } from "./errors.js";

// Batches reach the database as the exact bytes the client sent. A decoder
// that replaced invalid UTF-8 or dropped a byte order mark would change the
// batch behind the codec's back (protocol.md, "Batches"): refuse instead.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// The request body as text, at most maxBytes bytes (413 past that).
export async function readBody(req, maxBytes) {
  // A body parser mounted before this handler has read the stream already.
  if (req.body !== undefined && (typeof req.body === "string" || Buffer.isBuffer(req.body))) {
    return decode(Buffer.from(req.body), maxBytes);
  }
  if (req.body !== undefined && req.readableEnded) {
    throw new HttpError(500, "the request body was parsed before the syncline handler: mount it before body parsers");
  }
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(req, maxBytes);
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(req, maxBytes);
    chunks.push(chunk);
  }
  return decode(Buffer.concat(chunks), maxBytes);
}

function decode(bytes, maxBytes) {
  if (bytes.length > maxBytes) throw new HttpError(413, `the request body is larger than ${maxBytes} bytes`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HttpError(400, "the request body is not valid UTF-8", { sqlstate: "22021" });
  }
}

// The rest of an oversize body is discarded, and the connection closed after
// the answer, so that a client still sending is not read for nothing.
function tooLarge(req, maxBytes) {
  req.resume();
  return new HttpError(413, `the request body is larger than ${maxBytes} bytes`, {
    headers: { Connection: "close" },
  });
}

// A JSON object from a small request body (pull and seen requests).
export function parseObject(text, what) {
  let value;
  try {
    value = text.trim() === "" ? {} : JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `${what}: the body is not JSON (${error.message})`, { sqlstate: "22P02" });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HttpError(400, `${what}: the body must be a JSON object`, { sqlstate: "22023" });
  }
  return value;
}

// Sends a body that is JSON text already (a batch, a summary): never
// parsed and re-encoded here.
export function sendJsonText(res, status, text, headers = {}) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    ...headers,
  });
  res.end(text);
}
