'use strict';

// The Express routes of deltasync/express over real HTTP (127.0.0.1, port 0):
// POST /v2, /resolve-conflict, GET /status/:deviceId; authentication and user
// isolation; idempotent and concurrent pushes; every conflict strategy; pagination;
// and every kind of bad input, each a 4xx JSON error with nothing applied.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  SyncServer,
  createSyncRouter,
  startApp,
  withApp,
  assertHttpError,
  logOf,
  assertGapless,
  replay,
  stateOf,
  change,
} = require('./fixtures/server-http');
const { storeOptions } = require('./postgres-harness');

const T0 = 1_700_000_000_000;


/** `count` CREATED notes "<prefix><i>" with changeIds "<prefix>-c<i>". */
function creates(prefix, count, from = 0) {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return change(`${prefix}-c${i}`, 'CREATED', `${prefix}${i}`, { i, prefix }, { timestamp: T0 + i });
  });
}

describe('authentication', () => {
  let app;
  let calls = 0;
  before(async () => {
    app = await startApp({
      authenticate: async (req) => {
        calls += 1;
        const mode = req.get('x-auth');
        if (mode === 'throw') throw new Error('token expired');
        if (mode === 'reject') return Promise.reject(new Error('revoked'));
        if (mode === 'empty') return '';
        if (mode === 'number') return 42;
        if (mode === 'long') return 'u'.repeat(257);
        return req.get('x-user');
      },
    });
  });
  after(() => app.close());

  const validPush = { deviceId: 'd1', lastKnownServerVersion: 0, changes: [change('c1', 'CREATED', 'n1', { a: 1 })] };
  const routes = [
    ['POST', '/v2', validPush],
    ['POST', '/push', { deviceId: 'd1', changes: { customers: [{ customer_id: 'C1', updated_at: '2025-01-15T11:00:00Z' }] } }],
    ['POST', '/pull', { deviceId: 'd1', lastSyncTimestamp: '2025-01-01T00:00:00Z' }],
    ['POST', '/full', { deviceId: 'd1', lastSyncTimestamp: '2025-01-01T00:00:00Z', changes: {} }],
    ['POST', '/resolve-conflict', { conflictId: 1, resolution: 'client' }],
    ['GET', '/status/d1'],
    ['GET', '/changes?since=2025-01-01T00:00:00Z'],
    ['GET', '/no-such-route'],
  ];

  for (const [method, path, body] of routes) {
    test(`${method} ${path} without a user is 401 UNAUTHENTICATED`, async () => {
      const response =
        method === 'POST' ? await app.post(path, body, { user: null }) : await app.get(path, { user: null });
      assertHttpError(response, 401, 'UNAUTHENTICATED', /^Authentication required$/);
    });
  }

  test('a failing authenticate (throw, rejection, empty, non-string, over 256 bytes) is 401 and nothing is applied', async () => {
    const cases = [
      ['throw', /^Authentication failed: token expired$/],
      ['reject', /^Authentication failed: revoked$/],
      ['empty', /^Authentication required$/],
      ['number', /^authenticate returned an invalid user id/],
      ['long', /^authenticate returned an invalid user id/],
    ];
    for (const [mode, message] of cases) {
      const before = calls;
      const response = await app.post('/v2', validPush, { headers: { 'x-auth': mode } });
      assertHttpError(response, 401, 'UNAUTHENTICATED', message);
      assert.equal(calls, before + 1, 'authenticate runs once per request');
    }
    assert.deepEqual((await logOf(app.server, 'alice')).changes, []);
    assert.deepEqual((await logOf(app.server, 'u'.repeat(256))).changes, []);
  });

  test('an async authenticate that resolves lets the request through', async () => {
    const response = await app.post('/v2', { ...validPush, changes: [change('ok1', 'CREATED', 'ok', { a: 1 })] }, { user: 'carol' });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json.applied, [{ changeId: 'ok1', version: 1 }]);
  });
});

describe('user isolation', () => {
  let app;
  before(async () => {
    app = await startApp({ serverOptions: { conflicts: 'manual' } });
  });
  after(() => app.close());

  test('the user id never comes from the body', async () => {
    const body = {
      deviceId: 'd1',
      userId: 'bob',
      user: 'bob',
      lastKnownServerVersion: 0,
      changes: [change('body-user', 'CREATED', 'x', { owner: 'bob' }, { userId: 'bob', tenantId: 'bob-tenant' })],
    };
    const response = await app.sync(body, { user: 'dave' });
    assert.deepEqual(response.applied, [{ changeId: 'body-user', version: 1 }]);
    assert.equal((await logOf(app.server, 'dave')).changes.length, 1);
    assert.deepEqual((await logOf(app.server, 'bob')).changes, []);
  });

  test('two users with the same entity ids and changeIds never see or change each other\'s data', async () => {
    const aliceChanges = [
      change('c1', 'CREATED', 'n1', { owner: 'alice' }, { timestamp: T0 }),
      change('c2', 'CREATED', 'n2', { owner: 'alice' }, { timestamp: T0 }),
    ];
    const bobChanges = [
      // Same changeIds, different bodies: per user, so not a reuse (no 409).
      change('c1', 'CREATED', 'n1', { owner: 'bob' }, { timestamp: T0 }),
      // An update of an entity only alice has: bob's server has no such entity.
      change('c3', 'UPDATED', 'n2', { owner: 'bob' }, { timestamp: T0 + 1 }),
    ];
    const a = await app.sync({ deviceId: 'shared-device', lastKnownServerVersion: 0, changes: aliceChanges }, { user: 'alice' });
    const b = await app.sync({ deviceId: 'shared-device', lastKnownServerVersion: 0, changes: bobChanges }, { user: 'bob' });
    assert.deepEqual(a.applied, [
      { changeId: 'c1', version: 1 },
      { changeId: 'c2', version: 2 },
    ]);
    assert.deepEqual(b.applied, [{ changeId: 'c1', version: 1 }], 'bob has his own versions from 1');
    assert.equal(b.errors.length, 1);
    assert.equal(b.errors[0].changeId, 'c3');
    assert.equal(b.errors[0].code, 'NOT_FOUND');
    assert.deepEqual(
      b.newChanges.map((c) => [c.changeId, c.data]),
      [['c1', { owner: 'bob' }]],
      "bob's pull holds only bob's change",
    );
    assert.equal(b.latestServerVersion, 1);

    // A replay by bob of alice's exact request applies it to bob, at bob's versions.
    const replayed = await app.sync({ deviceId: 'bob-2', lastKnownServerVersion: 1, changes: [aliceChanges[1]] }, { user: 'bob' });
    assert.deepEqual(replayed.applied, [{ changeId: 'c2', version: 2 }]);

    assert.deepEqual(await stateOf(app.server, 'alice'), {
      'note/n1': { owner: 'alice' },
      'note/n2': { owner: 'alice' },
    });
    assert.deepEqual(await stateOf(app.server, 'bob'), {
      'note/n1': { owner: 'bob' },
      'note/n2': { owner: 'alice' },
    });
    // GET /changes (compatible) and the status of a device are per user too.
    const changes = await app.get('/changes', { user: 'bob' });
    assert.equal(changes.status, 200);
    assert.deepEqual(
      changes.json.entities.note.map((r) => r.owner).sort(),
      ['alice', 'bob'], // bob's n2 came from replaying alice's request into bob's account
    );
    const aliceOnly = await app.sync({ deviceId: 'alice-only', lastKnownServerVersion: 2, changes: [] }, { user: 'alice' });
    assert.deepEqual(aliceOnly.newChanges, []);
    assertHttpError(await app.get('/status/alice-only', { user: 'bob' }), 404, 'NOT_FOUND');
    assert.equal((await app.get('/status/alice-only', { user: 'alice' })).status, 200);
  });

  test("a user cannot see or resolve another user's conflict", async () => {
    const user = { user: 'erin' };
    await app.sync({ deviceId: 'e1', lastKnownServerVersion: 0, changes: [change('e-c1', 'CREATED', 'k', { v: 1 }, { timestamp: T0 })] }, user);
    await app.sync(
      { deviceId: 'e1', lastKnownServerVersion: 1, changes: [change('e-c2', 'UPDATED', 'k', { v: 2 }, { baseVersion: 1, timestamp: T0 + 1 })] },
      user,
    );
    const conflicted = await app.sync(
      { deviceId: 'e2', lastKnownServerVersion: 1, changes: [change('e-c3', 'UPDATED', 'k', { v: 3 }, { baseVersion: 1, timestamp: T0 + 2 })] },
      user,
    );
    assert.equal(conflicted.conflicts.length, 1);
    const { conflictId } = conflicted.conflicts[0];
    assert.ok(Number.isInteger(conflictId));
    assert.deepEqual(await app.server.conflicts('frank'), []);
    assertHttpError(
      await app.post('/resolve-conflict', { conflictId, resolution: 'client' }, { user: 'frank' }),
      404,
      'NOT_FOUND',
    );
    await assert.rejects(app.server.resolveConflict('frank', conflictId, { use: 'client' }), { code: 'NOT_FOUND' });
    assert.equal((await app.server.conflicts('erin')).length, 1, 'still open for its owner');
    assert.deepEqual(await stateOf(app.server, 'erin'), { 'note/k': { v: 2 } });
  });
});

