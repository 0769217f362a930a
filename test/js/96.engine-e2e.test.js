'use strict';

// End to end: real SyncClients with httpTransport against a real SyncServer behind
// Express on 127.0.0.1. Offline edits that converge, a lost conflict rolled back,
// 503 + Retry-After, a poison change, a write during a sync, stop()/close() in the
// middle of a cycle, and the process lifecycle (keepAlive) in child processes.
// Waits are driven by events; the test timeouts are the only time bounds.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { tempDir } = require('./helpers');
const { startApp, logOf, assertGapless, stateOf } = require('./fixtures/server-http');
const {
  SyncClient,
  SyncError,
  deferred,
  tick,
  recordEvents,
  until,
  nextEvent,
  queueRows,
  sched,
} = require('./fixtures/engine-harness');
const { httpTransport } = require('../..');

const TIMEOUT = { timeout: 30000 };
const CHILD = path.join(__dirname, 'fixtures', 'engine-child.js');

/** startApp, closed when `t` ends. */
async function app(t, options) {
  const started = await startApp(options);
  t.after(() => started.close());
  return started;
}

/**
 * A client of `user` on `base` through httpTransport, recording every request it
 * sends (body and Date.now()). `net.offline = true` makes fetch fail like a dead
 * network and counts the attempts. keepAlive: the engine's timers hold the test
 * process while it waits; close() (at the end of `t`) releases them.
 */
function httpClient(t, base, user, options = {}) {
  const net = { offline: false, attemptsOffline: 0, requests: [] };
  const fetchImpl = async (url, init) => {
    if (net.offline) {
      net.attemptsOffline += 1;
      throw new TypeError('fetch failed');
    }
    return fetch(url, init);
  };
  const inner = httpTransport({ url: base, headers: { 'x-user': user }, fetch: fetchImpl });
  const transport = (request, context) => {
    net.requests.push({ ...request, at: Date.now() });
    return inner(request, context);
  };
  const client = new SyncClient({
    path: ':memory:',
    keepAlive: true,
    transport,
    triggers: { periodicMs: 25, minIntervalMs: 0, localChangeDelayMs: 0 },
    ...options,
  });
  const events = recordEvents(client);
  client.on('error', () => {});
  t.after(() => client.close());
  return { client, events, net };
}

/** Documents of `type` as { id: doc }, from list() (every document carries its own id field `id`). */
function docs(client, type = 'note') {
  return client.list(type, { orderBy: 'id' });
}

/** `type/id -> doc` for the documents of `client`, comparable with stateOf(). */
function stateOfClient(client, ids, type = 'note') {
  const out = {};
  for (const id of ids) {
    const doc = client.get(type, id);
    if (doc !== undefined) out[`${type}/${id}`] = doc;
  }
  return out;
}

