'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const Database = require('better-sqlite3');

const {
  SyncClient,
  UUID_V7,
  tempDir,
  openClient,
  memoryClient,
  assertSyncError,
  takeBatch,
  remote,
  collect,
  stateSnapshot,
  applyDelta,
  replayChanges,
} = require('./helpers');

const STORE_CRASH_CHILD = path.join(__dirname, 'fixtures', 'store-crash-child.js');

// Every argument error has one shape.
const shape = (name) => new RegExp(`^Expected .+ for ${name.replace(/\./g, '\\.')} but received .+$`);

/** The queued change of one write, found by the changeId the write returned. */
function queuedChange(client, changeId) {
  const found = client.queue.export().changes.filter((change) => change.changeId === changeId);
  assert.equal(found.length, 1, `no queued change ${changeId}`);
  return found[0];
}

/** A client with one pulled note `id` at server version `version`. */
async function withPulled(t, id, data, version = 5, options = {}) {
  const client = memoryClient(t, options);
  await client.applyRemote(JSON.stringify([remote(version, id, { data })]));
  return client;
}

/** Waits (without sleeping) until the clock is past `ms`, so that an age of 0 ms is really reached. */
function clockPast(ms) {
  while (Date.now() <= ms) {
    // spin: at most a millisecond or two
  }
}

describe('put', () => {
  test('a NaN or an Infinity is refused, naming where it is and what it is; nothing is stored', (t) => {
    const client = memoryClient(t);
    for (const [doc, message] of [
      [{ v: Infinity }, /for doc\.v but received Infinity of type number$/],
      [{ list: [1, -Infinity] }, /for doc\.list\[1\] but received -Infinity of type number$/],
      [{ deep: { n: NaN } }, /for doc\.deep\.n but received NaN of type number$/],
    ]) {
      assert.throws(() => client.put('note', 'n', doc), (error) => error.code === 'INVALID_ARGUMENT' && message.test(error.message));
    }
    assert.equal(client.get('note', 'n'), undefined);
    assert.equal(client.queue.stats().pending, 0);
  });

  test('stores a new document and queues CREATED carrying it', (t) => {
    const client = memoryClient(t);
    const doc = { title: 'a', n: 1, nested: { list: [1, 'two', null] } };
    const result = client.put('note', 'n1', doc);
    assert.deepEqual(Object.keys(result).sort(), ['changeId', 'entityId', 'entityType', 'outcome', 'type']);
    assert.equal(result.entityType, 'note');
    assert.equal(result.entityId, 'n1');
    assert.equal(result.type, 'CREATED');
    assert.equal(result.outcome, 'queued');
    assert.match(result.changeId, UUID_V7);
    assert.deepEqual(client.get('note', 'n1'), doc);
    const [row] = client.queue.pending();
    assert.equal(row.changeId, result.changeId);
    assert.equal(row.type, 'CREATED');
    assert.equal(row.entityType, 'note');
    assert.equal(row.entityId, 'n1');
    assert.deepEqual(row.data, doc);
    assert.equal(row.baseVersion, null);
  });

  test('get returns a copy: mutating the argument or the result changes nothing stored', (t) => {
    const client = memoryClient(t);
    const doc = { title: 'a', tags: ['x'] };
    client.put('note', 'n1', doc);
    doc.title = 'changed';
    doc.tags.push('y');
    const read = client.get('note', 'n1');
    read.title = 'mutated';
    assert.deepEqual(client.get('note', 'n1'), { title: 'a', tags: ['x'] });
  });

  test('over an existing document: replaces it and queues UPDATED with every field and null for dropped ones', (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'n1', { title: 'a', body: 'b', n: 1 });
    const result = client.put('note', 'n1', { title: 'A', extra: true });
    assert.equal(result.type, 'UPDATED');
    assert.equal(result.outcome, 'queued');
    assert.deepEqual(client.get('note', 'n1'), { title: 'A', extra: true });
    const row = queuedChange(client, result.changeId);
    assert.equal(row.type, 'UPDATED');
    assert.deepEqual(row.data, { title: 'A', extra: true, body: null, n: null });
    // Replayed in order, the queue reaches the stored document: the nulls remove the dropped fields.
    assert.deepEqual(replayChanges(client.queue.pending()).get('note/n1'), { title: 'A', extra: true });
  });

  test('over a tombstone: queues CREATED again', (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'n1', { title: 'a' });
    client.delete('note', 'n1');
    const result = client.put('note', 'n1', { title: 'again' });
    assert.equal(result.type, 'CREATED');
    assert.deepEqual(queuedChange(client, result.changeId).data, { title: 'again' });
    assert.deepEqual(client.get('note', 'n1'), { title: 'again' });
  });

  test('over a pulled document: the queued change carries the server version as baseVersion', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server' }, 7);
    const result = client.put('note', 'p1', { title: 'local' });
    assert.equal(result.type, 'UPDATED');
    const row = queuedChange(client, result.changeId);
    assert.equal(row.baseVersion, 7);
    assert.deepEqual(row.data, { title: 'local' });
  });

  test('keeps unicode and escapes in ids and data intact', (t) => {
    const client = memoryClient(t);
    const doc = { text: 'ünïcødé 🚀 "quoted" \\ back\nslash\t\u0001', 'key with "quote"': true };
    client.put('note', 'ïd-🚀', doc);
    assert.deepEqual(client.get('note', 'ïd-🚀'), doc);
    assert.deepEqual(client.list('note'), [doc]);
    assert.equal(client.queue.pending()[0].entityId, 'ïd-🚀');
  });

  test('entity ids are limited to 256 UTF-8 bytes, entity types to [A-Za-z0-9_.-]{1,64}', (t) => {
    const client = memoryClient(t);
    client.put('note', 'é'.repeat(128), { ok: 1 }); // 256 bytes
    client.put('a'.repeat(64), 'x', { ok: 1 });
    client.put('Type_1.v-2', 'x', { ok: 1 });
    assertSyncError(() => client.put('note', 'é'.repeat(129), {}), 'INVALID_ARGUMENT', shape('entityId'));
    // Bytes, not characters: 3-byte and 4-byte characters on either side of the limit.
    for (const id of ['€'.repeat(85), '😀'.repeat(64)]) {
      client.put('note', id, { id });
      assert.deepEqual(client.get('note', id), { id });
    }
    for (const id of ['€'.repeat(86), '😀'.repeat(64) + 'x']) {
      assertSyncError(() => client.put('note', id, {}), 'INVALID_ARGUMENT', shape('entityId'));
      assertSyncError(() => client.get('note', id), 'INVALID_ARGUMENT', shape('entityId'));
    }
    assertSyncError(() => client.put('a'.repeat(65), 'x', {}), 'INVALID_ARGUMENT', shape('entityType'));
  });

  test('argument errors name the argument and change nothing', (t) => {
    const client = memoryClient(t, { limits: { maxDepth: 4, maxDocumentBytes: 1000 } });
    client.put('note', 'keep', { title: 'kept' });
    const before = stateSnapshot(client);
    const events = collect(client, 'change');
    class Thing {}
    const cases = [
      [[1, 'a', {}], 'INVALID_ARGUMENT', shape('entityType')],
      [['', 'a', {}], 'INVALID_ARGUMENT', shape('entityType')],
      [['bad type', 'a', {}], 'INVALID_ARGUMENT', /^Expected .+ for entityType but received "bad type" of type string$/],
      [[undefined, 'a', {}], 'INVALID_ARGUMENT', /for entityType but received undefined$/],
      [['note', 42, {}], 'INVALID_ARGUMENT', /^Expected .+ for entityId but received 42 of type number$/],
      [['note', '', {}], 'INVALID_ARGUMENT', shape('entityId')],
      [['note', null, {}], 'INVALID_ARGUMENT', shape('entityId')],
      [['note', 'a', null], 'INVALID_ARGUMENT', /^Expected a plain object for doc but received null$/],
      [['note', 'a'], 'INVALID_ARGUMENT', /^Expected a plain object for doc but received undefined$/],
      [['note', 'a', []], 'INVALID_ARGUMENT', /^Expected a plain object for doc but received an array of length 0$/],
      [['note', 'a', 'text'], 'INVALID_ARGUMENT', shape('doc')],
      [['note', 'a', new Date()], 'INVALID_ARGUMENT', /for doc but received an object of type Date$/],
      [['note', 'a', new Thing()], 'INVALID_ARGUMENT', /for doc but received an object of type Thing$/],
      [['note', 'a', { big: 1n }], 'INVALID_ARGUMENT', /for doc/],
      [['note', 'a', { a: [[[[[1]]]]] }], 'LIMIT_EXCEEDED', /deeper than the limit of 4 at doc/],
      [['note', 'a', { text: 'x'.repeat(2000) }], 'LIMIT_EXCEEDED', /limit of 1000 bytes at doc/],
    ];
    for (const [args, code, message] of cases) {
      assertSyncError(() => client.put(...args), code, message);
    }
    assert.deepEqual(stateSnapshot(client), before);
    assert.equal(events.length, 0);
  });

  test('a closed client is CLOSED', (t) => {
    const client = memoryClient(t);
    client.close();
    assertSyncError(() => client.put('note', 'a', {}), 'CLOSED');
    assertSyncError(() => client.patch('note', 'a', {}), 'CLOSED');
    assertSyncError(() => client.delete('note', 'a'), 'CLOSED');
    assertSyncError(() => client.get('note', 'a'), 'CLOSED');
    assertSyncError(() => client.list('note'), 'CLOSED');
    assertSyncError(() => client.createIndex('note', 'a'), 'CLOSED');
    assertSyncError(() => client.transaction(() => {}), 'CLOSED');
    assertSyncError(() => client.purgeTombstones(), 'CLOSED');
  });
});