describe('POST /v2', () => {
  test("accepts seed 002's SyncRequest (ChangeRecords with retryCount) plus deviceId, and answers the v2 shape", async (t) => {
    const app = await withApp(t);
    const request = {
      deviceId: 'browser-1',
      lastKnownServerVersion: 0,
      changes: [
        {
          changeId: '0b6f5e0e-9d3c-4e8a-a8a4-2f1f6f9e0c01',
          type: 'CREATED',
          entityType: 'logbook_entry',
          entityId: 'entry-1',
          data: { id: 'entry-1', duration: 30, pieces: [{ title: 'Étude', composer: 'Chopin' }] },
          timestamp: T0,
          retryCount: 0,
        },
        {
          changeId: '0b6f5e0e-9d3c-4e8a-a8a4-2f1f6f9e0c02',
          type: 'UPDATED',
          entityType: 'logbook_entry',
          entityId: 'entry-1',
          data: { duration: 45 },
          timestamp: T0 + 1000,
          retryCount: 2,
        },
        {
          changeId: '0b6f5e0e-9d3c-4e8a-a8a4-2f1f6f9e0c03',
          type: 'CREATED',
          entityType: 'goal',
          entityId: 'goal-1',
          data: { title: 'Practice daily' },
          timestamp: T0 + 2000,
          retryCount: 1,
        },
        {
          changeId: '0b6f5e0e-9d3c-4e8a-a8a4-2f1f6f9e0c04',
          type: 'DELETED',
          entityType: 'goal',
          entityId: 'goal-1',
          timestamp: T0 + 3000,
          retryCount: 0,
        },
      ],
    };
    const response = await app.sync(request);
    assert.deepEqual(Object.keys(response), ['applied', 'conflicts', 'errors', 'newChanges', 'latestServerVersion', 'headVersion', 'hasMore']);
    assert.deepEqual(
      response.applied,
      request.changes.map((c, i) => ({ changeId: c.changeId, version: i + 1 })),
    );
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.errors, []);
    assert.equal(response.latestServerVersion, 4);
    assert.equal(response.hasMore, false);
    assert.deepEqual(
      response.newChanges,
      request.changes.map((c, i) => ({
        version: i + 1,
        changeId: c.changeId,
        type: c.type,
        entityType: c.entityType,
        entityId: c.entityId,
        data: c.data ?? null,
        timestamp: c.timestamp,
        deviceId: 'browser-1',
      })),
    );
    assert.deepEqual(replay(response.newChanges), {
      'logbook_entry/entry-1': { id: 'entry-1', duration: 45, pieces: [{ title: 'Étude', composer: 'Chopin' }] },
    });
  });

  test('lastKnownServerVersion: null or absent means 0; newChanges are those after it', async (t) => {
    const app = await withApp(t);
    await app.sync({ deviceId: 'd', lastKnownServerVersion: 0, changes: creates('n', 3) });
    const absent = await app.sync({ deviceId: 'd', changes: [] });
    assert.equal(absent.newChanges.length, 3);
    const nulled = await app.sync({ deviceId: 'd', lastKnownServerVersion: null, changes: [] });
    assert.equal(nulled.newChanges.length, 3);
    const after2 = await app.sync({ deviceId: 'd', lastKnownServerVersion: 2, changes: [] });
    assert.deepEqual(after2.newChanges.map((c) => c.version), [3]);
    // A cursor ahead of the head: the server's history went back in time, so the page starts over.
    const ahead = await app.sync({ deviceId: 'd', lastKnownServerVersion: 99 });
    assert.deepEqual(ahead.newChanges.map((c) => c.version), [1, 2, 3]);
    assert.equal(ahead.latestServerVersion, 3);
    assert.equal(ahead.resync, true);
  });

  test('text beyond ASCII comes back byte for byte, with the length the body has', async (t) => {
    const app = await withApp(t);
    const data = { title: 'Crème brûlée für 2 · 東京 · 😀', escaped: 'a"b\\c\n' };
    await app.sync({ deviceId: 'd', changes: [change('u1', 'CREATED', 'ü-é', data)] });
    const response = await app.post('/v2', { deviceId: 'other', lastKnownServerVersion: 0, changes: [] });
    assert.equal(response.status, 200);
    assert.equal(Number(response.headers.get('content-length')), Buffer.byteLength(response.text));
    assert.match(response.headers.get('content-type'), /charset=utf-8/);
    assert.equal(response.json.newChanges[0].entityId, 'ü-é');
    assert.deepEqual(response.json.newChanges[0].data, data);
  });

  test('a null in an UPDATED removes the field; a change without timestamp gets the server time', async (t) => {
    const app = await withApp(t);
    await app.sync({
      deviceId: 'd',
      changes: [
        change('c1', 'CREATED', 'n', { keep: 1, drop: 2 }, { timestamp: T0 }),
        change('c2', 'UPDATED', 'n', { drop: null, add: 3 }, { timestamp: T0 + 1 }),
        change('c3', 'CREATED', 'm', { x: 1 }),
      ],
    });
    const { changes } = await logOf(app.server, 'alice');
    assert.deepEqual(changes[1].data, { drop: null, add: 3 }, 'the log keeps the delta as sent');
    assert.deepEqual(replay(changes), { 'note/n': { keep: 1, add: 3 }, 'note/m': { x: 1 } });
    assert.ok(Number.isInteger(changes[2].timestamp) && changes[2].timestamp > T0);
  });

  test('a per-change semantic error (UPDATED of an unknown entity) goes in errors[] while the others apply', async (t) => {
    const app = await withApp(t);
    const changes = [
      change('ok-1', 'CREATED', 'known', { a: 1 }, { timestamp: T0 }),
      change('bad-1', 'UPDATED', 'ghost', { a: 2 }, { timestamp: T0 + 1 }),
      change('ok-2', 'UPDATED', 'known', { b: 2 }, { timestamp: T0 + 2 }),
    ];
    const response = await app.sync({ deviceId: 'd', lastKnownServerVersion: 0, changes });
    assert.deepEqual(response.applied, [
      { changeId: 'ok-1', version: 1 },
      { changeId: 'ok-2', version: 2 },
    ]);
    assert.equal(response.errors.length, 1);
    assert.equal(response.errors[0].changeId, 'bad-1');
    assert.equal(response.errors[0].code, 'NOT_FOUND');
    assert.match(response.errors[0].message, /note\/ghost/);
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/known': { a: 1, b: 2 } });
    // A replay returns the recorded error again, and applies nothing new.
    const again = await app.sync({ deviceId: 'd', lastKnownServerVersion: 2, changes: [changes[1]] });
    assert.deepEqual(again.errors, response.errors);
    assert.deepEqual(again.applied, []);
    assert.equal(again.latestServerVersion, 2);
  });

  test('a device\'s own later change never conflicts with its own earlier one, even with a stale baseVersion', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'server_wins' } });
    await app.sync({ deviceId: 'd', changes: [change('c1', 'CREATED', 'n', { v: 1 }, { timestamp: T0 })] });
    await app.sync({ deviceId: 'd', changes: [change('c2', 'UPDATED', 'n', { v: 2 }, { baseVersion: 1, timestamp: T0 + 1 })] });
    const response = await app.sync({ deviceId: 'd', changes: [change('c3', 'UPDATED', 'n', { v: 3 }, { baseVersion: 1, timestamp: T0 + 2 })] });
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.applied, [{ changeId: 'c3', version: 3 }]);
  });

  test('unknown routes and methods are 404 NOT_FOUND as JSON', async (t) => {
    const app = await withApp(t);
    assertHttpError(await app.get('/v2'), 404, 'NOT_FOUND', /No sync route GET \/v2/);
    assertHttpError(await app.post('/nope', {}), 404, 'NOT_FOUND');
    assertHttpError(await app.get('/status'), 404, 'NOT_FOUND');
  });

  test('works behind express.json() (a body parser that ran first)', async (t) => {
    const express = require('express');
    const app = await withApp(t, { before: (a) => a.use(express.json()) });
    const response = await app.sync({ deviceId: 'd', changes: [change('c1', 'CREATED', 'n', { ü: 'ñ' }, { timestamp: T0 })] });
    assert.deepEqual(response.applied, [{ changeId: 'c1', version: 1 }]);
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n': { ü: 'ñ' } });
  });

  test('a closed server answers 503 CLOSED with Retry-After', async (t) => {
    const app = await withApp(t);
    app.server.close();
    const response = await app.post('/v2', { deviceId: 'd', changes: [] });
    assertHttpError(response, 503, 'CLOSED');
    assert.equal(response.headers.get('retry-after'), '1');
    assertHttpError(await app.get('/status/d'), 503, 'CLOSED');
  });
});

