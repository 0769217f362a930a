'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');

const { memoryClient, assertSyncError, remote, collect, takeBatch, applyDelta } = require('./helpers');

// Every scenario: note "a" pulled at version 1 as SERVER, then a local write, then
// a pulled change of "a" (version 2) from another device, timed relative to the
// local change's own timestamp, so that no test depends on the wall clock.
const SERVER = { title: 'server', body: 'b0', tag: 't0' };

/** A client with strategy `conflicts` and note "a" pulled at version 1. */
async function pulledClient(t, conflicts, data = SERVER) {
  const client = memoryClient(t, { conflicts });
  await client.applyRemote(JSON.stringify([remote(1, 'a', { data, timestamp: 1 })]));
  return client;
}

/** The timestamp of the newest queued change of note "a", plus `offset` ms. */
function relativeToLocal(client, offset) {
  const local = client.queue.pending({ entityType: 'note' }).filter((c) => c.entityId === 'a');
  assert.ok(local.length > 0, 'a local change is queued');
  return Math.max(...local.map((c) => c.timestamp)) + offset;
}

/** Applies a pulled change of note "a" and returns the result and the conflicts emitted. */
async function pull(client, change) {
  const events = collect(client, 'conflict');
  const result = await client.applyRemote(JSON.stringify([change]));
  assert.deepEqual(events, result.conflicts, "'conflict' events match the result");
  return result;
}

/** A pulled UPDATED (version 2) of note "a", `offset` ms from the newest local change of it. */
const updateOf = (client, data, offset) => remote(2, 'a', { type: 'UPDATED', data, timestamp: relativeToLocal(client, offset) });
/** A pulled DELETED (version 2) of note "a", `offset` ms from the newest local change of it. */
const deleteOf = (client, offset) => remote(2, 'a', { type: 'DELETED', data: null, timestamp: relativeToLocal(client, offset) });

const queued = (client) => client.queue.pending().map((c) => ({ type: c.type, data: c.data, baseVersion: c.baseVersion }));
// When the local side wins (client_wins, newest_wins with a newer local change, merge), the
// never-sent local changes are rebased: their baseVersion becomes the version they won against
// (2 here), since the local state now stands on top of it. manual does not rebase.
const OFFSETS = { newer: 1000, older: -1000, tie: 0 };

