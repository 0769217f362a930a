'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { UUID_V4, UUID_V7, tempDir, openClient, memoryClient, assertSyncError, snapshot, created, takeBatch, remote } = require('./helpers');

const updated = (id, data, extra = {}) => ({ type: 'UPDATED', entityType: 'note', entityId: String(id), data, ...extra });
const deleted = (id, extra = {}) => ({ type: 'DELETED', entityType: 'note', entityId: String(id), ...extra });

describe('enqueue', () => {
  test('queues a change with a generated time-ordered UUID v7 changeId and returns it', (t) => {
    const client = memoryClient(t);
    const result = client.queue.enqueue(created('e1', { title: 'a', n: 1, nested: { list: [1, 'two', null] } }));
    assert.deepEqual(Object.keys(result).sort(), ['changeId', 'outcome']);
    assert.equal(result.outcome, 'queued');
    assert.match(result.changeId, UUID_V7);
    const [row] = client.queue.pending();
    assert.equal(row.changeId, result.changeId);
    assert.equal(row.type, 'CREATED');
    assert.equal(row.entityType, 'note');
    assert.equal(row.entityId, 'e1');
    assert.deepEqual(row.data, { title: 'a', n: 1, nested: { list: [1, 'two', null] } });
    assert.equal(row.status, 'pending');
    assert.equal(row.retryCount, 0);
    assert.equal(row.lastError, null);
    assert.equal(row.baseVersion, null);
    assert.equal(row.syncedAt, null);
    assert.equal(row.serverVersion, null);
    assert.equal(typeof row.createdAt, 'number');
    assert.equal(row.timestamp, row.createdAt, 'timestamp defaults to the time it was queued');
  });

  test('generated changeIds are distinct', (t) => {
    const client = memoryClient(t);
    const ids = new Set();
    for (let i = 0; i < 200; i++) ids.add(client.queue.enqueue(created(`e${i}`)).changeId);
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, UUID_V7);
  });

  test('keeps an explicit changeId, timestamp and baseVersion', (t) => {
    const client = memoryClient(t);
    const result = client.queue.enqueue(
      updated('e1', { a: 1 }, { changeId: 'my-change', timestamp: 1700000000000, baseVersion: 12 }),
    );
    assert.deepEqual(result, { changeId: 'my-change', outcome: 'queued' });
    const [row] = client.queue.pending();
    assert.equal(row.changeId, 'my-change');
    assert.equal(row.timestamp, 1700000000000);
    assert.equal(row.baseVersion, 12);
  });

  test('keeps unicode and escapes in ids and data intact', (t) => {
    const client = memoryClient(t);
    const data = { text: 'ünïcødé 🚀 "quoted" \\ back\nslash\t\u0001', 'key with "quote"': true };
    client.queue.enqueue(created('ïd-🚀', data));
    const [row] = client.queue.pending();
    assert.equal(row.entityId, 'ïd-🚀');
    assert.deepEqual(row.data, data);
  });

  test('a duplicate changeId is CONFLICT and changes nothing', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('e1', { a: 1 }, { changeId: 'dup' }));
    const before = snapshot(client);
    assertSyncError(() => client.queue.enqueue(created('e2', { a: 2 }, { changeId: 'dup' })), 'CONFLICT', /"dup"/);
    assert.deepEqual(snapshot(client), before);
  });

  test('a DELETED change may carry no data', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(deleted('gone'));
    client.queue.enqueue(deleted('gone-too', { data: null }));
    const rows = client.queue.pending();
    assert.deepEqual(
      rows.map((r) => [r.type, r.entityId, r.data]),
      [
        ['DELETED', 'gone', null],
        ['DELETED', 'gone-too', null],
      ],
    );
  });
});