describe('idempotency and concurrency', () => {
  test('the same v2 request sent twice gets the same applied versions and creates no new versions', async (t) => {
    const app = await withApp(t);
    const request = {
      deviceId: 'd',
      lastKnownServerVersion: 0,
      changes: [...creates('n', 5), change('u1', 'UPDATED', 'n0', { extra: true }, { timestamp: T0 + 10 }), change('d1', 'DELETED', 'n1')],
    };
    const first = await app.sync(request);
    const second = await app.sync(request);
    assert.deepEqual(second.applied, first.applied);
    assert.deepEqual(first.applied.map((a) => a.version), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(second, first, 'the whole response is the same');
    const log = await logOf(app.server, 'alice');
    assert.equal(log.latestServerVersion, 7);
    assertGapless(log.changes);
  });

  test(
    'a replay does not count again in the device status (changesPushed)',
    async (t) => {
      const app = await withApp(t);
      const request = { deviceId: 'd', changes: creates('n', 7) };
      await app.sync(request);
      await app.sync(request);
      const status = (await app.get('/status/d')).json;
      assert.equal(status.changesPushed, 7);
    },
  );

  test('the same change twice in one request is applied once and reported with one version', async (t) => {
    const app = await withApp(t);
    const c = change('twice', 'CREATED', 'n', { a: 1 }, { timestamp: T0 });
    const response = await app.sync({ deviceId: 'd', changes: [c, c] });
    assert.ok(response.applied.length >= 1);
    for (const applied of response.applied) assert.deepEqual(applied, { changeId: 'twice', version: 1 });
    assert.equal(response.latestServerVersion, 1);
  });

  test('10 concurrent identical pushes apply each change exactly once, with gapless versions', async (t) => {
    const app = await withApp(t);
    const request = { deviceId: 'd', lastKnownServerVersion: 0, changes: creates('n', 40), limit: 1 };
    const responses = await Promise.all(Array.from({ length: 10 }, () => app.post('/v2', request)));
    for (const response of responses) {
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(
        response.json.applied,
        request.changes.map((c, i) => ({ changeId: c.changeId, version: i + 1 })),
      );
      assert.equal(response.json.headVersion, 40);
      assert.equal(response.json.latestServerVersion, 1, 'limit 1: the page brings the device to version 1');
    }
    const log = await logOf(app.server, 'alice');
    assert.equal(log.changes.length, 40);
    assertGapless(log.changes);
    assert.deepEqual(
      log.changes.map((c) => c.changeId),
      request.changes.map((c) => c.changeId),
    );
  });

  test('concurrent pushes of different devices and users keep each user\'s versions gapless', async (t) => {
    const app = await withApp(t);
    const requests = [];
    for (const user of ['alice', 'bob']) {
      for (let device = 0; device < 6; device++) {
        const body = { deviceId: `dev${device}`, changes: creates(`d${device}-`, 25), limit: 1 };
        requests.push(app.post('/v2', body, { user }));
        requests.push(app.post('/v2', body, { user })); // and a retry, racing the original
      }
    }
    const responses = await Promise.all(requests);
    for (const response of responses) assert.equal(response.status, 200, response.text);
    for (const user of ['alice', 'bob']) {
      const log = await logOf(app.server, user);
      assert.equal(log.changes.length, 150);
      assertGapless(log.changes);
    }
  });
});

describe('pagination', () => {
  test('2,500 changes read with limit 100: hasMore until the last page, every version exactly once', async (t) => {
    const app = await withApp(t);
    const all = creates('p', 2500);
    for (let start = 0; start < all.length; start += 1000) {
      const response = await app.sync({ deviceId: 'writer', changes: all.slice(start, start + 1000), limit: 1 });
      assert.equal(response.errors.length, 0);
    }
    const seen = [];
    let cursor = 0;
    let pages = 0;
    for (;;) {
      const page = await app.sync({ deviceId: 'reader', lastKnownServerVersion: cursor, changes: [], limit: 100 });
      pages += 1;
      assert.ok(page.newChanges.length <= 100);
      assert.equal(page.headVersion, 2500);
      assert.equal(page.latestServerVersion, page.hasMore ? page.newChanges.at(-1).version : 2500);
      seen.push(...page.newChanges);
      if (page.newChanges.length > 0) cursor = page.newChanges[page.newChanges.length - 1].version;
      if (!page.hasMore) break;
      assert.equal(page.newChanges.length, 100, 'a page with more after it is full');
      assert.ok(pages < 100, 'pagination ends');
    }
    assert.equal(pages, 25);
    assert.equal(seen.length, 2500);
    assertGapless(seen);
    assert.deepEqual(
      seen.map((c) => c.changeId),
      all.map((c) => c.changeId),
    );
    const status = (await app.get('/status/reader')).json;
    assert.equal(status.lastSeenVersion, 2500);
    assert.equal(status.changesPushed, 0);
    // The programmatic pull pages the same way.
    const first = await app.server.pull('alice', { since: 2400, limit: 100 });
    assert.equal(first.newChanges.length, 100);
    assert.equal(first.hasMore, false);
    const middle = await app.server.pull('alice', { since: 2399, limit: 100 });
    assert.equal(middle.hasMore, true);
  });

  test('without a limit a page holds defaultPullLimit changes; limit above maxPullLimit is 400', async (t) => {
    const app = await withApp(t, { serverOptions: { limits: { defaultPullLimit: 7, maxPullLimit: 20 } } });
    await app.sync({ deviceId: 'w', changes: creates('n', 30), limit: 1 });
    const page = await app.sync({ deviceId: 'r', changes: [] });
    assert.equal(page.newChanges.length, 7);
    assert.equal(page.hasMore, true);
    const big = await app.sync({ deviceId: 'r', changes: [], limit: 20 });
    assert.equal(big.newChanges.length, 20);
    assertHttpError(await app.post('/v2', { deviceId: 'r', changes: [], limit: 21 }), 400, 'INVALID_ARGUMENT', /limit/);
  });
});

describe('bad input: a 4xx JSON error and nothing applied', () => {
  let app;
  let smallApp;
  before(async () => {
    app = await startApp();
    smallApp = await startApp({ router: { limits: { maxBodyBytes: 1024 } } });
    // Existing data, so that "nothing applied" is a comparison of something.
    await app.sync({ deviceId: 'seed', changes: creates('s', 3) });
    await app.sync({ deviceId: 'seed', changes: [change('used-id', 'CREATED', 'u', { first: true }, { timestamp: T0 })] });
  });
  after(async () => {
    await app.close();
    await smallApp.close();
  });

  /** Sends `body` and checks the error, that the log did not change and that no device row appeared. */
  async function expectRejected(target, body, status, code, message) {
    const before = await logOf(target.server, 'alice');
    const response = await target.post('/v2', body);
    assertHttpError(response, status, code, message);
    assert.deepEqual(await logOf(target.server, 'alice'), before, 'nothing applied');
    assertHttpError(await target.get('/status/bad-device'), 404, 'NOT_FOUND');
    return response;
  }

  const fresh = (n = 1) => change(`fresh-${n}`, 'CREATED', `fresh-${n}`, { ok: true }, { timestamp: T0 });
  const withBad = (bad) => ({ deviceId: 'bad-device', lastKnownServerVersion: 0, changes: [fresh(), bad] });
  const valid = (extra) => ({ changeId: 'v1', type: 'CREATED', entityType: 'note', entityId: 'v1', data: { a: 1 }, ...extra });
  const nest = (levels) => (levels === 0 ? 'leaf' : { n: nest(levels - 1) });

  const invalid = {
    'malformed JSON (truncated)': '{"deviceId":"bad-device","changes":[{"changeId":"x1","type":"CREATED",',
    'malformed JSON (syntax)': '{"deviceId":"bad-device","changes":[},]}',
    'trailing content': `${JSON.stringify(withBad(valid()))} {}`,
    'an empty body': '',
    'an array body': '[]',
    'a string body': '"hello"',
    'invalid UTF-8 bytes': Buffer.concat([
      Buffer.from('{"deviceId":"bad-device","changes":[{"changeId":"u1","type":"CREATED","entityType":"note","entityId":"'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('","data":{}}]}'),
    ]),
    'invalid UTF-8 inside data': Buffer.concat([
      Buffer.from('{"deviceId":"bad-device","changes":[{"changeId":"u1","type":"CREATED","entityType":"note","entityId":"x","data":{"t":"'),
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: not UTF-8
      Buffer.from('"}}]}'),
    ]),
    'a lone surrogate escape': '{"deviceId":"bad-device","changes":[{"changeId":"u1","type":"CREATED","entityType":"note","entityId":"x","data":{"t":"\\ud800"}}]}',
    'a number JavaScript cannot hold': '{"deviceId":"bad-device","changes":[{"changeId":"u1","type":"CREATED","entityType":"note","entityId":"x","data":{"t":12345678901234567891}}]}',
    'a duplicate key in a change': '{"deviceId":"bad-device","changes":[{"changeId":"u1","changeId":"u2","type":"CREATED","entityType":"note","entityId":"x","data":{}}]}',
    'a duplicate key in data': '{"deviceId":"bad-device","changes":[{"changeId":"u1","type":"CREATED","entityType":"note","entityId":"x","data":{"a":1,"a":2}}]}',
    'deviceId missing': { changes: [fresh()] },
    'deviceId a number': { deviceId: 42, changes: [fresh()] },
    'deviceId empty': { deviceId: '', changes: [fresh()] },
    'deviceId of 257 bytes': { deviceId: 'd'.repeat(257), changes: [fresh()] },
    'changes a string': { deviceId: 'bad-device', changes: 'all of them' },
    'changes an object': { deviceId: 'bad-device', changes: { note: [] } },
    'a change that is a number': withBad(42),
    'a change that is null': withBad(null),
    'type unknown': withBad(valid({ type: 'MOVED' })),
    'type lower case': withBad(valid({ type: 'created' })),
    'changeId missing': withBad(valid({ changeId: undefined })),
    'changeId empty': withBad(valid({ changeId: '' })),
    'changeId a number': withBad(valid({ changeId: 7 })),
    'entityId a number': withBad(valid({ entityId: 7 })),
    'entityId empty': withBad(valid({ entityId: '' })),
    'entityId of 257 bytes': withBad(valid({ entityId: 'e'.repeat(257) })),
    'entityId of 257 UTF-8 bytes (128 two-byte characters and one more)': withBad(valid({ entityId: `${'é'.repeat(128)}x` })),
    'entityType "bad type"': withBad(valid({ entityType: 'bad type' })),
    'entityType of 65 characters': withBad(valid({ entityType: 't'.repeat(65) })),
    'entityType missing': withBad(valid({ entityType: undefined })),
    'data an array': withBad(valid({ data: [1, 2] })),
    'data a string': withBad(valid({ data: '{"a":1}' })),
    'CREATED without data': withBad(valid({ data: undefined })),
    'UPDATED with null data': withBad(valid({ type: 'UPDATED', data: null })),
    'baseVersion negative': withBad(valid({ baseVersion: -1 })),
    'baseVersion a string': withBad(valid({ baseVersion: '3' })),
    'timestamp a string': withBad(valid({ timestamp: 'yesterday' })),
    'lastKnownServerVersion a string': { ...withBad(valid()), lastKnownServerVersion: '5' },
    'lastKnownServerVersion negative': { ...withBad(valid()), lastKnownServerVersion: -1 },
    'limit 0': { ...withBad(valid()), limit: 0 },
    'limit a string': { ...withBad(valid()), limit: '10' },
  };
  for (const [name, body] of Object.entries(invalid)) {
    test(`${name}: 400 INVALID_ARGUMENT`, async () => {
      await expectRejected(app, body, 400, 'INVALID_ARGUMENT');
    });
  }

  test('the message names the offending field and what was expected', async () => {
    let response = await expectRejected(app, withBad(valid({ entityId: 'e'.repeat(257) })), 400, 'INVALID_ARGUMENT');
    assert.match(response.json.error.message, /^Expected a non-empty string of at most 256 bytes for changes\[1\]\.entityId/);
    response = await expectRejected(app, withBad(valid({ entityType: 'bad type' })), 400, 'INVALID_ARGUMENT');
    assert.match(response.json.error.message, /changes\[1\]\.entityType but received "bad type" of type string/);
    response = await expectRejected(app, { changes: [] }, 400, 'INVALID_ARGUMENT');
    assert.match(response.json.error.message, /for deviceId but received undefined/);
  });

  test('an entityId of exactly 256 bytes and a type of 64 characters are accepted (the limits are inclusive)', async (t) => {
    const ok = await withApp(t);
    const response = await ok.sync({ deviceId: 'd', changes: [valid({ entityId: 'e'.repeat(256), entityType: 't'.repeat(64) })] });
    assert.deepEqual(response.applied, [{ changeId: 'v1', version: 1 }]);
  });

  test('nesting deeper than 64 (in data, or anywhere in the body): 413 LIMIT_EXCEEDED', async () => {
    // nest(n) is n objects inside each other: data = nest(65) is 65 levels deep.
    await expectRejected(app, withBad(valid({ data: nest(65) })), 413, 'LIMIT_EXCEEDED', /nested deeper than the limit of 64/);
    await expectRejected(app, { ...withBad(valid()), extra: nest(70) }, 413, 'LIMIT_EXCEEDED', /nested deeper/);
  });

  test('data nested exactly 64 levels is accepted', async (t) => {
    const ok = await withApp(t);
    const response = await ok.sync({ deviceId: 'd', changes: [valid({ data: nest(64) })] });
    assert.equal(response.applied.length, 1);
  });

  test('over maxChangesPerPush: 413 LIMIT_EXCEEDED; exactly the limit is accepted', async (t) => {
    const changes = creates('many', 1001);
    const limited = await withApp(t, { serverOptions: { limits: { maxChangesPerPush: 1000 } } });
    const response = await expectRejected(limited, { deviceId: 'bad-device', changes }, 413, 'LIMIT_EXCEEDED');
    assert.match(response.json.error.message, /1001 \(the limit is 1000\)/);
    const accepted = await limited.sync({ deviceId: 'd', changes: changes.slice(0, 1000), limit: 1 });
    assert.equal(accepted.applied.length, 1000);
    // The default (100,000) takes a whole backlog in one request.
    const ok = await withApp(t);
    assert.equal((await ok.sync({ deviceId: 'd', changes, limit: 1 })).applied.length, 1001);
  });

  test('a document over 1 MiB: 413 LIMIT_EXCEEDED', async () => {
    const response = await expectRejected(
      app,
      withBad(valid({ data: { text: 'x'.repeat(1024 * 1024) } })),
      413,
      'LIMIT_EXCEEDED',
      /Document larger than the limit of 1048576 bytes/,
    );
    assert.match(response.json.error.message, /changes\[1\]\.data/);
  });

  test('a body over maxBodyBytes: 413 LIMIT_EXCEEDED, by Content-Length or while streaming', async () => {
    const body = { deviceId: 'bad-device', changes: [valid({ data: { text: 'y'.repeat(2000) } })] };
    await expectRejected(smallApp, body, 413, 'LIMIT_EXCEEDED', /larger than the limit of 1024 bytes/);
    // Chunked, without Content-Length: the limit applies to the bytes read.
    const before = await logOf(smallApp.server, 'alice');
    const bytes = Buffer.from(JSON.stringify(body));
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 256) controller.enqueue(bytes.subarray(i, i + 256));
        controller.close();
      },
    });
    const response = await fetch(`${smallApp.base}/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user': 'alice' },
      body: stream,
      duplex: 'half',
    });
    const json = await response.json();
    assert.equal(response.status, 413);
    assert.equal(json.error.code, 'LIMIT_EXCEEDED');
    assert.deepEqual(await logOf(smallApp.server, 'alice'), before);
    // A body under the limit passes.
    const small = await smallApp.sync({ deviceId: 'd', changes: [valid()] });
    assert.equal(small.applied.length, 1);
  });

  test('a changeId reused with a different body: 409 CONFLICT, and the other changes are not applied', async () => {
    const reused = change('used-id', 'CREATED', 'u', { first: false }, { timestamp: T0 });
    const response = await expectRejected(app, withBad(reused), 409, 'CONFLICT', /used-id/);
    assert.match(response.json.error.message, /changes\[1\]\.changeId was used before for a different change/);
    // Every part of the change counts: type, entity, data, baseVersion.
    const variants = [
      change('used-id', 'UPDATED', 'u', { first: true }, { timestamp: T0 }),
      change('used-id', 'CREATED', 'u2', { first: true }, { timestamp: T0 }),
      { ...change('used-id', 'CREATED', 'u', { first: true }, { timestamp: T0 }), entityType: 'other' },
      change('used-id', 'CREATED', 'u', { first: true }, { timestamp: T0, baseVersion: 3 }),
    ];
    for (const variant of variants) await expectRejected(app, withBad(variant), 409, 'CONFLICT');
    // Reused inside one request with a different body.
    const twice = [change('same', 'CREATED', 'z', { v: 1 }), change('same', 'CREATED', 'z', { v: 2 })];
    await expectRejected(app, { deviceId: 'bad-device', changes: twice }, 409, 'CONFLICT');
  });
});

describe('conflict strategies over /v2', () => {
  // Device A creates note n1 at T0 (version 1), then sets title "A" at T0+2000 (version 2).
  // Device B then sends a change based on version 1 (or on nothing).
  async function seeded(t, serverOptions = {}) {
    const app = await withApp(t, { serverOptions });
    await app.sync({
      deviceId: 'A',
      changes: [
        change('a1', 'CREATED', 'n1', { title: 't0', body: 'b0' }, { timestamp: T0 }),
        change('a2', 'UPDATED', 'n1', { title: 'A' }, { baseVersion: 1, timestamp: T0 + 2000 }),
      ],
    });
    return app;
  }
  const fromB = (app, ...changes) => app.sync({ deviceId: 'B', lastKnownServerVersion: 2, changes });
  const bUpdate = (data, offset, extra = { baseVersion: 1 }) =>
    change('b1', 'UPDATED', 'n1', data, { timestamp: T0 + 2000 + offset, ...extra });
  const SERVER_STATE = { 'note/n1': { title: 'A', body: 'b0' } };
  const conflictOf = (response) => {
    assert.equal(response.conflicts.length, 1, JSON.stringify(response));
    return response.conflicts[0];
  };

  test('server_wins: the change is not applied, the conflict reports the server copy', async (t) => {
    const app = await seeded(t, { conflicts: 'server_wins' });
    const response = await fromB(app, bUpdate({ title: 'B' }, 5000));
    assert.deepEqual(response.applied, []);
    assert.deepEqual(conflictOf(response), {
      changeId: 'b1',
      entityType: 'note',
      entityId: 'n1',
      reason: 'changed on the server after baseVersion 1 by another device',
      resolution: 'server_wins',
      winner: 'server',
      serverVersion: 2,
      serverData: { title: 'A', body: 'b0' },
    });
    assert.deepEqual(await stateOf(app.server, 'alice'), SERVER_STATE);
    const status = (await app.get('/status/B')).json;
    assert.equal(status.conflictsReported, 1);
    assert.equal(status.changesPushed, 0);
  });

  test('client_wins: the change is applied even when older', async (t) => {
    const app = await seeded(t, { conflicts: 'client_wins' });
    const response = await fromB(app, bUpdate({ title: 'B' }, -1500));
    assert.deepEqual(response.applied, [{ changeId: 'b1', version: 3 }]);
    const conflict = conflictOf(response);
    assert.equal(conflict.resolution, 'client_wins');
    assert.equal(conflict.winner, 'client');
    assert.equal(conflict.serverVersion, 3);
    assert.deepEqual(conflict.serverData, { title: 'B', body: 'b0' });
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'B', body: 'b0' } });
  });

  test('newest_wins (the default): newer wins, older loses, within toleranceMs is a tie the server wins', async (t) => {
    const cases = [
      [5000, 'client'],
      [1001, 'client'],
      [1000, 'server'], // exactly toleranceMs newer: still a tie
      [0, 'server'],
      [-1500, 'server'],
    ];
    for (const [offset, winner] of cases) {
      const app = await seeded(t);
      const response = await fromB(app, bUpdate({ title: 'B' }, offset));
      const conflict = conflictOf(response);
      assert.equal(conflict.resolution, 'newest_wins');
      assert.equal(conflict.winner, winner, `offset ${offset}`);
      assert.deepEqual(
        await stateOf(app.server, 'alice'),
        winner === 'client' ? { 'note/n1': { title: 'B', body: 'b0' } } : SERVER_STATE,
      );
      await app.close();
    }
  });

  test('newest_wins honours toleranceMs', async (t) => {
    const strict = await seeded(t, { toleranceMs: 0 });
    assert.equal(conflictOf(await fromB(strict, bUpdate({ title: 'B' }, 1))).winner, 'client');
    const tie = await seeded(t, { toleranceMs: 0 });
    assert.equal(conflictOf(await fromB(tie, bUpdate({ title: 'B' }, 0))).winner, 'server');
    const loose = await seeded(t, { toleranceMs: 60000 });
    assert.equal(conflictOf(await fromB(loose, bUpdate({ title: 'B' }, 59000))).winner, 'server');
  });

  test('without baseVersion: a conflict only when the server copy is as new (within toleranceMs) or newer', async (t) => {
    const app = await seeded(t);
    const older = await fromB(app, bUpdate({ title: 'B' }, 500, {}));
    assert.equal(conflictOf(older).winner, 'server');
    assert.match(conflictOf(older).reason, /no baseVersion/);
    const newer = await fromB(app, change('b2', 'UPDATED', 'n1', { title: 'B2' }, { timestamp: T0 + 2000 + 1001 }));
    assert.deepEqual(newer.conflicts, [], 'clearly newer: no conflict');
    assert.deepEqual(newer.applied, [{ changeId: 'b2', version: 3 }]);
  });

  test('merge: disjoint fields from two devices are both kept', async (t) => {
    const app = await seeded(t, { conflicts: 'merge' });
    const response = await fromB(app, bUpdate({ body: 'B' }, -1500));
    assert.deepEqual(response.applied, [{ changeId: 'b1', version: 3 }]);
    const conflict = conflictOf(response);
    assert.equal(conflict.resolution, 'merge');
    assert.equal(conflict.winner, 'merged');
    assert.deepEqual(conflict.serverData, { title: 'A', body: 'B' });
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'A', body: 'B' } });
  });

  test('merge: an overlapping field goes to the newest; the change\'s other fields are kept', async (t) => {
    const older = await seeded(t, { conflicts: 'merge' });
    const lost = await fromB(older, bUpdate({ title: 'B', tag: 'x' }, -1500));
    assert.equal(conflictOf(lost).winner, 'merged');
    assert.deepEqual(await stateOf(older.server, 'alice'), { 'note/n1': { title: 'A', body: 'b0', tag: 'x' } });
    const logged = (await logOf(older.server, 'alice')).changes[2];
    assert.deepEqual(logged.data, { tag: 'x' }, 'only the fields that won are logged');

    const newer = await seeded(t, { conflicts: 'merge' });
    const won = await fromB(newer, bUpdate({ title: 'B', tag: 'x' }, 5000));
    assert.equal(conflictOf(won).winner, 'merged');
    assert.deepEqual(await stateOf(newer.server, 'alice'), { 'note/n1': { title: 'B', body: 'b0', tag: 'x' } });

    const allLost = await seeded(t, { conflicts: 'merge' });
    const none = await fromB(allLost, bUpdate({ title: 'B' }, 0));
    assert.equal(conflictOf(none).winner, 'server');
    assert.deepEqual(none.applied, []);
    assert.deepEqual(await stateOf(allLost.server, 'alice'), SERVER_STATE);
  });

  test('merge reads what the server changed since baseVersion from the log (several changes, several devices)', async (t) => {
    const app = await seeded(t, { conflicts: 'merge' });
    await app.sync({ deviceId: 'C', changes: [change('c1', 'UPDATED', 'n1', { body: 'C' }, { baseVersion: 2, timestamp: T0 + 3000 })] });
    // B, based on version 1: title was changed by A at +2000, body by C at +3000.
    const response = await fromB(app, bUpdate({ title: 'B', body: 'B', tag: 'B' }, 1500)); // at T0+3500
    assert.equal(conflictOf(response).winner, 'merged');
    // title: B (+3500) is newer than A (+2000) by more than the tolerance; body: C (+3000) is within it.
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'B', body: 'C', tag: 'B' } });
  });

  test('merge without baseVersion: every server field counts as changed at the server copy\'s time', async (t) => {
    const app = await seeded(t, { conflicts: 'merge' });
    const response = await fromB(app, bUpdate({ body: 'B', extra: 1 }, 500, {}));
    const conflict = conflictOf(response);
    assert.equal(conflict.winner, 'merged');
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'A', body: 'b0', extra: 1 } });
  });

  test('merge against a delete falls back to newest_wins', async (t) => {
    const app = await seeded(t, { conflicts: 'merge' });
    await app.sync({ deviceId: 'A', changes: [change('a3', 'DELETED', 'n1', undefined, { baseVersion: 2, timestamp: T0 + 3000 })] });
    const response = await fromB(app, bUpdate({ body: 'B' }, -1000, { baseVersion: 2 }));
    const conflict = conflictOf(response);
    assert.equal(conflict.resolution, 'merge');
    assert.equal(conflict.winner, 'server');
    assert.equal(conflict.serverData, null);
    assert.deepEqual(await stateOf(app.server, 'alice'), {});
  });

  test('perType overrides the server-level strategy for one entity type', async (t) => {
    const app = await withApp(t, { serverOptions: { conflicts: 'server_wins', perType: { goal: 'client_wins' } } });
    for (const entityType of ['note', 'goal']) {
      await app.sync({
        deviceId: 'A',
        changes: [
          { ...change(`${entityType}-a1`, 'CREATED', 'x', { v: 'A0' }, { timestamp: T0 }), entityType },
          { ...change(`${entityType}-a2`, 'UPDATED', 'x', { v: 'A1' }, { timestamp: T0 + 1, baseVersion: 1 }), entityType },
        ],
      });
    }
    const response = await app.sync({
      deviceId: 'B',
      changes: [
        { ...change('note-b', 'UPDATED', 'x', { v: 'B' }, { timestamp: T0 + 5000, baseVersion: 1 }), entityType: 'note' },
        { ...change('goal-b', 'UPDATED', 'x', { v: 'B' }, { timestamp: T0 - 5000, baseVersion: 3 }), entityType: 'goal' },
      ],
    });
    assert.deepEqual(
      response.conflicts.map((c) => [c.changeId, c.resolution, c.winner]),
      [
        ['note-b', 'server_wins', 'server'],
        ['goal-b', 'client_wins', 'client'],
      ],
    );
    assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/x': { v: 'A1' }, 'goal/x': { v: 'B' } });
  });

  describe('delete vs update', () => {
    // A deletes n1 at T0+3000 (version 3); B then updates it based on version 2.
    async function deleted(t, serverOptions) {
      const app = await seeded(t, serverOptions);
      await app.sync({ deviceId: 'A', changes: [change('a3', 'DELETED', 'n1', undefined, { baseVersion: 2, timestamp: T0 + 3000 })] });
      return app;
    }
    const bUpdateOfDeleted = (offset) => change('b1', 'UPDATED', 'n1', { title: 'B' }, { baseVersion: 2, timestamp: T0 + 3000 + offset });

    test('an older update loses against a delete (newest_wins); the entity stays deleted', async (t) => {
      const app = await deleted(t);
      const response = await fromB(app, bUpdateOfDeleted(-2000));
      const conflict = conflictOf(response);
      assert.equal(conflict.reason, 'deleted on the server by another device');
      assert.equal(conflict.winner, 'server');
      assert.equal(conflict.serverVersion, 3);
      assert.equal(conflict.serverData, null);
      assert.deepEqual(await stateOf(app.server, 'alice'), {});
    });

    for (const [name, options, offset] of [
      ['a newer update wins against a delete (newest_wins) and revives the entity', {}, 5000],
      ['client_wins revives a deleted entity', { conflicts: 'client_wins' }, -2000],
    ]) {
      test(
        `${name}: its last live state plus the update, in the log as well`,
        async (t) => {
        const app = await deleted(t, options);
        const response = await fromB(app, bUpdateOfDeleted(offset));
        const conflict = conflictOf(response);
        assert.equal(conflict.winner, 'client');
        assert.deepEqual(conflict.serverData, { title: 'B', body: 'b0' });
        const { changes } = await logOf(app.server, 'alice');
        assert.deepEqual(
          replay(changes),
          { 'note/n1': { title: 'B', body: 'b0' } },
          `a client replaying the log reaches the server's state; the log ends with ${JSON.stringify(changes.at(-1))}`,
        );
        },
      );
    }

    test('a delete based on an old version loses to a newer update (server_wins / newest_wins) and wins with client_wins', async (t) => {
      const bDelete = (offset) => change('b-del', 'DELETED', 'n1', undefined, { baseVersion: 1, timestamp: T0 + 2000 + offset });
      const serverWins = await seeded(t, { conflicts: 'server_wins' });
      assert.equal(conflictOf(await fromB(serverWins, bDelete(5000))).winner, 'server');
      assert.deepEqual(await stateOf(serverWins.server, 'alice'), SERVER_STATE);
      const older = await seeded(t);
      assert.equal(conflictOf(await fromB(older, bDelete(-1000))).winner, 'server');
      assert.deepEqual(await stateOf(older.server, 'alice'), SERVER_STATE);
      const newer = await seeded(t);
      const response = await fromB(newer, bDelete(5000));
      assert.equal(conflictOf(response).winner, 'client');
      assert.deepEqual(response.applied, [{ changeId: 'b-del', version: 3 }]);
      assert.deepEqual(await stateOf(newer.server, 'alice'), {});
      const clientWins = await seeded(t, { conflicts: 'client_wins' });
      assert.equal(conflictOf(await fromB(clientWins, bDelete(-1000))).winner, 'client');
      assert.deepEqual(await stateOf(clientWins.server, 'alice'), {});
    });

    test('a CREATED of an entity another device deleted recreates it when newer', async (t) => {
      const app = await deleted(t);
      const response = await fromB(app, change('b-new', 'CREATED', 'n1', { title: 'fresh' }, { timestamp: T0 + 10000 }));
      assert.deepEqual(response.applied, [{ changeId: 'b-new', version: 4 }]);
      assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'fresh' } });
    });
  });

  describe('manual', () => {
    async function opened(t) {
      const app = await seeded(t, { conflicts: 'manual' });
      const response = await fromB(app, bUpdate({ title: 'B', tag: 'b' }, 5000));
      const conflict = conflictOf(response);
      assert.equal(conflict.resolution, 'manual');
      assert.equal(conflict.winner, 'manual');
      assert.ok(Number.isInteger(conflict.conflictId) && conflict.conflictId > 0);
      assert.deepEqual(response.applied, []);
      assert.deepEqual(await stateOf(app.server, 'alice'), SERVER_STATE, 'nothing applied while open');
      return { app, conflictId: conflict.conflictId };
    }

    test('the conflict stays open: listed by server.conflicts() and counted by GET /status', async (t) => {
      const { app, conflictId } = await opened(t);
      const [open, ...rest] = await app.server.conflicts('alice');
      assert.deepEqual(rest, []);
      assert.equal(typeof open.createdAt, 'number');
      assert.deepEqual(
        { ...open, createdAt: 0 },
        {
          id: conflictId,
          changeId: 'b1',
          deviceId: 'B',
          entityType: 'note',
          entityId: 'n1',
          type: 'UPDATED',
          clientData: { title: 'B', tag: 'b' },
          baseVersion: 1,
          clientTimestamp: T0 + 7000,
          createdAt: 0,
          serverData: { title: 'A', body: 'b0' },
          serverVersion: 2,
        },
      );
      const status = await app.get('/status/B');
      assert.equal(status.status, 200);
      assert.equal(status.json.openConflicts, 1);
      assert.equal(status.json.conflictsReported, 1);
      // A replay reports the same open conflict, and opens no second one.
      const again = await fromB(app, bUpdate({ title: 'B', tag: 'b' }, 5000));
      assert.equal(conflictOf(again).conflictId, conflictId);
      assert.equal((await app.server.conflicts('alice')).length, 1);
    });

    test('POST /resolve-conflict "client" applies the device\'s change', async (t) => {
      const { app, conflictId } = await opened(t);
      const response = await app.post('/resolve-conflict', { conflictId, resolution: 'client' });
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(response.json, {
        success: true,
        conflictId,
        resolution: 'client',
        version: 3,
        entityType: 'note',
        entityId: 'n1',
        serverVersion: 3,
        serverData: { title: 'B', body: 'b0', tag: 'b' },
      });
      assert.deepEqual(await stateOf(app.server, 'alice'), { 'note/n1': { title: 'B', body: 'b0', tag: 'b' } });
      assert.deepEqual(await app.server.conflicts('alice'), []);
      assert.equal((await app.get('/status/B')).json.openConflicts, 0);
      // Settled once: a second resolution is 404, and a replay of the change reports how it was settled.
      assertHttpError(await app.post('/resolve-conflict', { conflictId, resolution: 'client' }), 404, 'NOT_FOUND');
      const replayed = await fromB(app, bUpdate({ title: 'B', tag: 'b' }, 5000));
      assert.deepEqual(replayed.applied, [{ changeId: 'b1', version: 3 }]);
      assert.equal((await logOf(app.server, 'alice')).latestServerVersion, 3);
    });

    test('POST /resolve-conflict "server" keeps the server copy; {use, data} "merged" stores the given document', async (t) => {
      const kept = await opened(t);
      const response = await kept.app.post('/resolve-conflict', { conflictId: kept.conflictId, resolution: 'server' });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.version, null);
      assert.deepEqual(response.json.serverData, { title: 'A', body: 'b0' });
      assert.deepEqual(await stateOf(kept.app.server, 'alice'), SERVER_STATE);
      assert.equal((await logOf(kept.app.server, 'alice')).latestServerVersion, 2);
      const replayed = await fromB(kept.app, bUpdate({ title: 'B', tag: 'b' }, 5000));
      assert.equal(conflictOf(replayed).winner, 'server');

      const data = { title: 'merged', tag: 'm' };
      for (const form of ['string', 'object']) {
        const merged = await opened(t);
        const body =
          form === 'string'
            ? { conflictId: merged.conflictId, resolution: 'merged', data }
            : { conflictId: merged.conflictId, resolution: { use: 'merged', data } };
        const resolved = await merged.app.post('/resolve-conflict', body);
        assert.equal(resolved.status, 200, resolved.text);
        assert.equal(resolved.json.version, 3);
        assert.deepEqual(resolved.json.serverData, data, `${form}: the merged document replaces the server one (body removed)`);
        assert.deepEqual(await stateOf(merged.app.server, 'alice'), { 'note/n1': data });
      }
    });

    test('server.resolveConflict: client, server and merged', async (t) => {
      const client = await opened(t);
      const viaClient = await client.app.server.resolveConflict('alice', client.conflictId, { use: 'client' });
      assert.equal(viaClient.version, 3);
      assert.deepEqual(await stateOf(client.app.server, 'alice'), { 'note/n1': { title: 'B', body: 'b0', tag: 'b' } });

      const server = await opened(t);
      const viaServer = await server.app.server.resolveConflict('alice', server.conflictId, { use: 'server' });
      assert.equal(viaServer.version, null);
      assert.deepEqual(await stateOf(server.app.server, 'alice'), SERVER_STATE);

      const merged = await opened(t);
      const viaMerged = await merged.app.server.resolveConflict('alice', merged.conflictId, { use: 'merged', data: { only: 1 } });
      assert.equal(viaMerged.version, 3);
      assert.deepEqual(await stateOf(merged.app.server, 'alice'), { 'note/n1': { only: 1 } });
      await assert.rejects(merged.app.server.resolveConflict('alice', merged.conflictId, { use: 'server' }), { code: 'NOT_FOUND' });
    });

    test('bad /resolve-conflict requests are 4xx and settle nothing', async (t) => {
      const { app, conflictId } = await opened(t);
      const cases = [
        [{ conflictId, resolution: 'nobody' }, 400, 'INVALID_ARGUMENT'],
        [{ conflictId, resolution: 'merged' }, 400, 'INVALID_ARGUMENT'], // merged needs data
        [{ conflictId, resolution: { use: 'merged', data: [1] } }, 400, 'INVALID_ARGUMENT'],
        [{ resolution: 'client' }, 400, 'INVALID_ARGUMENT'],
        [{ conflictId: 'one', resolution: 'client' }, 400, 'INVALID_ARGUMENT'],
        [{ conflictId: 0, resolution: 'client' }, 400, 'INVALID_ARGUMENT'],
        ['{"conflictId":', 400, 'INVALID_ARGUMENT'],
        [{ conflictId: conflictId + 100, resolution: 'client' }, 404, 'NOT_FOUND'],
      ];
      for (const [body, status, code] of cases) {
        assertHttpError(await app.post('/resolve-conflict', body), status, code);
      }
      assert.equal((await app.server.conflicts('alice')).length, 1);
      assert.deepEqual(await stateOf(app.server, 'alice'), SERVER_STATE);
    });
  });
});

