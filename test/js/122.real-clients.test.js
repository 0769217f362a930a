'use strict';

// Real clients, real failures, real attackers (the red-team findings): a client written to
// the Sync V2 design with its own habits, a host process whose sync fails, and requests
// built to crash or stall the server. Each test failed before its fix.

const { test, describe, after } = require('node:test');
const { once } = require('node:events');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { SyncClient, SyncServer, httpTransport } = require('../..');
const { tempDir } = require('./helpers');
const { withApp, startApp, assertHttpError, change, logOf, assertGapless } = require('./fixtures/server-http');

const { recordFigures } = require('./fixtures/figures');

const repoRoot = path.join(__dirname, '..', '..');

// For the README (scripts/figures.js): how many of these tests ran and passed.
let passedTests = 0;
const countedTest = (name, ...rest) => test(name, ...rest.slice(0, -1), async (t) => {
  await rest.at(-1)(t);
  passedTests += 1;
});
after(() => recordFigures('real-clients', { tests: passedTests }));

/** `count` CREATED changes of notes n0..n{count-1}, as a Sync V2 client queues them. */
function createdChanges(count, prefix = 'c', data = (i) => ({ title: `note ${i}` })) {
  return Array.from({ length: count }, (_, i) => change(`${prefix}${i}`, 'CREATED', `n${i}`, data(i), { timestamp: 1000 + i }));
}

/**
 * A POST whose body is sent but for its last byte, over node:http: `sent` resolves once the rest
 * is on the wire, `finish()` sends the last byte, and `response` resolves with
 * { status, headers, json } (or the response the server sends without waiting).
 */