describe("newest_wins (the default)", () => {
  test('a newer remote change wins: the local change is dropped and the document is the server one', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    const result = await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, OFFSETS.newer));
    assert.deepEqual(result.conflicts, [
      { entityType: 'note', entityId: 'a', changeId: 'r2', version: 2, strategy: 'newest_wins', winner: 'remote' },
    ]);
    assert.equal(result.applied, 1);
    assert.deepEqual(client.get('note', 'a'), { title: 'remote', body: 'b0', tag: 't2' });
    assert.deepEqual(queued(client), []);
    const { meta } = client.get('note', 'a', { meta: true });
    assert.equal(meta.dirty, false);
    assert.equal(meta.version, 2);
  });

  test('an older remote change loses: the local state stays on top of the new server state, and stays queued', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    const result = await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, OFFSETS.older));
    assert.equal(result.conflicts.length, 1);
    assert.equal(result.conflicts[0].winner, 'local');
    assert.deepEqual(client.get('note', 'a'), { title: 'local', body: 'b-local', tag: 't2' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 2 }]);
    const { meta } = client.get('note', 'a', { meta: true });
    assert.equal(meta.dirty, true);
    assert.equal(meta.version, 2);
  });

  test('a tie goes to the remote change', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local' });
    const result = await pull(client, updateOf(client, { title: 'remote' }, OFFSETS.tie));
    assert.equal(result.conflicts[0].winner, 'remote');
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, title: 'remote' });
    assert.deepEqual(queued(client), []);
  });

  test('the newest of several local changes is what the remote change is compared with', async (t) => {
    const client = memoryClient(t, { coalesce: false });
    await client.applyRemote(JSON.stringify([remote(1, 'a', { data: SERVER, timestamp: 1 })]));
    client.patch('note', 'a', { title: 'one' });
    const [first] = client.queue.pending();
    while (Date.now() <= first.timestamp) {
      // spin until the clock moves on, so that the second change is strictly newer
    }
    client.patch('note', 'a', { body: 'two' });
    const newest = relativeToLocal(client, 0);
    assert.ok(newest > first.timestamp);
    // As new as the first local change (a tie would go to the remote), but older than the newest.
    const result = await pull(client, remote(2, 'a', { type: 'UPDATED', data: { title: 'r', tag: 'r' }, timestamp: first.timestamp }));
    assert.equal(result.conflicts[0].winner, 'local');
    assert.deepEqual(client.get('note', 'a'), { title: 'one', body: 'two', tag: 'r' });
    assert.equal(client.queue.pending().length, 2);
  });

  test('a local delete against a newer remote update: the document comes back as the server has it', async (t) => {
    const client = await pulledClient(t, undefined);
    client.delete('note', 'a');
    const result = await pull(client, updateOf(client, { tag: 't2' }, OFFSETS.newer));
    assert.equal(result.conflicts[0].winner, 'remote');
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, tag: 't2' });
    assert.deepEqual(queued(client), []);
  });

  test('a local delete against an older remote update: the document stays deleted and the delete queued', async (t) => {
    const client = await pulledClient(t, undefined);
    client.delete('note', 'a');
    const result = await pull(client, updateOf(client, { tag: 't2' }, OFFSETS.older));
    assert.equal(result.conflicts[0].winner, 'local');
    assert.equal(client.get('note', 'a'), undefined);
    assert.deepEqual(queued(client), [{ type: 'DELETED', data: null, baseVersion: 2 }]);
  });

  test('a newer remote delete wins over a local update', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local' });
    const result = await pull(client, deleteOf(client, OFFSETS.newer));
    assert.equal(result.conflicts[0].winner, 'remote');
    assert.equal(client.get('note', 'a'), undefined);
    assert.equal(client.get('note', 'a', { meta: true }).meta.deleted, true);
    assert.deepEqual(queued(client), []);
  });

  test('a local update that wins over an older remote delete keeps the whole local document', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local' });
    const result = await pull(client, deleteOf(client, OFFSETS.older));
    assert.equal(result.conflicts[0].winner, 'local');
    // Replayed on the state before the delete, not on nothing: every field stays.
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, title: 'local' });
    const { meta } = client.get('note', 'a', { meta: true });
    assert.equal(meta.deleted, false);
    assert.equal(meta.dirty, true);
    assert.equal(meta.version, 2);
    // The queued change is the local delta, rebased on the delete it outlived.
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local' }, baseVersion: 2 }]);
  });

  test('a newer remote delete wins over a local update already in flight: the document stays deleted', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'in flight' });
    const newerDelete = deleteOf(client, OFFSETS.newer);
    const [sent] = takeBatch(client, 10);
    const result = await pull(client, newerDelete);
    assert.equal(result.conflicts[0].winner, 'remote');
    // The in-flight UPDATED still sits on top, but fields set on a deleted document do not make one.
    assert.equal(client.get('note', 'a'), undefined);
    const { data, meta } = client.get('note', 'a', { meta: true });
    assert.equal(data, null);
    assert.equal(meta.deleted, true);
    assert.equal(meta.dirty, true, 'the in-flight change is not acknowledged yet');
    assert.deepEqual(client.list('note'), []);
    const all = client.queue.export().changes.map((c) => [c.changeId, c.status, c.baseVersion]);
    assert.deepEqual(all, [[sent.changeId, 'syncing', 1]], 'a sent change is never rebased');
    // Once acknowledged, the entity is still deleted.
    client._handle.markSynced(sent.changeId, 3);
    assert.equal(client.get('note', 'a'), undefined);
    assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, false);
  });

  test('only never-sent changes are rebased: an in-flight one keeps the base it was sent with', async (t) => {
    const client = memoryClient(t, { conflicts: 'client_wins', coalesce: false });
    await client.applyRemote(JSON.stringify([remote(1, 'a', { data: SERVER, timestamp: 1 })]));
    client.patch('note', 'a', { title: 'in flight' });
    takeBatch(client, 10);
    client.patch('note', 'a', { body: 'one' });
    client.patch('note', 'a', { tag: 'two' });
    await pull(client, updateOf(client, { title: 'remote', extra: 'r' }, OFFSETS.newer));
    assert.deepEqual(client.get('note', 'a'), { title: 'in flight', body: 'one', tag: 'two', extra: 'r' });
    assert.deepEqual(
      client.queue.export().changes.map((c) => [c.status, c.data, c.baseVersion]),
      [
        ['syncing', { title: 'in flight' }, 1],
        ['pending', { body: 'one' }, 2],
        ['pending', { tag: 'two' }, 2],
      ],
    );
  });

  test('a remote UPDATED that removes a field lands under a winning local change: the field is gone', async (t) => {
    const client = await pulledClient(t, undefined);
    client.patch('note', 'a', { title: 'local' });
    const result = await pull(client, updateOf(client, { body: null, tag: 't2' }, OFFSETS.older));
    assert.equal(result.conflicts[0].winner, 'local');
    assert.deepEqual(client.get('note', 'a'), { title: 'local', tag: 't2' });
    // A local null replayed on the pulled state removes the field too.
    client.patch('note', 'a', { tag: null });
    await pull(client, remote(3, 'a', { type: 'UPDATED', data: { tag: 't3', more: 1 }, timestamp: 1 }));
    assert.deepEqual(client.get('note', 'a'), { title: 'local', more: 1 });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', tag: null }, baseVersion: 3 }]);
  });
});