describe('two clients', () => {
  test('edit offline, reconnect and converge', TIMEOUT, async (t) => {
    const server = await app(t, { serverOptions: { conflicts: 'merge' } });
    const a = httpClient(t, server.base, 'alice', { conflicts: 'merge' });
    const b = httpClient(t, server.base, 'alice', { conflicts: 'merge' });
    a.client.put('note', 'shared', { id: 'shared', title: 'first', body: 'first' });
    a.client.start();
    b.client.start();
    // Both idle (no cycle in flight that could still send the offline writes), then offline at once.
    await until([a.client, b.client], ['sync', 'status'], () =>
      b.client.get('note', 'shared') !== undefined &&
      a.client.status.pendingChanges === 0 &&
      a.client.status.state === 'idle' &&
      b.client.status.state === 'idle');

    // Both go offline and edit: disjoint fields of the shared note, new notes, a note made and deleted.
    for (const side of [a, b]) {
      side.client.notify('offline');
      side.net.offline = true;
    }
    a.client.patch('note', 'shared', { title: 'from A' });
    a.client.put('note', 'a1', { id: 'a1', by: 'A' });
    a.client.put('note', 'a2', { id: 'a2', by: 'A' });
    a.client.delete('note', 'a2');
    b.client.patch('note', 'shared', { body: 'from B' });
    b.client.put('note', 'b1', { id: 'b1', by: 'B' });
    b.client.transaction(() => {
      b.client.put('note', 'b2', { id: 'b2', by: 'B' });
      b.client.patch('note', 'b1', { extra: true });
    });
    for (let i = 0; i < 10; i += 1) await tick();
    for (const side of [a, b]) {
      assert.equal(side.client.status.state, 'offline');
      assert.equal(side.net.attemptsOffline, 0, 'no automatic attempt while offline');
      assert.ok(side.client.status.pendingChanges > 0);
    }

    for (const side of [a, b]) {
      side.net.offline = false;
      side.client.notify('online');
    }
    const ids = ['shared', 'a1', 'a2', 'b1', 'b2'];
    await until([a.client, b.client], ['sync'], () => {
      const latest = Math.max(a.client.serverVersion, b.client.serverVersion);
      return (
        a.client.status.pendingChanges === 0 &&
        b.client.status.pendingChanges === 0 &&
        a.client.serverVersion === b.client.serverVersion &&
        latest > 0 &&
        JSON.stringify(docs(a.client)) === JSON.stringify(docs(b.client))
      );
    });
    const expected = {
      'note/shared': { id: 'shared', title: 'from A', body: 'from B' },
      'note/a1': { id: 'a1', by: 'A' },
      'note/b1': { id: 'b1', by: 'B', extra: true },
      'note/b2': { id: 'b2', by: 'B' },
    };
    assert.deepEqual(stateOfClient(a.client, ids), expected);
    assert.deepEqual(stateOfClient(b.client, ids), expected);
    assert.deepEqual(await stateOf(server.server, 'alice'), expected, 'the server agrees');
    assertGapless((await logOf(server.server, 'alice')).changes);
    for (const side of [a, b]) {
      assert.equal(side.client.status.failedChanges, 0);
      assert.equal(side.client.get('note', 'shared', { meta: true }).meta.dirty, false);
    }
  });

  test('a lost conflict rolls back the loser\'s optimistic state and emits "conflict"', TIMEOUT, async (t) => {
    const server = await app(t, { serverOptions: { conflicts: 'server_wins' } });
    const a = httpClient(t, server.base, 'alice');
    const b = httpClient(t, server.base, 'alice');
    a.client.put('note', 'n1', { title: 'original', body: 'text' });
    await a.client.sync();
    await b.client.sync();
    assert.deepEqual(b.client.get('note', 'n1'), { title: 'original', body: 'text' });

    a.client.patch('note', 'n1', { title: 'A wins' });
    const loser = b.client.patch('note', 'n1', { title: 'B loses' });
    b.client.put('note', 'other', { untouched: true });
    assert.deepEqual(b.client.get('note', 'n1'), { title: 'B loses', body: 'text' }, 'optimistic local state');
    await a.client.sync();

    const conflict = nextEvent(b.client, 'conflict');
    const summary = await b.client.sync();
    const event = await conflict;
    assert.equal(event.source, 'server');
    assert.equal(event.changeId, loser.changeId);
    assert.equal(event.entityType, 'note');
    assert.equal(event.entityId, 'n1');
    assert.equal(event.winner, 'server');
    assert.equal(event.resolution, 'server_wins');
    assert.equal(typeof event.reason, 'string');
    assert.equal(event.serverVersion, 2);
    assert.equal(summary.conflicts, 1);
    assert.equal(summary.pushed, 1, 'the other change went through');

    assert.deepEqual(b.client.get('note', 'n1'), { title: 'A wins', body: 'text' }, 'rolled back to the server');
    const meta = b.client.get('note', 'n1', { meta: true }).meta;
    assert.equal(meta.dirty, false);
    assert.equal(meta.version, 2);
    assert.equal(queueRows(b.client).find((row) => row.changeId === loser.changeId), undefined, 'the lost change left the queue');
    assert.deepEqual(b.client.get('note', 'other'), { untouched: true });
    assert.equal(b.client.status.pendingChanges, 0);
    assert.equal(b.events.of('conflict').length, 1);

    await a.client.sync();
    assert.deepEqual(a.client.get('note', 'other'), { untouched: true });
    assert.deepEqual(a.client.get('note', 'n1'), b.client.get('note', 'n1'));
  });
});