describe('patch', () => {
  test('sets only the given fields and queues UPDATED with only them', (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'n1', { title: 'a', body: 'b', meta: { x: 1, y: 2 } });
    const result = client.patch('note', 'n1', { body: 'B', added: 3, meta: { x: 9 } });
    assert.equal(result.type, 'UPDATED');
    assert.equal(result.outcome, 'queued');
    // Shallow: a nested object in the patch replaces the stored one.
    assert.deepEqual(client.get('note', 'n1'), { title: 'a', body: 'B', meta: { x: 9 }, added: 3 });
    const row = queuedChange(client, result.changeId);
    assert.equal(row.type, 'UPDATED');
    assert.deepEqual(row.data, { body: 'B', added: 3, meta: { x: 9 } });
    assert.equal(row.baseVersion, null);
  });

  test('of a pulled document carries its version as baseVersion', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server', body: 'b' }, 9);
    const result = client.patch('note', 'p1', { title: 'local' });
    assert.deepEqual(client.get('note', 'p1'), { title: 'local', body: 'b' });
    const row = queuedChange(client, result.changeId);
    assert.deepEqual(row.data, { title: 'local' });
    assert.equal(row.baseVersion, 9);
  });

  test('of a missing or deleted document is NOT_FOUND and changes nothing', (t) => {
    const client = memoryClient(t);
    client.put('note', 'gone', { a: 1 });
    client.delete('note', 'gone');
    client.put('note', 'other', { a: 1 });
    const before = stateSnapshot(client, ['note'], [['note', 'gone']]);
    const events = collect(client, 'change');
    assertSyncError(() => client.patch('note', 'missing', { a: 2 }), 'NOT_FOUND', /note\/missing/);
    assertSyncError(() => client.patch('note', 'gone', { a: 2 }), 'NOT_FOUND', /note\/gone/);
    assertSyncError(() => client.patch('task', 'other', { a: 2 }), 'NOT_FOUND', /task\/other/);
    assert.deepEqual(stateSnapshot(client, ['note'], [['note', 'gone']]), before);
    assert.equal(events.length, 0);
  });

  test('argument errors name the argument', (t) => {
    const client = memoryClient(t);
    client.put('note', 'n1', { a: 1 });
    const before = stateSnapshot(client);
    assertSyncError(() => client.patch(7, 'n1', {}), 'INVALID_ARGUMENT', shape('entityType'));
    assertSyncError(() => client.patch('note', 7, {}), 'INVALID_ARGUMENT', shape('entityId'));
    assertSyncError(() => client.patch('note', 'n1', null), 'INVALID_ARGUMENT', /^Expected a plain object for fields but received null$/);
    assertSyncError(() => client.patch('note', 'n1', [1]), 'INVALID_ARGUMENT', /^Expected a plain object for fields but received an array of length 1$/);
    assertSyncError(() => client.patch('note', 'n1', 5), 'INVALID_ARGUMENT', /^Expected a plain object for fields but received 5 of type number$/);
    assert.deepEqual(stateSnapshot(client), before);
  });
});