describe('GET /status/:deviceId', () => {
  test('reports pushes, pulls, conflicts and versions of one device', async (t) => {
    const app = await withApp(t);
    const deviceId = 'laptop ü/1';
    const path = `/status/${encodeURIComponent(deviceId)}`;
    assertHttpError(await app.get(path), 404, 'NOT_FOUND');
    await app.sync({ deviceId, changes: creates('n', 2) });
    await app.sync({ deviceId: 'other', changes: creates('o', 3) });
    const response = await app.get(path);
    assert.equal(response.status, 200, response.text);
    const status = response.json;
    assert.equal(typeof status.lastPushAt, 'number');
    assert.equal(typeof status.lastPullAt, 'number');
    assert.deepEqual(
      { ...status, lastPushAt: 0, lastPullAt: 0 },
      {
        success: true,
        deviceId,
        lastPushAt: 0,
        lastPullAt: 0,
        changesPushed: 2,
        conflictsReported: 0,
        lastSeenVersion: 2,
        openConflicts: 0,
        latestServerVersion: 5,
      },
    );
    // server.status is the same without `success`.
    const { success, ...rest } = status;
    assert.equal(success, true);
    assert.deepEqual(await app.server.status('alice', deviceId), rest);
    // A device id over 256 bytes is 400.
    assertHttpError(await app.get(`/status/${'d'.repeat(257)}`), 400, 'INVALID_ARGUMENT');
  });

  test(
    'a device that only pulled has lastPushAt null',
    async (t) => {
    const app = await withApp(t);
    await app.sync({ deviceId: 'w', changes: creates('n', 1) });
    await app.sync({ deviceId: 'reader', changes: [] });
    const status = (await app.get('/status/reader')).json;
    assert.equal(status.lastPushAt, null);
    assert.equal(typeof status.lastPullAt, 'number');
    assert.equal(status.lastSeenVersion, 1);
    },
  );
});