describe('server trouble', () => {
  test('503 with Retry-After: 1 is retried no earlier than a second later, and succeeds', TIMEOUT, async (t) => {
    const arrivals = [];
    let refused = false;
    const server = await app(t, {
      before: (express) =>
        express.use((req, res, next) => {
          arrivals.push(Date.now());
          if (!refused && req.path === '/api/sync/v2') {
            refused = true;
            res.set('Retry-After', '1').status(503).json({ error: { code: 'BUSY', message: 'try later' } });
            return;
          }
          next();
        }),
    });
    const { client, net } = httpClient(t, server.base, 'alice', {
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
      retry: { baseDelayMs: 10, maxDelayMs: 10 },
    });
    client.put('note', 'n1', { v: 1 });
    const failed = nextEvent(client, 'error');
    client.start();
    const error = await failed;
    assert.equal(error.code, 'TRANSPORT');
    assert.equal(error.status, 503);
    assert.equal(error.retryAfterMs, 1000);
    const refusedAt = arrivals[0];
    const status = client.status;
    assert.equal(status.state, 'backoff');
    assert.ok(status.nextSyncAt >= refusedAt + 1000, `next sync ${status.nextSyncAt - refusedAt} ms after the 503`);
    assert.equal(status.lastError.code, 'TRANSPORT');
    assert.equal(queueRows(client)[0].retryCount, 0);

    await nextEvent(client, 'sync');
    assert.equal(net.requests.length, 2);
    assert.ok(arrivals[1] >= status.nextSyncAt, `retried ${arrivals[1] - refusedAt} ms after the 503`);
    assert.equal(client.status.pendingChanges, 0);
    assert.equal(client.status.lastError, null);
    assert.equal(sched(client).failures, 0);
    assert.deepEqual((await logOf(server.server, 'alice')).changes.map((change) => change.entityId), ['n1']);
  });

  test('the health check brings a client back after a server outage without any notify()', TIMEOUT, async (t) => {
    const http = require('node:http');
    const express = require('express');
    const { SyncServer } = require('../..');
    const { createSyncRouter } = require('deltasync/express');
    const server = new SyncServer({ path: ':memory:' });
    t.after(() => server.close());
    const app = express();
    app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.get('x-user') }));
    const listen = (port) =>
      new Promise((resolve, reject) => {
        const httpServer = http.createServer(app);
        httpServer.once('error', reject);
        httpServer.listen(port, '127.0.0.1', () => resolve(httpServer));
      });
    const close = (httpServer) => {
      httpServer.closeAllConnections();
      return new Promise((resolve) => httpServer.close(resolve));
    };
    let httpServer = await listen(0);
    const { port } = httpServer.address();
    t.after(() => close(httpServer));
    const probes = [];
    const base = `http://127.0.0.1:${port}/api/sync`;
    const { client } = httpClient(t, base, 'alice', {
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
      retry: { baseDelayMs: 5, maxDelayMs: 20 },
      // httpClient wraps its transport (to record requests), so the probe's URL is given.
      healthCheck: { url: `${base}/v2/status`, intervalMs: 20, timeoutMs: 1000, unreachableAfter: 3 },
    });
    const probe = client._engine._options.healthCheck.probe;
    const twoFailedProbes = deferred();
    client._engine._options.healthCheck.probe = async (args) => {
      const reached = await probe(args);
      probes.push(reached);
      if (probes.length === 2) twoFailedProbes.resolve();
      return reached;
    };
    const EVENTS = ['status', 'sync', 'error', 'change'];
    client.start();
    client.put('note', 'before', { v: 1 });
    await until(client, EVENTS, () => client.status.pendingChanges === 0 && client.status.state === 'idle');

    await close(httpServer); // the server goes down; the OS still says online
    client.put('note', 'during', { v: 2 });
    await until(client, EVENTS, () => client.status.offlineReason === 'unreachable'); // after three unreachable cycles
    assert.equal(client.status.state, 'offline');
    await twoFailedProbes.promise; // probes while the server is down
    const ownProbe = httpTransport({ url: base, headers: { 'x-user': 'alice' } }).probe;
    assert.equal(await ownProbe({ deviceId: 'd', timeoutMs: 1000 }), false, "httpTransport's probe: nothing answers");
    assert.ok(probes.every((reached) => reached === false));

    httpServer = await listen(port); // back, on the same address
    await until(client, EVENTS, () => client.status.pendingChanges === 0); // the write made during the outage reached the server
    assert.equal(client.status.offlineReason, null);
    assert.notEqual(client.status.state, 'offline');
    assert.equal(probes[probes.length - 1], true);
    assert.equal(await ownProbe({ deviceId: 'd', timeoutMs: 1000 }), true, "httpTransport's probe: GET {url}/v2/status answers");
    assert.deepEqual((await logOf(server, 'alice')).changes.map((change) => change.entityId), ['before', 'during']);
  });

  test('healthCheck needs a URL with a transport other than httpTransport; its options are checked', () => {
    const transport = async () => '{}';
    assert.throws(() => new SyncClient({ path: ':memory:', transport, healthCheck: {} }), /healthCheck\.url/);
    for (const healthCheck of [{ intervalMs: 0 }, { timeoutMs: -1 }, { unreachableAfter: 1.5 }, { url: 'ftp://x' }, { nope: 1 }]) {
      assert.throws(
        () => new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'http://127.0.0.1:9' }), healthCheck }),
        (error) => error instanceof SyncError && error.code === 'INVALID_ARGUMENT',
        JSON.stringify(healthCheck),
      );
    }
    const client = new SyncClient({ path: ':memory:', transport, healthCheck: { url: 'http://127.0.0.1:9/health' } });
    assert.equal(client.status.offlineReason, null);
    client.close();
    // httpTransport carries its own probe: {url}/v2/status.
    new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'http://127.0.0.1:9' }), healthCheck: true }).close();
  });

  test('401 from authenticate stops automatic syncing with AUTH until notify("online")', TIMEOUT, async (t) => {
    let allow = false;
    const server = await app(t, { authenticate: (req) => (allow ? req.get('x-user') : undefined) });
    const { client, net } = httpClient(t, server.base, 'alice');
    client.put('note', 'n1', { v: 1 });
    const failed = nextEvent(client, 'error');
    client.start();
    const error = await failed;
    assert.equal(error.code, 'AUTH');
    assert.equal(error.status, 401);
    await tick();
    client.put('note', 'n2', { v: 1 });
    assert.equal(client._handle.schedNextWakeAt(), null, 'no periodic or write-triggered cycle');
    for (let i = 0; i < 10; i += 1) await tick();
    assert.equal(net.requests.length, 1);
    allow = true;
    client.notify('online');
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    assert.deepEqual((await logOf(server.server, 'alice')).changes.map((change) => change.entityId), ['n1', 'n2']);
  });
});