describe('a null in an UPDATED removes the field', () => {
  test('patch: the field is gone from the document (not stored as null) and the queued UPDATED carries the null', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server', body: 'b', tag: 't' }, 5, { coalesce: false });
    const result = client.patch('note', 'p1', { body: null, title: 'local' });
    assert.deepEqual(client.get('note', 'p1'), { title: 'local', tag: 't' });
    assert.equal(Object.hasOwn(client.get('note', 'p1'), 'body'), false);
    const row = queuedChange(client, result.changeId);
    assert.deepEqual(row.data, { body: null, title: 'local' }, 'the null reaches the server, which removes the field too');
    assert.equal(row.baseVersion, 5);
    // A removed field is missing: where { body: null } matches it, $ne null does not.
    assert.equal(client.list('note', { where: { body: null } }).length, 1);
    assert.deepEqual(client.list('note', { where: { body: { $ne: null } } }), []);
  });

  test('patched into a pending CREATED: the CREATED loses the field', (t) => {
    const client = memoryClient(t);
    const first = client.put('note', 'n1', { a: 1, b: 2 });
    const second = client.patch('note', 'n1', { b: null, c: 3 });
    assert.equal(second.outcome, 'coalesced');
    assert.deepEqual(client.get('note', 'n1'), { a: 1, c: 3 });
    const [row] = client.queue.pending();
    assert.equal(row.changeId, first.changeId);
    assert.equal(row.type, 'CREATED');
    assert.deepEqual(row.data, { a: 1, c: 3 }, 'a CREATED is a whole document: no null left behind');
  });

  test('between two pending UPDATEDs the null is kept, so that it still removes the field on the server', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server', body: 'b', tag: 't' }, 5);
    client.patch('note', 'p1', { title: 'one' });
    client.patch('note', 'p1', { body: null });
    assert.deepEqual(client.get('note', 'p1'), { title: 'one', tag: 't' });
    let pending = client.queue.pending();
    assert.equal(pending.length, 1);
    assert.deepEqual(pending[0].data, { title: 'one', body: null });
    assert.equal(pending[0].baseVersion, 5);
    // A later value replaces the null.
    client.patch('note', 'p1', { body: 'back' });
    pending = client.queue.pending();
    assert.deepEqual(pending[0].data, { title: 'one', body: 'back' });
    assert.deepEqual(client.get('note', 'p1'), { title: 'one', body: 'back', tag: 't' });
  });

  test('put over a pulled document, coalesced with an earlier patch: every field it dropped travels as null', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server', body: 'b', tag: 't' }, 5);
    client.patch('note', 'p1', { extra: 1 });
    client.put('note', 'p1', { title: 'only' });
    assert.deepEqual(client.get('note', 'p1'), { title: 'only' });
    const pending = client.queue.pending();
    assert.equal(pending.length, 1);
    assert.equal(pending[0].type, 'UPDATED');
    assert.deepEqual(pending[0].data, { title: 'only', body: null, tag: null, extra: null });
    const onServer = applyDelta({ title: 'server', body: 'b', tag: 't' }, pending[0].data);
    assert.deepEqual(onServer, { title: 'only' }, 'the server reaches the same document');
  });

  test('the echo of a put that dropped fields does not bring them back, nor after its acknowledgement', async (t) => {
    const client = await withPulled(t, 'p1', { title: 'server', body: 'b', tag: 't' }, 5);
    const written = client.put('note', 'p1', { title: 'whole' });
    const [sent] = takeBatch(client, 10);
    assert.deepEqual(sent.data, { title: 'whole', body: null, tag: null });
    const result = await client.applyRemote(
      JSON.stringify([remote(6, 'p1', { type: 'UPDATED', changeId: written.changeId, data: sent.data, deviceId: client.deviceId })]),
    );
    assert.deepEqual(result.conflicts, []);
    assert.deepEqual(client.get('note', 'p1'), { title: 'whole' });
    client._handle.markSynced(written.changeId, 6);
    const { data, meta } = client.get('note', 'p1', { meta: true });
    assert.deepEqual(data, { title: 'whole' });
    assert.equal(meta.version, 6);
    assert.equal(meta.dirty, false);
    // A later pulled change lands on the acknowledged state, without the dropped fields.
    await client.applyRemote(JSON.stringify([remote(7, 'p1', { type: 'UPDATED', data: { tag: 'new' } })]));
    assert.deepEqual(client.get('note', 'p1'), { title: 'whole', tag: 'new' });
  });
});

describe('delete', () => {
  test('tombstones the document, hides it, and queues DELETED', (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'n1', { a: 1 });
    client.put('note', 'n2', { a: 2 });
    const events = collect(client, 'change');
    assert.equal(client.delete('note', 'n1'), true);
    assert.equal(client.get('note', 'n1'), undefined);
    assert.deepEqual(client.list('note'), [{ a: 2 }]);
    const { data, meta } = client.get('note', 'n1', { meta: true });
    assert.equal(data, null);
    assert.equal(meta.deleted, true);
    assert.equal(meta.dirty, true);
    assert.equal(events.length, 1);
    const [change] = events[0].changes;
    assert.equal(change.type, 'DELETED');
    assert.equal(change.entityId, 'n1');
    const row = queuedChange(client, change.changeId);
    assert.equal(row.type, 'DELETED');
    assert.equal(row.data, null);
  });

  test('of a pulled document carries its version as baseVersion', async (t) => {
    const client = await withPulled(t, 'p1', { a: 1 }, 4);
    assert.equal(client.delete('note', 'p1'), true);
    const [row] = client.queue.pending();
    assert.equal(row.type, 'DELETED');
    assert.equal(row.baseVersion, 4);
    assert.equal(client.get('note', 'p1', { meta: true }).meta.version, 4);
  });

  test('returns false for a missing or already deleted document, and queues nothing', (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'n1', { a: 1 });
    assert.equal(client.delete('note', 'n1'), true);
    const before = stateSnapshot(client, ['note'], [['note', 'n1']]);
    const events = collect(client, 'change');
    assert.equal(client.delete('note', 'n1'), false);
    assert.equal(client.delete('note', 'never'), false);
    assert.equal(client.delete('task', 'n1'), false);
    assert.deepEqual(stateSnapshot(client, ['note'], [['note', 'n1']]), before);
    assert.equal(events.length, 0);
  });

  test('of a document created locally and never sent cancels its CREATED', (t) => {
    const client = memoryClient(t);
    client.put('note', 'n1', { a: 1 });
    const events = collect(client, 'change');
    assert.equal(client.delete('note', 'n1'), true);
    assert.equal(events[0].changes[0].outcome, 'cancelled');
    assert.deepEqual(client.queue.pending(), []);
    assert.equal(client.get('note', 'n1'), undefined);
  });

  test('argument errors name the argument', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.delete(null, 'a'), 'INVALID_ARGUMENT', shape('entityType'));
    assertSyncError(() => client.delete('note', 5), 'INVALID_ARGUMENT', /^Expected .+ for entityId but received 5 of type number$/);
    assertSyncError(() => client.delete('note'), 'INVALID_ARGUMENT', /for entityId but received undefined$/);
  });
});

