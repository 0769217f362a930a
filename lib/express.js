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
const { UserTally } = require('./tally');

const ROUTER_OPTIONS = ['authenticate', 'limits', 'idFields', 'heartbeatMs'];
const LIMIT_OPTIONS = ['maxBodyBytes', 'maxConcurrentRequests', 'maxConcurrentRequestsPerUser', 'bodyIdleTimeoutMs', 'maxStreams', 'maxStreamsPerUser'];
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's largest delay
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
  const limits = is.optionsObject('options.limits', options.limits, LIMIT_OPTIONS);
  const limit = (key, fallback, max = Number.MAX_SAFE_INTEGER) => {
    const value = limits[key] ?? fallback;
    if (!is.isPositiveInteger(value) || value > max) {
      throw is.invalid(`options.limits.${key}`, max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from 1 to ${max}`, value);
    }
    return value;
  };
  const maxBodyBytes = limit('maxBodyBytes', server.limits.maxBodyBytes);
  const maxConcurrentRequests = limit('maxConcurrentRequests', 64);
  // Half the slots by default: one user never takes them all, and its devices still get many.
  const maxConcurrentRequestsPerUser = limit('maxConcurrentRequestsPerUser', Math.max(1, Math.floor(maxConcurrentRequests / 2)));
  const bodyIdleTimeoutMs = limit('bodyIdleTimeoutMs', 30_000, MAX_TIMER_MS);
  const live = { ...LIVE_DEFAULTS };
  for (const key of ['maxStreams', 'maxStreamsPerUser']) live[key] = limit(key, LIVE_DEFAULTS[key]);
  if (options.heartbeatMs !== undefined) {
    if (!is.isPositiveInteger(options.heartbeatMs) || options.heartbeatMs > MAX_TIMER_MS) {
      throw is.invalid('options.heartbeatMs', 'a positive integer of milliseconds', options.heartbeatMs);
    }
    live.heartbeatMs = options.heartbeatMs;
  }
  const streams = new LiveStreams(server, live);
  let inFlight = 0; // requests, counted from before authentication
  const inFlightOfUser = new UserTally();
  const idFields = { ...server._idFields, ...(idFieldsArg('options.idFields', options.idFields) ?? {}) };

  const express = loadExpress();
  const router = express.Router();

  // Requests in flight are bounded, in all and per user: past a bound a request is refused at
  // once with 503 and Retry-After, so a burst of large pushes cannot hold unbounded memory or
  // starve small ones, and one user's requests (bodies sent slowly, say) cannot shut out others.
  // Live streams count against the stream limits instead.
  const isStream = (req) => req.method === 'GET' && req.path === EVENTS_PATH;
  const refuse = (req, res, message) => {
    req.resume();
    sendError(res, new SyncError(message, 'OVERLOADED'));
  };
  router.use((req, res, next) => {
    if (isStream(req)) {
      next();
      return;
    }
    if (inFlight >= maxConcurrentRequests) {
      refuse(req, res, `The server is handling ${inFlight} sync requests; try again shortly`);
      return;
    }
    inFlight += 1;
    onceAnswered(res, () => {
      inFlight -= 1;
    });
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
    if (!isStream(req)) {
      if (inFlightOfUser.of(userId) >= maxConcurrentRequestsPerUser) {
        refuse(req, res, `This user has ${inFlightOfUser.of(userId)} sync requests in flight, the limit; try again shortly`);
        return;
      }
      inFlightOfUser.add(userId, 1);
      onceAnswered(res, () => inFlightOfUser.add(userId, -1));
    }
    next();
  });

  const post = (path, run) =>
    router.post(path, async (req, res) => {
      try {
        const body = await readBody(req, maxBodyBytes, { idleTimeoutMs: bodyIdleTimeoutMs });
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
  // The response's bytes go to the socket as C++ wrote them: no JavaScript string on the way.
  post('/v2', (userId, body, req) =>
    server._exchange((exchange) => server._native().sync(userId, body, deviceHeader(req), exchange)));
  // HEAD is answered at once, with a stream's headers and no stream: Express would otherwise
  // hand it to the GET route, which keeps a response open.
  router.head(EVENTS_PATH, (req, res) => {
    try {
      streams.head(req.deltasyncUserId, res);
    } catch (error) {
      sendError(res, error);
    }
  });
  router.get(EVENTS_PATH, async (req, res) => {
    try {
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
  // The legacy state, { entityType: [records] }, bare or as { state: {...} }: imported once.
  post('/v2/migrate', (userId, body) => server._native().compatMigrate(userId, body, idFields));
  post('/push', (userId, body) => server._exchange((exchange) => server._native().compatPush(userId, body, idFields, exchange)));
  post('/pull', (userId, body) => server._native().compatPull(userId, body, idFields));
  post('/full', (userId, body) => server._exchange((exchange) => server._native().compatFull(userId, body, idFields, exchange)));
  post('/resolve-conflict', (userId, body) => server._native().compatResolve(userId, body));
  get('/status/:deviceId', async (userId, req) => JSON.stringify({ success: true, ...(await server.status(userId, req.params.deviceId)) }));
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

/**
 * Calls `release` once, when the response is sent or its connection goes away first, or at once
 * when that already happened (a client that left while an async authenticate ran).
 */
function onceAnswered(res, release) {
  if (res.destroyed || res.writableFinished) {
    release();
    return;
  }
  let done = false;
  const once = () => {
    if (!done) {
      done = true;
      release();
    }
  };
  res.on('finish', once);
  res.on('close', once);
}

module.exports = { createSyncRouter, SyncServer };