describe('coalescing (DESIGN.md section 5)', () => {
  test('CREATED + UPDATED -> CREATED with merged fields', (t) => {
    const client = memoryClient(t);
    const first = client.queue.enqueue(created('e1', { title: 'a', body: 'x' }, { timestamp: 1000 }));
    const second = client.queue.enqueue(updated('e1', { title: 'b', done: true }, { timestamp: 2000 }));
    assert.equal(second.outcome, 'coalesced');
    assert.equal(second.into, first.changeId);
    assert.match(second.changeId, UUID_V7);
    assert.notEqual(second.changeId, first.changeId);
    const rows = client.queue.pending();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].changeId, first.changeId);
    assert.equal(rows[0].type, 'CREATED');
    assert.deepEqual(rows[0].data, { title: 'b', body: 'x', done: true });
    assert.equal(rows[0].timestamp, 2000, 'the newest timestamp wins');
  });

  test('CREATED + DELETED -> nothing', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('other'));
    const first = client.queue.enqueue(created('e1', { a: 1 }, { changeId: 'c1' }));
    const second = client.queue.enqueue(deleted('e1', { changeId: 'd1' }));
    assert.deepEqual(second, { changeId: 'd1', outcome: 'cancelled' });
    assert.deepEqual(
      client.queue.pending().map((r) => r.entityId),
      ['other'],
    );
    // Both changeIds are spent: replaying either is a conflict, not a resurrection.
    assertSyncError(() => client.queue.enqueue(created('e1', { a: 1 }, { changeId: first.changeId })), 'CONFLICT');
    assertSyncError(() => client.queue.enqueue(deleted('e1', { changeId: 'd1' })), 'CONFLICT');
  });

  // Found by simulation seed 119: a device's CREATED lost a conflict, the client rolled the
  // entity back to the server's version, and the CREATED it made again was then deleted. The
  // server has the entity, so the delete must still reach it.
  test('CREATED + DELETED -> DELETED when the server has the entity: a pulled version, or a DELETED that names one', async (t) => {
    const pulled = memoryClient(t);
    await pulled.applyRemote(JSON.stringify([remote(1, 'e1', { entityType: 'note' })]));
    const first = pulled.queue.enqueue(created('e1', { a: 1 }));
    const second = pulled.queue.enqueue(deleted('e1'));
    assert.equal(second.outcome, 'coalesced');
    assert.deepEqual(pulled.queue.pending().map((r) => [r.changeId, r.type, r.baseVersion]), [[first.changeId, 'DELETED', 1]],
      'the delete names the pulled version, so the server can tell a concurrent change');

    const named = memoryClient(t);
    const created2 = named.queue.enqueue(created('e2', { a: 1 }));
    const deleted2 = named.queue.enqueue(deleted('e2', { baseVersion: 4 }));
    assert.equal(deleted2.outcome, 'coalesced');
    assert.deepEqual(named.queue.pending().map((r) => [r.changeId, r.type, r.baseVersion]), [[created2.changeId, 'DELETED', 4]]);
  });

  test('UPDATED + UPDATED -> UPDATED with merged fields, later fields win', (t) => {
    const client = memoryClient(t);
    const first = client.queue.enqueue(updated('e1', { a: 1, b: 1 }, { baseVersion: 4 }));
    const second = client.queue.enqueue(updated('e1', { b: 2, c: 3 }));
    const third = client.queue.enqueue(updated('e1', { c: 4 }));
    assert.equal(second.outcome, 'coalesced');
    assert.equal(second.into, first.changeId);
    assert.equal(third.into, first.changeId);
    const rows = client.queue.pending();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].type, 'UPDATED');
    assert.deepEqual(rows[0].data, { a: 1, b: 2, c: 4 });
    assert.equal(rows[0].baseVersion, 4, 'the base version of the first change is kept');
  });

  test('UPDATED + DELETED -> DELETED', (t) => {
    const client = memoryClient(t);
    const first = client.queue.enqueue(updated('e1', { a: 1 }));
    const second = client.queue.enqueue(deleted('e1'));
    assert.equal(second.outcome, 'coalesced');
    assert.equal(second.into, first.changeId);
    const rows = client.queue.pending();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].changeId, first.changeId);
    assert.equal(rows[0].type, 'DELETED');
    assert.equal(rows[0].data, null);
  });

  test('other pairs are queued as separate changes, in order', (t) => {
    const pairs = [
      [deleted('e'), created('e')],
      [deleted('e'), updated('e', { a: 1 })],
      [created('e'), created('e', { other: true })],
      [updated('e', { a: 1 }), created('e')],
      [deleted('e'), deleted('e')],
    ];
    for (const [a, b] of pairs) {
      const client = memoryClient(t);
      const first = client.queue.enqueue(a);
      const second = client.queue.enqueue(b);
      assert.equal(second.outcome, 'queued', `${a.type} then ${b.type}`);
      assert.deepEqual(
        client.queue.pending().map((r) => [r.changeId, r.type]),
        [
          [first.changeId, a.type],
          [second.changeId, b.type],
        ],
      );
    }
  });

  test('changes of different entities never coalesce', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('e1'));
    assert.equal(client.queue.enqueue(updated('e2', { a: 1 })).outcome, 'queued');
    assert.equal(
      client.queue.enqueue({ type: 'UPDATED', entityType: 'task', entityId: 'e1', data: { a: 1 } }).outcome,
      'queued',
    );
    assert.equal(client.queue.pending().length, 3);
  });

  test('an in-flight change is never rewritten; the next pending one coalesces instead', (t) => {
    const client = memoryClient(t);
    const first = client.queue.enqueue(created('e1', { a: 1 }));
    const [inFlight] = takeBatch(client, 10);
    assert.equal(inFlight.changeId, first.changeId);
    assert.equal(inFlight.status, 'syncing');

    const second = client.queue.enqueue(updated('e1', { a: 2 }));
    assert.equal(second.outcome, 'queued');
    const third = client.queue.enqueue(updated('e1', { b: 3 }));
    assert.equal(third.outcome, 'coalesced');
    assert.equal(third.into, second.changeId);
    const cancel = client.queue.enqueue(deleted('e1'));
    assert.equal(cancel.outcome, 'coalesced', 'UPDATED + DELETED while the CREATED is in flight');

    const all = client.queue.export().changes;
    assert.deepEqual(
      all.map((c) => [c.changeId, c.type, c.status, c.data]),
      [
        [first.changeId, 'CREATED', 'syncing', { a: 1 }],
        [second.changeId, 'DELETED', 'pending', null],
      ],
    );
  });

  test('coalesce: false queues every change as it is', (t) => {
    const client = memoryClient(t, { coalesce: false });
    const outcomes = [
      client.queue.enqueue(created('e1', { a: 1 })),
      client.queue.enqueue(updated('e1', { b: 2 })),
      client.queue.enqueue(updated('e1', { c: 3 })),
      client.queue.enqueue(deleted('e1')),
    ].map((r) => r.outcome);
    assert.deepEqual(outcomes, ['queued', 'queued', 'queued', 'queued']);
    assert.deepEqual(
      client.queue.pending().map((r) => r.type),
      ['CREATED', 'UPDATED', 'UPDATED', 'DELETED'],
    );
  });
});

