'use strict';

// What every deltasync HTTP surface shares (the sync routes, the inspector): reading a body,
// sending JSON, and the one error shape, {error: {code, message}}, with its status per code.
// Written against node:http's request and response, which Express extends.

const { SyncError } = require('./errors');

const STATUS_BY_CODE = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  LIMIT_EXCEEDED: 413,
  CLOSED: 503,
  BUSY: 503,
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  REQUEST_TIMEOUT: 408,
  TOO_MANY_STREAMS: 429,
  FORBIDDEN: 403,
};

/** Reads the raw request body, up to maxBytes (then a LIMIT_EXCEEDED SyncError). Memory grows
 *  with the bytes that arrive, never with what Content-Length declares. With `idleTimeoutMs`, a
 *  body of which no byte arrives for that long fails with REQUEST_TIMEOUT. */
function readBody(req, maxBytes, { idleTimeoutMs } = {}) {
  if (req.body !== undefined && (req._body || req.readableEnded)) {
    // A body parser ran before us: use what it read.
    if (Buffer.isBuffer(req.body) || typeof req.body === 'string') return Promise.resolve(req.body);
    return Promise.resolve(JSON.stringify(req.body));
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new SyncError(`The request body is larger than the limit of ${maxBytes} bytes`, 'LIMIT_EXCEEDED'));
  }
  return new Promise((resolve, reject) => {
    // Chunks are copied into a buffer that doubles as they arrive, so no single tick copies
    // the whole body and a client that declares a large body but sends little costs little.
    let buffer = Buffer.allocUnsafe(Math.min(64 * 1024, Number.isFinite(declared) && declared > 0 ? declared : 64 * 1024));
    let size = 0;
    let failed = false;
    let idle = null;
    const fail = (error) => {
      failed = true;
      clearTimeout(idle);
      buffer = null;
      reject(error);
      req.resume();
    };
    if (idleTimeoutMs !== undefined) {
      idle = setTimeout(() => {
        fail(new SyncError(`No byte of the request body arrived for ${idleTimeoutMs} ms`, 'REQUEST_TIMEOUT'));
      }, idleTimeoutMs);
      idle.unref();
    }
    req.on('data', (chunk) => {
      if (failed) return;
      idle?.refresh();
      if (size + chunk.length > maxBytes) {
        fail(new SyncError(`The request body is larger than the limit of ${maxBytes} bytes`, 'LIMIT_EXCEEDED'));
        return;
      }
      if (Number.isFinite(declared) && declared > 0 && size + chunk.length > declared) {
        fail(new SyncError('The request body is longer than its Content-Length', 'INVALID_ARGUMENT'));
        return;
      }
      if (size + chunk.length > buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(buffer.length * 2, size + chunk.length)));
        buffer.copy(grown, 0, 0, size);
        buffer = grown;
      }
      chunk.copy(buffer, size);
      size += chunk.length;
    });
    req.on('end', () => {
      clearTimeout(idle);
      if (!failed) resolve(buffer.subarray(0, size));
    });
    req.on('error', (error) => {
      if (!failed) fail(error);
    });
  });
}

function sendJsonText(res, status, text) {
  // res.end, not res.send: a sync response is never cached, so no ETag is computed over it.
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

function sendError(res, error) {
  const code = error instanceof SyncError && typeof error.code === 'string' ? error.code : 'INTERNAL';
  const status = STATUS_BY_CODE[code] ?? 500;
  const message = status >= 500 && code === 'INTERNAL' ? 'Internal server error' : error.message;
  if (res.headersSent) return;
  if (status === 503) res.setHeader('Retry-After', '1');
  if (status === 429) res.setHeader('Retry-After', '5');
  if (status === 408) res.setHeader('Connection', 'close'); // the rest of the body is not awaited
  sendJsonText(res, status, JSON.stringify({ error: { code, message } }));
}

module.exports = { STATUS_BY_CODE, readBody, sendJsonText, sendError };
