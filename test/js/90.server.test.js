'use strict';

// SyncServer, the programmatic API: option and argument validation (SyncError
// INVALID_ARGUMENT), close() and CLOSED, push / pull / status / conflicts,
// importSnapshot and its idempotency, limits, persistence across reopen, and an
// end-to-end run where two real SyncClients converge through server.sync.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { storeOptions } = require('./postgres-harness');

const { SyncError, tempDir, openClient, assertSyncError, assertRejectsSyncError } = require('./helpers');
const { SyncServer, logOf, assertGapless, stateOf, change } = require('./fixtures/server-http');

const T0 = 1_700_000_000_000;



/** An in-memory server closed when the test ends. */
function memoryServer(t, options = {}) {
  const server = new SyncServer({ ...storeOptions('server'), ...options });
  t.after(() => server.close());
  return server;
}

describe('new SyncServer(options)', () => {
  test('defaults', (t) => {
    const server = memoryServer(t);
    assert.equal(server.isOpen, true);
    if (process.env.DELTASYNC_TEST_STORE === 'postgres') {
      assert.equal(server.store, 'postgres');
      assert.equal(server.path, undefined);
    } else {
      assert.equal(server.store, 'sqlite');
      assert.equal(server.path, ':memory:');
    }
    assert.deepEqual(server.limits, {
      maxChangesPerPush: 100000,
      maxPullLimit: 10000,
      defaultPullLimit: 1000,
      maxResponseBytes: 4 * 1024 * 1024,
      maxDepth: 64,
      maxDocumentBytes: 1024 * 1024,
      maxBodyBytes: 10 * 1024 * 1024,
    });
  });

  test('every option is validated with INVALID_ARGUMENT and a message naming it', () => {
    const cases = [
      [undefined, /for options but received undefined/],
      ['server.db', /for options but received "server.db"/],
      [{}, /for options\.path/],
      [{ path: '' }, /for options\.path/],
      [{ path: ':memory:', nope: true }, /Unknown option "nope" in options/],
      [{ path: ':memory:', conflicts: 'last_write_wins' }, /for options\.conflicts/],
      [{ path: ':memory:', toleranceMs: -1 }, /for options\.toleranceMs/],
      [{ path: ':memory:', toleranceMs: 1.5 }, /for options\.toleranceMs/],
      [{ path: ':memory:', perType: 'merge' }, /for options\.perType/],
      [{ path: ':memory:', perType: { 'bad type': 'merge' } }, /keys of options\.perType/],
      [{ path: ':memory:', perType: { goal: 'mine' } }, /for options\.perType\.goal/],
      [{ path: ':memory:', durability: 'extra' }, /for options\.durability/],
      [{ path: ':memory:', busyTimeoutMs: '10' }, /for options\.busyTimeoutMs/],
      [{ path: ':memory:', limits: 5 }, /for options\.limits/],
      [{ path: ':memory:', limits: { maxChanges: 5 } }, /Unknown option "maxChanges" in options\.limits/],
      [{ path: ':memory:', limits: { maxChangesPerPush: 0 } }, /for options\.limits\.maxChangesPerPush/],
      [{ path: ':memory:', limits: { maxBodyBytes: -1 } }, /for options\.limits\.maxBodyBytes/],
      [{ path: ':memory:', limits: { maxDepth: 2.5 } }, /for options\.limits\.maxDepth/],
      [{ path: ':memory:', idFields: 'id' }, /for options\.idFields/],
      [{ path: ':memory:', idFields: { customers: 3 } }, /for options\.idFields\.customers/],
      [{ path: ':memory:', idFields: { 'a b': 'id' } }, /keys of options\.idFields/],
    ];
    for (const [options, message] of cases) {
      assertSyncError(() => new SyncServer(options), 'INVALID_ARGUMENT', message);
    }
  });

  test('a path that cannot be opened throws a SyncError', (t) => {
    const dir = tempDir(t);
    assert.throws(
      () => new SyncServer({ path: path.join(dir, 'missing', 'dir', 'server.db') }),
      (error) => error instanceof SyncError && typeof error.code === 'string' && error.code !== 'INTERNAL',
    );
  });

  test('limits reach the core: maxChangesPerPush, maxDocumentBytes, maxDepth', async (t) => {
    const server = memoryServer(t, { limits: { maxChangesPerPush: 3, maxDocumentBytes: 64, maxDepth: 3 } });
    const many = Array.from({ length: 4 }, (_, i) => change(`c${i}`, 'CREATED', `n${i}`, { i }));
    await assertRejectsSyncError(server.push('u', 'd', many), 'LIMIT_EXCEEDED', /the limit is 3/);
    await assertRejectsSyncError(
      server.push('u', 'd', [change('big', 'CREATED', 'n', { text: 'x'.repeat(100) })]),
      'LIMIT_EXCEEDED',
      /larger than the limit of 64 bytes/,
    );
    await assertRejectsSyncError(
      server.push('u', 'd', [change('deep', 'CREATED', 'n', { a: { b: { c: { d: 1 } } } })]), // 4 levels
      'LIMIT_EXCEEDED',
      /nested deeper than the limit of 3/,
    );
    const fine = await server.push('u', 'd', many.slice(0, 3));
    assert.equal(fine.applied.length, 3);
    assert.equal((await logOf(server, 'u')).changes.length, 3);
  });
});