describe('enqueueMany', () => {
  test('queues all, in order, and counts the outcomes', (t) => {
    const client = memoryClient(t);
    const result = client.queue.enqueueMany([
      created('a'),
      created('b', { x: 1 }, { changeId: 'b-1' }),
      updated('b', { y: 2 }),
      created('c'),
      deleted('c'),
      updated('d', { z: 1 }),
    ]);
    assert.equal(result.queued, 4, 'a, b, c, d: c was queued, then cancelled by its DELETED');
    assert.equal(result.coalesced, 1);
    assert.equal(result.cancelled, 1);
    assert.equal(result.changeIds.length, 6);
    assert.equal(result.changeIds[1], 'b-1');
    for (const [i, id] of result.changeIds.entries()) if (i !== 1) assert.match(id, UUID_V7);
    const rows = client.queue.pending();
    assert.deepEqual(
      rows.map((r) => [r.entityId, r.type]),
      [
        ['a', 'CREATED'],
        ['b', 'CREATED'],
        ['d', 'UPDATED'],
      ],
    );
    assert.deepEqual(rows[1].data, { x: 1, y: 2 });
    assert.equal(rows[0].changeId, result.changeIds[0]);
  });

  test('an empty array queues nothing', (t) => {
    const client = memoryClient(t);
    assert.deepEqual(client.queue.enqueueMany([]), { queued: 0, coalesced: 0, cancelled: 0, changeIds: [] });
    assert.equal(client.queue.stats().pending, 0);
  });

  test('an invalid record at index 3 names changes[3] and queues nothing', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('existing'));
    const before = snapshot(client);
    const batch = [created('a'), created('b'), updated('existing', { x: 1 }), { ...created('d'), entityId: '' }];
    const error = assertSyncError(() => client.queue.enqueueMany(batch), 'INVALID_ARGUMENT', /changes\[3\]/);
    assert.match(error.message, /entityId/);
    assert.deepEqual(snapshot(client), before);
  });

  test('a storage-level failure at index 3 (duplicate changeId) rolls back the whole batch', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('existing', { v: 1 }));
    const before = snapshot(client);
    const batch = [
      created('a', {}, { changeId: 'same' }),
      created('b'),
      updated('existing', { v: 2 }),
      created('d', {}, { changeId: 'same' }),
    ];
    const error = assertSyncError(() => client.queue.enqueueMany(batch), 'CONFLICT', /changes\[3\]/);
    assert.match(error.message, /"same"/);
    assert.deepEqual(snapshot(client), before);
    // Nothing of the failed batch was remembered either: its changeIds are still free.
    assert.equal(client.queue.enqueue(created('a', {}, { changeId: 'same' })).outcome, 'queued');
  });

  test('rejects a non-array', (t) => {
    const client = memoryClient(t);
    for (const value of [undefined, null, created('a'), 'text', 3]) {
      assertSyncError(() => client.queue.enqueueMany(value), 'INVALID_ARGUMENT', /^Expected an array of change objects for changes but received/);
    }
    assertSyncError(() => client.queue.enqueueMany([created('a'), 'not a change']), 'INVALID_ARGUMENT', /changes\[1\]/);
  });
});

