'use strict';

// The sync engine (lib/engine.js driving core/scheduler.h) with an in-process
// transport over a real SyncServer: triggers, the minimum interval, one cycle at a
// time, offline, manual syncs, backoff and Retry-After, auth stops, per-change
// rejections, stop() and close(). Timing is checked through the scheduler's own
// nextSyncAt and the order and count of requests, never through wall-clock thresholds.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const Database = require('better-sqlite3');

const { tempDir, assertSyncError } = require('./helpers');
const {
  SyncClient,
  SyncError,
  TransportError,
  tick,
  inProcessTransport,
  newServer,
  serverLog,
  FAST,
  engineClient,
  until,
  nextEvent,
  queueRows,
  httpError,
  networkError,
  sched,
} = require('./fixtures/engine-harness');

const TIMEOUT = { timeout: 30000 };

/** Cycles that ended (successfully or not) according to the recorded events. */
function endedCycles(events) {
  return events.filter((event) => event.name === 'sync' || event.name === 'error').length;
}

describe('options', () => {
  test('engine options are validated', async (t) => {
    const base = { path: ':memory:' };
    assertSyncError(() => new SyncClient({ ...base, transport: 'http://x' }), 'INVALID_ARGUMENT', /options\.transport/);
    const transport = async () => '{}';
    assertSyncError(() => new SyncClient({ ...base, transport, keepAlive: 1 }), 'INVALID_ARGUMENT', /options\.keepAlive/);
    assertSyncError(() => new SyncClient({ ...base, transport, triggers: { periodic: 5 } }), 'INVALID_ARGUMENT', /Unknown option "periodic"/);
    assertSyncError(() => new SyncClient({ ...base, transport, triggers: { minIntervalMs: -1 } }), 'INVALID_ARGUMENT', /minIntervalMs/);
    assertSyncError(() => new SyncClient({ ...base, transport, triggers: { periodicMs: 1.5 } }), 'INVALID_ARGUMENT', /periodicMs/);
    assertSyncError(() => new SyncClient({ ...base, transport, retry: { maxRetries: 0 } }), 'INVALID_ARGUMENT', /maxRetries/);
    assertSyncError(() => new SyncClient({ ...base, transport, retry: { baseDelayMs: '1' } }), 'INVALID_ARGUMENT', /baseDelayMs/);
    assertSyncError(() => new SyncClient({ ...base, transport, batch: { push: 0 } }), 'INVALID_ARGUMENT', /batch\.push/);
    assertSyncError(() => new SyncClient({ ...base, transport, batch: { pull: 10001 } }), 'INVALID_ARGUMENT', /batch\.pull/);
    // The same without a transport: a typo is never silently kept for later.
    assertSyncError(() => new SyncClient({ ...base, triggers: { periodMs: 5 } }), 'INVALID_ARGUMENT', /Unknown option "periodMs"/);
    assertSyncError(() => new SyncClient({ ...base, batch: { push: 5000 } }), 'INVALID_ARGUMENT', /batch\.push/);
    assertSyncError(() => new SyncClient({ ...base, retry: { maxRetries: 0 } }), 'INVALID_ARGUMENT', /maxRetries/);
    assertSyncError(() => new SyncClient({ ...base, keepAlive: 'yes' }), 'INVALID_ARGUMENT', /options\.keepAlive/);
    assertSyncError(() => new SyncClient({ ...base, live: true }), 'INVALID_ARGUMENT', /options\.live/);
    assertSyncError(() => new SyncClient({ ...base, healthCheck: {} }), 'INVALID_ARGUMENT', /options\.healthCheck/);
    new SyncClient({ ...base, live: false, healthCheck: false, batch: { pull: 500 } }).close();
    const { client } = engineClient(t, { transport });
    assertSyncError(() => client.notify('sleep'), 'INVALID_ARGUMENT', /event/);
    // sync() reports bad arguments as a rejected promise, like every other failure.
    await assert.rejects(client.sync({ manual: 'yes' }), (e) => e.code === 'INVALID_ARGUMENT' && /options\.manual/.test(e.message));
    await assert.rejects(client.sync({ force: true }), (e) => e.code === 'INVALID_ARGUMENT' && /Unknown option "force"/.test(e.message));
  });

  test('start, stop, sync and notify need a transport', async (t) => {
    const client = new SyncClient({ path: ':memory:' });
    t.after(() => client.close());
    for (const call of [() => client.start(), () => client.stop(), () => client.notify('online')]) {
      assertSyncError(call, 'INVALID_ARGUMENT', /needs a transport/);
    }
    await assert.rejects(client.sync(), (e) => e.code === 'INVALID_ARGUMENT' && /needs a transport/.test(e.message));
    assert.equal(client.status.state, 'stopped');
  });
});