describe('argument validation of the operations', () => {
  const badUsers = ['a\u0001b', undefined, null, '', 42, 'u'.repeat(257), {}];

  test('userId must be a non-empty string of at most 256 bytes, on every operation', async (t) => {
    const server = memoryServer(t);
    const calls = [
      (u) => server.sync(u, { deviceId: 'd', changes: [] }),
      (u) => server.push(u, 'd', []),
      (u) => server.pull(u),
      (u) => server.status(u, 'd'),
      (u) => server.conflicts(u),
      (u) => server.resolveConflict(u, 1, { use: 'server' }),
      (u) => server.importSnapshot(u, {}),
    ];
    for (const call of calls) {
      for (const user of badUsers) await assertRejectsSyncError(call(user), 'INVALID_ARGUMENT', /for userId/);
    }
    // 256 bytes (here 128 two-byte characters) is fine.
    const longest = 'é'.repeat(128);
    const response = await server.sync(longest, { deviceId: 'd', changes: [change('c', 'CREATED', 'n', { a: 1 })] });
    assert.deepEqual(response.applied, [{ changeId: 'c', version: 1 }]);
    await assertRejectsSyncError(server.pull(`${longest}x`), 'INVALID_ARGUMENT', /for userId/);
  });

  test('sync(request): an object, a JSON string, a Buffer or a Uint8Array', async (t) => {
    const server = memoryServer(t);
    const request = (n) => ({ deviceId: 'd', changes: [change(`c${n}`, 'CREATED', `n${n}`, { n })] });
    const forms = [
      request(1),
      JSON.stringify(request(2)),
      Buffer.from(JSON.stringify(request(3))),
      new Uint8Array(Buffer.from(JSON.stringify(request(4)))),
    ];
    for (const [i, form] of forms.entries()) {
      const response = await server.sync('u', form);
      assert.deepEqual(response.applied, [{ changeId: `c${i + 1}`, version: i + 1 }]);
    }
    for (const bad of [undefined, null, 42, [1], new Date()]) {
      await assertRejectsSyncError(server.sync('u', bad), 'INVALID_ARGUMENT', /for request/);
    }
    await assertRejectsSyncError(server.sync('u', { deviceId: 'd', changes: [], big: 10n }), 'INVALID_ARGUMENT', /JSON-serializable/);
    await assertRejectsSyncError(server.sync('u', '{'), 'INVALID_ARGUMENT', /Malformed JSON|Expected a JSON object/);
  });

  test('push(userId, deviceId, changes)', async (t) => {
    const server = memoryServer(t);
    for (const deviceId of [undefined, '', 5, 'd'.repeat(257)]) {
      await assertRejectsSyncError(server.push('u', deviceId, []), 'INVALID_ARGUMENT', /for deviceId/);
    }
    for (const changes of [undefined, {}, 'x']) {
      await assertRejectsSyncError(server.push('u', 'd', changes), 'INVALID_ARGUMENT', /for changes/);
    }
    await assertRejectsSyncError(server.push('u', 'd', [{ type: 'CREATED' }]), 'INVALID_ARGUMENT', /changes\[0\]/);
    const response = await server.push('u', 'd', [change('c1', 'CREATED', 'n', { a: 1 }, { timestamp: T0 })]);
    assert.deepEqual(response, { applied: [{ changeId: 'c1', version: 1 }], conflicts: [], errors: [], latestServerVersion: 1 });
  });

  test('pull(userId, { since, limit, deviceId })', async (t) => {
    const server = memoryServer(t, { limits: { maxPullLimit: 50 } });
    const cases = [
      ['x', /for options/],
      [{ from: 1 }, /Unknown option "from"/],
      [{ since: -1 }, /for options\.since/],
      [{ since: 1.5 }, /for options\.since/],
      [{ since: '3' }, /for options\.since/],
      [{ limit: 0 }, /for options\.limit/],
      [{ limit: 51 }, /an integer from 1 to 50 for options\.limit/],
      [{ deviceId: '' }, /for deviceId/],
    ];
    for (const [options, message] of cases) {
      await assertRejectsSyncError(server.pull('u', options), 'INVALID_ARGUMENT', message);
    }
    await server.push('u', 'w', Array.from({ length: 5 }, (_, i) => change(`c${i}`, 'CREATED', `n${i}`, { i }, { timestamp: T0 })));
    const page = await server.pull('u', { since: 1, limit: 2, deviceId: 'reader' });
    assert.deepEqual(Object.keys(page), ['newChanges', 'latestServerVersion', 'headVersion', 'hasMore']);
    assert.deepEqual(page.newChanges.map((c) => c.version), [2, 3]);
    assert.equal(page.hasMore, true);
    assert.equal(page.latestServerVersion, 3, 'where this page brings the reader');
    assert.equal(page.headVersion, 5);
    assert.deepEqual(page.newChanges[0], {
      version: 2,
      changeId: 'c1',
      type: 'CREATED',
      entityType: 'note',
      entityId: 'n1',
      data: { i: 1 },
      timestamp: T0,
      deviceId: 'w',
    });
    const status = await server.status('u', 'reader');
    assert.equal(status.lastSeenVersion, 3, 'a pull with deviceId records what the device has seen');
    await assertRejectsSyncError(server.status('u', 'nobody'), 'NOT_FOUND');
    const all = await server.pull('u');
    assert.equal(all.newChanges.length, 5);
    assert.equal(all.hasMore, false);
  });

  test('status, conflicts, resolveConflict and importSnapshot arguments', async (t) => {
    const server = memoryServer(t);
    for (const deviceId of [undefined, '', 1]) {
      await assertRejectsSyncError(server.status('u', deviceId), 'INVALID_ARGUMENT', /for deviceId/);
    }
    for (const id of [undefined, 0, -1, 1.5, '1']) {
      await assertRejectsSyncError(server.resolveConflict('u', id, { use: 'server' }), 'INVALID_ARGUMENT', /for conflictId/);
    }
    for (const resolution of [undefined, 'client', ['client']]) {
      await assertRejectsSyncError(server.resolveConflict('u', 1, resolution), 'INVALID_ARGUMENT', /for resolution/);
    }
    await assertRejectsSyncError(server.resolveConflict('u', 1, { use: 'everyone' }), 'INVALID_ARGUMENT', /resolution\.use/);
    await assertRejectsSyncError(server.resolveConflict('u', 1, { use: 'merged' }), 'INVALID_ARGUMENT', /resolution\.data/);
    await assertRejectsSyncError(server.resolveConflict('u', 1, { use: 'server', extra: 1 }), 'INVALID_ARGUMENT', /Unknown field/);
    await assertRejectsSyncError(server.resolveConflict('u', 1, { use: 'server' }), 'NOT_FOUND', /No open conflict has id 1/);
    for (const state of [undefined, 42, null]) {
      await assertRejectsSyncError(server.importSnapshot('u', state), 'INVALID_ARGUMENT', /for state/);
    }
    await assertRejectsSyncError(server.importSnapshot('u', {}, { idField: 'x' }), 'INVALID_ARGUMENT', /Unknown option "idField"/);
    await assertRejectsSyncError(server.importSnapshot('u', {}, { idFields: { goal: 1 } }), 'INVALID_ARGUMENT', /idFields\.goal/);
    assert.deepEqual(await server.conflicts('u'), []);
  });
});