describe('pending', () => {
  function fill(client) {
    client.queue.enqueue(created('n1'));
    client.queue.enqueue({ type: 'CREATED', entityType: 'task', entityId: 't1', data: {} });
    client.queue.enqueue(created('n2'));
    client.queue.enqueue({ type: 'CREATED', entityType: 'task', entityId: 't2', data: {} });
    client.queue.enqueue(created('n3'));
  }

  test('lists pending changes oldest first, with limit and entityType', (t) => {
    const client = memoryClient(t);
    fill(client);
    const ids = (rows) => rows.map((r) => r.entityId);
    assert.deepEqual(ids(client.queue.pending()), ['n1', 't1', 'n2', 't2', 'n3']);
    assert.deepEqual(ids(client.queue.pending({})), ['n1', 't1', 'n2', 't2', 'n3']);
    assert.deepEqual(ids(client.queue.pending({ limit: 2 })), ['n1', 't1']);
    assert.deepEqual(ids(client.queue.pending({ entityType: 'task' })), ['t1', 't2']);
    assert.deepEqual(ids(client.queue.pending({ entityType: 'note', limit: 2 })), ['n1', 'n2']);
    assert.deepEqual(ids(client.queue.pending({ entityType: 'nothing' })), []);
    assert.deepEqual(ids(client.queue.pending({ limit: 100 })), ['n1', 't1', 'n2', 't2', 'n3']);
  });

  test('does not list in-flight, failed or synced changes', (t) => {
    const client = memoryClient(t);
    fill(client);
    const batch = takeBatch(client, 3); // n1, t1, n2
    client._handle.markSynced(batch[0].changeId, 1);
    assert.equal(client._handle.markFailed(batch[1].changeId, 'rejected', 1), 'failed');
    assert.deepEqual(
      client.queue.pending().map((r) => r.entityId),
      ['t2', 'n3'],
    );
  });

  test('validates its options', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.queue.pending({ limit: 0 }), 'INVALID_ARGUMENT', /^Expected a positive integer for options\.limit but received 0 of type number$/);
    assertSyncError(() => client.queue.pending({ limit: -1 }), 'INVALID_ARGUMENT', /options\.limit/);
    assertSyncError(() => client.queue.pending({ limit: 1.5 }), 'INVALID_ARGUMENT', /options\.limit/);
    assertSyncError(() => client.queue.pending({ limit: '2' }), 'INVALID_ARGUMENT', /options\.limit/);
    assertSyncError(() => client.queue.pending({ entityType: '' }), 'INVALID_ARGUMENT', /options\.entityType/);
    assertSyncError(() => client.queue.pending({ entityType: 3 }), 'INVALID_ARGUMENT', /options\.entityType/);
    assertSyncError(() => client.queue.pending({ max: 1 }), 'INVALID_ARGUMENT', /"max"/);
    assertSyncError(() => client.queue.pending(5), 'INVALID_ARGUMENT', /^Expected an object for options/);
    assertSyncError(() => client.queue.pending(null), 'INVALID_ARGUMENT', /^Expected an object for options/);
  });
});