describe('triggers', () => {
  test('start() runs a first cycle at once, which pulls what the server has', TIMEOUT, async (t) => {
    const server = newServer(t);
    await server.sync('u1', { deviceId: 'other', lastKnownServerVersion: 0, changes: [
      { changeId: 'x1', type: 'CREATED', entityType: 'note', entityId: 'n1', data: { v: 1 }, timestamp: 1 },
    ] });
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, { transport: net.transport, triggers: FAST });
    assert.equal(client.status.state, 'stopped');
    assert.equal(net.requests.length, 0, 'nothing before start()');
    client.start();
    const summary = await nextEvent(client, 'sync');
    assert.deepEqual(summary, { pushed: 0, conflicts: 0, rejected: 0, failed: [], pulled: 1, requests: 1 });
    assert.deepEqual(client.get('note', 'n1'), { v: 1 });
    await tick();
    const status = client.status;
    assert.equal(status.state, 'idle');
    assert.equal(status.nextSyncAt, null, 'periodicMs 0: nothing else is due');
    assert.equal(status.serverVersion, 1);
    assert.equal(status.lastError, null);
    const states = events.of('status').map((s) => s.state);
    assert.deepEqual(states.slice(0, 2), ['idle', 'syncing']);
    assert.equal(states[states.length - 1], 'idle');
    assert.equal(net.requests[0].lastKnownServerVersion, 0);
    assert.deepEqual(net.requests[0].changes, []);
  });

  test('a local write syncs after localChangeDelayMs, and writes in that delay coalesce into one cycle', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, {
      transport: net.transport,
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 40 },
    });
    client.start();
    await nextEvent(client, 'sync');
    await tick();
    const firstWriteAt = Date.now();
    client.put('note', 'a', { v: 1 });
    const due = client.status.nextSyncAt;
    assert.ok(due >= firstWriteAt + 40, `due ${due - firstWriteAt} ms after the write`);
    client.put('note', 'b', { v: 1 });
    client.patch('note', 'a', { v: 2 });
    client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'c', data: { v: 1 } });
    assert.equal(client.status.nextSyncAt, due, 'later writes do not push the cycle back');
    await nextEvent(client, 'sync');
    await tick();
    assert.equal(net.requests.length, 2, 'one cycle for all the writes');
    assert.ok(net.requests[1].at >= due, 'not before the delay');
    assert.deepEqual(
      net.requests[1].changes.map((change) => [change.entityId, change.type, change.data]),
      [
        ['a', 'CREATED', { v: 2 }],
        ['b', 'CREATED', { v: 1 }],
        ['c', 'CREATED', { v: 1 }],
      ],
    );
    assert.equal(client._handle.schedNextWakeAt(), null, 'nothing else is scheduled');
    assert.equal(endedCycles(events), 2);
    assert.equal(client.status.pendingChanges, 0);
  });

  test('automatic cycles are minIntervalMs apart and triggers inside the window collapse into one', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, {
      transport: net.transport,
      triggers: { periodicMs: 0, minIntervalMs: 150, localChangeDelayMs: 0 },
    });
    const beforeStart = Date.now();
    client.start();
    await nextEvent(client, 'sync');
    await tick();
    client.notify('focus');
    const due = client.status.nextSyncAt;
    assert.ok(due >= beforeStart + 150, 'the window counts from the first cycle start');
    assert.ok(due <= net.requests[0].at + 150);
    client.notify('visible');
    client.put('note', 'a', { v: 1 });
    client.notify('online');
    client.notify('focus');
    client.put('note', 'b', { v: 1 });
    assert.equal(client.status.nextSyncAt, due, 'one cycle at the end of the window');
    assert.equal(client.status.state, 'idle');
    await nextEvent(client, 'sync');
    await tick();
    assert.equal(net.requests.length, 2, 'six triggers, one cycle');
    assert.ok(net.requests[1].at >= due);
    assert.deepEqual(net.requests[1].changes.map((change) => change.entityId), ['a', 'b']);
    assert.equal(client._handle.schedNextWakeAt(), null);
    assert.equal(endedCycles(events), 2);
  });

  test('periodic cycles follow each cycle', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 20, minIntervalMs: 0, localChangeDelayMs: 0 } });
    client.start();
    await until(client, ['sync'], () => net.requests.length >= 4);
    for (let i = 1; i < 4; i += 1) assert.ok(net.requests[i].at >= net.requests[i - 1].at + 20, `cycle ${i} waited its period`);
    client.stop();
    assert.equal(client.status.state, 'stopped');
    assert.equal(client._handle.schedNextWakeAt(), null);
  });

  test('blur and hidden trigger nothing; focus, visible and online each trigger a cycle', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST });
    client.start();
    await nextEvent(client, 'sync');
    await tick();
    client.notify('blur');
    client.notify('hidden');
    assert.equal(client._handle.schedNextWakeAt(), null);
    for (const event of ['focus', 'visible', 'online']) {
      const before = net.requests.length;
      client.notify(event);
      await nextEvent(client, 'sync');
      await tick();
      assert.equal(net.requests.length, before + 1, event);
    }
  });
});