describe('server_wins and client_wins', () => {
  for (const [when, offset] of Object.entries(OFFSETS)) {
    test(`server_wins: the remote change wins when it is ${when}`, async (t) => {
      const client = await pulledClient(t, 'server_wins');
      client.patch('note', 'a', { title: 'local', body: 'b-local' });
      const result = await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, offset));
      assert.deepEqual(result.conflicts, [
        { entityType: 'note', entityId: 'a', changeId: 'r2', version: 2, strategy: 'server_wins', winner: 'remote' },
      ]);
      assert.deepEqual(client.get('note', 'a'), { title: 'remote', body: 'b0', tag: 't2' });
      assert.deepEqual(queued(client), []);
      assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, false);
    });

    test(`client_wins: the local change wins when the remote one is ${when}`, async (t) => {
      const client = await pulledClient(t, 'client_wins');
      client.patch('note', 'a', { title: 'local', body: 'b-local' });
      const result = await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, offset));
      assert.deepEqual(result.conflicts, [
        { entityType: 'note', entityId: 'a', changeId: 'r2', version: 2, strategy: 'client_wins', winner: 'local' },
      ]);
      // The local fields win; the remote change still lands underneath.
      assert.deepEqual(client.get('note', 'a'), { title: 'local', body: 'b-local', tag: 't2' });
      assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 2 }]);
      const { meta } = client.get('note', 'a', { meta: true });
      assert.equal(meta.dirty, true);
      assert.equal(meta.version, 2);
    });
  }

  test('server_wins never discards a change already in flight: it stays on top until acknowledged', async (t) => {
    const client = await pulledClient(t, 'server_wins');
    client.patch('note', 'a', { title: 'in flight' });
    const [sent] = takeBatch(client, 10);
    client.patch('note', 'a', { body: 'pending' });
    const result = await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, OFFSETS.newer));
    assert.equal(result.conflicts[0].winner, 'remote');
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, title: 'in flight', tag: 't2' });
    const all = client.queue.export().changes.map((c) => [c.changeId, c.status, c.data]);
    assert.deepEqual(all, [[sent.changeId, 'syncing', { title: 'in flight' }]], 'the unsent change is dropped, the sent one kept');
    assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, true);
  });

  test('client_wins against a remote delete keeps the local document as it was', async (t) => {
    const client = await pulledClient(t, 'client_wins');
    client.put('note', 'a', { title: 'whole local' });
    const result = await pull(client, deleteOf(client, OFFSETS.newer));
    assert.equal(result.conflicts[0].winner, 'local');
    assert.deepEqual(client.get('note', 'a'), { title: 'whole local' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'whole local', body: null, tag: null }, baseVersion: 2 }]);
  });

  test('a field dropped by a local put does not come back (as null or at all) when a remote change lands underneath', async (t) => {
    const client = await pulledClient(t, 'client_wins');
    client.put('note', 'a', { title: 'whole local' });
    assert.deepEqual(client.get('note', 'a'), { title: 'whole local' });
    await pull(client, updateOf(client, { tag: 't2', extra: 'r' }, OFFSETS.older));
    // The local put dropped body and tag; the remote change set tag underneath it, and the
    // put's null for tag still wins over it. A field the put never saw stays.
    assert.deepEqual(client.get('note', 'a'), { title: 'whole local', extra: 'r' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'whole local', body: null, tag: null }, baseVersion: 2 }]);
  });
});