describe('poison changes', () => {
  test('a change the server rejects (errors[]) fails alone after maxRetries; the rest syncs', TIMEOUT, async (t) => {
    const server = await app(t);
    const { client } = httpClient(t, server.base, 'alice', { retry: { maxRetries: 3 } });
    client.put('note', 'before', { v: 1 });
    const poison = client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'ghost', data: { x: 1 } });
    client.put('note', 'after', { v: 1 });
    client.start();
    await until(client, ['sync'], () => client.status.failedChanges === 1 && client.status.pendingChanges === 0);
    const row = queueRows(client).find((r) => r.changeId === poison.changeId);
    assert.equal(row.status, 'failed');
    assert.equal(row.retryCount, 3);
    assert.match(row.lastError, /^NOT_FOUND: /);
    for (const other of queueRows(client).filter((r) => r.changeId !== poison.changeId)) assert.equal(other.status, 'synced');
    assert.deepEqual((await logOf(server.server, 'alice')).changes.map((change) => change.entityId), ['before', 'after']);
    const reader = httpClient(t, server.base, 'alice');
    await reader.client.sync();
    assert.deepEqual(reader.client.get('note', 'after'), { v: 1 });
    assert.equal(reader.client.get('note', 'ghost'), undefined);

    // Other entities keep syncing; a later change of the failed entity waits behind it.
    const behind = client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'ghost', data: { x: 2 } });
    client.put('note', 'later', { v: 1 });
    await until(client, ['sync'], () => client.get('note', 'later', { meta: true }).meta.dirty === false);
    assert.equal(queueRows(client).find((r) => r.changeId === behind.changeId).status, 'pending');
    assert.equal(client.status.failedChanges, 1);

    client.queue.discard(poison.changeId);
    client.notify('focus');
    await until(client, ['sync'], () => client.status.pendingChanges === 0 && client.status.failedChanges === 0);
    assert.deepEqual((await logOf(server.server, 'alice')).changes.map((change) => change.entityId), ['before', 'after', 'later', 'ghost']);
  });

  test('a later change of the same entity in the same request waits behind a rejected one', async (t) => {
    const server = await app(t);
    const { client } = httpClient(t, server.base, 'alice', { retry: { maxRetries: 2 } });
    const poison = client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'ghost', data: { x: 1 } });
    const behind = client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'ghost', data: { x: 2 } });
    await client.sync();
    const rows = Object.fromEntries(queueRows(client).map((row) => [row.changeId, row]));
    assert.equal(rows[poison.changeId].status, 'failed');
    assert.equal(rows[behind.changeId].status, 'pending', 'per-entity order: it must not overtake the rejected change');
  });

  test('a rejected change retried by a manual sync after its cause is gone is applied', async (t) => {
    // client_wins on the server too: the retried UPDATED meets the other device's newer CREATE.
    const server = await app(t, { serverOptions: { conflicts: 'client_wins' } });
    // client_wins: the pulled CREATED of the entity does not replace the local change.
    const { client } = httpClient(t, server.base, 'alice', { retry: { maxRetries: 1 }, conflicts: 'client_wins' });
    const poison = client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'late', data: { x: 1 } });
    await client.sync();
    assert.equal(client.status.failedChanges, 1);
    const other = httpClient(t, server.base, 'alice');
    other.client.put('note', 'late', { x: 0 });
    await other.client.sync();
    await client.sync(); // manual: failed changes go back to the queue
    const row = queueRows(client).find((r) => r.changeId === poison.changeId);
    assert.equal(row.status, 'synced', `still ${row.status}: ${row.lastError}`);
  });

  test('a change that makes the server refuse the whole request (413) fails alone', async (t) => {
    const server = await app(t, { serverOptions: { limits: { maxDocumentBytes: 200 } } });
    const { client } = httpClient(t, server.base, 'alice', { retry: { maxRetries: 2 } });
    client.put('note', 'good1', { v: 1 });
    const big = client.put('note', 'big', { text: 'x'.repeat(500) });
    client.put('note', 'good2', { v: 2 });
    client.start();
    await until(client, ['sync', 'error'], () => client.status.failedChanges > 0);
    for (let i = 0; i < 10; i += 1) await tick();
    const rows = queueRows(client);
    assert.deepEqual(rows.filter((row) => row.status === 'failed').map((row) => row.changeId), [big.changeId]);
    assert.deepEqual(
      (await logOf(server.server, 'alice')).changes.map((change) => change.entityId).sort(),
      ['good1', 'good2'],
    );
  });
});