function startSlowPost(app, route, body, user) {
  const http = require('node:http');
  const bytes = Buffer.from(body);
  const request = http.request(`${app.base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': bytes.length, 'x-user': user },
  });
  const response = new Promise((resolve, reject) => {
    request.on('response', (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined });
      });
    });
    request.on('error', reject);
  });
  const sent = new Promise((resolve) => request.write(bytes.subarray(0, bytes.length - 1), resolve));
  return { sent, response, finish: () => request.end(bytes.subarray(bytes.length - 1)) };
}

/** Polls `check` until it holds (each poll waits for the event loop to turn). */
async function waitUntil(check) {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
}

describe('an independent Sync V2 client', () => {
  countedTest('the device id comes from the X-Device-ID header when the body has none', async (t) => {
    const app = await withApp(t);
    const body = { lastKnownServerVersion: 0, changes: createdChanges(2) };
    const response = await app.sync(body, { headers: { 'x-device-id': 'browser-1' } });
    assert.deepEqual(response.applied.map((item) => item.version), [1, 2]);
    const log = await logOf(app.server, 'alice');
    assert.deepEqual(log.changes.map((item) => item.deviceId), ['browser-1', 'browser-1']);
    // A body's deviceId wins over the header; neither is still a 400.
    await app.sync({ deviceId: 'body-device', changes: [change('c9', 'CREATED', 'n9', {}, { timestamp: 1 })] },
      { headers: { 'x-device-id': 'header-device' } });
    assert.equal((await logOf(app.server, 'alice')).changes.at(-1).deviceId, 'body-device');
    assertHttpError(await app.post('/v2', { changes: [] }), 400, 'INVALID_ARGUMENT', /deviceId/);
    assertHttpError(await app.post('/v2', { changes: [] }, { headers: { 'x-device-id': 'x'.repeat(300) } }),
      400, 'INVALID_ARGUMENT', /X-Device-ID/);
  });

  countedTest('a client that stores latestServerVersion as its cursor and ignores hasMore receives every change', async (t) => {
    const app = await withApp(t);
    for (let start = 0; start < 1200; start += 400) {
      await app.sync({ deviceId: 'writer', changes: createdChanges(400, `w${start}-`).map((item, i) => ({ ...item, entityId: `n${start + i}` })) });
    }
    const seen = new Set();
    let cursor = 0;
    for (let request = 0; request < 10 && seen.size < 1200; request += 1) {
      const page = await app.sync({ deviceId: 'reader', lastKnownServerVersion: cursor, changes: [] });
      for (const item of page.newChanges) seen.add(item.version);
      assert.equal(page.headVersion, 1200);
      cursor = page.latestServerVersion; // the habit: hasMore is never read
    }
    assert.equal(seen.size, 1200, 'no change is skipped');
    assert.equal(cursor, 1200);
  });

  countedTest('a backlog of 5,000 changes sent in one request gets through (the body limit is the guard)', async (t) => {
    const app = await withApp(t);
    const response = await app.sync({ deviceId: 'd1', lastKnownServerVersion: 0, changes: createdChanges(5000) });
    assert.equal(response.applied.length, 5000);
    assert.equal(response.errors.length, 0);
  });

  countedTest('GET /v2/status and POST /v2/migrate (the Sync V2 design\'s routes)', async (t) => {
    const app = await withApp(t);
    await app.sync({ deviceId: 'd1', changes: createdChanges(3) });
    const status = await app.get('/v2/status', { headers: { 'x-device-id': 'd1' } });
    assert.equal(status.status, 200, status.text);
    assert.equal(status.json.success, true);
    assert.equal(status.json.deviceId, 'd1');
    assert.equal(status.json.changesPushed, 3);
    assert.equal(status.json.latestServerVersion, 3);
    assert.equal((await app.get('/v2/status?deviceId=d1')).json.changesPushed, 3);
    assertHttpError(await app.get('/v2/status'), 400, 'INVALID_ARGUMENT', /X-Device-ID/);
    assertHttpError(await app.get('/v2/status', { headers: { 'x-device-id': 'never-seen' } }), 404, 'NOT_FOUND');

    const legacy = { logbook_entries: [{ id: 'e1', title: 'Scales' }, { id: 'e2', title: 'Arpeggios' }], goals: [{ id: 'g1', title: 'Daily' }] };
    const first = await app.post('/v2/migrate', { state: legacy });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.success, true);
    assert.equal(first.json.imported, 3);
    const again = await app.post('/v2/migrate', legacy);
    assert.equal(again.json.imported, 0, 'idempotent: the same state imports once');
    assert.equal(again.json.skipped, 3);
    assertHttpError(await app.post('/v2/migrate', '{"state":'), 400, 'INVALID_ARGUMENT', /Malformed JSON/);
    assertHttpError(await app.post('/v2/migrate', '[1,2]'), 400, 'INVALID_ARGUMENT');
    assertHttpError(await app.post('/v2/migrate', `${JSON.stringify(legacy)}{}`), 400, 'INVALID_ARGUMENT', /Trailing content/);
    // deviceId beside the state is not an entity type, bare or wrapped; a byte-order mark is read
    // past, as on the other routes.
    const bare = await app.post('/v2/migrate', { deviceId: 'd1', notes: [{ id: 'n1', text: 'a' }] });
    assert.deepEqual([bare.status, bare.json.imported], [200, 1], bare.text);
    const wrapped = await app.post('/v2/migrate', `\uFEFF${JSON.stringify({ deviceId: 'd1', state: { notes: [{ id: 'n2', text: 'b' }] } })}`);
    assert.deepEqual([wrapped.status, wrapped.json.imported], [200, 1], wrapped.text);
    const types = new Set((await logOf(app.server, 'alice')).changes.map((item) => item.entityType));
    assert.deepEqual([...types].sort(), ['goals', 'logbook_entries', 'note', 'notes']);
    // With another field beside it, "state" is an entity type like any other, so its records must be an array.
    assertHttpError(await app.post('/v2/migrate', { state: { notes: [{ id: 'n3' }] }, other: [] }), 400, 'INVALID_ARGUMENT', /state/);
  });
});

describe('failures never crash the host', () => {
  countedTest('a started client with no error listener survives a failing server; status.lastError carries the failure', () => {
    // In a child process: an unheard 'error' event would exit it with code 1.
    const script = `
      const { SyncClient, TransportError } = require(${JSON.stringify(repoRoot)});
      let calls = 0;
      const client = new SyncClient({
        path: ':memory:',
        transport: async () => { calls += 1; throw new TransportError('service unavailable', { status: 503 }); },
        triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
        retry: { baseDelayMs: 1, maxDelayMs: 5 },
        keepAlive: true,
      });
      client.put('note', 'n1', { title: 'x' });
      client.start();
      client.notify('online');
      const check = setInterval(() => {
        if (calls >= 3) {
          clearInterval(check);
          const { lastError } = client.status;
          client.close();
          console.log(JSON.stringify({ calls, lastError }));
        }
      }, 5);
    `;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout.trim());
    assert.ok(out.calls >= 3);
    assert.equal(out.lastError.code, 'TRANSPORT');
    assert.match(out.lastError.message, /service unavailable/);
  });

  countedTest('an error listener still receives every failure', async (t) => {
    const dir = tempDir(t);
    let calls = 0;
    const client = new SyncClient({
      path: path.join(dir, 'c.db'),
      transport: async () => {
        calls += 1;
        const error = new Error('down');
        error.status = 503;
        throw error;
      },
    });
    t.after(() => client.close());
    const errors = [];
    client.on('error', (error) => errors.push(error.code));
    await assert.rejects(client.sync(), { code: 'TRANSPORT' });
    assert.deepEqual(errors, ['TRANSPORT']);
    assert.equal(calls, 1);
  });
});

describe('responses are bounded by bytes', () => {
  countedTest('600 conflicting UPDATEDs against one 1 MB document: its data is sent once, not 600 times', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'server_wins' } });
    const big = { blob: 'x'.repeat(1024 * 1024 - 64) };
    await app.sync({ deviceId: 'd1', changes: [change('c0', 'CREATED', 'big', big, { timestamp: 1 })] });
    await app.sync({ deviceId: 'd1', changes: [change('c1', 'UPDATED', 'big', { v: 1 }, { timestamp: 2, baseVersion: 1 })] });
    const stale = Array.from({ length: 600 }, (_, i) => change(`s${i}`, 'UPDATED', 'big', { n: i }, { timestamp: 3 + i, baseVersion: 1 }));
    const response = await app.post('/v2', { deviceId: 'd2', lastKnownServerVersion: 2, changes: stale });
    assert.equal(response.status, 200);
    assert.ok(response.bytes.length < 2 * 1024 * 1024, `response of ${response.bytes.length} bytes`);
    const { conflicts } = response.json;
    assert.equal(conflicts.length, 600);
    assert.equal(conflicts.filter((item) => item.serverData !== undefined).length, 1);
    assert.ok(conflicts.slice(1).every((item) => item.serverDataOmitted === true));
    // The server stays up for everyone.
    assert.equal((await app.sync({ deviceId: 'd3', changes: [] }, { user: 'bob' })).headVersion, 0);
  });

  countedTest('pull pages and conflict data stop at maxResponseBytes; hasMore tells the rest and a client gets everything', async (t) => {
    const maxResponseBytes = 64 * 1024;
    const app = await withApp(t, { serverOptions: { limits: { maxResponseBytes } } });
    const doc = (i) => ({ i, body: 'y'.repeat(10 * 1024) });
    for (let start = 0; start < 60; start += 20) {
      await app.sync({ deviceId: 'd1', changes: createdChanges(20, `b${start}-`, (i) => doc(start + i)).map((item, i) => ({ ...item, entityId: `n${start + i}` })) });
    }
    let cursor = 0;
    let pages = 0;
    const versions = [];
    for (;;) {
      const response = await app.post('/v2', { deviceId: 'd2', lastKnownServerVersion: cursor, changes: [] });
      assert.ok(response.bytes.length <= maxResponseBytes + 11 * 1024, `page of ${response.bytes.length} bytes`);
      versions.push(...response.json.newChanges.map((item) => item.version));
      cursor = response.json.latestServerVersion;
      pages += 1;
      if (!response.json.hasMore) break;
    }
    assert.deepEqual(versions, Array.from({ length: 60 }, (_, i) => i + 1));
    assert.ok(pages >= 8, `${pages} pages`);

    // A SyncClient against the same server converges through the small pages.
    const client = new SyncClient({ path: ':memory:', transport: httpTransport({ url: app.base, headers: { 'x-user': 'alice' } }) });
    t.after(() => client.close());
    await client.sync();
    assert.equal(client.list('note').length, 60);
    assert.equal(client.serverVersion, 60);
  });

  countedTest('a lost conflict whose data was over the budget stays queued and settles on a later request', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'server_wins', limits: { maxResponseBytes: 32 * 1024 } } });
    const doc = (i) => ({ i, body: 'z'.repeat(20 * 1024) });
    const other = new SyncClient({ path: ':memory:', deviceId: 'other', transport: httpTransport({ url: app.base, headers: { 'x-user': 'alice' } }) });
    const mine = new SyncClient({ path: ':memory:', deviceId: 'mine', transport: httpTransport({ url: app.base, headers: { 'x-user': 'alice' } }) });
    t.after(() => other.close());
    t.after(() => mine.close());
    for (let i = 0; i < 3; i += 1) other.put('note', `n${i}`, doc(i));
    await other.sync();
    await mine.sync();
    for (let i = 0; i < 3; i += 1) other.patch('note', `n${i}`, { i: i + 100 });
    await other.sync();
    for (let i = 0; i < 3; i += 1) mine.patch('note', `n${i}`, { mine: true });
    const summary = await mine.sync();
    assert.ok(summary.requests >= 2, `${summary.requests} requests`);
    assert.equal(mine.queue.stats().pending + mine.queue.stats().syncing, 0, 'every lost change settled');
    for (let i = 0; i < 3; i += 1) assert.equal(mine.get('note', `n${i}`).i, i + 100, 'rolled back to the server\'s data');
  });
});

describe('the router answers JSON, checks identities and bounds its work', () => {
  countedTest('a malformed %-escape in a path is a JSON 400, not an HTML page with a stack trace', async (t) => {
    const app = await withApp(t);
    for (const target of ['/status/%ff', '/v2/status/%E0%A4%A']) {
      const response = await app.get(target);
      assert.ok(response.status >= 400 && response.status < 500, `${target}: ${response.status}`);
      assert.match(response.headers.get('content-type'), /^application\/json/);
      assert.doesNotMatch(response.text, /<html|at [A-Za-z]+ \(/i);
    }
    assertHttpError(await app.get('/status/%ff'), 400, 'INVALID_ARGUMENT');
  });

  countedTest('the user id authenticate returns must be well-formed: two ill-formed ids never collapse into one user', async (t) => {
    const ids = { lone: 'u\uD800', other: 'u\uDBFF', control: 'a\u0000b', long: 'x'.repeat(257), number: 42 };
    const app = await withApp(t, { authenticate: (req) => ids[req.get('x-user')] ?? req.get('x-user') });
    for (const name of Object.keys(ids)) {
      const response = await app.post('/v2', { deviceId: 'd', changes: createdChanges(1) }, { user: name });
      assertHttpError(response, 401, 'UNAUTHENTICATED', /invalid user id/);
    }
    assert.equal((await app.sync({ deviceId: 'd', changes: createdChanges(1) }, { user: 'ok' })).applied.length, 1);
  });

  countedTest('requests in flight are bounded: past the bound, 503 OVERLOADED with Retry-After, and nothing is lost', async (t) => {
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    let waiting = 0;
    const app = await startApp({
      router: { limits: { maxConcurrentRequests: 2, maxConcurrentRequestsPerUser: 2 } },
      authenticate: async (req) => {
        waiting += 1;
        await gate;
        return req.get('x-user');
      },
    });
    t.after(() => app.close());
    const held = [app.post('/v2', { deviceId: 'd', changes: createdChanges(1, 'a') }), app.post('/v2', { deviceId: 'd', changes: createdChanges(1, 'b') })];
    while (waiting < 2) await new Promise((resolve) => setImmediate(resolve));
    const refused = await app.post('/v2', { deviceId: 'd', changes: createdChanges(1, 'c') });
    assertHttpError(refused, 503, 'OVERLOADED');
    assert.equal(refused.headers.get('retry-after'), '1');
    release();
    for (const response of await Promise.all(held)) assert.equal(response.status, 200);
    assert.equal((await app.post('/v2', { deviceId: 'd', changes: createdChanges(1, 'c') })).status, 200, 'served once the others finished');
  });

  countedTest('one user\'s requests in flight are bounded apart: bodies it sends slowly never shut out another user', async (t) => {
    const app = await withApp(t, { router: { limits: { maxConcurrentRequests: 4, maxConcurrentRequestsPerUser: 2 } } });
    const body = JSON.stringify({ deviceId: 'd', changes: createdChanges(1, 'slow') });
    const slow = [startSlowPost(app, '/v2', body, 'mallory'), startSlowPost(app, '/v2', body.replace('slow', 'slower'), 'mallory')];
    await Promise.all(slow.map((post) => post.sent));
    await waitUntil(async () => (await app.post('/v2', { deviceId: 'd', changes: [] }, { user: 'mallory' })).status === 503);
    const refused = await app.post('/v2', { deviceId: 'd', changes: [] }, { user: 'mallory' });
    assertHttpError(refused, 503, 'OVERLOADED', /This user has 2 sync requests in flight/);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal((await app.sync({ deviceId: 'd', changes: createdChanges(1, 'b') }, { user: 'bob' })).applied.length, 1);
    for (const post of slow) post.finish();
    for (const post of slow) assert.equal((await post.response).status, 200);
    assert.equal((await app.post('/v2', { deviceId: 'd', changes: [] }, { user: 'mallory' })).status, 200, 'served once its own finished');
  });

  countedTest('a device that leaves while it is being authenticated frees its slot and holds no stream', async (t) => {
    let open;
    let gate = new Promise((resolve) => { open = resolve; });
    let waiting = 0;
    const app = await withApp(t, {
      router: { limits: { maxConcurrentRequestsPerUser: 1, maxStreamsPerUser: 1 } },
      authenticate: async (req) => {
        waiting += 1;
        await gate;
        return req.get('x-user');
      },
    });
    for (const [method, route] of [['POST', '/v2'], ['GET', '/v2/events']]) {
      const controller = new AbortController();
      const request = fetch(`${app.base}${route}`, {
        method,
        headers: { 'x-user': 'alice', 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ deviceId: 'd', changes: [] }) : undefined,
        signal: controller.signal,
      }).catch(() => null);
      while (waiting < 1) await new Promise((resolve) => setImmediate(resolve));
      controller.abort();
      await request;
      await new Promise((resolve) => setTimeout(resolve, 20)); // the server sees the socket close
      open();
      waiting = 0;
      gate = Promise.resolve();
      assert.equal((await app.post('/v2', { deviceId: 'd', changes: [] })).status, 200, `after a ${method} that left: the slot is free`);
      const stream = new AbortController();
      const live = await fetch(`${app.base}/v2/events`, { headers: { 'x-user': 'alice' }, signal: stream.signal });
      assert.equal(live.status, 200, `after a ${method} that left: the stream slot is free`);
      stream.abort();
      await new Promise((resolve) => setTimeout(resolve, 20));
      gate = new Promise((resolve) => { open = resolve; });
    }
  });

  countedTest('a body that stops arriving is answered 408 REQUEST_TIMEOUT, frees its slot and applies nothing', async (t) => {
    const app = await withApp(t, { router: { limits: { maxConcurrentRequests: 1, bodyIdleTimeoutMs: 100 } } });
    const body = JSON.stringify({ deviceId: 'd', changes: createdChanges(1, 'stalled') });
    const stalled = startSlowPost(app, '/v2', body, 'mallory');
    const response = await stalled.response;
    assert.equal(response.status, 408);
    assert.deepEqual(Object.keys(response.json.error).sort(), ['code', 'message']);
    assert.equal(response.json.error.code, 'REQUEST_TIMEOUT');
    assert.equal(response.headers.connection, 'close');
    assert.equal((await app.sync({ deviceId: 'd', changes: [] }, { user: 'mallory' })).latestServerVersion, 0, 'nothing applied');
    assert.equal((await app.sync({ deviceId: 'd', changes: createdChanges(1, 'b') }, { user: 'bob' })).applied.length, 1);
  });

  countedTest('HEAD /v2/events answers a stream\'s headers at once, holding no request slot and no stream', async (t) => {
    const app = await withApp(t, { router: { limits: { maxConcurrentRequests: 1, maxStreamsPerUser: 1 } } });
    // Over raw sockets left open, as a prober or a proxy that keeps its connections would.
    const { base } = app;
    const url = new URL(base);
    const sockets = [];
    t.after(() => sockets.forEach((socket) => socket.destroy()));
    for (let i = 0; i < 3; i += 1) {
      const socket = require('node:net').connect(Number(url.port), url.hostname);
      sockets.push(socket);
      socket.write(`HEAD ${url.pathname}/v2/events HTTP/1.1\r\nHost: ${url.host}\r\nx-user: alice\r\n\r\n`);
      let head = '';
      while (!head.includes('\r\n\r\n')) head += (await once(socket, 'data'))[0].toString('latin1');
      assert.match(head, /^HTTP\/1\.1 200 /);
      assert.match(head, /content-type: text\/event-stream/i);
    }
    assert.equal((await app.sync({ deviceId: 'd', changes: createdChanges(1) })).applied.length, 1, 'the slot is free');
    const controller = new AbortController();
    const stream = await fetch(`${app.base}/v2/events`, { headers: { 'x-user': 'alice' }, signal: controller.signal });
    assert.equal(stream.status, 200, 'the stream slot is free');
    controller.abort();
    assert.equal((await app.request('HEAD', '/v2/events', undefined, null, {})).status, 401, 'a HEAD carries no body, only the status');
  });
});

describe('a page must agree with itself', () => {
  countedTest('applyRemote refuses a page whose cursor contradicts its changes, and changes nothing', async (t) => {
    const dir = tempDir(t);
    const client = new SyncClient({ path: path.join(dir, 'c.db') });
    t.after(() => client.close());
    const good = { version: 5, changeId: 'r5', type: 'CREATED', entityType: 'note', entityId: 'n5', data: { a: 1 }, timestamp: 1 };
    for (const [page, message] of [
      [{ newChanges: [good], latestServerVersion: 4, hasMore: false }, /below the version of its last change/],
      [{ newChanges: [good], latestServerVersion: 9, headVersion: 6, hasMore: false }, /above page\.headVersion/],
      [{ newChanges: [], latestServerVersion: 2 ** 53 - 1, hasMore: true }, /hasMore is true but the page has no changes/],
    ]) {
      await assert.rejects(client.applyRemote(JSON.stringify(page)), (error) => error.code === 'INVALID_ARGUMENT' && message.test(error.message));
    }
    assert.equal(client.serverVersion, 0);
    assert.equal(client.get('note', 'n5'), undefined);
  });

  countedTest('a cursor pushed to 2^53-1 by a hostile page is healed by the next sync (the server says resync)', async (t) => {
    const app = await withApp(t);
    await app.sync({ deviceId: 'w', changes: createdChanges(3) });
    const client = new SyncClient({ path: ':memory:', transport: httpTransport({ url: app.base, headers: { 'x-user': 'alice' } }) });
    t.after(() => client.close());
    await client.applyRemote(JSON.stringify({ newChanges: [], latestServerVersion: 2 ** 53 - 1, hasMore: false }));
    assert.equal(client.serverVersion, 2 ** 53 - 1);
    await client.sync();
    assert.equal(client.serverVersion, 3);
    assert.equal(client.list('note').length, 3);
  });
});

describe('the server going back in time is noticed', () => {
  countedTest('a cursor ahead of the history is noticed even when the same request pushes past it', async (t) => {
    const app = await withApp(t);
    await app.sync({ deviceId: 'w', changes: createdChanges(3) });
    // The device's cursor is 5, the server's history ends at 3, and the device pushes 4 changes.
    const response = await app.sync({ deviceId: 'd', lastKnownServerVersion: 5, changes: createdChanges(4, 'p', (i) => ({ p: i })).map((c, i) => ({ ...c, entityId: `p${i}` })) });
    assert.equal(response.resync, true);
    assert.equal(response.resyncFrom, 3, 'the head before this request\'s own changes');
    assert.deepEqual(response.newChanges.map((c) => c.version), [1, 2, 3, 4, 5, 6, 7]);
  });

  countedTest('a server restored from an older copy: clients re-pull, re-send what it lost, and converge with nothing lost', async (t) => {
    const dir = tempDir(t);
    const serverPath = path.join(dir, 'server.db');
    let app = await startApp({ server: new SyncServer({ path: serverPath }) });
    const transport = () => httpTransport({ url: app.base, headers: { 'x-user': 'alice' } });
    const laptop = new SyncClient({ path: path.join(dir, 'laptop.db'), deviceId: 'laptop', transport: (...args) => transport()(...args) });
    const phone = new SyncClient({ path: path.join(dir, 'phone.db'), deviceId: 'phone', transport: (...args) => transport()(...args) });
    t.after(() => laptop.close());
    t.after(() => phone.close());
    laptop.put('note', 'a', { v: 1 });
    laptop.put('note', 'b', { v: 1 });
    await laptop.sync();
    await phone.sync();
    await app.close();
    fs.copyFileSync(serverPath, path.join(dir, 'backup.db')); // the backup: versions 1-2

    app = await startApp({ server: new SyncServer({ path: serverPath }) });
    laptop.patch('note', 'a', { v: 2 });
    laptop.put('note', 'c', { v: 1 });
    await laptop.sync(); // versions 3-4, acknowledged
    phone.put('note', 'd', { v: 1 });
    await phone.sync(); // version 5
    await laptop.sync();
    assert.equal(laptop.serverVersion, 5);
    await app.close();

    // The server's disk is restored from the backup: versions 3-5 are gone.
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(serverPath + suffix, { force: true });
    fs.copyFileSync(path.join(dir, 'backup.db'), serverPath);
    app = await startApp({ server: new SyncServer({ path: serverPath }) });
    t.after(() => app.close());

    const first = await laptop.sync();
    await phone.sync();
    await laptop.sync();
    await phone.sync();
    assert.ok(first.requests >= 1);
    const expected = { a: { v: 2 }, b: { v: 1 }, c: { v: 1 }, d: { v: 1 } };
    for (const client of [laptop, phone]) {
      const docs = Object.fromEntries(client.list('note').map((doc) => [doc.id ?? doc._id ?? doc.entityId, doc]));
      void docs;
      for (const [id, value] of Object.entries(expected)) assert.deepEqual(client.get('note', id), value, `${client.deviceId} ${id}`);
      assert.equal(client.queue.stats().pending, 0);
    }
    const log = await logOf(app.server, 'alice');
    assertGapless(log.changes);
    assert.equal(laptop.serverVersion, log.changes.at(-1).version);
  });
});

describe('clock hygiene', () => {
  const YEAR_9999 = Date.UTC(9999, 11, 31);

  countedTest('a record stamped 9999-12-31 cannot pin an entity: a later edit from another device wins', async (t) => {
    const app = await withApp(t); // newest_wins, maxClockSkewMs 60 s
    await app.sync({ deviceId: 'bad-clock', changes: [change('f1', 'CREATED', 'n', { by: 'bad-clock' }, { timestamp: YEAR_9999 })] });
    const log = await logOf(app.server, 'alice');
    assert.ok(log.changes[0].timestamp <= Date.now(), 'stored with the time the server received it');
    const later = await app.sync({ deviceId: 'good-clock', changes: [change('g1', 'UPDATED', 'n', { by: 'good-clock' }, { timestamp: Date.now() + 5000 })] });
    assert.deepEqual(later.applied.map((item) => item.changeId), ['g1']);
    assert.equal(later.conflicts.length === 0 || later.conflicts[0].winner === 'client', true);
    const state = (await app.server.pull('alice', { since: 0 })).newChanges.at(-1);
    assert.deepEqual(state.data, { by: 'good-clock' });
    // A replay of the far-future change is still recognised as the same change.
    const replay = await app.sync({ deviceId: 'bad-clock', changes: [change('f1', 'CREATED', 'n', { by: 'bad-clock' }, { timestamp: YEAR_9999 })] });
    assert.deepEqual(replay.applied, [{ changeId: 'f1', version: 1 }]);
  });

  countedTest('the same on the compatible /push: updated_at 9999-12-31 is clamped', async (t) => {
    const app = await withApp(t);
    const push = (device, record) => app.post('/push', { deviceId: device, changes: { customers: [record] } });
    assert.equal((await push('bad-clock', { customer_id: 'C1', name: 'pinned', updated_at: '9999-12-31T00:00:00Z' })).status, 200);
    const later = await push('good-clock', { customer_id: 'C1', name: 'edited', updated_at: new Date(Date.now() + 5000).toISOString() });
    assert.equal(later.status, 200, later.text);
    assert.equal(later.json.applied.length, 1, later.text);
  });

  countedTest('pulled records carry the clamped time, so an old client\'s own last-write-wins is not pinned either', async (t) => {
    const app = await withApp(t);
    const before = Date.now();
    const push = (record) => app.post('/push', { deviceId: 'bad-clock', changes: { customers: [record] } });
    assert.equal((await push({ customer_id: 'C1', name: 'pinned', updated_at: '9999-12-31T00:00:00Z' })).status, 200);
    assert.equal((await push({ customer_id: 'C2', name: 'fine', updatedAt: '2025-10-18T12:00:00.000Z' })).status, 200);
    assert.equal((await push({ customer_id: 'C3', name: 'camel', updatedAt: Date.UTC(9999, 0, 1) })).status, 200);
    const pulled = await app.post('/pull', { deviceId: 'other', lastSyncTimestamp: null });
    const [pinned, fine, camel] = pulled.json.changes.customers;
    assert.deepEqual(Object.keys(pinned).sort(), ['customer_id', 'name', 'updated_at']);
    const time = Date.parse(pinned.updated_at);
    assert.ok(time >= before - 1000 && time <= Date.now() + 1000, `${pinned.updated_at}: the time the server received it`);
    assert.equal(fine.updatedAt, '2025-10-18T12:00:00.000Z', 'a time the server admitted stays as it was pushed');
    assert.deepEqual(Object.keys(camel).sort(), ['customer_id', 'name', 'updatedAt'], 'under the field it was pushed with');
    assert.equal(typeof camel.updatedAt, 'number', 'and of the same type');
    assert.ok(camel.updatedAt <= Date.now() + 1000);
    const { entities } = (await app.get('/changes')).json;
    assert.equal(entities.customers[0].updated_at, pinned.updated_at, 'GET /changes says the same');
  });
});

describe('limits hold after merging', () => {
  countedTest('two UPDATEDs of 600 KB each: the second is a per-change LIMIT_EXCEEDED and nothing of it is stored', async (t) => {
    const app = await withApp(t);
    const half = (field) => ({ [field]: 'm'.repeat(600 * 1024) });
    await app.sync({ deviceId: 'd', changes: [change('m0', 'CREATED', 'big', { title: 't' })] });
    const first = await app.sync({ deviceId: 'd', changes: [change('m1', 'UPDATED', 'big', half('a'))] });
    assert.equal(first.applied.length, 1);
    const second = await app.sync({ deviceId: 'd', changes: [change('m2', 'UPDATED', 'big', half('b')), change('m3', 'CREATED', 'small', { ok: 1 })] });
    assert.deepEqual(second.errors.map((item) => [item.changeId, item.code]), [['m2', 'LIMIT_EXCEEDED']]);
    assert.deepEqual(second.applied.map((item) => item.changeId), ['m3'], 'the other change goes on');
    const log = await logOf(app.server, 'alice');
    assertGapless(log.changes);
    assert.equal(log.changes.length, 3);
    // A new device pulls every version: no entity over the limit exists to block it.
    const fresh = new SyncClient({ path: ':memory:', transport: httpTransport({ url: app.base, headers: { 'x-user': 'alice' } }) });
    t.after(() => fresh.close());
    await fresh.sync();
    assert.equal(fresh.serverVersion, 3);
    assert.equal(fresh.get('note', 'big').a.length, 600 * 1024);
  });

  countedTest('on the client: put 900 KB then patch 900 KB is LIMIT_EXCEEDED with nothing stored or queued', async (t) => {
    const client = new SyncClient({ path: path.join(tempDir(t), 'c.db') });
    t.after(() => client.close());
    client.put('note', 'n', { a: 'p'.repeat(900 * 1024) });
    const before = client.queue.export().changes;
    assert.throws(() => client.patch('note', 'n', { b: 'q'.repeat(900 * 1024) }), (error) => error.code === 'LIMIT_EXCEEDED' && /over the limit/.test(error.message));
    assert.equal(client.get('note', 'n').b, undefined);
    assert.deepEqual(client.queue.export().changes, before);
    // The same through the queue: an UPDATED folded into a pending CREATED.
    client.queue.enqueue({ type: 'CREATED', entityType: 'doc', entityId: 'd', data: { a: 'p'.repeat(600 * 1024) } });
    assert.throws(() => client.queue.enqueue({ type: 'UPDATED', entityType: 'doc', entityId: 'd', data: { b: 'q'.repeat(600 * 1024) } }),
      (error) => error.code === 'LIMIT_EXCEEDED');
    assert.equal(client.queue.stats().pending, 2);
  });
});

describe('Retry-After and going online', () => {
  countedTest('a Retry-After in year 9999 waits at most retry.maxRetryAfterMs, and notify("online") retries at once', async (t) => {
    const { TransportError } = require('../..');
    let calls = 0;
    const client = new SyncClient({
      path: path.join(tempDir(t), 'c.db'),
      transport: async () => {
        calls += 1;
        throw new TransportError('overloaded', { status: 503, retryAfterMs: Date.UTC(9999, 0, 1) - Date.now() });
      },
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
    });
    t.after(() => client.close());
    client.put('note', 'n', { a: 1 });
    client.start();
    await assert.rejects(client.sync({ manual: true }), { code: 'TRANSPORT' });
    const waitMs = client.status.nextSyncAt - Date.now();
    assert.equal(client.status.state, 'backoff');
    assert.ok(waitMs <= 3600000 && waitMs > 3500000, `waits ${waitMs} ms`);
    client.notify('online');
    assert.ok(client.status.nextSyncAt - Date.now() > 3500000, 'an "online" while online changes nothing');
    client.notify('offline');
    client.notify('online');
    assert.ok(client.status.nextSyncAt - Date.now() <= 1000, 'coming back online ends the wait');
    client.stop();
    assert.equal(calls, 1);
  });
});

describe('ingest stays in its directory', () => {
  countedTest('a symbolic link to a file outside is reported and not read; one inside is followed', async (t) => {
    const dir = tempDir(t);
    const data = path.join(dir, 'data');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(data);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(data, 'a.jsonl'), '{"id":"a1","v":1}\n');
    fs.writeFileSync(path.join(outside, 'secret.jsonl'), '{"id":"secret","password":"hunter2"}\n');
    fs.symlinkSync(path.join(outside, 'secret.jsonl'), path.join(data, 'leak.jsonl'));
    fs.symlinkSync(path.join(data, 'a.jsonl'), path.join(data, 'alias.jsonl'));
    fs.symlinkSync('/etc/passwd', path.join(data, 'passwd'));
    const client = new SyncClient({ path: path.join(dir, 'c.db') });
    t.after(() => client.close());
    const report = await client.ingest(data, { entityType: 'event', idField: 'id', pattern: '**' });
    assert.deepEqual(report.errors.map((error) => error.file).sort(), ['leak.jsonl', 'passwd']);
    for (const error of report.errors) assert.match(error.message, /outside the ingested directory/);
    assert.equal(client.get('event', 'secret'), undefined);
    assert.deepEqual(client.list('event').map((doc) => doc.id), ['a1']);
    assert.ok(!JSON.stringify(client.queue.export().changes).includes('hunter2'));
  });
});

describe('the compatible /push', () => {
  countedTest('a record set back to an earlier value is applied, and a retry of that revert applies once', async (t) => {
    const app = await withApp(t);
    const push = (name) => app.post('/push', { deviceId: 'legacy', changes: { customers: [{ customer_id: 'C1', name }] } });
    for (const name of ['A', 'B', 'A']) assert.equal((await push(name)).status, 200);
    const afterRevert = await logOf(app.server, 'alice');
    assert.equal(afterRevert.changes.length, 3);
    assert.equal(afterRevert.changes.at(-1).data.name, 'A');
    assert.equal((await push('A')).status, 200, 'the same revert again (a retry)');
    assert.equal((await logOf(app.server, 'alice')).changes.length, 3, 'applied once');
  });
});

describe('opening a database beside a live client', () => {
  countedTest('leaves the other process\'s in-flight changes alone; after that process dies they are recovered', async (t) => {
    const { spawn } = require('node:child_process');
    const file = path.join(tempDir(t), 'shared.db');
    // A child whose sync never gets an answer: its change stays in flight.
    const child = spawn(process.execPath, ['-e', `
      const { SyncClient } = require(${JSON.stringify(repoRoot)});
      const client = new SyncClient({ path: ${JSON.stringify(file)}, transport: () => new Promise(() => {}) });
      client.put('note', 'n', { v: 1 });
      client.sync().catch(() => {});
      setTimeout(() => console.log('in flight'), 50);
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    await new Promise((resolve) => child.stdout.once('data', resolve));

    const inspect = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'deltasync.js'), 'inspect', file, '--json'], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    const other = new SyncClient({ path: file });
    assert.equal(other.queue.stats().syncing, 1, 'still in flight in the live process');
    other.close();

    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const after = new SyncClient({ path: file });
    t.after(() => after.close());
    assert.equal(after.queue.stats().syncing, 0);
    assert.equal(after.queue.stats().pending, 1, 'a dead process\'s in-flight change is pending again');
  });
});

