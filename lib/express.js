'use strict';

// deltasync/express: the sync routes for an Express app.
//
//   app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.user?.id }));
//
// Bodies are read as bytes and handed to C++; nothing is parsed on the main thread.

const { SyncServer, idFieldsArg } = require('./server');
const { SyncError } = require('./errors');
const is = require('./is');

const ROUTER_OPTIONS = ['authenticate', 'limits', 'idFields'];
const STATUS_BY_CODE = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  LIMIT_EXCEEDED: 413,
  CLOSED: 503,
  BUSY: 503,
};

function loadExpress() {
  try {
    return require('express');
  } catch (error) {
    throw new Error('deltasync/express needs the "express" package: npm install express', { cause: error });
  }
}

/** Reads the raw request body, up to maxBytes (then a LIMIT_EXCEEDED SyncError). */
function readBody(req, maxBytes) {
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
    // With a declared length, chunks are copied into place as they arrive, so no single
    // tick copies the whole body; otherwise they are joined at the end.
    const preallocated = Number.isFinite(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : null;
    const chunks = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
      if (failed) return;
      if (size + chunk.length > maxBytes || (preallocated && size + chunk.length > preallocated.length)) {
        failed = true;
        chunks.length = 0;
        const tooLarge = size + chunk.length > maxBytes;
        reject(
          tooLarge
            ? new SyncError(`The request body is larger than the limit of ${maxBytes} bytes`, 'LIMIT_EXCEEDED')
            : new SyncError('The request body is longer than its Content-Length', 'INVALID_ARGUMENT'),
        );
        req.resume();
        return;
      }
      if (preallocated) chunk.copy(preallocated, size);
      else chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => {
      if (failed) return;
      if (preallocated) resolve(preallocated.subarray(0, size));
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', (error) => {
      if (!failed) reject(error);
    });
  });
}

function sendJsonText(res, status, text) {
  // res.end, not res.send: a sync response is never cached, so no ETag is computed over it.
  res.status(status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

function sendError(res, error) {
  const code = error instanceof SyncError || (error && typeof error.code === 'string') ? error.code : 'INTERNAL';
  const status = STATUS_BY_CODE[code] ?? 500;
  const message = status >= 500 && code === 'INTERNAL' ? 'Internal server error' : error.message;
  if (res.headersSent) return;
  if (status === 503) res.set('Retry-After', '1');
  res.status(status).json({ error: { code, message } });
}

/**
 * Creates the Express router of the sync protocol: POST /v2, and the compatible
 * routes of older designs (POST /push, /pull, /full, /resolve-conflict,
 * GET /status/:deviceId, GET /changes?since=).
 * @param {SyncServer} server
 * @param {import('../types/express').SyncRouterOptions} options
 */
function createSyncRouter(server, options) {
  if (!(server instanceof SyncServer)) throw is.invalid('server', 'a SyncServer', server);
  if (!is.isPlainObject(options)) throw is.invalid('options', 'an object with authenticate', options);
  is.optionsObject('options', options, ROUTER_OPTIONS);
  const { authenticate } = options;
  if (typeof authenticate !== 'function') throw is.invalid('options.authenticate', 'a function (req) => userId', authenticate);
  const limits = is.optionsObject('options.limits', options.limits, ['maxBodyBytes']);
  const maxBodyBytes = limits.maxBodyBytes ?? server.limits.maxBodyBytes;
  if (!is.isPositiveInteger(maxBodyBytes)) throw is.invalid('options.limits.maxBodyBytes', 'a positive integer', maxBodyBytes);
  const idFields = { ...server._idFields, ...(idFieldsArg('options.idFields', options.idFields) ?? {}) };

  const express = loadExpress();
  const router = express.Router();

  // Every route: authenticate first; the user id never comes from the body.
  router.use(async (req, res, next) => {
    let userId;
    try {
      userId = await authenticate(req);
    } catch (error) {
      sendError(res, new SyncError(`Authentication failed: ${error && error.message ? error.message : error}`, 'UNAUTHENTICATED'));
      return;
    }
    if (typeof userId !== 'string' || userId.length === 0 || Buffer.byteLength(userId) > 256) {
      sendError(res, new SyncError('Authentication required', 'UNAUTHENTICATED'));
      return;
    }
    req.deltasyncUserId = userId;
    next();
  });

  const post = (path, run) =>
    router.post(path, async (req, res) => {
      try {
        const body = await readBody(req, maxBodyBytes);
        sendJsonText(res, 200, await run(req.deltasyncUserId, body, req));
      } catch (error) {
        sendError(res, error);
      }
    });
  const get = (path, run) =>
    router.get(path, async (req, res) => {
      try {
        sendJsonText(res, 200, await run(req.deltasyncUserId, req));
      } catch (error) {
        sendError(res, error);
      }
    });

  post('/v2', (userId, body) => server._native().sync(userId, body));
  post('/push', (userId, body) => server._native().compatPush(userId, body, idFields));
  post('/pull', (userId, body) => server._native().compatPull(userId, body, idFields));
  post('/full', (userId, body) => server._native().compatFull(userId, body, idFields));
  post('/resolve-conflict', (userId, body) => server._native().compatResolve(userId, body));
  get('/status/:deviceId', async (userId, req) => {
    const { deviceId } = req.params;
    if (Buffer.byteLength(deviceId) > 256) throw is.invalid('deviceId', 'at most 256 bytes', deviceId);
    const status = JSON.parse(await server._native().status(userId, deviceId));
    return JSON.stringify({ success: true, ...status });
  });
  get('/changes', (userId, req) => {
    const { since } = req.query;
    if (since !== undefined && typeof since !== 'string') throw is.invalid('since', 'an ISO 8601 time', since);
    return server._native().compatChanges(userId, since ?? null, idFields);
  });
  router.use((req, res) => sendError(res, new SyncError(`No sync route ${req.method} ${req.path}`, 'NOT_FOUND')));
  return router;
}

module.exports = { createSyncRouter, SyncServer };