describe('get', () => {
  test('returns undefined for a missing document, with or without meta', (t) => {
    const client = memoryClient(t);
    assert.equal(client.get('note', 'none'), undefined);
    assert.equal(client.get('note', 'none', { meta: true }), undefined);
    assert.deepEqual(client.get('note', 'none', {}), undefined);
  });

  test('meta of a local document: no version, dirty, not deleted, never synced', (t) => {
    const client = memoryClient(t);
    const before = Date.now();
    client.put('note', 'n1', { a: 1 });
    const found = client.get('note', 'n1', { meta: true });
    assert.deepEqual(Object.keys(found).sort(), ['data', 'meta']);
    assert.deepEqual(found.data, { a: 1 });
    assert.deepEqual(Object.keys(found.meta).sort(), ['deleted', 'dirty', 'lastSyncedAt', 'updatedAt', 'version']);
    assert.equal(found.meta.version, null);
    assert.equal(found.meta.dirty, true);
    assert.equal(found.meta.deleted, false);
    assert.equal(found.meta.lastSyncedAt, null);
    assert.ok(Number.isSafeInteger(found.meta.updatedAt) && found.meta.updatedAt >= before);
    assert.deepEqual(client.get('note', 'n1', { meta: false }), { a: 1 });
  });

  test('meta of a pulled document, then of a local change on it, then once that change is acknowledged', async (t) => {
    const client = await withPulled(t, 'p1', { a: 1 }, 3);
    let { meta } = client.get('note', 'p1', { meta: true });
    assert.equal(meta.version, 3);
    assert.equal(meta.dirty, false);
    assert.equal(meta.deleted, false);
    assert.equal(typeof meta.lastSyncedAt, 'number');
    const pulledAt = meta.lastSyncedAt;

    const { changeId } = client.patch('note', 'p1', { a: 2 });
    ({ meta } = client.get('note', 'p1', { meta: true }));
    assert.equal(meta.version, 3, 'a local write keeps the server version');
    assert.equal(meta.dirty, true);
    assert.equal(meta.lastSyncedAt, pulledAt);

    takeBatch(client, 10);
    assert.equal(client.get('note', 'p1', { meta: true }).meta.dirty, true, 'in flight is still dirty');
    client._handle.markSynced(changeId, 4);
    assert.equal(client.get('note', 'p1', { meta: true }).meta.dirty, false);
    assert.deepEqual(client.get('note', 'p1'), { a: 2 });
  });

  test('argument errors name the argument', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.get(1, 'a'), 'INVALID_ARGUMENT', shape('entityType'));
    assertSyncError(() => client.get('note', ''), 'INVALID_ARGUMENT', shape('entityId'));
    assertSyncError(() => client.get('note', 'a', 5), 'INVALID_ARGUMENT', /^Expected an object for options but received 5 of type number$/);
    assertSyncError(() => client.get('note', 'a', { meta: 1 }), 'INVALID_ARGUMENT', /^Expected a boolean for options\.meta but received 1 of type number$/);
    assertSyncError(() => client.get('note', 'a', { metas: true }), 'INVALID_ARGUMENT', /Unknown option "metas"/);
  });
});