describe('merge', () => {
  test('disjoint fields: both sides are visible; the queued change keeps the local fields', async (t) => {
    const client = await pulledClient(t, 'merge');
    client.patch('note', 'a', { body: 'b-local' });
    const result = await pull(client, updateOf(client, { tag: 't2' }, OFFSETS.newer));
    assert.deepEqual(result.conflicts, [
      { entityType: 'note', entityId: 'a', changeId: 'r2', version: 2, strategy: 'merge', winner: 'merged' },
    ]);
    assert.deepEqual(client.get('note', 'a'), { title: 'server', body: 'b-local', tag: 't2' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { body: 'b-local' }, baseVersion: 2 }]);
  });

  test('an overlapping field goes to a newer remote change, and the queued change loses it', async (t) => {
    const client = await pulledClient(t, 'merge');
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, OFFSETS.newer));
    assert.deepEqual(client.get('note', 'a'), { title: 'remote', body: 'b-local', tag: 't2' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { body: 'b-local' }, baseVersion: 2 }]);
  });

  test('an overlapping field stays local against an older remote change', async (t) => {
    const client = await pulledClient(t, 'merge');
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    await pull(client, updateOf(client, { title: 'remote', tag: 't2' }, OFFSETS.older));
    assert.deepEqual(client.get('note', 'a'), { title: 'local', body: 'b-local', tag: 't2' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 2 }]);
  });

  test('a tie on an overlapping field goes to the remote change', async (t) => {
    const client = await pulledClient(t, 'merge');
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    await pull(client, updateOf(client, { title: 'remote' }, OFFSETS.tie));
    assert.deepEqual(client.get('note', 'a'), { title: 'remote', body: 'b-local', tag: 't0' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { body: 'b-local' }, baseVersion: 2 }]);
  });

  test('a local change whose every field is overridden is dropped from the queue', async (t) => {
    const client = await pulledClient(t, 'merge');
    client.patch('note', 'a', { title: 'local' });
    await pull(client, updateOf(client, { title: 'remote' }, OFFSETS.newer));
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, title: 'remote' });
    assert.deepEqual(queued(client), []);
    assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, false);
  });

  test('deletes have no fields to merge: newest wins', async (t) => {
    const newer = await pulledClient(t, 'merge');
    newer.patch('note', 'a', { title: 'local' });
    const won = await pull(newer, deleteOf(newer, OFFSETS.newer));
    assert.equal(won.conflicts[0].strategy, 'merge');
    assert.equal(won.conflicts[0].winner, 'remote');
    assert.equal(newer.get('note', 'a'), undefined);
    assert.deepEqual(queued(newer), []);

    const older = await pulledClient(t, 'merge');
    older.delete('note', 'a');
    const lost = await pull(older, updateOf(older, { tag: 't2' }, OFFSETS.older));
    assert.equal(lost.conflicts[0].winner, 'local');
    assert.equal(older.get('note', 'a'), undefined);
    assert.deepEqual(queued(older), [{ type: 'DELETED', data: null, baseVersion: 2 }]);
  });

  for (const [when, offset, shared] of [
    ['the remote change is newer', OFFSETS.newer, 'remote'],
    ['the local change is newer', OFFSETS.older, 'local'],
  ]) {
    test(`an entity created on both sides shows the two documents merged (${when})`, async (t) => {
      const client = memoryClient(t, { conflicts: 'merge' });
      client.put('note', 'a', { mine: 1, shared: 'local' });
      const pulled = remote(1, 'a', { data: { theirs: 2, shared: 'remote' }, timestamp: relativeToLocal(client, offset) });
      const result = await pull(client, pulled);
      assert.equal(result.conflicts[0].winner, 'merged');
      // The local CREATED sets its remaining fields on the remote state: remote-only fields stay.
      assert.deepEqual(client.get('note', 'a'), { mine: 1, theirs: 2, shared });
      const pending = client.queue.pending();
      assert.equal(pending.length, 1);
      assert.deepEqual(pending[0].data, shared === 'local' ? { mine: 1, shared: 'local' } : { mine: 1 });
      assert.equal(pending[0].baseVersion, 1);
    });
  }

  test(
    "an entity created on both sides: what is queued turns the server's document into the merged one",
    async (t) => {
      for (const offset of [OFFSETS.newer, OFFSETS.older]) {
        const client = memoryClient(t, { conflicts: 'merge' });
        client.put('note', 'a', { mine: 1, shared: 'local' });
        const pulled = { theirs: 2, shared: 'remote' };
        await pull(client, remote(1, 'a', { data: pulled, timestamp: relativeToLocal(client, offset) }));
        // The server holds `pulled` at version 1: a CREATED replaces it, an UPDATED sets fields on it.
        const onServer = client.queue
          .pending()
          .reduce((doc, change) => (change.type === 'CREATED' ? change.data : applyDelta(doc, change.data)), pulled);
        assert.deepEqual(onServer, client.get('note', 'a'), `offset ${offset}`);
      }
    },
  );
});