describe('failed, retryFailed and the engine transitions', () => {
  test('a change that used up its retries is failed, listed, counted, and retried on retryFailed()', (t) => {
    const client = memoryClient(t);
    const a = client.queue.enqueue(created('a', {}, { changeId: 'a' }));
    client.queue.enqueue(created('b', {}, { changeId: 'b' }));
    assert.deepEqual(
      takeBatch(client, 1).map((c) => c.changeId),
      ['a'],
    );
    assert.equal(client._handle.markFailed(a.changeId, 'first rejection', 2), 'pending');
    let row = client.queue.pending()[0];
    assert.equal(row.changeId, 'a');
    assert.equal(row.retryCount, 1);
    assert.equal(row.lastError, 'first rejection');
    assert.deepEqual(client.queue.failed(), []);

    takeBatch(client, 1);
    assert.equal(client._handle.markFailed(a.changeId, 'second rejection', 2), 'failed');
    const failed = client.queue.failed();
    assert.equal(failed.length, 1);
    assert.equal(failed[0].changeId, 'a');
    assert.equal(failed[0].status, 'failed');
    assert.equal(failed[0].retryCount, 2);
    assert.equal(failed[0].lastError, 'second rejection');
    assert.equal(client.queue.stats().failed, 1);

    assert.equal(client.queue.retryFailed(), 1);
    assert.deepEqual(client.queue.failed(), []);
    row = client.queue.pending().find((c) => c.changeId === 'a');
    assert.equal(row.status, 'pending');
    assert.equal(row.retryCount, 0);
    assert.equal(client.queue.retryFailed(), 0);
  });

  test('later changes of an entity wait behind its failed change; other entities do not', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', { v: 1 }, { changeId: 'a1' }));
    takeBatch(client, 10);
    client._handle.markFailed('a1', 'nope', 1);
    client.queue.enqueue(updated('a', { v: 2 }, { changeId: 'a2' }));
    client.queue.enqueue(created('b', {}, { changeId: 'b1' }));
    assert.deepEqual(
      takeBatch(client, 10).map((c) => c.changeId),
      ['b1'],
    );
    client.queue.retryFailed();
    assert.deepEqual(takeBatch(client, 10).map((c) => c.changeId), ['a1'], 'once retried, a1 goes first');
    client._handle.markSynced('a1', 1);
    assert.deepEqual(takeBatch(client, 10).map((c) => c.changeId), ['a2'], 'and a2 only once a1 is acknowledged');
  });

  test('releaseInFlight returns in-flight changes to pending without counting a retry', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a'));
    client.queue.enqueue(created('b'));
    takeBatch(client, 10);
    assert.equal(client.queue.stats().syncing, 2);
    assert.equal(client._handle.releaseInFlight(), 2);
    const rows = client.queue.pending();
    assert.equal(rows.length, 2);
    for (const row of rows) assert.equal(row.retryCount, 0);
  });
});

describe('stats', () => {
  test('an empty queue', (t) => {
    const client = memoryClient(t);
    assert.deepEqual(client.queue.stats(), {
      pending: 0,
      syncing: 0,
      failed: 0,
      synced: 0,
      byEntityType: {},
      oldestPendingAt: null,
      lastSyncTime: null,
    });
  });

  test('counts every status, per entity type, and times', (t) => {
    const client = memoryClient(t);
    for (const id of ['n1', 'n2', 'n3', 'n4']) client.queue.enqueue(created(id, {}, { changeId: id }));
    client.queue.enqueue({ changeId: 't1', type: 'CREATED', entityType: 'task', entityId: 't1', data: {} });
    takeBatch(client, 3); // n1, n2, n3
    client._handle.markSynced('n1', 7);
    client._handle.markFailed('n2', 'bad', 1);

    const stats = client.queue.stats();
    assert.deepEqual(Object.keys(stats).sort(), [
      'byEntityType',
      'failed',
      'lastSyncTime',
      'oldestPendingAt',
      'pending',
      'synced',
      'syncing',
    ]);
    assert.equal(stats.pending, 2);
    assert.equal(stats.syncing, 1);
    assert.equal(stats.failed, 1);
    assert.equal(stats.synced, 1);
    assert.deepEqual(stats.byEntityType, {
      note: { pending: 1, syncing: 1, failed: 1 },
      task: { pending: 1, syncing: 0, failed: 0 },
    });
    const all = client.queue.export().changes;
    const pendingRows = all.filter((c) => c.status === 'pending');
    assert.equal(stats.oldestPendingAt, Math.min(...pendingRows.map((c) => c.createdAt)));
    const synced = all.find((c) => c.changeId === 'n1');
    assert.equal(synced.status, 'synced');
    assert.equal(synced.serverVersion, 7);
    assert.equal(typeof stats.lastSyncTime, 'number');
    assert.equal(stats.lastSyncTime, synced.syncedAt);
  });

  test('lastSyncTime persists across reopen', (t) => {
    const file = path.join(tempDir(t), 'stats.db');
    const client = openClient(t, { path: file });
    client.queue.enqueue(created('a', {}, { changeId: 'a' }));
    takeBatch(client, 1);
    client._handle.markSynced('a', 1);
    const { lastSyncTime } = client.queue.stats();
    assert.notEqual(lastSyncTime, null);
    client.close();
    const reopened = openClient(t, { path: file });
    assert.equal(reopened.queue.stats().lastSyncTime, lastSyncTime);
    assert.equal(reopened.queue.stats().synced, 1);
  });
});