describe('list', () => {
  /** Notes 1..6 (5 is deleted) and one task. */
  function seeded(t) {
    const client = memoryClient(t);
    client.put('note', '1', { n: 1, s: 'b', flag: true, m: { a: 2 }, g: 'x' });
    client.put('note', '2', { n: 2, s: 'a', flag: false, m: { a: 1 }, g: 'x' });
    client.put('note', '3', { n: 3, s: 'c', flag: true, g: 'y', z: null });
    client.put('note', '4', { n: 2.5, s: 'a', m: { a: 3 }, g: 'y' });
    client.put('note', '5', { n: 5, s: 'gone' });
    client.delete('note', '5');
    client.put('note', '6', { n: 6, g: 'x' });
    client.put('task', '1', { n: 1, s: 'b' });
    return client;
  }
  const ns = (docs) => docs.map((doc) => doc.n);

  test('returns the live documents of one type, oldest first', (t) => {
    const client = seeded(t);
    assert.deepEqual(ns(client.list('note')), [1, 2, 3, 2.5, 6]);
    assert.deepEqual(client.list('note', {}), client.list('note'));
    assert.deepEqual(client.list('task'), [{ n: 1, s: 'b' }]);
    assert.deepEqual(client.list('nothing'), []);
  });

  test('where: equality with a scalar, a boolean, and a nested path', (t) => {
    const client = seeded(t);
    assert.deepEqual(client.list('note', { where: { n: 2 } }), [{ n: 2, s: 'a', flag: false, m: { a: 1 }, g: 'x' }]);
    assert.deepEqual(ns(client.list('note', { where: { s: 'a' } })), [2, 2.5]);
    assert.deepEqual(ns(client.list('note', { where: { flag: true } })), [1, 3]);
    assert.deepEqual(ns(client.list('note', { where: { flag: false } })), [2]);
    assert.deepEqual(ns(client.list('note', { where: { 'm.a': 3 } })), [2.5]);
    assert.deepEqual(ns(client.list('note', { where: { g: 'x', s: 'b' } })), [1], 'conditions are ANDed');
    assert.deepEqual(ns(client.list('note', { where: { s: 'gone' } })), [], 'tombstones never match');
  });

  test('where: null matches a missing field or a null one; $ne null the others', (t) => {
    const client = seeded(t);
    assert.deepEqual(ns(client.list('note', { where: { z: null } })), [1, 2, 3, 2.5, 6]);
    assert.deepEqual(ns(client.list('note', { where: { flag: null } })), [2.5, 6]);
    assert.deepEqual(ns(client.list('note', { where: { flag: { $eq: null } } })), [2.5, 6]);
    assert.deepEqual(ns(client.list('note', { where: { flag: { $ne: null } } })), [1, 2, 3]);
  });

  test('where: $eq $ne $lt $lte $gt $gte $in', (t) => {
    const client = seeded(t);
    assert.deepEqual(ns(client.list('note', { where: { n: { $eq: 3 } } })), [3]);
    assert.deepEqual(ns(client.list('note', { where: { s: { $ne: 'a' } } })), [1, 3, 6], '$ne includes a missing field');
    assert.deepEqual(ns(client.list('note', { where: { n: { $lt: 2 } } })), [1]);
    assert.deepEqual(ns(client.list('note', { where: { n: { $lte: 2 } } })), [1, 2]);
    assert.deepEqual(ns(client.list('note', { where: { n: { $gt: 2.5 } } })), [3, 6]);
    assert.deepEqual(ns(client.list('note', { where: { n: { $gte: 2.5 } } })), [3, 2.5, 6]);
    assert.deepEqual(ns(client.list('note', { where: { n: { $gt: 1, $lte: 3 } } })), [2, 3, 2.5], 'operators are ANDed');
    assert.deepEqual(ns(client.list('note', { where: { s: { $in: ['a', 'c'] } } })), [2, 3, 2.5]);
    assert.deepEqual(ns(client.list('note', { where: { 'm.a': { $in: [1, 3] } } })), [2, 2.5]);
    assert.deepEqual(ns(client.list('note', { where: { s: { $gte: 'b' } } })), [1, 3], 'strings compare as text');
  });

  test('orderBy: ascending, descending, several keys, the object form; ties keep insertion order', (t) => {
    const client = seeded(t);
    assert.deepEqual(ns(client.list('note', { orderBy: 'n' })), [1, 2, 2.5, 3, 6]);
    assert.deepEqual(ns(client.list('note', { orderBy: '-n' })), [6, 3, 2.5, 2, 1]);
    assert.deepEqual(ns(client.list('note', { orderBy: 's' })), [6, 2, 2.5, 1, 3], 'missing first, then ties in insertion order');
    assert.deepEqual(ns(client.list('note', { orderBy: ['s', '-n'] })), [6, 2.5, 2, 1, 3]);
    assert.deepEqual(ns(client.list('note', { orderBy: [{ field: 'g', direction: 'desc' }, 's'] })), [2.5, 3, 6, 2, 1]);
    assert.deepEqual(ns(client.list('note', { orderBy: [{ field: 'g', direction: 'desc' }, { field: 's', direction: 'asc' }] })), [2.5, 3, 6, 2, 1]);
    assert.deepEqual(ns(client.list('note', { orderBy: [{ field: 'm.a' }] })), [3, 6, 2, 1, 2.5]);
    assert.deepEqual(ns(client.list('note', { where: { 'm.a': { $gt: 1 } }, orderBy: '-m.a' })), [2.5, 1]);
  });

  test('limit and offset page through the ordered result', (t) => {
    const client = seeded(t);
    const all = client.list('note', { orderBy: 'n' });
    assert.deepEqual(ns(client.list('note', { orderBy: 'n', limit: 2 })), [1, 2]);
    assert.deepEqual(ns(client.list('note', { orderBy: 'n', limit: 2, offset: 2 })), [2.5, 3]);
    assert.deepEqual(ns(client.list('note', { orderBy: 'n', limit: 2, offset: 4 })), [6]);
    assert.deepEqual(ns(client.list('note', { orderBy: 'n', offset: 3 })), [3, 6], 'offset without a limit');
    assert.deepEqual(ns(client.list('note', { orderBy: 'n', offset: 99 })), []);
    assert.deepEqual(ns(client.list('note', { where: { g: 'x' }, orderBy: '-n', limit: 10, offset: 1 })), [2, 1]);
    const pages = [];
    for (let offset = 0; offset < all.length; offset += 2) pages.push(...client.list('note', { orderBy: 'n', limit: 2, offset }));
    assert.deepEqual(pages, all);
  });

  test('argument errors name the option', (t) => {
    const client = seeded(t);
    const cases = [
      [5, /^Expected an object for options but received 5 of type number$/],
      [{ wher: {} }, /^Unknown option "wher" in options/],
      [{ where: [] }, /^Expected an object of field conditions for options\.where but received an array of length 0$/],
      [{ where: 'n = 1' }, /^Expected .+ for options\.where but received "n = 1" of type string$/],
      [{ orderBy: 5 }, /^Expected .+ for options\.orderBy but received 5 of type number$/],
      [{ orderBy: 'a b' }, /^Expected .+ for options\.orderBy but received "a b" of type string$/],
      [{ orderBy: ['n', 5] }, /^Expected .+ for options\.orderBy\[1\] but received 5 of type number$/],
      [{ orderBy: [{ field: 'n', direction: 'up' }] }, /^Expected "asc" or "desc" for options\.orderBy\[0\]\.direction but received/],
      [{ orderBy: [{ direction: 'asc' }] }, /^Expected a field path for options\.orderBy\[0\]\.field but received undefined$/],
      [{ orderBy: [{ field: 'n', dir: 'asc' }] }, /Unknown key "dir" in options\.orderBy\[0\]/],
      [{ limit: 0 }, /^Expected a positive integer for options\.limit but received 0 of type number$/],
      [{ limit: 1.5 }, /^Expected a positive integer for options\.limit but received 1\.5 of type number$/],
      [{ limit: '2' }, /^Expected a positive integer for options\.limit but received "2" of type string$/],
      [{ offset: -1 }, /^Expected a non-negative integer for options\.offset but received -1 of type number$/],
      [{ where: { 'a b': 1 } }, /^Expected .+ for the keys of where but received "a b" of type string$/],
      [{ where: { "x') OR 1=1 --": 1 } }, /for the keys of where/],
      [{ where: { n: { $foo: 1 } } }, /^Unknown operator "\$foo" in where\.n/],
      [{ where: { n: { $in: [] } } }, /^Expected a non-empty array for where\.n\.\$in but received an empty array$/],
      [{ where: { n: { $in: 5 } } }, /^Expected .+ for where\.n\.\$in but received/],
      [{ where: { n: { $in: [1, {}] } } }, /^Expected a string, number or boolean for where\.n\.\$in\[1\] but received an object$/],
      [{ where: { n: [1] } }, /^Expected a string, number or boolean for where\.n but received an array$/],
      [{ where: { n: { $gt: null } } }, /^Expected a string, number or boolean for where\.n\.\$gt but received null$/],
    ];
    for (const [options, message] of cases) {
      assertSyncError(() => client.list('note', options), 'INVALID_ARGUMENT', message);
    }
    assertSyncError(() => client.list('bad type'), 'INVALID_ARGUMENT', shape('entityType'));
    assertSyncError(() => client.list('note', { where: { n: { $in: Array(1001).fill(1) } } }), 'LIMIT_EXCEEDED', /1000/);
  });

  test('a non-finite number in where is an argument error, not a null match', (t) => {
    const client = seeded(t);
    // Serialized as JSON these would be null, which matches a missing field.
    assert.deepEqual(ns(client.list('note', { where: { flag: null } })), [2.5, 6]);
    const cases = [
      [{ flag: NaN }, /^Expected a finite number for options\.where\.flag but received NaN/],
      [{ n: { $lt: Infinity } }, /^Expected a finite number for options\.where\.n\.\$lt but received Infinity/],
      [{ n: { $gte: -Infinity } }, /for options\.where\.n\.\$gte but received -Infinity/],
      [{ n: { $in: [1, NaN] } }, /for options\.where\.n\.\$in\.1 but received NaN/],
      [{ 'm.a': { $ne: NaN } }, /for options\.where\.m\.a\.\$ne/],
    ];
    for (const [where, message] of cases) {
      assertSyncError(() => client.list('note', { where }), 'INVALID_ARGUMENT', message);
    }
  });
});