describe('close()', () => {
  test('then every call rejects with CLOSED; close() again is harmless', async () => {
    const server = new SyncServer({ path: ':memory:' });
    server.close();
    assert.equal(server.isOpen, false);
    server.close();
    const calls = [
      server.sync('u', { deviceId: 'd', changes: [] }),
      server.push('u', 'd', []),
      server.pull('u'),
      server.status('u', 'd'),
      server.conflicts('u'),
      server.resolveConflict('u', 1, { use: 'server' }),
      server.importSnapshot('u', {}),
    ];
    for (const call of calls) await assertRejectsSyncError(call, 'CLOSED', /closed/);
    // Closed wins over argument errors: nothing is validated against a closed server.
    await assertRejectsSyncError(server.pull(''), 'CLOSED');
  });

  test('operations already in flight finish first', async (t) => {
    const server = new SyncServer({ path: ':memory:' });
    const changes = Array.from({ length: 200 }, (_, i) => change(`c${i}`, 'CREATED', `n${i}`, { i }));
    const pending = server.sync('u', { deviceId: 'd', changes, limit: 1 });
    server.close();
    const response = await pending;
    assert.equal(response.applied.length, 200);
    await assertRejectsSyncError(server.pull('u'), 'CLOSED');
    t.after(() => server.close());
  });
});