describe('manual', () => {
  async function manualConflict(t) {
    const client = await pulledClient(t, 'manual');
    client.patch('note', 'a', { title: 'local', body: 'b-local' });
    const result = await pull(client, remote(2, 'a', { type: 'UPDATED', data: { title: 'remote', tag: 't2' }, timestamp: 5000 }));
    return { client, result };
  }

  test('the conflict is kept open: listed with both sides, the local state stays visible and queued', async (t) => {
    const { client, result } = await manualConflict(t);
    assert.equal(result.conflicts.length, 1);
    const [reported] = result.conflicts;
    assert.equal(reported.strategy, 'manual');
    assert.equal(reported.winner, 'manual');
    assert.ok(Number.isSafeInteger(reported.conflictId) && reported.conflictId > 0);

    const open = client.conflicts();
    assert.equal(open.length, 1);
    const [conflict] = open;
    assert.equal(conflict.id, reported.conflictId);
    assert.equal(conflict.entityType, 'note');
    assert.equal(conflict.entityId, 'a');
    assert.deepEqual(conflict.local, { title: 'local', body: 'b-local', tag: 't2' });
    assert.deepEqual(conflict.remote, { title: 'remote', body: 'b0', tag: 't2' });
    assert.equal(conflict.remoteVersion, 2);
    assert.equal(conflict.remoteChangeId, 'r2');
    assert.equal(conflict.remoteTimestamp, 5000);
    assert.equal(typeof conflict.createdAt, 'number');

    assert.deepEqual(client.get('note', 'a'), { title: 'local', body: 'b-local', tag: 't2' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 1 }]);
    assert.equal(client.serverVersion, 2);
  });

  test('a later remote change of the same entity updates the open conflict instead of opening another', async (t) => {
    const { client, result } = await manualConflict(t);
    const again = await pull(client, remote(3, 'a', { type: 'UPDATED', data: { tag: 't3' }, timestamp: 6000 }));
    assert.equal(again.conflicts[0].conflictId, result.conflicts[0].conflictId);
    const open = client.conflicts();
    assert.equal(open.length, 1);
    assert.deepEqual(open[0].remote, { title: 'remote', body: 'b0', tag: 't3' });
    assert.deepEqual(open[0].local, { title: 'local', body: 'b-local', tag: 't3' });
    assert.equal(open[0].remoteVersion, 3);
    assert.equal(open[0].remoteChangeId, 'r3');
    const notRebased = [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 1 }];
    assert.deepEqual(queued(client), notRebased, 'manual does not rebase');
  });

  test("resolve with 'local': the local state stays and is queued in full against the remote version", async (t) => {
    const { client, result } = await manualConflict(t);
    const visible = client.resolveConflict(result.conflicts[0].conflictId, { use: 'local' });
    assert.deepEqual(visible, { title: 'local', body: 'b-local', tag: 't2' });
    assert.deepEqual(client.get('note', 'a'), visible);
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local', tag: 't2' }, baseVersion: 2 }]);
    assert.deepEqual(client.conflicts(), []);
    assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, true);
  });

  test("resolve with 'remote': the server state becomes visible and the local change is dropped", async (t) => {
    const { client, result } = await manualConflict(t);
    const visible = client.resolveConflict(result.conflicts[0].conflictId, { use: 'remote' });
    assert.deepEqual(visible, { title: 'remote', body: 'b0', tag: 't2' });
    assert.deepEqual(client.get('note', 'a'), visible);
    assert.deepEqual(queued(client), []);
    assert.deepEqual(client.conflicts(), []);
    assert.equal(client.get('note', 'a', { meta: true }).meta.dirty, false);
  });

  test("resolve with 'merged': the given data becomes visible and the difference to the remote is queued", async (t) => {
    const { client, result } = await manualConflict(t);
    const visible = client.resolveConflict(result.conflicts[0].conflictId, { use: 'merged', data: { title: 'merged', body: 'b-local' } });
    assert.deepEqual(visible, { title: 'merged', body: 'b-local' });
    assert.deepEqual(client.get('note', 'a'), visible);
    // Every field, and null for the remote field the merged document dropped.
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'merged', body: 'b-local', tag: null }, baseVersion: 2 }]);
    assert.deepEqual(client.conflicts(), []);
  });

  test("a resolution emits 'change' with the entity, once, and nothing when it fails", async (t) => {
    const { client, result } = await manualConflict(t);
    const events = [];
    client.on('change', (event) => events.push(event));
    const id = result.conflicts[0].conflictId;
    client.resolveConflict(id, { use: 'local' });
    assert.deepEqual(events, [{ source: 'resolution', conflictId: id, entityType: 'note', entityId: 'a' }]);
    assertSyncError(() => client.resolveConflict(id, { use: 'local' }), 'NOT_FOUND');
    assert.equal(events.length, 1);
  });

  test('resolving twice, or an unknown id, is NOT_FOUND and changes nothing', async (t) => {
    const { client, result } = await manualConflict(t);
    const id = result.conflicts[0].conflictId;
    client.resolveConflict(id, { use: 'remote' });
    const doc = client.get('note', 'a');
    assertSyncError(() => client.resolveConflict(id, { use: 'local' }), 'NOT_FOUND', new RegExp(`\\b${id}\\b`));
    assertSyncError(() => client.resolveConflict(id + 100, { use: 'remote' }), 'NOT_FOUND');
    assert.deepEqual(client.get('note', 'a'), doc);
    assert.deepEqual(queued(client), []);
  });

  test('bad arguments are INVALID_ARGUMENT, name the argument, and leave the conflict open', async (t) => {
    const { client, result } = await manualConflict(t);
    const id = result.conflicts[0].conflictId;
    const cases = [
      [[0, { use: 'local' }], /^Expected a positive integer for conflictId but received 0 of type number$/],
      [[String(id), { use: 'local' }], /^Expected a positive integer for conflictId but received "\d+" of type string$/],
      [[1.5, { use: 'local' }], /for conflictId but received 1\.5 of type number$/],
      [[id], /^Expected an object for resolution but received undefined$/],
      [[id, null], /^Expected an object for resolution but received null$/],
      [[id, 'local'], /^Expected an object for resolution but received "local" of type string$/],
      [[id, {}], /^Expected "local", "remote" or "merged" for resolution\.use but received undefined$/],
      [[id, { use: 'mine' }], /^Expected "local", "remote" or "merged" for resolution\.use but received "mine" of type string$/],
      [[id, { use: 'merged' }], /^Expected a plain object for resolution\.data but received undefined$/],
      [[id, { use: 'merged', data: [1] }], /^Expected a plain object for resolution\.data but received an array of length 1$/],
      [[id, { use: 'local', data: {} }], /for resolution\.data but received an object of type Object$/],
      [[id, { use: 'local', extra: 1 }], /^Unknown option "extra" in resolution/],
    ];
    for (const [args, message] of cases) {
      assertSyncError(() => client.resolveConflict(...args), 'INVALID_ARGUMENT', message);
    }
    assert.equal(client.conflicts().length, 1);
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', body: 'b-local' }, baseVersion: 1 }]);
  });

  test('a conflict with a remote delete shows the whole local document', async (t) => {
    const client = await pulledClient(t, 'manual');
    client.patch('note', 'a', { title: 'local' });
    await pull(client, remote(2, 'a', { type: 'DELETED', data: null, timestamp: 5000 }));
    const [conflict] = client.conflicts();
    assert.equal(conflict.remote, null);
    assert.deepEqual(conflict.local, { ...SERVER, title: 'local' });
    assert.deepEqual(client.get('note', 'a'), { ...SERVER, title: 'local' });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local' }, baseVersion: 1 }], 'manual does not rebase');
  });
});