describe('createIndex', () => {
  const explain = (client, query) => client._handle.explainList('note', JSON.stringify(query));
  const queries = [{ where: { n: 3 } }, { where: { n: { $gt: 10, $lt: 20 } } }, { where: { n: { $in: [1, 2] } } }, { orderBy: 'n' }];

  test('list() uses the index afterwards, with the same results', (t) => {
    const client = memoryClient(t);
    client.transaction(() => {
      for (let i = 0; i < 200; i++) client.put('note', `n${i}`, { n: i % 40, title: `t${i}` });
      for (let i = 0; i < 50; i++) client.put('task', `t${i}`, { n: i });
    });
    const before = queries.map((query) => explain(client, query));
    const results = queries.map((query) => client.list('note', query));
    for (const plan of before) assert.doesNotMatch(plan, /USING INDEX dsidx_/);

    client.createIndex('note', 'n');
    const after = queries.map((query) => explain(client, query));
    for (const plan of after) assert.match(plan, /USING INDEX dsidx_/);
    assert.doesNotMatch(after[3], /TEMP B-TREE FOR ORDER BY/, 'orderBy is served by the index');
    assert.deepEqual(
      queries.map((query) => client.list('note', query)),
      results,
    );
    // Only this type: another type's plan is unchanged.
    assert.doesNotMatch(client._handle.explainList('task', JSON.stringify({ where: { n: 3 } })), /USING INDEX dsidx_/);
    // An unindexed field is not searched through the index expression.
    assert.doesNotMatch(explain(client, { where: { title: 't1' } }), /<expr>/);
    assert.deepEqual(client.list('note', { where: { title: 't1' } }), [{ n: 1, title: 't1' }]);
  });

  test('a nested field can be indexed; creating an index twice is harmless; it survives reopen', (t) => {
    const file = path.join(tempDir(t), 'index.db');
    const first = new SyncClient({ path: file });
    first.put('note', 'a', { meta: { author: 'x' } });
    first.createIndex('note', 'meta.author');
    first.createIndex('note', 'meta.author');
    assert.match(explain(first, { where: { 'meta.author': 'x' } }), /USING INDEX dsidx_/);
    first.close();
    const second = openClient(t, { path: file });
    assert.match(explain(second, { where: { 'meta.author': 'x' } }), /USING INDEX dsidx_/);
    assert.deepEqual(second.list('note', { where: { 'meta.author': 'x' } }), [{ meta: { author: 'x' } }]);
  });

  test('argument errors name the argument', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.createIndex('note', 'a b'), 'INVALID_ARGUMENT', /^Expected .+ for field but received "a b" of type string$/);
    assertSyncError(() => client.createIndex('note', 5), 'INVALID_ARGUMENT', /^Expected .+ for field but received 5 of type number$/);
    assertSyncError(() => client.createIndex('note'), 'INVALID_ARGUMENT', /for field but received undefined$/);
    assertSyncError(() => client.createIndex('note', "n') --"), 'INVALID_ARGUMENT', shape('field'));
    assertSyncError(() => client.createIndex('note', 'x'.repeat(129)), 'INVALID_ARGUMENT', shape('field'));
    assertSyncError(() => client.createIndex('bad type', 'n'), 'INVALID_ARGUMENT', shape('entityType'));
  });
});