describe('during a cycle', () => {
  test('a write during a sync is sent by a following request, and another cycle runs', TIMEOUT, async (t) => {
    const gate = deferred();
    const reached = deferred();
    let first = true;
    const server = await app(t, {
      before: (express) =>
        express.use(async (req, res, next) => {
          if (first && req.path === '/api/sync/v2') {
            first = false;
            reached.resolve();
            await gate.promise;
          }
          next();
        }),
    });
    const { client, events, net } = httpClient(t, server.base, 'alice', {
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
    });
    client.put('note', 'before', { v: 1 });
    client.start();
    await reached.promise;
    assert.equal(client.status.state, 'syncing');
    client.put('note', 'during', { v: 1 });
    gate.resolve();
    await until(client, ['sync', 'error'], () => events.of('sync').length + events.of('error').length >= 2);
    await until(client, ['status'], () => client.status.state === 'idle');
    assert.equal(client.status.pendingChanges, 0);
    assert.deepEqual(net.requests[0].changes.map((change) => change.entityId), ['before']);
    const carried = net.requests.filter((request) => request.changes.some((change) => change.entityId === 'during'));
    assert.equal(carried.length, 1);
    assert.ok(net.requests.indexOf(carried[0]) > 0);
    assert.deepEqual((await logOf(server.server, 'alice')).changes.map((change) => change.entityId), ['before', 'during']);
  });

  /**
   * An app whose first POST /v2 is applied by the server but answered only when
   * `release()` is called (the client sees a request in flight).
   */
  async function appHoldingFirstAnswer(t) {
    const held = deferred();
    let first = true;
    const server = await app(t, {
      before: (express) =>
        express.use((req, res, next) => {
          if (first && req.path === '/api/sync/v2') {
            first = false;
            const end = res.end.bind(res);
            res.end = (...args) => {
              held.resolve(() => end(...args));
              return res;
            };
          }
          next();
        }),
    });
    return { server, answerHeld: held.promise };
  }

  test('stop() mid-cycle (after the server applied the push) loses nothing and duplicates nothing', TIMEOUT, async (t) => {
    const { server, answerHeld } = await appHoldingFirstAnswer(t);
    const { client, events } = httpClient(t, server.base, 'alice');
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 2 });
    client.start();
    const answer = await answerHeld; // applied on the server, not yet answered
    assert.equal((await logOf(server.server, 'alice')).changes.length, 2);
    const waiter = client.sync({ manual: false }); // settles when the aborted cycle has ended
    client.stop();
    await assert.rejects(waiter, (error) => error instanceof SyncError);
    assert.equal(client.status.state, 'stopped');
    assert.equal(client.status.pendingChanges, 2);
    assert.deepEqual(queueRows(client).map((row) => row.status), ['pending', 'pending']);
    answer();
    assert.equal(events.of('error').length, 0, 'stopping is not an error');
    assert.deepEqual(queueRows(client).map((row) => row.retryCount), [0, 0]);

    client.put('note', 'c', { v: 3 });
    client.start();
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    const log = (await logOf(server.server, 'alice')).changes;
    assertGapless(log);
    assert.deepEqual(log.map((change) => change.entityId), ['a', 'b', 'c'], 'the resent changes were recognised');
    for (const row of queueRows(client)) assert.equal(row.status, 'synced');
    assert.deepEqual(client.get('note', 'b', { meta: true }).meta.version, 2);
  });

  test('stop() before the request reached the server loses nothing', TIMEOUT, async (t) => {
    const gate = deferred();
    const reached = deferred();
    let first = true;
    const server = await app(t, {
      before: (express) =>
        express.use(async (req, res, next) => {
          if (first && req.path === '/api/sync/v2') {
            first = false;
            reached.resolve();
            await gate.promise;
          }
          next();
        }),
    });
    const { client } = httpClient(t, server.base, 'alice');
    client.put('note', 'a', { v: 1 });
    client.start();
    await reached.promise;
    const waiter = client.sync({ manual: false }); // settles when the aborted cycle has ended
    client.stop();
    await assert.rejects(waiter, (error) => error instanceof SyncError);
    assert.equal(queueRows(client)[0].status, 'pending');
    gate.resolve();
    client.start();
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    const log = (await logOf(server.server, 'alice')).changes;
    assert.deepEqual(log.map((change) => change.entityId), ['a']);
  });

  test('close() mid-cycle loses nothing: reopened, the changes go out once; nothing fires after close', TIMEOUT, async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'client.db');
    const { server, answerHeld } = await appHoldingFirstAnswer(t);
    const { client, events } = httpClient(t, server.base, 'alice', { path: file });
    const deviceId = client.deviceId;
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 2 });
    client.start();
    const waiter = client.sync({ manual: false });
    const answer = await answerHeld;
    client.close();
    await assert.rejects(waiter, (error) => error instanceof SyncError && error.code === 'CLOSED');
    answer();
    for (let i = 0; i < 20; i += 1) await tick();
    assert.deepEqual(events.afterClose().map((event) => event.name), [], 'no event after close()');

    const { client: reopened } = httpClient(t, server.base, 'alice', { path: file });
    assert.equal(reopened.deviceId, deviceId);
    assert.equal(reopened.status.pendingChanges, 2, 'in-flight changes are pending again');
    assert.deepEqual(reopened.get('note', 'b'), { v: 2 });
    reopened.start();
    await until(reopened, ['sync'], () => reopened.status.pendingChanges === 0);
    const log = (await logOf(server.server, 'alice')).changes;
    assertGapless(log);
    assert.deepEqual(log.map((change) => change.entityId), ['a', 'b'], 'applied once');
  });
});