describe('persistence', () => {
  test('a reopened file keeps versions, results of changeIds and open conflicts', async (t) => {
    const file = path.join(tempDir(t), 'server.db');
    const first = new SyncServer({ path: file, conflicts: 'manual', durability: 'full' });
    const created = [change('c1', 'CREATED', 'n', { v: 1 }, { timestamp: T0 }), change('c2', 'CREATED', 'm', { v: 1 }, { timestamp: T0 })];
    const response = await first.push('u', 'A', created);
    const conflict = await first.push('u', 'B', [change('b1', 'UPDATED', 'n', { v: 2 }, { baseVersion: 0, timestamp: T0 + 1 })]);
    assert.equal(conflict.conflicts.length, 1);
    first.close();

    const second = new SyncServer({ path: file, conflicts: 'manual' });
    t.after(() => second.close());
    assert.deepEqual((await second.push('u', 'A', created)).applied, response.applied, 'a replay after reopen');
    const next = await second.push('u', 'A', [change('c3', 'UPDATED', 'n', { v: 3 }, { timestamp: T0 + 2 })]);
    assert.deepEqual(next.applied, [{ changeId: 'c3', version: 3 }]);
    const open = await second.conflicts('u');
    assert.deepEqual(open.map((c) => [c.id, c.changeId]), [[conflict.conflicts[0].conflictId, 'b1']]);
    assertGapless((await logOf(second, 'u')).changes);
  });
});