describe('transaction', () => {
  test('commits every write, returns what fn returns, and passes the client', (t) => {
    const client = memoryClient(t);
    const value = client.transaction((c) => {
      assert.equal(c, client);
      c.put('note', 'a', { n: 1 });
      c.put('note', 'b', { n: 2 });
      c.patch('note', 'a', { n: 3 });
      c.delete('note', 'b');
      return 'done';
    });
    assert.equal(value, 'done');
    assert.deepEqual(client.list('note'), [{ n: 3 }]);
    assert.deepEqual(
      client.queue.pending().map((c) => [c.type, c.entityId, c.data]),
      [['CREATED', 'a', { n: 3 }]],
    );
  });

  test("'change' fires once per outermost transaction, with every change of it in order", (t) => {
    const client = memoryClient(t, { coalesce: false });
    client.put('note', 'x', { n: 0 });
    const events = collect(client, 'change');
    const written = [];
    client.transaction(() => {
      written.push(client.put('note', 'a', { n: 1 }));
      assert.equal(events.length, 0, 'nothing is emitted before the commit');
      client.transaction(() => {
        written.push(client.patch('note', 'a', { n: 2 }));
        written.push(client.put('note', 'b', { n: 1 }));
      });
      assert.equal(events.length, 0, 'a nested commit emits nothing');
      written.push(client.delete('note', 'x') && 'deleted');
    });
    assert.equal(events.length, 1);
    assert.equal(events[0].source, 'local');
    assert.deepEqual(
      events[0].changes.map((c) => [c.type, c.entityId]),
      [
        ['CREATED', 'a'],
        ['UPDATED', 'a'],
        ['CREATED', 'b'],
        ['DELETED', 'x'],
      ],
    );
    assert.deepEqual(
      events[0].changes.slice(0, 3),
      written.slice(0, 3),
    );
    // Each change of the event is the queued one.
    for (const change of events[0].changes) assert.equal(queuedChange(client, change.changeId).type, change.type);
    // A write outside a transaction emits at once.
    client.put('note', 'c', {});
    assert.equal(events.length, 2);
    assert.equal(events[1].changes.length, 1);
  });

  test('a throwing fn rolls back every write, rethrows the same error and emits nothing', (t) => {
    const client = memoryClient(t);
    client.put('note', 'keep', { n: 1 });
    const before = stateSnapshot(client, ['note'], [['note', 'keep'], ['note', 'new']]);
    const events = collect(client, 'change');
    const boom = new Error('boom');
    assert.throws(
      () =>
        client.transaction(() => {
          client.put('note', 'new', { n: 2 });
          client.patch('note', 'keep', { n: 3 });
          client.transaction(() => client.delete('note', 'keep'));
          throw boom;
        }),
      (error) => error === boom,
    );
    assert.deepEqual(stateSnapshot(client, ['note'], [['note', 'keep'], ['note', 'new']]), before);
    assert.equal(events.length, 0);
    // The client is not left inside a transaction.
    client.put('note', 'after', {});
    assert.equal(events.length, 1);
  });

  test('a failing write inside rolls back the earlier ones', (t) => {
    const client = memoryClient(t);
    const before = stateSnapshot(client);
    assertSyncError(
      () =>
        client.transaction(() => {
          client.put('note', 'a', { n: 1 });
          client.patch('note', 'missing', { n: 2 });
        }),
      'NOT_FOUND',
    );
    assert.deepEqual(stateSnapshot(client), before);
  });

  for (const coalesce of [false, true]) {
    test(`a nested transaction that throws and is caught: the outer keeps its writes, the inner's are gone (coalesce: ${coalesce})`, (t) => {
      const client = memoryClient(t, { coalesce });
      client.put('note', 'pre', { n: 0 });
      const events = collect(client, 'change');
      let outerWrites;
      client.transaction(() => {
        outerWrites = [client.put('note', 'a', { n: 1 }), client.patch('note', 'pre', { n: 10 })];
        assert.throws(
          () =>
            client.transaction(() => {
              client.patch('note', 'a', { n: 2, inner: true }); // folds into the outer CREATED when coalescing
              client.put('note', 'b', { n: 3 });
              client.delete('note', 'pre');
              throw new Error('inner');
            }),
          /inner/,
        );
        client.put('note', 'c', { n: 4 });
      });
      assert.deepEqual(client.get('note', 'a'), { n: 1 });
      assert.equal(client.get('note', 'b'), undefined);
      assert.equal(client.get('note', 'b', { meta: true }), undefined, 'no tombstone either');
      assert.deepEqual(client.get('note', 'pre'), { n: 10 });
      assert.deepEqual(client.get('note', 'c'), { n: 4 });

      const pending = client.queue.pending();
      assert.ok(!pending.some((c) => c.entityId === 'b'), 'the inner CREATED is not queued');
      assert.ok(!pending.some((c) => c.type === 'DELETED'), 'the inner DELETED is not queued');
      assert.ok(!pending.some((c) => c.data && c.data.inner), 'the inner patch is not queued');
      const replayed = replayChanges(pending);
      assert.deepEqual(replayed.get('note/a'), { n: 1 });
      assert.deepEqual(replayed.get('note/pre'), { n: 10 });
      assert.deepEqual(replayed.get('note/c'), { n: 4 });

      assert.equal(events.length, 1);
      assert.deepEqual(
        events[0].changes.map((c) => [c.type, c.entityId]),
        [
          ['CREATED', 'a'],
          ['UPDATED', 'pre'],
          ['CREATED', 'c'],
        ],
      );
      assert.deepEqual(events[0].changes.slice(0, 2), outerWrites);
    });
  }

  test('an outer transaction that throws after a nested one committed rolls back both', (t) => {
    const client = memoryClient(t);
    const before = stateSnapshot(client);
    const events = collect(client, 'change');
    assert.throws(() =>
      client.transaction(() => {
        client.transaction(() => client.put('note', 'inner', {}));
        throw new Error('outer');
      }),
    );
    assert.deepEqual(stateSnapshot(client), before);
    assert.equal(events.length, 0);
  });

  test('a promise-returning fn is INVALID_ARGUMENT and rolled back', async (t) => {
    const client = memoryClient(t);
    client.put('note', 'keep', { n: 1 });
    const before = stateSnapshot(client, ['note'], [['note', 'keep'], ['note', 'a']]);
    const events = collect(client, 'change');
    let returned;
    assertSyncError(
      () =>
        client.transaction(async () => {
          client.put('note', 'a', { n: 1 });
          client.patch('note', 'keep', { n: 2 });
        }),
      'INVALID_ARGUMENT',
      /^Expected a synchronous function for fn/,
    );
    assertSyncError(
      () =>
        client.transaction(() => {
          client.put('note', 'a', { n: 1 });
          returned = { then: (resolve) => resolve(1) };
          return returned;
        }),
      'INVALID_ARGUMENT',
      /promise/,
    );
    assert.deepEqual(stateSnapshot(client, ['note'], [['note', 'keep'], ['note', 'a']]), before);
    assert.equal(events.length, 0);
    client.put('note', 'after', {});
    assert.equal(events.length, 1, 'the client is usable afterwards');
  });

  test('fn must be a function', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.transaction(), 'INVALID_ARGUMENT', /^Expected a function for fn but received undefined$/);
    assertSyncError(() => client.transaction('x'), 'INVALID_ARGUMENT', /^Expected a function for fn but received "x" of type string$/);
  });
});

describe('purgeTombstones', () => {
  test('purges only tombstones whose delete is synced and older than the retention', async (t) => {
    const client = await withPulled(t, 'p1', { a: 1 }, 1);
    await client.applyRemote(JSON.stringify([remote(2, 'p2', { data: { a: 2 } })]));
    client.put('note', 'local', { a: 3 });
    client.delete('note', 'p1'); // queued DELETED, not yet synced
    client.delete('note', 'local'); // cancels the CREATED: nothing to send
    // Both tombstones must be older than "now" for a retention of 0.
    clockPast(Math.max(client.get('note', 'p1', { meta: true }).meta.updatedAt, client.get('note', 'local', { meta: true }).meta.updatedAt));

    assert.equal(client.purgeTombstones(0), 1, 'the never-sent local tombstone goes; the unsynced delete stays');
    assert.equal(client.get('note', 'local', { meta: true }), undefined);
    assert.equal(client.get('note', 'p1', { meta: true }).meta.deleted, true);

    const [sent] = takeBatch(client, 10);
    client._handle.markSynced(sent.changeId, 3);
    assert.equal(client.purgeTombstones(10 * 365 * 24 * 3600 * 1000), 0, 'younger than the retention');
    assert.equal(client.purgeTombstones(), 0, 'the default retention (30 days) keeps it');
    assert.equal(client.purgeTombstones(0), 1);
    assert.equal(client.get('note', 'p1', { meta: true }), undefined);
    assert.equal(client.purgeTombstones(0), 0);
    assert.deepEqual(client.get('note', 'p2'), { a: 2 }, 'live documents are never purged');
  });

  test('a tombstone pulled from the server is purged after the retention', async (t) => {
    const client = await withPulled(t, 'p1', { a: 1 }, 1);
    await client.applyRemote(JSON.stringify([remote(2, 'p1', { type: 'DELETED', data: null })]));
    const { meta } = client.get('note', 'p1', { meta: true });
    assert.equal(meta.deleted, true);
    clockPast(meta.updatedAt);
    assert.equal(client.purgeTombstones(0), 1);
    assert.equal(client.get('note', 'p1', { meta: true }), undefined);
  });

  test('retentionMs must be a non-negative integer', (t) => {
    const client = memoryClient(t);
    assertSyncError(() => client.purgeTombstones(-1), 'INVALID_ARGUMENT', /^Expected .+ for retentionMs but received -1 of type number$/);
    assertSyncError(() => client.purgeTombstones('1'), 'INVALID_ARGUMENT', shape('retentionMs'));
    assertSyncError(() => client.purgeTombstones(1.5), 'INVALID_ARGUMENT', shape('retentionMs'));
    assertSyncError(() => client.purgeTombstones(null), 'INVALID_ARGUMENT', shape('retentionMs'));
  });
});