describe('status after local writes', () => {
  test("a burst of writes emits one 'status' with the new pendingChanges, and only to listeners", async (t) => {
    const client = new SyncClient({
      path: ':memory:',
      transport: () => new Promise(() => {}),
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 3600000 },
    });
    t.after(() => client.close());
    client.start();
    await tick();
    for (let i = 0; i < 100; i++) client.put('note', `n${i}`, { i }); // nobody listens: nothing is computed
    const seen = [];
    client.on('status', (status) => seen.push(status.pendingChanges));
    for (let i = 100; i < 300; i++) client.put('note', `n${i}`, { i });
    await tick();
    assert.deepEqual(seen, [300]);
  });
});

describe('status costs nothing when no one listens', () => {
  test("a many-batch push counts the queue for 'status' only while a listener is attached", TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const client = new SyncClient({ path: ':memory:', transport: net.transport, batch: { push: 50 }, triggers: { periodicMs: 0, localChangeDelayMs: 3600000 } });
    t.after(() => client.close());
    let counted = 0;
    const handle = client._handle;
    client._handle = new Proxy(handle, {
      get(target, key) {
        const value = Reflect.get(target, key);
        if (typeof value !== 'function') return value;
        return key === 'stats' ? (...args) => ((counted += 1), value.apply(target, args)) : value.bind(target);
      },
    });
    for (let i = 0; i < 400; i++) client.put('note', `n${i}`, { i });
    await client.sync();
    assert.ok(net.requests.length >= 8, `pushed in batches (${net.requests.length} requests)`);
    assert.equal(counted, 0, 'no status listener: the queue was never counted');
    const seen = [];
    client.on('status', (status) => seen.push(status.pendingChanges));
    for (let i = 0; i < 100; i++) client.put('note', `m${i}`, { i });
    await client.sync();
    assert.ok(counted > 0, 'with a listener the queue is counted');
    assert.equal(seen.at(-1), 0, 'and the last status says everything was pushed');
    assert.equal((await server.pull('u1', { since: 0, limit: 1000 })).newChanges.length, 500);
  });
});

describe('aged history', () => {
  test('a successful cycle purges acknowledged changes older than a day, 1,000 per turn of the event loop', TIMEOUT, async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'aged.db');
    new SyncClient({ path: file }).close();
    const db = new Database(file);
    const insert = db.prepare(
      "INSERT INTO changes (change_id, entity_type, entity_id, type, data, timestamp, created_at, updated_at, status, synced_at, server_version, attempts) " +
        "VALUES (?, 'note', ?, 'CREATED', '{}', 1, 1, 1, 'synced', 1, ?, 1)",
    );
    db.transaction(() => {
      for (let i = 1; i <= 2500; ++i) insert.run(`aged-${i}`, `n${i}`, i);
    })();
    db.close();
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { path: file, transport: net.transport, triggers: FAST });
    client.put('note', 'fresh', { v: 1 });
    await client.sync();
    // The first slice ran as the cycle ended; the rest follow, one slice per turn.
    assert.equal(client.queue.stats().synced, 1500 + 1);
    await new Promise(setImmediate);
    assert.equal(client.queue.stats().synced, 500 + 1);
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    assert.deepEqual(queueRows(client).map((row) => row.entityId), ['fresh'], 'the change acknowledged now stays');
  });
});

describe('one cycle at a time', () => {
  test('triggers and a manual sync during a cycle wait for it; the write made meanwhile is sent', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, { transport: net.transport, triggers: FAST });
    const hold = net.holdBefore();
    client.start();
    await hold.reached;
    assert.equal(client.status.state, 'syncing');
    assert.equal(client.status.nextSyncAt, null);
    client.put('note', 'w', { during: true });
    client.notify('focus');
    const manual = client.sync();
    await tick();
    assert.equal(net.requests.length, 1, 'nothing else went out while the cycle runs');
    hold.release();
    await manual;
    // The triggers and the manual request made during the first cycle run another one.
    await until(client, ['sync', 'error'], () => endedCycles(events) >= 2);
    await until(client, ['status'], () => client.status.state === 'idle');
    assert.equal(client.status.pendingChanges, 0);
    assert.equal(net.maxInFlight, 1, 'never two requests at once');
    assert.deepEqual(net.requests[0].changes, [], 'the first request left before the write');
    const carried = net.requests.filter((request) => request.changes.some((change) => change.entityId === 'w'));
    assert.equal(carried.length, 1, 'the write was sent exactly once');
    assert.ok(net.requests.indexOf(carried[0]) >= 1);
    const log = await serverLog(server);
    assert.deepEqual(log.map((change) => change.entityId), ['w']);
  });
});

