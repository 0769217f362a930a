'use strict';

// deltasync/inspector: a web page and its JSON API for the people who support an app's users.
//
//   app.use('/inspect', createInspector(server, { authenticate: (req) => req.user?.isAdmin && req.user.email }));
//
// Users, their devices and lag, the change log, an entity's history with field diffs, open
// conflicts resolved by clicking (through the same path as server.resolveConflict), and charts
// of activity. Every view is read by the core (SyncServerCore::Inspect); this file maps URLs to
// it and checks the types of what a URL carries.

const { SyncServer } = require('./server');
const { SyncError } = require('./errors');
const is = require('./is');
const { createSurface, positiveId } = require('./inspector/surface');

const INTEGER = /^(0|[1-9][0-9]{0,15})$/;

/** The query parameters a view accepts, read as their types; the core checks their values. */
function readQuery(query, spec) {
  const params = {};
  for (const [name, value] of Object.entries(query)) {
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) throw new SyncError(`Unknown query parameter "${name}" (accepted: ${Object.keys(spec).join(', ') || 'none'})`, 'INVALID_ARGUMENT');
    if (value === '') continue;
    if (kind === 'integer') {
      if (!INTEGER.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new SyncError(`Expected a non-negative integer for ${name} but received "${value.slice(0, 40)}"`, 'INVALID_ARGUMENT');
      }
      params[name] = Number(value);
    } else {
      params[name] = is.wellFormed(name, value);
    }
  }
  return params;
}

const PAGE = { limit: 'integer' };

function serverRoutes(server) {
  const inspect = async (view, params) => JSON.parse(await server._native().inspect(view, params));
  return [
    { method: 'GET', path: '/api/users', run: ({ query }) => inspect('users', readQuery(query, { ...PAGE, after: 'string' })) },
    {
      method: 'GET',
      path: '/api/users/:userId/devices',
      run: ({ params, query }) => inspect('devices', { ...readQuery(query, { ...PAGE, after: 'string' }), userId: params.userId }),
    },
    {
      method: 'GET',
      path: '/api/users/:userId/changes',
      run: ({ params, query }) =>
        inspect('changes', {
          ...readQuery(query, { ...PAGE, before: 'integer', entityType: 'string', entityId: 'string', deviceId: 'string', changeType: 'string' }),
          userId: params.userId,
        }),
    },
    {
      method: 'GET',
      path: '/api/users/:userId/entities/:entityType/:entityId',
      run: ({ params, query }) => inspect('entity', { ...readQuery(query, PAGE), ...params }),
    },
    {
      method: 'GET',
      path: '/api/users/:userId/conflicts',
      run: ({ params, query }) => {
        const { after, ...rest } = readQuery(query, { ...PAGE, after: 'integer' });
        return inspect('conflicts', { ...rest, afterId: after, userId: params.userId });
      },
    },
    {
      method: 'POST',
      path: '/api/users/:userId/conflicts/:conflictId/resolve',
      run: ({ params, body }) => server.resolveConflict(params.userId, positiveId(params.conflictId, 'conflictId'), body),
    },
    { method: 'GET', path: '/api/activity', run: ({ query }) => inspect('activity', readQuery(query, { days: 'integer', userId: 'string' })) },
  ];
}

/**
 * The server's inspector: one web page and its JSON API, as an Express-compatible handler
 * (`app.use('/inspect', createInspector(server, { authenticate }))`; it also runs under node:http).
 * Every request, the page included, must pass `authenticate`; state-changing calls also need the
 * CSRF token the page reads from `GET api/session`.
 * @param {SyncServer} server
 * @param {import('../types/inspector').InspectorOptions} options
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: Function) => void}
 */
function createInspector(server, options) {
  if (!(server instanceof SyncServer)) throw is.invalid('server', 'a SyncServer', server);
  if (!is.isPlainObject(options)) throw is.invalid('options', 'an object with authenticate', options);
  const { authenticate } = is.optionsObject('options', options, ['authenticate']);
  if (typeof authenticate !== 'function') {
    throw is.invalid('options.authenticate', 'a function (req) => admin identity or a falsy value', authenticate);
  }
  return createSurface({ authenticate, routes: serverRoutes(server), session: { mode: 'server', readOnly: false } });
}

module.exports = { createInspector };
