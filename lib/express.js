'use strict';

// deltasync/express: the sync routes for an Express app.
//
//   app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.user?.id }));
//
// Bodies are read as bytes and handed to C++; nothing is parsed on the main thread.

const { SyncServer, idFieldsArg, isUserId, USER_ID_RULE } = require('./server');
const { SyncError } = require('./errors');
const is = require('./is');
const { readBody, sendError, sendJsonText } = require('./http');

const { LiveStreams, LIVE_DEFAULTS } = require('./live-server');

const ROUTER_OPTIONS = ['authenticate', 'limits', 'idFields', 'heartbeatMs'];
const EVENTS_PATH = '/v2/events';
function loadExpress() {
  try {
    return require('express');
  } catch (error) {
    throw new Error('deltasync/express needs the "express" package: npm install express', { cause: error });
  }
}

/**
 * Creates the Express router of the sync protocol: POST /v2, GET /v2/events (live updates), and the compatible
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
  const limits = is.optionsObject('options.limits', options.limits, ['maxBodyBytes', 'maxConcurrentRequests', 'maxStreams', 'maxStreamsPerUser']);
  const maxBodyBytes = limits.maxBodyBytes ?? server.limits.maxBodyBytes;
  if (!is.isPositiveInteger(maxBodyBytes)) throw is.invalid('options.limits.maxBodyBytes', 'a positive integer', maxBodyBytes);
  const maxConcurrentRequests = limits.maxConcurrentRequests ?? 64;
  if (!is.isPositiveInteger(maxConcurrentRequests)) {
    throw is.invalid('options.limits.maxConcurrentRequests', 'a positive integer', maxConcurrentRequests);
  }
  const live = { ...LIVE_DEFAULTS };
  for (const key of ['maxStreams', 'maxStreamsPerUser']) {
    if (limits[key] === undefined) continue;
    if (!is.isPositiveInteger(limits[key])) throw is.invalid(`options.limits.${key}`, 'a positive integer', limits[key]);
    live[key] = limits[key];
  }
  if (options.heartbeatMs !== undefined) {
    if (!is.isPositiveInteger(options.heartbeatMs) || options.heartbeatMs > 2 ** 31 - 1) {
      throw is.invalid('options.heartbeatMs', 'a positive integer of milliseconds', options.heartbeatMs);
    }
    live.heartbeatMs = options.heartbeatMs;
  }
  const streams = new LiveStreams(server, live);
  let inFlight = 0;
  const idFields = { ...server._idFields, ...(idFieldsArg('options.idFields', options.idFields) ?? {}) };

  const express = loadExpress();
  const router = express.Router();

  // Requests in flight are bounded: past the bound a request is refused at once with 503 and
  // Retry-After, so a burst of large pushes cannot hold unbounded memory or starve small ones.
  router.use((req, res, next) => {
    if (req.method === 'GET' && req.path === EVENTS_PATH) {
      next(); // a live stream stays open: it counts against the stream limits instead
      return;
    }
    if (inFlight >= maxConcurrentRequests) {
      req.resume();
      sendError(res, new SyncError(`The server is handling ${inFlight} sync requests; try again shortly`, 'OVERLOADED'));
      return;
    }
    inFlight += 1;
    let done = false;
    const release = () => {
      if (!done) {
        done = true;
        inFlight -= 1;
      }
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  });

  // Then every route authenticates; the user id never comes from the body.
  router.use(async (req, res, next) => {
    let userId;
    try {
      userId = await authenticate(req);
    } catch (error) {
      sendError(res, new SyncError(`Authentication failed: ${error && error.message ? error.message : error}`, 'UNAUTHENTICATED'));
      return;
    }
    if (userId === undefined || userId === null || userId === '') {
      sendError(res, new SyncError('Authentication required', 'UNAUTHENTICATED'));
      return;
    }
    if (!isUserId(userId)) {
      sendError(res, new SyncError(`authenticate returned an invalid user id: expected ${USER_ID_RULE}`, 'UNAUTHENTICATED'));
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

  const deviceHeader = (req) => {
    const value = req.get('x-device-id');
    return typeof value === 'string' && value.length > 0 ? value : null;
  };
  post('/v2', (userId, body, req) =>
    server._exchange((exchange) => server._native().sync(userId, body, deviceHeader(req), exchange)));
  router.get(EVENTS_PATH, async (req, res) => {
    try {
      const refused = streams.refusal(req.deltasyncUserId);
      if (refused) throw refused;
      await streams.serve(req.deltasyncUserId, req, res);
    } catch (error) {
      sendError(res, error);
    }
  });
  get('/v2/status', async (userId, req) => {
    const deviceId = deviceHeader(req) ?? (typeof req.query.deviceId === 'string' ? req.query.deviceId : undefined);
    if (deviceId === undefined) throw is.invalid('deviceId', 'a device id in the X-Device-ID header or ?deviceId=', deviceId);
    return JSON.stringify({ success: true, ...(await server.status(userId, deviceId)) });
  });
  post('/v2/migrate', async (userId, body) => {
    // The legacy state, { entityType: [records] }, bare or as { state: {...} }: imported once.
    let parsed;
    try {
      parsed = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : body);
    } catch (error) {
      throw new SyncError(`Malformed JSON in the request body (${error.message})`, 'INVALID_ARGUMENT');
    }
    if (!is.isPlainObject(parsed)) throw is.invalid('the request body', 'an object { entityType: [records] }', parsed);
    const keys = Object.keys(parsed).filter((key) => key !== 'deviceId');
    const state = keys.length === 1 && keys[0] === 'state' && is.isPlainObject(parsed.state) ? parsed.state : parsed;
    if (state === parsed && 'deviceId' in parsed) delete parsed.deviceId;
    return JSON.stringify({ success: true, ...(await server.importSnapshot(userId, state, { idFields })) });
  });
  post('/push', (userId, body) => server._exchange((exchange) => server._native().compatPush(userId, body, idFields, exchange)));
  post('/pull', (userId, body) => server._native().compatPull(userId, body, idFields));
  post('/full', (userId, body) => server._exchange((exchange) => server._native().compatFull(userId, body, idFields, exchange)));
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
  // Errors Express raises itself (a malformed %-escape in a path, say) answer JSON too, never
  // an HTML page with a stack trace.
  // eslint-disable-next-line no-unused-vars
  router.use((error, req, res, next) => {
    const status = Number(error && (error.status ?? error.statusCode));
    if (status >= 400 && status < 500) {
      if (!res.headersSent) res.status(status).json({ error: { code: 'INVALID_ARGUMENT', message: String(error.message) } });
      return;
    }
    sendError(res, error);
  });
  return router;
}

module.exports = { createSyncRouter, SyncServer };