describe('offline', () => {
  test('offline suppresses automatic cycles; online resumes them; a manual sync still runs', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 10, minIntervalMs: 0, localChangeDelayMs: 0 } });
    client.start();
    // Idle between two periodic cycles (nothing in flight), then offline.
    await until(client, ['sync', 'status'], () => net.requests.length >= 1 && client.status.state === 'idle');
    client.notify('offline');
    assert.equal(client.status.state, 'offline');
    const before = net.requests.length;
    client.put('note', 'a', { v: 1 });
    client.notify('focus');
    client.notify('visible');
    assert.equal(client._handle.schedNextWakeAt(), null, 'no timer is armed offline');
    for (let i = 0; i < 5; i += 1) await tick();
    assert.equal(net.requests.length, before, 'no automatic attempt offline');
    assert.equal(client.status.pendingChanges, 1);

    // A manual sync is an explicit request: it runs even offline.
    const summary = await client.sync();
    assert.equal(summary.pushed, 1);
    assert.equal(client.status.state, 'offline');
    client.put('note', 'b', { v: 1 });
    assert.equal(client._handle.schedNextWakeAt(), null);

    client.notify('online');
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    assert.deepEqual((await serverLog(server)).map((change) => change.entityId), ['a', 'b']);
    assert.notEqual(client.status.state, 'offline');
  });
});

describe('manual sync', () => {
  test('a manual sync bypasses minIntervalMs', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 0, minIntervalMs: 3600000, localChangeDelayMs: 0 } });
    const beforeStart = Date.now();
    client.start();
    await nextEvent(client, 'sync');
    await tick();
    client.put('note', 'a', { v: 1 });
    assert.ok(client.status.nextSyncAt >= beforeStart + 3600000, 'the automatic cycle waits an hour');
    const summary = await client.sync();
    assert.equal(summary.pushed, 1);
    assert.equal(net.requests.length, 2);
    assert.equal(client.status.pendingChanges, 0);
  });

  test('a manual sync bypasses and resets the backoff', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { baseDelayMs: 3600000, maxDelayMs: 3600000 } });
    client.put('note', 'a', { v: 1 });
    net.fail(networkError(), networkError(), networkError());
    client.start();
    await nextEvent(client, 'error');
    for (let n = 2; n <= 3; n += 1) {
      client.notify('online');
      // Automatic triggers wait for the backoff...
      assert.equal(net.requests.length, n - 1);
      // ...a manual sync does not.
      await assert.rejects(client.sync(), { code: 'TRANSPORT' });
      assert.equal(sched(client).failures, 1, 'the manual sync started the count over');
    }
    assert.equal(client.status.state, 'backoff');
    assert.ok(client.status.nextSyncAt > Date.now());
    const summary = await client.sync();
    assert.equal(summary.pushed, 1);
    assert.equal(sched(client).failures, 0);
    assert.equal(client.status.state, 'idle');
    assert.equal(client.status.lastError, null);
  });
});