describe('own changes coming back are not conflicts', () => {
  for (const conflicts of ['newest_wins', 'server_wins', 'client_wins', 'merge', 'manual']) {
    test(`${conflicts}: the echo of an in-flight change, with a newer local change on top`, async (t) => {
      const client = memoryClient(t, { conflicts });
      const first = client.put('note', 'a', { title: 'mine', n: 1 });
      takeBatch(client, 10);
      const second = client.patch('note', 'a', { n: 2 });
      const events = collect(client, 'conflict');
      const result = await client.applyRemote(
        JSON.stringify([
          remote(7, 'a', { changeId: first.changeId, data: { title: 'mine', n: 1 }, timestamp: Date.now() + 60000, deviceId: client.deviceId }),
        ]),
      );
      assert.deepEqual(result.conflicts, []);
      assert.deepEqual(events, []);
      assert.deepEqual(client.conflicts(), []);
      assert.deepEqual(client.get('note', 'a'), { title: 'mine', n: 2 }, 'the newer local change stays on top');
      const changes = client.queue.export().changes.map((c) => [c.changeId, c.status]);
      assert.deepEqual(changes, [
        [first.changeId, 'syncing'],
        [second.changeId, 'pending'],
      ]);
      const { meta } = client.get('note', 'a', { meta: true });
      assert.equal(meta.version, 7);
      assert.equal(meta.dirty, true);
    });
  }

  test('a change from another device with a different changeId is a conflict (control)', async (t) => {
    const client = memoryClient(t, { conflicts: 'manual' });
    client.put('note', 'a', { title: 'mine' });
    takeBatch(client, 10);
    const result = await client.applyRemote(JSON.stringify([remote(7, 'a', { changeId: 'someone-else', data: { title: 'theirs' } })]));
    assert.equal(result.conflicts.length, 1);
  });

  test('an entity without local changes takes the pulled change without a conflict', async (t) => {
    for (const conflicts of ['newest_wins', 'client_wins', 'manual']) {
      const client = await pulledClient(t, conflicts);
      const result = await client.applyRemote(JSON.stringify([remote(2, 'a', { type: 'UPDATED', data: { tag: 't2' } })]));
      assert.deepEqual(result.conflicts, []);
      assert.deepEqual(client.get('note', 'a'), { ...SERVER, tag: 't2' });
    }
  });
});