describe('createSyncRouter arguments', () => {
  test('are validated with INVALID_ARGUMENT', (t) => {
    const server = new SyncServer(storeOptions('routes'));
    t.after(() => server.close());
    const authenticate = () => 'u';
    const cases = [
      [() => createSyncRouter({}, { authenticate }), /for server/],
      [() => createSyncRouter(server), /for options/],
      [() => createSyncRouter(server, {}), /for options\.authenticate/],
      [() => createSyncRouter(server, { authenticate: 'alice' }), /for options\.authenticate/],
      [() => createSyncRouter(server, { authenticate, nope: 1 }), /Unknown option "nope"/],
      [() => createSyncRouter(server, { authenticate, limits: { maxBodyBytes: 0 } }), /maxBodyBytes/],
      [() => createSyncRouter(server, { authenticate, limits: { maxBodyBytes: 1.5 } }), /maxBodyBytes/],
      [() => createSyncRouter(server, { authenticate, limits: { other: 1 } }), /Unknown option "other"/],
    ];
    for (const [fn, message] of cases) {
      assert.throws(fn, (error) => error.name === 'SyncError' && error.code === 'INVALID_ARGUMENT' && message.test(error.message));
    }
    assert.equal(typeof createSyncRouter(server, { authenticate }), 'function');
  });

  test(
    'idFields of the router are validated like those of the server',
    (t) => {
    const server = new SyncServer(storeOptions('routes'));
    t.after(() => server.close());
    const authenticate = () => 'u';
    for (const idFields of [{ customers: 5 }, { customers: '' }, { 'bad type': 'id' }, 'customer_id']) {
      assert.throws(
        () => createSyncRouter(server, { authenticate, idFields }),
        (error) => error.name === 'SyncError' && error.code === 'INVALID_ARGUMENT' && /idFields/.test(error.message),
        JSON.stringify(idFields),
      );
    }
    },
  );
});