describe('transient failures', () => {
  const kinds = [
    ['a network error', () => networkError()],
    ['a timeout', () => new TransportError('No response from test within 10 ms')],
    ['408', () => httpError(408)],
    ['429', () => httpError(429)],
    ['500', () => httpError(500)],
    ['502', () => httpError(502)],
    ['503', () => httpError(503)],
    ['504', () => httpError(504)],
    ['a plain Error from a custom transport', () => new Error('socket hang up')],
  ];
  for (const [name, make] of kinds) {
    test(`${name} backs off the whole cycle without counting against the changes`, TIMEOUT, async (t) => {
      const server = newServer(t);
      const net = inProcessTransport(server);
      const { client, events } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { baseDelayMs: 3600000, maxDelayMs: 3600000, maxRetries: 1 } });
      client.put('note', 'a', { v: 1 });
      client.put('note', 'b', { v: 1 });
      net.fail(make());
      client.start();
      const error = await nextEvent(client, 'error');
      assert.ok(error instanceof SyncError);
      assert.equal(error.code, 'TRANSPORT');
      await tick();
      const status = client.status;
      assert.equal(status.state, 'backoff');
      assert.ok(status.nextSyncAt > net.requests[0].at);
      assert.equal(status.lastError.code, 'TRANSPORT');
      assert.equal(status.pendingChanges, 2);
      assert.equal(status.failedChanges, 0);
      for (const row of queueRows(client)) {
        assert.equal(row.status, 'pending');
        assert.equal(row.retryCount, 0, 'a transient failure counts against no change (maxRetries is 1)');
      }
      assert.equal(sched(client).failures, 1);
      assert.equal(sched(client).authBlocked, false);
      assert.equal(events.of('sync').length, 0);
    });
  }

  test('a response that is not a sync response backs off without counting against the changes', TIMEOUT, async (t) => {
    const { client } = engineClient(t, { transport: async () => '<html>proxy error</html>', triggers: FAST, retry: { baseDelayMs: 3600000 } });
    client.put('note', 'a', { v: 1 });
    await assert.rejects(client.sync(), (error) => error instanceof SyncError);
    assert.equal(sched(client).failures, 1);
    assert.deepEqual(queueRows(client).map((row) => [row.status, row.retryCount]), [['pending', 0]]);
  });

  test('the backoff grows with full jitter and the retry succeeds by itself', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { baseDelayMs: 30, maxDelayMs: 60 } });
    client.put('note', 'a', { v: 1 });
    net.fail(networkError(), httpError(503), httpError(429));
    const seen = [];
    client.on('error', () => {
      const status = client.status;
      seen.push({ at: Date.now(), nextSyncAt: status.nextSyncAt, state: status.state, failures: sched(client).failures });
    });
    client.start();
    await nextEvent(client, 'sync');
    assert.equal(net.requests.length, 4, 'three failures, then the retry that worked');
    assert.deepEqual(seen.map((s) => s.failures), [1, 2, 3]);
    const ceilings = [30, 60, 60];
    seen.forEach((s, i) => {
      assert.ok(s.nextSyncAt >= net.requests[i].at, `retry ${i + 1} is not scheduled in the past`);
      assert.ok(s.nextSyncAt < s.at + ceilings[i], `retry ${i + 1} waits less than its ceiling ${ceilings[i]} ms`);
      assert.ok(net.requests[i + 1].at >= s.nextSyncAt, `retry ${i + 1} went out no earlier than scheduled`);
    });
    assert.equal(sched(client).failures, 0, 'a success resets the backoff');
    assert.equal(client.status.pendingChanges, 0);
    assert.equal(queueRows(client)[0].retryCount, 0);
  });

  test('Retry-After from the transport is honoured', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { baseDelayMs: 1, maxDelayMs: 1 } });
    net.fail(httpError(503, 200));
    client.start();
    await nextEvent(client, 'error');
    const { nextSyncAt } = client.status;
    assert.ok(nextSyncAt >= net.requests[0].at + 200, 'at least Retry-After');
    await nextEvent(client, 'sync');
    assert.ok(net.requests[1].at >= nextSyncAt);
  });

  test('many clients failing together spread their retries', TIMEOUT, async (t) => {
    const clients = [];
    for (let i = 0; i < 30; i += 1) {
      clients.push(engineClient(t, { transport: async () => { throw networkError(); }, triggers: FAST, retry: { baseDelayMs: 60000, maxDelayMs: 60000 } }).client);
    }
    const failedAt = Date.now();
    const failed = clients.map((client) => nextEvent(client, 'error'));
    for (const client of clients) client.start();
    await Promise.all(failed);
    const doneAt = Date.now();
    const offsets = clients.map((client) => client.status.nextSyncAt - failedAt);
    for (const offset of offsets) {
      assert.ok(offset >= 0 && offset < doneAt - failedAt + 60000, `offset ${offset}`);
    }
    assert.ok(new Set(offsets).size >= 25, 'the retries do not collide');
    assert.ok(Math.max(...offsets) - Math.min(...offsets) > 20000, `spread over the window: ${offsets.sort((a, b) => a - b)}`);
  });
});

describe('authentication failures', () => {
  test('401 stops automatic syncing with an AUTH error until notify("online")', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 10, minIntervalMs: 0, localChangeDelayMs: 0 } });
    net.fail(httpError(401));
    client.start();
    const error = await nextEvent(client, 'error');
    assert.equal(error.code, 'AUTH');
    assert.equal(error.status, 401);
    await tick();
    assert.equal(sched(client).authBlocked, true);
    assert.equal(client.status.lastError.code, 'AUTH');
    client.put('note', 'a', { v: 1 });
    client.notify('focus');
    client.notify('visible');
    assert.equal(client._handle.schedNextWakeAt(), null, 'no automatic cycle, periodic included');
    for (let i = 0; i < 5; i += 1) await tick();
    assert.equal(net.requests.length, 1);
    assert.equal(queueRows(client)[0].retryCount, 0, 'an auth failure counts against no change');

    client.notify('online');
    assert.equal(client.status.lastError, null);
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    assert.equal(sched(client).authBlocked, false);
    assert.deepEqual((await serverLog(server)).map((change) => change.entityId), ['a']);
  });

  test('403 stops automatic syncing until a manual sync', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST });
    client.start();
    await nextEvent(client, 'sync');
    await tick();
    net.fail(httpError(403));
    client.put('note', 'a', { v: 1 });
    const error = await nextEvent(client, 'error');
    assert.equal(error.code, 'AUTH');
    await tick();
    assert.equal(sched(client).authBlocked, true);
    client.put('note', 'b', { v: 1 });
    assert.equal(client._handle.schedNextWakeAt(), null);
    const summary = await client.sync();
    assert.equal(summary.pushed, 2);
    assert.equal(sched(client).authBlocked, false);
    client.put('note', 'c', { v: 1 });
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
  });

  test('a custom transport rejecting with status 401 gives an AUTH error too', async (t) => {
    const { client } = engineClient(t, {
      transport: async () => {
        throw Object.assign(new Error('token expired'), { status: 401 });
      },
      triggers: FAST,
    });
    const error = await client.sync().catch((e) => e);
    assert.equal(sched(client).authBlocked, true, 'the scheduler did stop');
    assert.equal(error.code, 'AUTH');
  });
});

