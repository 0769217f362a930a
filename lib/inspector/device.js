'use strict';

// The device inspector (`deltasync inspect --web client.db`): the page's device mode over one
// client database file, opened as an observer for each request and closed after it: an app
// that has it open keeps its in-flight changes, on every platform, and an app that starts
// meanwhile still recovers its own crash leftovers. Read-only unless
// allowWrites: then failed changes can be retried, queued ones discarded (never one in flight)
// and conflicts resolved, each through the client's own API.

const { SyncError } = require('../errors');
const { createSurface, positiveId } = require('./surface');

const LISTED = 200;

function deviceRoutes(openClient, { allowWrites, file }) {
  const withClient = async (fn) => {
    const client = openClient();
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  };
  const writing = (fn) => (request) => {
    if (!allowWrites) throw new SyncError('This inspector is read-only: start it with --allow-writes to change the database', 'FORBIDDEN');
    return withClient((client) => fn(client, request));
  };
  return [
    {
      method: 'GET',
      path: '/api/device',
      run: () =>
        withClient((client) => {
          const stats = client.queue.stats();
          // Only the export lists changes in flight; it is read only while some are.
          const inFlight = stats.syncing > 0 ? client.queue.export().changes.filter((change) => change.status === 'syncing') : [];
          return {
            path: file,
            deviceId: client.deviceId,
            serverVersion: client.serverVersion,
            stats,
            pending: client.queue.pending({ limit: LISTED }),
            inFlight: inFlight.slice(0, LISTED),
            failed: client.queue.failed().slice(0, LISTED),
            conflicts: client.conflicts(),
            ingest: client.ingestStatus(),
          };
        }),
    },
    { method: 'POST', path: '/api/queue/retry-failed', run: writing((client) => ({ retried: client.queue.retryFailed() })) },
    {
      method: 'POST',
      path: '/api/queue/:changeId/discard',
      run: writing((client, { params }) => {
        client.queue.discard(params.changeId);
        return { discarded: params.changeId };
      }),
    },
    {
      method: 'POST',
      path: '/api/conflicts/:conflictId/resolve',
      run: writing((client, { params, body }) => ({ document: client.resolveConflict(positiveId(params.conflictId, 'conflictId'), body) ?? null })),
    },
  ];
}

/**
 * The device inspector's handler for node:http.
 * @param {object} options
 * @param {() => import('../client').SyncClient} options.openClient opens the database (closed after each request)
 * @param {string} options.file the database file, as shown
 * @param {boolean} options.allowWrites
 * @param {(req) => unknown} options.authenticate
 * @param {(req, res, url: URL) => void} [options.login]
 * @param {string[]} options.allowedHosts
 */
function createDeviceInspector({ openClient, file, allowWrites, authenticate, login, allowedHosts }) {
  return createSurface({
    authenticate,
    login,
    allowedHosts,
    routes: deviceRoutes(openClient, { allowWrites, file }),
    session: { mode: 'device', readOnly: !allowWrites, path: file },
  });
}

module.exports = { createDeviceInspector };
