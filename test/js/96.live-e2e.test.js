'use strict';

// Live updates over real HTTP (127.0.0.1): GET /v2/events on the server, and started clients
// that keep the stream open, pull on a poke, reconnect, and fall back to polling.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const express = require('express');
const { SyncClient, SyncServer, httpTransport } = require('../..');
const { createSyncRouter } = require('deltasync/express');
const { startApp, assertHttpError, change } = require('./fixtures/server-http');
const { tempDir } = require('./helpers');

const TIMEOUT = { timeout: 30000 };

/** Waits until `predicate()` holds, checking every few ms; fails after `ms`. */
async function until(predicate, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out waiting for ${what}` });
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Counts the POST /v2 requests of each device (by X-Device-ID or body). */
function requestCounter() {
  const counts = new Map();
  return {
    counts,
    before: (app) =>
      app.use((req, res, next) => {
        if (req.method === 'POST' && req.path.endsWith('/v2')) {
          const user = req.get('x-user');
          counts.set(user, (counts.get(user) ?? 0) + 1);
        }
        next();
      }),
  };
}

function liveClient(t, base, user, options = {}) {
  const client = new SyncClient({
    path: ':memory:',
    transport: httpTransport({ url: base, headers: { 'x-user': user } }),
    triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  client.on('error', () => {});
  t.after(() => client.close());
  return client;
}

/** Reads a raw event stream as `user`: { status, events, close }. */
async function rawStream(base, user) {
  const controller = new AbortController();
  const response = await fetch(`${base}/v2/events`, { headers: { 'x-user': user }, signal: controller.signal });
  const stream = { status: response.status, headers: response.headers, text: '', close: () => controller.abort() };
  if (response.status === 200) {
    const decoder = new TextDecoder();
    /** Resolves when the server ends the stream (or it is aborted). */
    stream.done = (async () => {
      try {
        for await (const chunk of response.body) stream.text += decoder.decode(chunk, { stream: true });
      } catch {
        // aborted
      }
    })();
  } else {
    stream.json = await response.json();
  }
  return stream;
}

const versionsIn = (text) => [...text.matchAll(/data: \{"latestServerVersion":(\d+)\}/g)].map((m) => Number(m[1]));

describe('the events route', () => {
  test("sends the user's head on open and on every commit, only to that user's streams, with heartbeats", TIMEOUT, async (t) => {
    const app = await startApp({ router: { heartbeatMs: 50 } });
    t.after(() => app.close());
    const alice = await rawStream(app.base, 'alice');
    const bob = await rawStream(app.base, 'bob');
    t.after(() => [alice, bob].forEach((s) => s.close()));
    assert.equal(alice.status, 200);
    assert.match(alice.headers.get('content-type'), /^text\/event-stream/);
    await until(() => versionsIn(alice.text).length === 1 && versionsIn(bob.text).length === 1, 'the opening events');
    await app.sync({ deviceId: 'd1', changes: [change('c1', 'CREATED', 'a', { n: 1 }), change('c2', 'CREATED', 'b', { n: 2 })] });
    await app.sync({ deviceId: 'd1', changes: [change('c3', 'UPDATED', 'a', { n: 3 }, { baseVersion: 1 })] });
    await app.post('/push', { deviceId: 'p1', changes: { customers: [{ customer_id: 'C1', updated_at: '2025-01-15T11:00:00Z' }] } });
    await until(() => versionsIn(alice.text).at(-1) === 4, 'the pokes');
    assert.deepEqual(versionsIn(alice.text), [0, 2, 3, 4], 'one poke per commit, with the head it reached');
    await until(() => alice.text.includes(': heartbeat'), 'a heartbeat');
    assert.deepEqual(versionsIn(bob.text), [0], "another user's commits are never told");
  });

  test('needs authentication, and past the limits answers 429 with Retry-After', TIMEOUT, async (t) => {
    const app = await startApp({ router: { limits: { maxStreamsPerUser: 2, maxStreams: 3 } } });
    t.after(() => app.close());
    const anonymous = await app.get('/v2/events', { user: null });
    assertHttpError(anonymous, 401, 'UNAUTHENTICATED');
    const open = [await rawStream(app.base, 'alice'), await rawStream(app.base, 'alice')];
    t.after(() => open.forEach((s) => s.close()));
    const third = await rawStream(app.base, 'alice');
    assert.equal(third.status, 429);
    assert.equal(third.headers.get('retry-after'), '5');
    assert.equal(third.json.error.code, 'TOO_MANY_STREAMS');
    open.push(await rawStream(app.base, 'bob'));
    const overServer = await rawStream(app.base, 'carol');
    assert.equal(overServer.status, 429, 'the server-wide limit');
    open.shift().close();
    await until(() => app.server._watchers.get('alice')?.size === 1, 'the closed stream to be let go');
    const again = await rawStream(app.base, 'carol');
    t.after(() => again.close());
    assert.equal(again.status, 200, 'a closed stream frees its place');
  });

  test('streams do not count against maxConcurrentRequests, and end when the server closes', TIMEOUT, async (t) => {
    const app = await startApp({ router: { limits: { maxConcurrentRequests: 1 } } });
    t.after(() => app.close());
    const streams = [await rawStream(app.base, 'alice'), await rawStream(app.base, 'bob')];
    t.after(() => streams.forEach((s) => s.close()));
    await app.sync({ deviceId: 'd1', changes: [change('c1', 'CREATED', 'a', { n: 1 })] });
    app.server.close();
    await Promise.all(streams.map((s) => s.done));
    assert.deepEqual(versionsIn(streams[0].text), [0, 1]);
  });
});

test('a device that stops reading is dropped once its unsent pokes pass the bound, and frees its place', async () => {
  const { EventEmitter } = require('node:events');
  const { LiveStreams, MAX_UNSENT_BYTES } = require('../../lib/live-server');
  let listener;
  const server = {
    _native() {},
    _watch(userId, fn) {
      listener = fn;
      return () => {
        listener = null;
      };
    },
    _headVersion: async () => 0,
  };
  const streams = new LiveStreams(server, { maxStreams: 10, maxStreamsPerUser: 1, heartbeatMs: 60000 });
  const res = Object.assign(new EventEmitter(), {
    writableLength: 0,
    written: 0,
    destroyed: false,
    status() {},
    setHeader() {},
    flushHeaders() {},
    write(text) {
      this.written += text.length;
      this.writableLength += text.length; // nothing is ever read
      return false;
    },
    end() {},
    destroy() {
      this.destroyed = true;
    },
  });
  await streams.serve('stalled', new EventEmitter(), res);
  assert.notEqual(streams.refusal('stalled'), null, 'the stream holds its place while open');
  for (let version = 1; listener && version < 100000; version++) listener(version);
  assert.equal(res.destroyed, true);
  assert.ok(res.written <= MAX_UNSENT_BYTES + 64, `buffered ${res.written} bytes`);
  assert.equal(streams.refusal('stalled'), null, 'its place is free again');
});

describe('live clients', () => {
  test("a write reaches the user's other started devices without polling, and never another user's", TIMEOUT, async (t) => {
    const counter = requestCounter();
    const app = await startApp({ before: counter.before });
    t.after(() => app.close());
    const [a, b, c] = ['a', 'b', 'c'].map(() => liveClient(t, app.base, 'alice'));
    const z = liveClient(t, app.base, 'bob');
    for (const client of [a, b, c, z]) client.start();
    await until(() => [a, b, c, z].every((client) => client.status.live), 'every stream open');
    for (let i = 0; i < 10; i++) {
      const writer = [a, b, c][i % 3];
      writer.put('note', `n${i}`, { i, by: i % 3 });
      await until(() => [a, b, c].every((client) => client.get('note', `n${i}`)?.i === i), `note n${i} everywhere`);
    }
    z.put('note', 'secret', { bob: true });
    await until(() => z.status.pendingChanges === 0, "bob's push");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(a.get('note', 'secret'), undefined, "bob's write never reaches alice");
    assert.deepEqual(z.list('note').map((doc) => Object.keys(doc)), [['bob']], "nor alice's bob");
    // Each write is one push by its writer and one pull by each of the two others, give or take
    // the opening cycles and a few pokes that race a cycle on a loaded machine (at most 9): no
    // poll, and no pull after a device's own push, which would add 10 (one per write) or more.
    const alice = counter.counts.get('alice');
    assert.ok(alice <= 3 + 10 * 3 + 9, `alice's devices made ${alice} requests for 10 writes`);
  });

  test('an idle live client makes no request; an idle polling client does', TIMEOUT, async (t) => {
    const counter = requestCounter();
    const app = await startApp({ before: counter.before });
    t.after(() => app.close());
    const live = liveClient(t, app.base, 'live', { triggers: { periodicMs: 50, minIntervalMs: 0, localChangeDelayMs: 0 } });
    const polling = liveClient(t, app.base, 'poll', { live: false, triggers: { periodicMs: 50, minIntervalMs: 0, localChangeDelayMs: 0 } });
    live.start();
    polling.start();
    await until(() => live.status.live, 'the stream');
    await new Promise((resolve) => setTimeout(resolve, 100)); // one periodic cycle scheduled before it opened may run
    const before = { live: counter.counts.get('live'), poll: counter.counts.get('poll') };
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(counter.counts.get('live'), before.live, 'no request from the idle live client');
    assert.ok(counter.counts.get('poll') - before.poll >= 4, 'the polling client polled');
    assert.equal(polling.status.live, false);
  });

  test('the server restarting mid-stream: clients reconnect and keep receiving', TIMEOUT, async (t) => {
    const file = `${tempDir(t)}/server.db`;
    let server;
    let httpServer;
    const listen = async (port) => {
      server = new SyncServer({ path: file });
      const app = express();
      app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.get('x-user') }));
      httpServer = http.createServer(app);
      await new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(port, '127.0.0.1', resolve);
      });
      return httpServer.address().port;
    };
    const stop = async () => {
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
      server.close();
    };
    const port = await listen(0);
    t.after(() => stop().catch(() => {}));
    const base = `http://127.0.0.1:${port}/api/sync`;
    const a = liveClient(t, base, 'alice');
    const b = liveClient(t, base, 'alice');
    a.start();
    b.start();
    await until(() => a.status.live && b.status.live, 'both streams');
    a.put('note', 'before', { n: 1 });
    await until(() => b.get('note', 'before'), 'the first write on b');
    await stop();
    await until(() => !b.status.live, 'b to notice');
    await listen(port);
    await until(() => a.status.live && b.status.live, 'both streams again');
    a.put('note', 'after', { n: 2 });
    await until(() => b.get('note', 'after'), 'the write after the restart on b');
  });

  test('stop() and close() end the stream on the server; start() opens it again', TIMEOUT, async (t) => {
    const app = await startApp();
    t.after(() => app.close());
    const a = liveClient(t, app.base, 'alice');
    a.start();
    await until(() => app.server._watchers.get('alice')?.size === 1, 'the stream on the server');
    a.stop();
    assert.equal(a.status.live, false);
    await until(() => !app.server._watchers.has('alice'), 'the server to let it go');
    a.start();
    await until(() => a.status.live, 'the stream again');
    a.close();
    await until(() => !app.server._watchers.has('alice'), 'the server to let it go after close');
  });

  test('a server without the events route: the client falls back to polling and still syncs', TIMEOUT, async (t) => {
    const app = await startApp({
      before: (express) =>
        express.use((req, res, next) => (req.path.endsWith('/v2/events') ? res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no' } }) : next())),
    });
    t.after(() => app.close());
    const options = { live: { fallbackAfter: 2 }, triggers: { periodicMs: 30, minIntervalMs: 0, localChangeDelayMs: 0 } };
    const a = liveClient(t, app.base, 'alice', options);
    const b = liveClient(t, app.base, 'alice', options);
    a.start();
    b.start();
    a.put('note', 'x', { n: 1 });
    await until(() => b.get('note', 'x'), 'the write on b, by polling');
    assert.equal(b.status.live, false);
  });

  test('a stream that goes silent (no event, no heartbeat) counts as broken after idleTimeoutMs', TIMEOUT, async (t) => {
    const { openEventStream } = require('../../lib/live-client');
    const silent = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"latestServerVersion":3}\n\n'); // then nothing, like a dropped connection
    });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      silent.closeAllConnections();
      silent.close();
    });
    const events = [];
    let opened = false;
    const started = Date.now();
    await assert.rejects(
      openEventStream({
        url: `http://127.0.0.1:${silent.address().port}/v2/events`,
        signal: new AbortController().signal,
        keepAlive: false,
        connectTimeoutMs: 1000,
        idleTimeoutMs: 100,
        onOpen: () => {
          opened = true;
        },
        onEvent: (event) => events.push(event),
      }),
      { code: 'TRANSPORT', message: /silent for 100 ms/ },
    );
    assert.ok(opened);
    assert.deepEqual(events, [{ latestServerVersion: 3 }]);
    assert.ok(Date.now() - started >= 90);
  });

  test("a transport whose events() throws or ends at once: no crash, no busy loop, the client falls back", TIMEOUT, async (t) => {
    const app = await startApp();
    t.after(() => app.close());
    for (const events of [
      () => {
        throw new Error('not today');
      },
      async () => {},
    ]) {
      const inner = httpTransport({ url: app.base, headers: { 'x-user': 'alice' } });
      let opens = 0;
      const transport = Object.assign((request, options) => inner(request, options), {
        events: (...args) => {
          opens += 1;
          return events(...args);
        },
      });
      const client = liveClient(t, app.base, 'alice', { transport, live: { fallbackAfter: 3 } });
      client.start();
      await until(() => client.status.live === false && opens >= 3, 'three tries');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(opens, 3, 'three tries, then periodic sync: no more, and no busy loop');
      assert.equal(client.status.live, false);
      client.put('note', `after-${opens}`, { ok: true });
      await client.sync();
      client.close();
    }
  });

  test('live: false, or a transport with a custom fetch, polls; live: true with such a transport is refused', () => {
    const transport = httpTransport({ url: 'http://127.0.0.1:1', fetch: globalThis.fetch });
    const client = new SyncClient({ path: ':memory:', transport });
    assert.equal(client.status.live, false);
    client.close();
    assert.throws(() => new SyncClient({ path: ':memory:', transport, live: true }), { code: 'INVALID_ARGUMENT', message: /options\.live/ });
    assert.throws(() => new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'http://127.0.0.1:1' }), live: { pokeDebounceMs: -1 } }), {
      code: 'INVALID_ARGUMENT',
    });
  });
});