describe('per-change rejections', () => {
  test('an errors[] entry counts against its change only; after maxRetries it fails and stops blocking others', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { maxRetries: 3 }, batch: { push: 1 } });
    const poison = client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'ghost', data: { x: 1 } });
    const behind = client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'ghost', data: { x: 2 } });
    client.put('note', 'good', { v: 1 });
    const summary = await client.sync();
    assert.deepEqual(summary.failed, [poison.changeId]);
    assert.equal(summary.rejected, 3);
    assert.equal(summary.pushed, 1);
    const rows = Object.fromEntries(queueRows(client).map((row) => [row.changeId, row]));
    assert.equal(rows[poison.changeId].status, 'failed');
    assert.equal(rows[poison.changeId].retryCount, 3);
    assert.match(rows[poison.changeId].lastError, /^NOT_FOUND: /);
    assert.equal(rows[behind.changeId].status, 'pending', 'a later change of the same entity waits behind the failed one');
    assert.equal(rows[behind.changeId].retryCount, 0);
    assert.equal(client.get('note', 'good', { meta: true }).meta.dirty, false);
    // Order: the poison went out three times (one change per request), then the other entity's change.
    const sent = net.requests.map((request) => request.changes.map((change) => change.entityId).join(','));
    assert.deepEqual(sent.filter(Boolean), ['ghost', 'ghost', 'ghost', 'good']);
    const status = client.status;
    assert.equal(status.failedChanges, 1);
    assert.equal(status.pendingChanges, 1);

    // Still blocked on the next (automatic) cycle; discarding the failed change releases it.
    client.start();
    await until(client, ['sync'], () => events.of('sync').length >= 2);
    assert.equal(queueRows(client).find((row) => row.changeId === behind.changeId).status, 'pending');
    assert.equal(queueRows(client).find((row) => row.changeId === poison.changeId).status, 'failed');
    client.stop();
    client.queue.discard(poison.changeId);
    assert.equal(queueRows(client).find((row) => row.changeId === poison.changeId), undefined);
    await client.sync();
    assert.deepEqual((await serverLog(server)).map((change) => [change.entityId, change.type]), [
      ['good', 'CREATED'],
      ['ghost', 'CREATED'],
    ]);
    assert.equal(client.status.pendingChanges, 0);
  });

  test('a manual sync returns failed changes to the queue', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { maxRetries: 1 } });
    const poison = client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'ghost', data: { x: 1 } });
    await client.sync();
    assert.equal(client.status.failedChanges, 1);
    const before = net.requests.length;
    await client.sync();
    assert.ok(net.requests.slice(before).some((request) => request.changes.some((change) => change.changeId === poison.changeId)), 'sent again');
    assert.equal(client.status.failedChanges, 1);
  });

  test('another 4xx refuses a request of several changes: they are resent one at a time, none counts a retry, no backoff', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { maxRetries: 2, baseDelayMs: 3600000 } });
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 1 });
    net.fail(httpError(400)); // the first request, with both changes, is refused once
    const summary = await client.sync();
    assert.equal(summary.pushed, 2);
    assert.equal(client.status.pendingChanges, 0);
    assert.equal(sched(client).failures, 0);
    assert.notEqual(client.status.state, 'backoff');
  });

  test('a change refused on its own counts a retry', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST, retry: { maxRetries: 2, baseDelayMs: 3600000 } });
    client.put('note', 'a', { v: 1 });
    net.fail(httpError(400));
    const summary = await client.sync(); // a per-change rejection does not fail the cycle
    assert.equal(summary.rejected, 1);
    assert.deepEqual(queueRows(client).map((row) => [row.entityId, row.status, row.retryCount]), [['a', 'pending', 1]]);
    assert.equal(sched(client).failures, 0);
    await client.sync();
    assert.equal(client.status.pendingChanges, 0);
  });

  test('an answer that is no sync response (a portal\'s page, a cut-off body) fails the cycle as TRANSPORT, blaming no change', TIMEOUT, async (t) => {
    for (const answer of ['<html><body>Sign in to the Wi-Fi</body></html>', '{"hello":"world"}', '{"newChanges":[', '', 'null']) {
      const { client } = engineClient(t, { transport: async () => answer, triggers: FAST });
      client.put('note', 'a', { v: 1 });
      const error = await client.sync().then(() => null, (e) => e);
      assert.equal(error && error.code, 'TRANSPORT', `${JSON.stringify(answer)}: ${error && error.message}`);
      assert.match(error.message, /not a sync response/);
      assert.equal(client.status.lastError.code, 'TRANSPORT');
      assert.deepEqual(queueRows(client).map((row) => [row.status, row.retryCount]), [['pending', 0]]);
    }
    // applyRemote, where the app hands the page over itself, still calls it a bad argument.
    const { client } = engineClient(t, {});
    await assert.rejects(client.applyRemote('{"hello":"world"}'), (e) => e.code === 'INVALID_ARGUMENT');
  });

  test('when the question with no changes is answered 401, the cycle is an AUTH failure and no change is blamed', TIMEOUT, async (t) => {
    const { client } = engineClient(t, {
      transport: async (body) => {
        throw httpError(body.changes.length > 0 ? 400 : 401);
      },
      triggers: FAST,
    });
    client.put('note', 'a', { v: 1 });
    const error = await client.sync().then(() => null, (e) => e);
    assert.equal(error && error.code, 'AUTH');
    assert.deepEqual(queueRows(client).map((row) => [row.status, row.retryCount]), [['pending', 0]]);
  });

  test('a 4xx for every request (a wrong URL) blames no change: the cycle fails with it, and no retry is counted', TIMEOUT, async (t) => {
    const sent = [];
    const { client } = engineClient(t, {
      transport: async (body) => {
        sent.push(body.changes.length);
        if (body.changes.length === 0) assert.equal(body.limit, 1, 'the question asks for one change, not a page');
        throw httpError(404);
      },
      triggers: FAST,
      retry: { maxRetries: 1 },
    });
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 1 });
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const error = await client.sync().then(() => null, (e) => e);
      assert.equal(error && error.code, 'TRANSPORT', 'the sync says what went wrong');
      assert.equal(error.status, 404);
      assert.equal(client.status.lastError.code, 'TRANSPORT');
    }
    assert.deepEqual(sent.slice(0, 2), [2, 0], 'the server was asked whether it answers a request with no changes');
    assert.ok(sched(client).failures > 0, 'a failed cycle, which backs off');
    assert.deepEqual(queueRows(client).map((row) => [row.entityId, row.status, row.retryCount]), [['a', 'pending', 0], ['b', 'pending', 0]]);
  });
  test('a response that settles none of the pushed changes does not make the cycle loop', async (t) => {
    let requests = 0;
    const empty = '{"applied":[],"conflicts":[],"errors":[],"newChanges":[],"latestServerVersion":0,"hasMore":false}';
    const { client } = engineClient(t, { transport: async () => { requests += 1; return empty; }, triggers: FAST });
    client.put('note', 'a', { v: 1 });
    await client.sync().catch(() => {});
    assert.ok(requests <= 2, `${requests} requests in one cycle`);
  });
});

