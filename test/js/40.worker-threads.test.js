'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const { once } = require('node:events');

const { SyncClient, UUID_V4, tempDir, openClient, sideFilesGone, waitForExit } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'queue-worker.js');
const TERMINATE_CHILD = path.join(__dirname, 'fixtures', 'terminate-child.js');

/** Starts a queue worker; resolves with its 'done' message and exit code. */
function runWorker(options) {
  const worker = new Worker(WORKER, { workerData: { kind: 'deltasync-queue-worker', close: true, ...options } });
  const done = new Promise((resolve) => {
    worker.on('message', (message) => {
      if (message.type === 'done') resolve(message);
    });
  });
  return Promise.all([done, waitForExit(worker)]).then(([message, exitCode]) => ({ ...message, exitCode }));
}

function makeBarrier(parties) {
  return { buffer: new SharedArrayBuffer(4), parties };
}

describe('worker_threads', () => {
  test('four workers, each with its own client and file, enqueue concurrently', async (t) => {
    const dir = tempDir(t);
    const count = 250;
    const barrier = makeBarrier(4);
    const names = ['w0', 'w1', 'w2', 'w3'];
    const results = await Promise.all(
      names.map((prefix) => runWorker({ file: path.join(dir, `${prefix}.db`), prefix, count, barrier })),
    );
    const deviceIds = new Set();
    for (const [i, result] of results.entries()) {
      assert.equal(result.exitCode, 0);
      assert.deepEqual(result.errors, []);
      assert.equal(result.changeIds.length, count);
      assert.match(result.deviceId, UUID_V4);
      deviceIds.add(result.deviceId);

      const client = openClient(t, { path: path.join(dir, `${names[i]}.db`) });
      assert.equal(client.deviceId, result.deviceId);
      const pending = client.queue.pending();
      assert.equal(pending.length, count);
      assert.deepEqual(
        pending.map((c) => c.changeId),
        result.changeIds,
        'every change, in the order it was queued',
      );
      for (const change of pending) assert.equal(change.data.worker, names[i]);
    }
    assert.equal(deviceIds.size, 4);
  });

  test('two clients on one file in two workers enqueue 500 changes each: all 1000 present, no BUSY', async (t) => {
    const file = path.join(tempDir(t), 'shared.db');
    // Create the file first, so that this test is about concurrent writes (concurrent creation has its own test below).
    const creator = new SyncClient({ path: file });
    const deviceId = creator.deviceId;
    creator.close();

    const barrier = makeBarrier(2);
    const [a, b] = await Promise.all([
      runWorker({ file, prefix: 'a', count: 500, barrier }),
      runWorker({ file, prefix: 'b', count: 500, barrier }),
    ]);
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    assert.equal(a.exitCode, 0);
    assert.equal(b.exitCode, 0);
    assert.equal(a.deviceId, deviceId);
    assert.equal(b.deviceId, deviceId);

    const client = openClient(t, { path: file });
    const pending = client.queue.pending();
    assert.equal(pending.length, 1000);
    assert.equal(client.queue.stats().pending, 1000);
    const ids = new Set(pending.map((c) => c.changeId));
    assert.equal(ids.size, 1000);
    for (const id of [...a.changeIds, ...b.changeIds]) assert.ok(ids.has(id), `missing ${id}`);
    // Each worker's own changes stay in its order.
    for (const prefix of ['a', 'b']) {
      const mine = pending.filter((c) => c.data.worker === prefix).map((c) => c.data.i);
      assert.deepEqual(mine, Array.from({ length: 500 }, (_, i) => i));
    }
  });

  test(
    'two workers creating the same new file at the same moment both succeed',
    async (t) => {
      const dir = tempDir(t);
      const failures = [];
      for (let round = 0; round < 40; round++) {
        const file = path.join(dir, `fresh-${round}.db`);
        const barrier = makeBarrier(2);
        const results = await Promise.all([
          runWorker({ file, prefix: 'a', count: 1, barrier }),
          runWorker({ file, prefix: 'b', count: 1, barrier }),
        ]);
        for (const result of results) failures.push(...result.errors);
      }
      assert.deepEqual(failures, []);
    },
  );

  test('a worker that ends without close() does not crash the process, and its file is released', async (t) => {
    const file = path.join(tempDir(t), 'unclosed.db');
    const result = await runWorker({ file, prefix: 'u', count: 20, close: false });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.errors, []);
    // The addon closed the connection when the worker's environment went away.
    assert.equal(sideFilesGone(file), true);
    const client = openClient(t, { path: file, busyTimeoutMs: 0 });
    assert.deepEqual(
      client.queue.pending().map((c) => c.changeId),
      result.changeIds,
    );
    assert.equal(client.queue.enqueue({ type: 'DELETED', entityType: 'item', entityId: 'u-0' }).outcome, 'cancelled');
  });

  test(
    'workers terminated while enqueueing do not crash the process, and release their files',
    async (t) => {
      const dir = tempDir(t);
      const child = spawn(process.execPath, [TERMINATE_CHILD, '--deltasync-terminate-child', dir, '25'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const [code, signal] = await once(child, 'exit');
      assert.equal(signal, null, output);
      assert.equal(code, 0, output);
      assert.match(output, /terminate-child: ok/);
    },
  );

  test('the main thread keeps using its own client while workers open and close theirs', async (t) => {
    const dir = tempDir(t);
    const main = openClient(t, { path: path.join(dir, 'main.db') });
    main.queue.enqueue({ type: 'CREATED', entityType: 'item', entityId: 'm-0', data: {} });
    await Promise.all([
      runWorker({ file: path.join(dir, 'x.db'), prefix: 'x', count: 5, close: false }),
      runWorker({ file: path.join(dir, 'y.db'), prefix: 'y', count: 5 }),
    ]);
    assert.equal(main.isOpen, true);
    main.queue.enqueue({ type: 'CREATED', entityType: 'item', entityId: 'm-1', data: {} });
    assert.deepEqual(
      main.queue.pending().map((c) => c.entityId),
      ['m-0', 'm-1'],
    );
  });
});