describe('export', () => {
  test('is one JSON document of everything queued', (t) => {
    const client = memoryClient(t, { deviceId: 'dev-1', userId: 'u-1' });
    client.queue.enqueue(created('a', { x: 1 }, { changeId: 'a' }));
    client.queue.enqueue(created('b', { y: 2 }, { changeId: 'b' }));
    client.queue.enqueue(created('c', {}, { changeId: 'c' }));
    takeBatch(client, 1);
    client._handle.markSynced('a', 3);
    takeBatch(client, 1);

    const doc = client.queue.export();
    assert.equal(doc.format, 'deltasync.queue-export');
    assert.equal(doc.formatVersion, 1);
    assert.equal(typeof doc.exportedAt, 'number');
    assert.equal(doc.deviceId, 'dev-1');
    assert.equal(doc.userId, 'u-1');
    assert.equal(doc.tenantId, null);
    assert.equal(doc.schemaVersion, 7);
    assert.deepEqual(doc.stats, client.queue.stats());
    assert.deepEqual(
      doc.changes.map((c) => [c.changeId, c.status, c.data]),
      [
        ['a', 'synced', { x: 1 }],
        ['b', 'syncing', { y: 2 }],
        ['c', 'pending', {}],
      ],
    );
    assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
  });
});

describe('discard', () => {
  test('removes a pending change', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', {}, { changeId: 'a' }));
    client.queue.enqueue(created('b', {}, { changeId: 'b' }));
    assert.equal(client.queue.discard('a'), undefined);
    assert.deepEqual(
      client.queue.pending().map((c) => c.changeId),
      ['b'],
    );
    assert.equal(client.queue.stats().pending, 1);
  });

  test('an unknown changeId is NOT_FOUND; a discarded one is NOT_FOUND the second time', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', {}, { changeId: 'a' }));
    assertSyncError(() => client.queue.discard('nope'), 'NOT_FOUND', /"nope"/);
    client.queue.discard('a');
    assertSyncError(() => client.queue.discard('a'), 'NOT_FOUND');
  });

  test('an in-flight change is CONFLICT and stays', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', {}, { changeId: 'a' }));
    takeBatch(client, 1);
    const before = snapshot(client);
    assertSyncError(() => client.queue.discard('a'), 'CONFLICT', /in flight/);
    assert.deepEqual(snapshot(client), before);
    client._handle.releaseInFlight();
    client.queue.discard('a');
    assert.equal(client.queue.export().changes.length, 0);
  });

  test('failed and synced changes can be discarded; a failed one stops blocking its entity', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', {}, { changeId: 'a1' }));
    client.queue.enqueue(created('s', {}, { changeId: 's1' }));
    takeBatch(client, 2);
    client._handle.markFailed('a1', 'x', 1);
    client._handle.markSynced('s1', 1);
    client.queue.enqueue(updated('a', { v: 2 }, { changeId: 'a2' }));
    assert.deepEqual(takeBatch(client, 10), []);
    client.queue.discard('a1');
    client.queue.discard('s1');
    assert.deepEqual(client.queue.failed(), []);
    assert.equal(client.queue.stats().synced, 0);
    assert.deepEqual(
      takeBatch(client, 10).map((c) => c.changeId),
      ['a2'],
    );
  });

  test('validates its argument', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.queue.discard(), 'INVALID_ARGUMENT', /^Expected a non-empty string for changeId but received undefined$/);
    assertSyncError(() => client.queue.discard(''), 'INVALID_ARGUMENT', /changeId/);
    assertSyncError(() => client.queue.discard(42), 'INVALID_ARGUMENT', /42 of type number/);
  });
});