describe('stop()', () => {
  test('stop() mid-cycle aborts it, schedules nothing more, and loses nothing', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client, events } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 10, minIntervalMs: 0, localChangeDelayMs: 0 } });
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 1 });
    const hold = net.holdAfter(); // the server applies the push; the answer never arrives
    client.start();
    await hold.reached;
    const waiter = client.sync({ manual: false });
    client.stop();
    await assert.rejects(waiter, (error) => error instanceof SyncError);
    await tick();
    assert.equal(client.status.state, 'stopped');
    assert.equal(client._handle.schedNextWakeAt(), null);
    assert.deepEqual(queueRows(client).map((row) => [row.entityId, row.status, row.retryCount]), [
      ['a', 'pending', 0],
      ['b', 'pending', 0],
    ]);
    assert.equal(events.of('error').length, 0, 'an aborted cycle is not an error');
    client.put('note', 'c', { v: 1 });
    client.notify('focus');
    assert.equal(client._handle.schedNextWakeAt(), null, 'stopped: triggers do nothing');
    for (let i = 0; i < 5; i += 1) await tick();
    assert.equal(net.requests.length, 1);
    hold.release();

    client.start();
    await until(client, ['sync'], () => client.status.pendingChanges === 0);
    const log = await serverLog(server);
    assert.deepEqual(log.map((change) => change.entityId), ['a', 'b', 'c'], 'each change applied exactly once');
    for (const row of queueRows(client)) assert.equal(row.status, 'synced');
  });

  test('stop() mid-cycle rejects a waiting sync() with code ABORTED', async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: FAST });
    const hold = net.holdBefore();
    const waiter = client.sync();
    await hold.reached;
    client.stop();
    const error = await waiter.catch((e) => e);
    assert.equal(error.code, 'ABORTED');
  });
});