describe('every write queues its change', () => {
  /** A small deterministic generator, so that a failure can be replayed. */
  function* operations(seed, count) {
    let state = seed;
    const next = (n) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % n;
    };
    for (let i = 0; i < count; i++) {
      const id = `e${next(8)}`;
      const kind = ['put', 'put', 'patch', 'delete'][next(4)];
      const fields = { [`f${next(4)}`]: next(100) };
      if (next(3) === 0) fields.shared = i;
      // A patch now and then removes a field (a put never carries null: its nulls are values).
      if (kind === 'patch' && next(3) === 0) fields[`f${next(4)}`] = null;
      yield { kind, id, fields, i };
    }
  }

  test('without coalescing: each write has exactly its queued change', async (t) => {
    const client = memoryClient(t, { coalesce: false });
    await client.applyRemote(JSON.stringify([remote(3, 'e0', { data: { f0: 0 } })]));
    const versions = { e0: 3 };
    const events = collect(client, 'change');
    const model = new Map([['e0', { f0: 0 }]]);
    for (const { kind, id, fields } of operations(7, 200)) {
      const current = model.get(id);
      let result;
      if (kind === 'put') {
        result = client.put('note', id, fields);
        const row = queuedChange(client, result.changeId);
        assert.equal(row.type, current === undefined ? 'CREATED' : 'UPDATED');
        const expected = current === undefined ? fields : { ...Object.fromEntries(Object.keys(current).map((k) => [k, null])), ...fields };
        assert.deepEqual(row.data, expected);
        model.set(id, { ...fields });
      } else if (kind === 'patch') {
        if (current === undefined) {
          assertSyncError(() => client.patch('note', id, fields), 'NOT_FOUND');
          continue;
        }
        result = client.patch('note', id, fields);
        const row = queuedChange(client, result.changeId);
        assert.equal(row.type, 'UPDATED');
        assert.deepEqual(row.data, fields, 'a null travels as null');
        model.set(id, applyDelta(current, fields));
      } else {
        const deleted = client.delete('note', id);
        assert.equal(deleted, current !== undefined);
        if (!deleted) continue;
        result = events[events.length - 1].changes[0];
        const row = queuedChange(client, result.changeId);
        assert.equal(row.type, 'DELETED');
        assert.equal(row.data, null);
        model.set(id, undefined);
      }
      assert.equal(result.outcome, 'queued');
      const row = queuedChange(client, result.changeId);
      assert.equal(row.entityType, 'note');
      assert.equal(row.entityId, id);
      assert.equal(row.baseVersion, versions[id] ?? null);
      assert.deepEqual(events[events.length - 1].changes, [result]);
      assert.deepEqual(client.get('note', id), model.get(id));
    }
  });

  test('with coalescing: after every write, the queue replays to exactly the visible documents', (t) => {
    const client = memoryClient(t);
    const ids = Array.from({ length: 8 }, (_, i) => `e${i}`);
    for (const { kind, id, fields } of operations(11, 300)) {
      if (kind === 'put') client.put('note', id, fields);
      else if (kind === 'patch' && client.get('note', id) !== undefined) client.patch('note', id, fields);
      else if (kind === 'delete') client.delete('note', id);
      const replayed = replayChanges(client.queue.pending());
      for (const each of ids) {
        assert.deepEqual(replayed.get(`note/${each}`), client.get('note', each), `note/${each}`);
      }
    }
  });
});

describe('crash safety of the store', () => {
  /** Runs the store crash child on `file` until it acknowledged `atLeast` operations, then SIGKILLs it. */
  function crashStoreChild(file, atLeast) {
    return new Promise((resolve, reject) => {
      const child = fork(STORE_CRASH_CHILD, ['--deltasync-store-crash-child', file], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      let acked = 0;
      let killed = false;
      child.on('message', (message) => {
        if (message.type !== 'acked') return;
        assert.equal(message.i, acked, 'operations are acknowledged in order');
        acked += 1;
        if (!killed && acked >= atLeast) killed = child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve({ acked, code, signal }));
    });
  }

  test('after SIGKILL: no document without its change, no change without its document, and an intact file', async (t) => {
    const { simulate } = require('./fixtures/store-crash-child');
    const file = path.join(tempDir(t), 'store-crash.db');
    const report = await crashStoreChild(file, 400);
    assert.equal(report.signal, 'SIGKILL', `the child exited on its own (code ${report.code})`);
    assert.ok(report.acked >= 400);

    const client = new SyncClient({ path: file });
    try {
      // Operation i always creates e<i> first, so the committed operations are 0 .. count-1.
      let count = 0;
      while (client.get('item', `e${count}`, { meta: true }) !== undefined) count++;
      assert.ok(count >= report.acked, `an acknowledged operation was lost: ${count} < ${report.acked}`);

      // Each operation was all or nothing: the documents are exactly those after `count` operations.
      const expected = simulate(count);
      for (const [key, doc] of expected) {
        const id = key.slice('item/'.length);
        assert.deepEqual(client.get('item', id), doc, key);
      }
      const live = client.list('item');
      assert.equal(live.length, [...expected.values()].filter((doc) => doc !== undefined).length);

      // The queue: nothing was sent, so replaying it from nothing gives exactly the documents.
      const pending = client.queue.pending();
      assert.equal(client.queue.stats().pending, pending.length);
      const replayed = replayChanges(pending);
      for (const [key, doc] of expected) {
        assert.deepEqual(replayed.get(key), doc, `the queue disagrees with the document ${key}`);
        if (doc !== undefined) assert.ok(replayed.has(key), `a document without its change: ${key}`);
      }
      for (const change of pending) {
        const key = `${change.entityType}/${change.entityId}`;
        assert.ok(expected.has(key), `a change without its document: ${key}`);
        const stored = client.get(change.entityType, change.entityId, { meta: true });
        assert.ok(stored !== undefined, `a change without its document: ${key}`);
        assert.equal(stored.meta.deleted, replayed.get(key) === undefined);
        assert.equal(stored.meta.dirty, true);
      }
    } finally {
      client.close();
    }

    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    } finally {
      db.close();
    }
  });
});