describe('process lifecycle', () => {
  /** Spawns the child fixture; resolves lines as they come. */
  function child(t, args) {
    const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    const waiters = [];
    let stderr = '';
    let buffer = '';
    proc.stdout.on('data', (chunk) => {
      buffer += chunk;
      let index;
      while ((index = buffer.indexOf('\n')) >= 0) {
        lines.push(buffer.slice(0, index));
        buffer = buffer.slice(index + 1);
        for (const waiter of waiters.slice()) waiter();
      }
    });
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    t.after(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const waitFor = (predicate) =>
      new Promise((resolve) => {
        const check = () => {
          if (predicate(lines)) {
            waiters.splice(waiters.indexOf(check), 1);
            resolve();
          }
        };
        waiters.push(check);
        check();
      });
    return { proc, lines, exited, waitFor, stderr: () => stderr };
  }

  for (const [name, target] of [
    ['an in-process transport', null],
    ['httpTransport', 'http'],
  ]) {
    test(`a started client (${name}) keeps no handle alive: the process exits by itself`, TIMEOUT, async (t) => {
      let url = 'inproc';
      if (target === 'http') url = (await app(t)).base;
      const run = child(t, ['hold', 'false', url]);
      const { code, signal } = await run.exited;
      assert.equal(signal, null, run.stderr());
      assert.equal(code, 0, run.stderr());
      assert.deepEqual(run.lines.slice(0, 3), ['sync 1', 'sync 2', 'released']);
      assert.equal(run.lines[run.lines.length - 1], 'exit');
      assert.ok(!run.lines.some((line) => line.startsWith('error')), run.lines.join('\n'));
    });
  }

  test('with keepAlive: true the process keeps syncing until killed', TIMEOUT, async (t) => {
    const run = child(t, ['hold', 'true', 'inproc']);
    // Released after cycle 2: still alive and syncing three cycles later.
    await run.waitFor((lines) => lines.includes('released') && lines.includes('sync 5'));
    assert.equal(run.proc.exitCode, null);
    assert.ok(!run.lines.includes('exit'), 'it did not exit by itself');
    run.proc.kill('SIGTERM');
    const { signal } = await run.exited;
    assert.equal(signal, 'SIGTERM');
  });

  test('close() with a request in flight (keepAlive: true) stops everything: the process exits, nothing fires after', TIMEOUT, async (t) => {
    let seen = 0;
    const inFlight = deferred();
    const server = await app(t, {
      before: (express) =>
        express.use((req, res, next) => {
          if (req.path !== '/api/sync/v2') return next();
          seen += 1;
          if (seen === 1) return next();
          inFlight.resolve();
          // Never answered: only the client's abort ends this request.
          req.on('close', () => res.destroy());
          return undefined;
        }),
    });
    const run = child(t, ['close', server.base]);
    const { code, signal } = await run.exited;
    assert.equal(signal, null, run.stderr());
    assert.equal(code, 0, run.stderr());
    await inFlight.promise;
    assert.ok(run.lines.includes('sync 1'), run.lines.join('\n'));
    const closedAt = run.lines.indexOf('closed');
    assert.ok(closedAt >= 0, run.lines.join('\n'));
    assert.deepEqual(run.lines.slice(closedAt), ['closed', 'exit'], 'nothing after close()');
    assert.ok(!run.lines.some((line) => line.startsWith('event-after-close')));
  });
});