describe('importSnapshot (seed 002: turn a legacy full-state blob into change-log entries)', () => {
  const legacy = {
    logbook_entry: [
      { id: 'entry-1', duration: 30, timestamp: '2025-01-01T10:00:00Z', pieces: [{ title: 'Étude' }] },
      { id: 'entry-2', duration: 45, updatedAt: '2025-01-02T10:00:00Z' },
    ],
    goal: [{ id: 'goal-1', title: 'Practice daily' }],
  };

  test('imports each record once as a CREATED change; importing again creates no new version', async (t) => {
    const server = memoryServer(t);
    const first = await server.importSnapshot('u', legacy);
    assert.deepEqual(first, { imported: 3, skipped: 0, latestServerVersion: 3 });
    const again = await server.importSnapshot('u', JSON.stringify(legacy));
    assert.equal(again.latestServerVersion, 3);
    const fromBuffer = await server.importSnapshot('u', Buffer.from(JSON.stringify(legacy)));
    assert.equal(fromBuffer.latestServerVersion, 3);
    const { changes } = await logOf(server, 'u');
    assertGapless(changes);
    assert.deepEqual(
      changes.map((c) => [c.type, c.entityType, c.entityId]),
      [
        ['CREATED', 'logbook_entry', 'entry-1'],
        ['CREATED', 'logbook_entry', 'entry-2'],
        ['CREATED', 'goal', 'goal-1'],
      ],
    );
    assert.deepEqual(changes[0].data, legacy.logbook_entry[0]);
    assert.equal(changes[1].timestamp, Date.parse('2025-01-02T10:00:00Z'));
    // Per user: another user's import is its own.
    assert.deepEqual(await server.importSnapshot('other', legacy), { imported: 3, skipped: 0, latestServerVersion: 3 });
  });

  test(
    'a second import reports the records as skipped, not imported',
    async (t) => {
      const server = memoryServer(t);
      await server.importSnapshot('u', legacy);
      assert.deepEqual(await server.importSnapshot('u', legacy), { imported: 0, skipped: 3, latestServerVersion: 3 });
    },
  );

  test('a changed record imports again (as a new state); the unchanged ones create no version', async (t) => {
    const server = memoryServer(t);
    await server.importSnapshot('u', legacy);
    const edited = { ...legacy, goal: [{ id: 'goal-1', title: 'Practice twice a day' }] };
    const result = await server.importSnapshot('u', edited);
    assert.equal(result.latestServerVersion, 4);
    assert.deepEqual((await stateOf(server, 'u'))['goal/goal-1'], { id: 'goal-1', title: 'Practice twice a day' });
  });

  test('a changed record is counted as imported and the unchanged ones as skipped', async (t) => {
    const server = memoryServer(t);
    await server.importSnapshot('u', legacy);
    const edited = { ...legacy, goal: [{ id: 'goal-1', title: 'Practice twice a day' }] };
    assert.deepEqual(await server.importSnapshot('u', edited), { imported: 1, skipped: 2, latestServerVersion: 4 });
  });

  test('more records than maxChangesPerPush import in one call; idFields name the id field', async (t) => {
    const server = memoryServer(t, { idFields: { songs: 'isrc' } });
    const songs = Array.from({ length: 1500 }, (_, i) => ({ isrc: `S${i}`, n: i }));
    const rows = Array.from({ length: 3 }, (_, i) => ({ row_key: `R${i}` }));
    const result = await server.importSnapshot('u', { songs, rows }, { idFields: { rows: 'row_key' } });
    assert.deepEqual(result, { imported: 1503, skipped: 0, latestServerVersion: 1503 });
    const state = await stateOf(server, 'u');
    assert.deepEqual(state['songs/S1499'], { isrc: 'S1499', n: 1499 });
    assert.deepEqual(state['rows/R2'], { row_key: 'R2' });
  });

  test('a bad snapshot is INVALID_ARGUMENT and imports nothing', async (t) => {
    const server = memoryServer(t);
    const cases = [
      ['[]', /state/],
      ['{"goal":', /Malformed JSON|Expected an object/],
      [{ goal: 'not records' }, /array of records/],
      [{ goal: [{ id: 'ok' }, { title: 'no id' }] }, /goal\[1\]/],
      [{ 'bad type': [{ id: 'x' }] }, /entity types/],
      [{ goal: [{ id: 'ok' }, 5] }, /goal\[1\]/],
    ];
    for (const [state, message] of cases) {
      await assertRejectsSyncError(server.importSnapshot('u', state), 'INVALID_ARGUMENT', message);
    }
    assert.deepEqual((await logOf(server, 'u')).changes, []);
  });
});

