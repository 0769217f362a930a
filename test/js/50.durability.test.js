'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');

const { SyncClient, tempDir, openClient, created, takeBatch } = require('./helpers');

const CRASH_CHILD = path.join(__dirname, 'fixtures', 'crash-child.js');

/**
 * Runs the crash child on `file`: it queues `before` changes, takes a batch of
 * `batch`, then keeps queueing until it has acknowledged `after` more, when it
 * is killed with SIGKILL. Resolves with what the child reported.
 */
function crashChild(file, { durability = 'normal', before = 40, batch = 15, after = 300 } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(CRASH_CHILD, ['--deltasync-crash-child', file, durability, String(before), String(batch)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const report = { acked: [], taken: [], killed: false };
    child.on('message', (message) => {
      if (message.type === 'taken') {
        report.acked.push(...message.acked);
        report.taken = message.taken;
      } else if (message.type === 'acked') {
        report.acked.push(message.changeId);
        if (!report.killed && report.acked.length >= before + after) {
          report.killed = child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ ...report, code, signal }));
  });
}

async function assertRecovers(t, durability) {
  const file = path.join(tempDir(t), `crash-${durability}.db`);
  const report = await crashChild(file, { durability });
  assert.equal(report.signal, 'SIGKILL', `the child exited on its own (code ${report.code})`);
  assert.equal(report.taken.length, 15);
  assert.ok(report.acked.length >= 340);

  const client = openClient(t, { path: file, durability });
  assert.equal(client._handle.recoveredAtOpen(), 15, 'the rows left syncing are returned to pending');
  const stats = client.queue.stats();
  assert.equal(stats.syncing, 0);
  assert.equal(stats.failed, 0);

  const pending = client.queue.pending();
  const ids = new Set(pending.map((c) => c.changeId));
  assert.equal(ids.size, pending.length);
  for (const id of report.acked) assert.ok(ids.has(id), `an acknowledged enqueue was lost: ${id}`);
  for (const id of report.taken) assert.ok(ids.has(id), `an in-flight change was lost: ${id}`);
  // Order survives: the first changes are the ones queued before the batch, in order.
  assert.deepEqual(
    pending.slice(0, 40).map((c) => c.entityId),
    Array.from({ length: 40 }, (_, i) => `before-${i}`),
  );
  // The recovered changes can be taken again.
  assert.deepEqual(
    takeBatch(client, 15).map((c) => c.changeId),
    report.taken,
  );
  // A second reopen has nothing left to recover (the batch just taken aside).
  client._handle.releaseInFlight();
  client.close();
  const again = openClient(t, { path: file });
  assert.equal(again._handle.recoveredAtOpen(), 0);
  assert.equal(again.queue.stats().pending, pending.length);
}

describe('crash recovery', () => {
  test('a process killed with SIGKILL loses no acknowledged enqueue, and its batch returns to pending', async (t) => {
    await assertRecovers(t, 'normal');
  });

  test("the same with durability: 'full'", async (t) => {
    await assertRecovers(t, 'full');
  });

  test('recoveredAtOpen() is 0 for a fresh or cleanly closed database', (t) => {
    const file = path.join(tempDir(t), 'clean.db');
    const first = new SyncClient({ path: file });
    assert.equal(first._handle.recoveredAtOpen(), 0);
    first.queue.enqueue(created('a'));
    first.close();
    const second = openClient(t, { path: file });
    assert.equal(second._handle.recoveredAtOpen(), 0);
    assert.equal(second.queue.stats().pending, 1);
  });

  test('rows left syncing by a closed client also return to pending at the next open', (t) => {
    const file = path.join(tempDir(t), 'closed-in-flight.db');
    const first = new SyncClient({ path: file });
    first.queue.enqueue(created('a', {}, { changeId: 'a' }));
    first.queue.enqueue(created('b', {}, { changeId: 'b' }));
    first.queue.enqueue(created('c', {}, { changeId: 'c' }));
    takeBatch(first, 2);
    first.close();
    const second = openClient(t, { path: file });
    assert.equal(second._handle.recoveredAtOpen(), 2);
    assert.deepEqual(
      second.queue.pending().map((c) => [c.changeId, c.status, c.retryCount]),
      [
        ['a', 'pending', 0],
        ['b', 'pending', 0],
        ['c', 'pending', 0],
      ],
    );
  });
});

describe('durability option', () => {
  test("'full' is accepted and the queue survives reopen, in either mode", (t) => {
    const file = path.join(tempDir(t), 'full.db');
    const first = new SyncClient({ path: file, durability: 'full' });
    const deviceId = first.deviceId;
    first.queue.enqueue(created('a', { v: 1 }, { changeId: 'a' }));
    first.queue.enqueueMany([created('b', {}, { changeId: 'b' }), created('c', {}, { changeId: 'c' })]);
    first.queue.importLegacy([{ changeId: 'd', type: 'CREATED', entityType: 'note', entityId: 'd', data: {} }]);
    first.close();

    const second = new SyncClient({ path: file, durability: 'full' });
    assert.equal(second.deviceId, deviceId);
    assert.deepEqual(
      second.queue.pending().map((c) => c.changeId),
      ['a', 'b', 'c', 'd'],
    );
    second.queue.discard('b');
    second.close();

    const third = openClient(t, { path: file, durability: 'normal' });
    assert.deepEqual(
      third.queue.pending().map((c) => c.changeId),
      ['a', 'c', 'd'],
    );
    assert.deepEqual(third.queue.pending()[0].data, { v: 1 });
  });

  test("the default ('normal') survives reopen too", (t) => {
    const file = path.join(tempDir(t), 'normal.db');
    const first = new SyncClient({ path: file });
    first.queue.enqueue(created('a', {}, { changeId: 'a' }));
    first.close();
    const second = openClient(t, { path: file });
    assert.deepEqual(
      second.queue.pending().map((c) => c.changeId),
      ['a'],
    );
  });
});