describe('conflict ids', () => {
  countedTest('are numbered per user: they say nothing about other users\' activity', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'manual' } });
    const conflictFor = async (user, id, n) => {
      await app.sync({ deviceId: 'a', changes: [change(`${user}-c${n}`, 'CREATED', id, { v: 0 }, { timestamp: 1 })] }, { user });
      const response = await app.sync({ deviceId: 'b', changes: [change(`${user}-u${n}`, 'UPDATED', id, { v: n }, { timestamp: 2, baseVersion: 0 })] }, { user });
      return response.conflicts[0].conflictId;
    };
    for (let n = 1; n <= 3; n += 1) await conflictFor('bob', `b${n}`, n);
    assert.equal(await conflictFor('alice', 'a1', 1), 1, 'alice\'s first conflict is 1 whatever bob did');
    assert.equal(await conflictFor('alice', 'a2', 2), 2);
    assert.deepEqual((await app.server.conflicts('bob')).map((item) => item.id), [1, 2, 3]);
    await app.server.resolveConflict('alice', 1, { use: 'server' });
    assert.deepEqual((await app.server.conflicts('bob')).map((item) => item.id), [1, 2, 3], 'bob\'s conflict 1 is his own');
    assert.deepEqual((await app.server.conflicts('alice')).map((item) => item.id), [2]);
  });

  countedTest('the open-conflict list stops at maxResponseBytes and pages with after', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'manual', limits: { maxResponseBytes: 64 * 1024 } } });
    const big = { body: 'c'.repeat(20 * 1024) };
    const creates = Array.from({ length: 10 }, (_, i) => change(`c${i}`, 'CREATED', `n${i}`, big, { timestamp: 1 }));
    await app.sync({ deviceId: 'a', changes: creates });
    const updates = Array.from({ length: 10 }, (_, i) => change(`u${i}`, 'UPDATED', `n${i}`, big, { timestamp: 2, baseVersion: 0 }));
    assert.equal((await app.sync({ deviceId: 'b', changes: updates })).conflicts.length, 10);
    const seen = [];
    let after = 0;
    for (let page = 0; page < 20; page += 1) {
      const list = await app.server.conflicts('alice', { after });
      if (list.length === 0) break;
      assert.ok(JSON.stringify(list).length < 64 * 1024 + 50 * 1024, 'bounded');
      seen.push(...list.map((item) => item.id));
      after = list.at(-1).id;
    }
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => i + 1));
  });
});

describe('request bodies', () => {
  countedTest('memory grows with the bytes that arrive, not with the Content-Length a client declares', async (t) => {
    const http = require('node:http');
    const app = await withApp(t);
    const url = new URL(`${app.base}/v2`);
    const declared = 9 * 1024 * 1024;
    const held = [];
    const baseline = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 20; i += 1) {
      const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(declared), 'x-user': 'alice' } });
      req.on('error', () => {});
      req.write('{"deviceId":"d",');
      held.push(req);
    }
    // Let every request reach the router and start reading.
    for (let i = 0; i < 50; i += 1) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const grown = process.memoryUsage().arrayBuffers - baseline;
    for (const req of held) req.destroy();
    // Reserving the declared length would take 20 x 9 MiB = 180 MiB here.
    assert.ok(grown < 32 * 1024 * 1024, `array buffers grew by ${(grown / 1024 / 1024).toFixed(1)} MiB`);
  });
});