describe('close()', () => {
  test('close() mid-cycle rejects waiting syncs with CLOSED, fires nothing after, and loses nothing', TIMEOUT, async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'client.db');
    const server = newServer(t);
    const net = inProcessTransport(server);
    const options = { path: file, transport: net.transport, triggers: { periodicMs: 10, minIntervalMs: 0, localChangeDelayMs: 0 }, keepAlive: true };
    const { client, events } = engineClient(t, options);
    client.put('note', 'a', { v: 1 });
    client.put('note', 'b', { v: 2 });
    const hold = net.holdAfter();
    client.start();
    await hold.reached;
    const waiter = client.sync();
    client.close();
    await assert.rejects(waiter, { code: 'CLOSED' });
    assert.equal(client.isOpen, false);
    hold.release();
    for (let i = 0; i < 10; i += 1) await tick();
    assert.deepEqual(events.afterClose().map((event) => event.name), [], 'no event after close()');
    assert.throws(() => client.status, { code: 'CLOSED' });

    // Reopened, the in-flight changes are pending again and go out once.
    const { client: reopened } = engineClient(t, { ...options, keepAlive: false });
    assert.equal(reopened.status.pendingChanges, 2);
    await reopened.sync();
    assert.equal(reopened.status.pendingChanges, 0);
    assert.deepEqual((await serverLog(server)).map((change) => change.entityId), ['a', 'b']);
    assert.deepEqual(reopened.get('note', 'b'), { v: 2 });
  });

  test('a transport that ignores the abort and answers after close() changes nothing', TIMEOUT, async (t) => {
    const server = newServer(t);
    let answer;
    const { client, events } = engineClient(t, {
      transport: (request) => new Promise((resolve) => {
        answer = async () => resolve(JSON.stringify(await server.sync('u1', request)));
      }),
      triggers: FAST,
    });
    client.put('note', 'a', { v: 1 });
    client.start();
    while (!answer) await tick();
    client.close();
    await answer();
    for (let i = 0; i < 10; i += 1) await tick();
    assert.deepEqual(events.afterClose(), []);
  });

  test('close() while a response is being applied fires no event after close()', async (t) => {
    const server = newServer(t);
    const seed = new SyncClient({ path: ':memory:', transport: inProcessTransport(server).transport, triggers: FAST });
    for (let i = 0; i < 50; i += 1) seed.put('note', `n${i}`, { i });
    await seed.sync();
    seed.close();
    const { client, events } = engineClient(t, { transport: inProcessTransport(server).transport, triggers: FAST });
    client.on('progress', () => {
      if (client.isOpen) client.close();
    });
    await assert.rejects(client.sync(), { code: 'CLOSED' });
    for (let i = 0; i < 10; i += 1) await tick();
    assert.deepEqual(events.afterClose().map((event) => event.name), []);
  });

  test('sync() on a closed client rejects rather than throws', async (t) => {
    const { client } = engineClient(t, { transport: async () => '{}', triggers: FAST });
    client.close();
    let result;
    try {
      result = client.sync();
    } catch (error) {
      assert.fail(`threw synchronously: ${error.code}`);
    }
    await assert.rejects(result, { code: 'CLOSED' });
  });
});

describe('sync({ manual: false })', () => {
  test('waits for the next allowed moment and resolves with that cycle', TIMEOUT, async (t) => {
    const server = newServer(t);
    const net = inProcessTransport(server);
    const { client } = engineClient(t, { transport: net.transport, triggers: { periodicMs: 0, minIntervalMs: 100, localChangeDelayMs: 0 } });
    client.start();
    await nextEvent(client, 'sync');
    client.put('note', 'a', { v: 1 });
    const due = client.status.nextSyncAt;
    const summary = await client.sync({ manual: false });
    assert.equal(summary.pushed, 1);
    assert.ok(net.requests[1].at >= due, 'it kept the interval');
  });

  test('on a client that was never started it still settles', async (t) => {
    const server = newServer(t);
    const { client } = engineClient(t, { transport: inProcessTransport(server).transport, triggers: FAST });
    let settled = false;
    client.sync({ manual: false }).then(
      () => { settled = true; },
      () => { settled = true; },
    );
    await tick();
    const willRun = client._handle.schedNextWakeAt() !== null || client._engine._cycle !== null;
    assert.ok(settled || willRun, 'nothing is scheduled: the promise can never settle');
  });
});