describe('end to end: two SyncClients converge through server.sync', () => {
  /**
   * One sync cycle of `client`, page by page: push a batch (takeBatch), record what the
   * server applied (markSynced with its version) and pull the response (applyRemote on
   * its bytes, which also settles what the server did not apply: a conflict the device
   * lost rolls its document back, an error counts a retry). Whatever is still in flight
   * goes back to pending, as the sync engine does.
   */
  async function syncClient(server, userId, client) {
    for (let round = 0; round < 100; round++) {
      const batch = JSON.parse(client._handle.takeBatch(50));
      const response = await server.sync(userId, {
        deviceId: client.deviceId,
        lastKnownServerVersion: client.serverVersion,
        changes: batch,
        limit: 20,
      });
      for (const { changeId, version } of response.applied) client._handle.markSynced(changeId, version);
      await client.applyRemote(Buffer.from(JSON.stringify(response)));
      client._handle.releaseInFlight();
      if (!response.hasMore && client.queue.pending().length === 0) return response;
    }
    throw new Error('sync did not settle');
  }

  const documents = (client, types) =>
    Object.fromEntries(
      types.flatMap((type) =>
        client
          .list(type)
          .map((doc) => JSON.stringify(doc))
          .sort()
          .map((text, i) => [`${type}#${i}`, JSON.parse(text)]),
      ),
    );

  async function converge(server, user, clients) {
    for (let round = 0; round < 3; round++) {
      for (const client of clients) await syncClient(server, user, client);
    }
  }

  for (const conflicts of ['newest_wins', 'merge', 'server_wins']) {
    test(`creates, patches, deletes and concurrent edits (${conflicts})`, async (t) => {
      const server = memoryServer(t, { conflicts });
      const a = openClient(t, { path: ':memory:', deviceId: 'device-a' });
      const b = openClient(t, { path: ':memory:', deviceId: 'device-b' });

      a.put('note', 'n1', { title: 'first', body: 'x' });
      a.put('note', 'n2', { title: 'second' });
      b.put('note', 'n3', { title: 'third', tags: ['b'] });
      b.put('task', 't1', { done: false });
      await converge(server, 'user', [a, b]);
      assert.deepEqual(b.get('note', 'n1'), { title: 'first', body: 'x' });
      assert.deepEqual(a.get('task', 't1'), { done: false });

      // Concurrent edits of the same note on both devices, a delete, more creates.
      a.patch('note', 'n1', { title: 'first (a)' });
      b.patch('note', 'n1', { body: 'y' });
      b.delete('note', 'n2');
      a.patch('note', 'n3', { tags: ['a', 'b'] });
      b.patch('task', 't1', { done: true });
      for (let i = 0; i < 30; i++) (i % 2 ? a : b).put('item', `i${i}`, { i });
      await converge(server, 'user', [a, b]);

      const types = ['note', 'task', 'item'];
      assert.deepEqual(documents(a, types), documents(b, types), 'both devices hold the same documents');
      for (const [type, id] of [['note', 'n1'], ['note', 'n2'], ['note', 'n3'], ['task', 't1'], ['item', 'i7']]) {
        assert.deepEqual(a.get(type, id), b.get(type, id), `${type}/${id}`);
      }
      assert.equal(a.get('note', 'n2'), undefined);
      assert.deepEqual(a.get('note', 'n3'), { title: 'third', tags: ['a', 'b'] });
      assert.deepEqual(a.get('task', 't1'), { done: true });
      assert.equal(a.list('item').length, 30);
      if (conflicts === 'merge') assert.deepEqual(a.get('note', 'n1'), { title: 'first (a)', body: 'y' });

      // And what they hold is the server's state.
      const state = await stateOf(server, 'user');
      for (const [key, doc] of Object.entries(state)) {
        const [type, id] = key.split('/');
        assert.deepEqual(a.get(type, id), doc, key);
      }
      assert.equal(Object.keys(state).length, a.list('note').length + a.list('task').length + a.list('item').length);
      assert.equal(a.serverVersion, (await logOf(server, 'user')).latestServerVersion);
      assert.equal(b.serverVersion, a.serverVersion);
      assert.equal(a.queue.pending().length + b.queue.pending().length, 0);
    });
  }

  test('an update that wins against a delete revives the document on the deleting device too', async (t) => {
    const server = memoryServer(t, { conflicts: 'client_wins' });
    const a = openClient(t, { path: ':memory:', deviceId: 'device-a' });
    const b = openClient(t, { path: ':memory:', deviceId: 'device-b' });
    a.put('note', 'n', { title: 't', body: 'b' });
    await converge(server, 'user', [a, b]);
    a.delete('note', 'n');
    b.patch('note', 'n', { title: 'revived' });
    await converge(server, 'user', [a, b]);
    assert.deepEqual(b.get('note', 'n'), { title: 'revived', body: 'b' });
    assert.deepEqual(a.get('note', 'n'), b.get('note', 'n'));
  });

  test(
    'the revival reaches a device that purged its tombstone, and a device that starts from scratch after the purge',
    async (t) => {
      const server = memoryServer(t, { conflicts: 'client_wins' });
      const a = openClient(t, { path: ':memory:', deviceId: 'device-a' });
      const b = openClient(t, { path: ':memory:', deviceId: 'device-b' });
      a.put('note', 'n', { title: 't', body: 'b' });
      await converge(server, 'user', [a, b]);
      a.delete('note', 'n');
      await converge(server, 'user', [a]);
      a.purgeTombstones(0);
      b.patch('note', 'n', { title: 'revived' });
      await converge(server, 'user', [b, a]);
      assert.deepEqual(b.get('note', 'n'), { title: 'revived', body: 'b' });
      assert.deepEqual(a.get('note', 'n'), b.get('note', 'n'));
    },
  );

  test('two users with the same device and entity ids stay apart', async (t) => {
    const server = memoryServer(t);
    const a = openClient(t, { path: ':memory:', deviceId: 'same-device' });
    const b = openClient(t, { path: ':memory:', deviceId: 'same-device' });
    a.put('note', 'n', { owner: 'alice' });
    b.put('note', 'n', { owner: 'bob' });
    await converge(server, 'alice', [a]);
    await converge(server, 'bob', [b]);
    assert.deepEqual(a.get('note', 'n'), { owner: 'alice' });
    assert.deepEqual(b.get('note', 'n'), { owner: 'bob' });
    assert.equal(a.serverVersion, 1);
    assert.equal(b.serverVersion, 1);
  });
});