describe('importLegacy', () => {
  // What the Sync-V2 web client kept in localStorage.
  const v2Dump = [
    { changeId: 'v2-1', type: 'CREATED', entityType: 'logbook_entry', entityId: 'e1', data: { title: 'one' }, timestamp: 1700000000001, retryCount: 0 },
    { changeId: 'v2-2', type: 'UPDATED', entityType: 'logbook_entry', entityId: 'e2', data: { title: 'two' }, timestamp: 1700000000002, retryCount: 2 },
    { changeId: 'v2-3', type: 'DELETED', entityType: 'logbook_entry', entityId: 'e3', data: null, timestamp: 1700000000003, retryCount: 1 },
    { changeId: 'v2-4', type: 'UPDATED', entityType: 'logbook_entry', entityId: 'e1', data: { done: true }, timestamp: 1700000000004, retryCount: 0 },
  ];

  test('imports a Sync-V2 localStorage dump given as JSON text, once', (t) => {
    const client = memoryClient(t);
    const text = JSON.stringify(v2Dump);
    assert.deepEqual(client.queue.importLegacy(text), { imported: 4, skipped: 0 });
    const rows = client.queue.pending();
    assert.deepEqual(
      rows.map((r) => [r.changeId, r.type, r.entityId, r.timestamp, r.retryCount]),
      [
        ['v2-1', 'CREATED', 'e1', 1700000000004, 0], // v2-4 coalesced into it
        ['v2-2', 'UPDATED', 'e2', 1700000000002, 2],
        ['v2-3', 'DELETED', 'e3', 1700000000003, 1],
      ],
    );
    assert.deepEqual(rows[0].data, { title: 'one', done: true });
    assert.deepEqual(rows[1].data, { title: 'two' });

    const before = snapshot(client);
    assert.deepEqual(client.queue.importLegacy(text), { imported: 0, skipped: 4 });
    assert.deepEqual(snapshot(client), before);
  });

  test('accepts the same dump as an array', (t) => {
    const client = memoryClient(t);
    assert.deepEqual(client.queue.importLegacy(v2Dump), { imported: 4, skipped: 0 });
    assert.deepEqual(client.queue.importLegacy(JSON.stringify(v2Dump)), { imported: 0, skipped: 4 });
    assert.equal(client.queue.stats().pending, 3);
  });

  test('imports SQL outbox rows; synced rows are skipped; importing twice imports once', (t) => {
    const client = memoryClient(t);
    const rows = [
      {
        id: 'ob-1', tenant_id: 'acme', user_id: 'u-1', entity_type: 'invoice', action: 'create', entity_id: 'i1',
        payload_json: '{"amount":12.5,"lines":[{"sku":"a"}]}', created_at: '2024-03-01T10:00:00.000Z',
        status: 'pending', retry_count: 0, error_message: null,
      },
      {
        id: 'ob-2', tenant_id: 'acme', user_id: 'u-1', entity_type: 'invoice', action: 'update', entity_id: 'i2',
        payload_json: '{"amount":3}', created_at: '2024-03-01T10:00:01.250Z',
        status: 'failed', retry_count: 3, error_message: 'HTTP 422',
      },
      {
        id: 'ob-3', tenant_id: 'acme', user_id: 'u-1', entity_type: 'invoice', action: 'delete', entity_id: 'i3',
        payload_json: '{"id":"i3"}', created_at: '2024-03-01T10:00:02Z',
        status: 'synced', retry_count: 0, error_message: null,
      },
      {
        id: 'ob-4', tenant_id: null, user_id: null, entity_type: 'customer', action: 'delete', entity_id: 'c1',
        created_at: '2024-03-01T12:00:00+02:00', status: 'pending', retry_count: 0, error_message: null,
      },
    ].map((row) => ({ ...row, updated_at: row.created_at, synced_at: row.status === 'synced' ? row.created_at : null }));
    const text = JSON.stringify(rows);
    assert.deepEqual(client.queue.importLegacy(text), { imported: 3, skipped: 1 });
    const pending = client.queue.pending();
    assert.deepEqual(
      pending.map((r) => [r.changeId, r.type, r.entityType, r.entityId, r.tenantId, r.userId, r.timestamp, r.retryCount, r.lastError]),
      [
        ['ob-1', 'CREATED', 'invoice', 'i1', 'acme', 'u-1', Date.parse('2024-03-01T10:00:00.000Z'), 0, null],
        ['ob-2', 'UPDATED', 'invoice', 'i2', 'acme', 'u-1', Date.parse('2024-03-01T10:00:01.250Z'), 3, 'HTTP 422'],
        ['ob-4', 'DELETED', 'customer', 'c1', null, null, Date.parse('2024-03-01T12:00:00+02:00'), 0, null],
      ],
    );
    assert.deepEqual(pending[0].data, { amount: 12.5, lines: [{ sku: 'a' }] });
    assert.deepEqual(pending[1].data, { amount: 3 });
    assert.equal(pending[2].data, null);

    const before = snapshot(client);
    assert.deepEqual(client.queue.importLegacy(text), { imported: 0, skipped: 4 });
    assert.deepEqual(snapshot(client), before);
  });

  test(
    'an outbox delete row with payload_json null (a nullable column) is imported',
    (t) => {
      const client = memoryClient(t);
      const rows = [
        { id: 'd-1', entity_type: 'invoice', action: 'delete', entity_id: 'i9', payload_json: null, created_at: '2024-03-01T10:00:00Z', status: 'pending' },
        { id: 'd-2', entity_type: 'invoice', action: 'delete', entity_id: 'i8', payload_json: null, created_at: '2024-03-01T10:00:00Z', status: 'synced' },
      ];
      assert.deepEqual(client.queue.importLegacy(JSON.stringify(rows)), { imported: 1, skipped: 1 });
      const [row] = client.queue.pending();
      assert.equal(row.type, 'DELETED');
      assert.equal(row.data, null);
    },
  );

  test('an integer outbox id becomes the changeId', (t) => {
    const client = memoryClient(t);
    const rows = [{ id: 17, entity_type: 'note', action: 'update', entity_id: 5, payload_json: '{"a":1}', created_at: '2024-01-01' }];
    assert.deepEqual(client.queue.importLegacy(rows), { imported: 1, skipped: 0 });
    const [row] = client.queue.pending();
    assert.equal(row.changeId, '17');
    assert.equal(row.entityId, '5');
    assert.equal(row.timestamp, Date.UTC(2024, 0, 1));
    assert.deepEqual(client.queue.importLegacy(rows), { imported: 0, skipped: 1 });
  });

  test('a changeId already used by enqueue, coalesced away or discarded is skipped', (t) => {
    const client = memoryClient(t);
    client.queue.enqueue(created('a', { v: 1 }, { changeId: 'kept' }));
    client.queue.enqueue(updated('a', { v: 2 }, { changeId: 'folded' }));
    client.queue.enqueue(created('b', {}, { changeId: 'dropped' }));
    client.queue.discard('dropped');
    const before = snapshot(client);
    const dump = ['kept', 'folded', 'dropped'].map((changeId) => ({
      changeId, type: 'UPDATED', entityType: 'note', entityId: 'z', data: { again: true },
    }));
    assert.deepEqual(client.queue.importLegacy(dump), { imported: 0, skipped: 3 });
    assert.deepEqual(snapshot(client), before);
  });

  test('is all or nothing, and a record without changeId or id is INVALID_ARGUMENT', (t) => {
    const client = memoryClient(t);
    const before = snapshot(client);
    const dump = [
      { changeId: 'ok-1', type: 'CREATED', entityType: 'note', entityId: 'a', data: {} },
      { changeId: 'ok-2', type: 'CREATED', entityType: 'note', entityId: 'b', data: {} },
      { type: 'CREATED', entityType: 'note', entityId: 'c', data: {} },
    ];
    assertSyncError(() => client.queue.importLegacy(JSON.stringify(dump)), 'INVALID_ARGUMENT', /records\[2\]\.changeId/);
    assert.deepEqual(snapshot(client), before);
    assertSyncError(() => client.queue.importLegacy(42), 'INVALID_ARGUMENT', /^Expected an array of change records or its JSON text for records but received 42 of type number$/);
    assertSyncError(() => client.queue.importLegacy({ changes: [] }), 'INVALID_ARGUMENT', /for records/);
    assert.deepEqual(client.queue.importLegacy('[]'), { imported: 0, skipped: 0 });
  });
});
