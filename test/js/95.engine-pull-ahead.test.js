'use strict';

// The sync engine's pulling ahead (lib/engine.js _pullAhead): during a long pull the next page
// is asked for while the last one applies, and used only when the cursor is where it expected
// and no local write waits. Checked through the order of requests and applies, never through
// time, with an in-process transport over a real SyncServer.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');

const {
  SyncError,
  inProcessTransport,
  newServer,
  serverLog,
  FAST,
  engineClient,
  queueRows,
  networkError,
} = require('./fixtures/engine-harness');

const TIMEOUT = { timeout: 30000 };

describe('pulling ahead', () => {
  /** A server holding `count` notes of u1 written by another device, versions 1..count. */
  async function serverWithNotes(t, count) {
    const server = newServer(t);
    const changes = Array.from({ length: count }, (_, i) => ({
      changeId: `x${i}`, type: 'CREATED', entityType: 'note', entityId: `n${i}`, data: { v: i }, timestamp: 1,
    }));
    await server.sync('u1', { deviceId: 'other', lastKnownServerVersion: 0, changes });
    return server;
  }

  test('the next page is asked for while the last one applies, and each page applies once, in order', TIMEOUT, async (t) => {
    const server = await serverWithNotes(t, 5);
    const net = inProcessTransport(server);
    const order = [];
    const transport = (request, context) => {
      order.push(`ask ${request.lastKnownServerVersion}`);
      return net.transport(request, context);
    };
    const { client } = engineClient(t, { transport, triggers: FAST, batch: { pull: 2 } });
    client.on('change', (event) => order.push(`applied ${event.latestServerVersion}`));
    const summary = await client.sync();
    assert.deepEqual(order, ['ask 0', 'ask 2', 'applied 2', 'ask 4', 'applied 4', 'applied 5']);
    assert.deepEqual(summary, { pushed: 0, conflicts: 0, rejected: 0, failed: [], pulled: 5, requests: 3 });
    assert.equal(net.maxInFlight, 1, 'one request at a time');
    assert.deepEqual(client.list('note').map((note) => note.v).sort(), [0, 1, 2, 3, 4]);
    assert.equal(client.serverVersion, 5);
  });

  test('a write made while a page applies goes out with the next request; the page asked for ahead is dropped', TIMEOUT, async (t) => {
    const server = await serverWithNotes(t, 4);
    const net = inProcessTransport(server);
    const signals = [];
    const transport = (request, context) => {
      signals.push(context.signal);
      return net.transport(request, context);
    };
    const { client } = engineClient(t, { transport, triggers: FAST, batch: { pull: 2 } });
    client.once('change', () => client.put('note', 'mine', { v: 'local' }));
    const summary = await client.sync();
    assert.equal(summary.pulled, 5, 'the four notes, then the echo of its own write');
    assert.equal(summary.pushed, 1);
    const asked = net.requests.map((r) => [r.lastKnownServerVersion, r.changes.length]);
    assert.deepEqual(asked.slice(0, 3), [[0, 0], [2, 0], [2, 1]], 'asked ahead for 2, then sent the write from 2');
    assert.equal(signals[1].aborted, true);
    assert.deepEqual(queueRows(client).filter((row) => row.status !== 'synced'), []);
    assert.equal((await serverLog(server)).length, 5);
    assert.equal(client.serverVersion, 5);
  });

  test('a failed page asked for ahead fails the cycle like any request; the next cycle loses and repeats nothing', TIMEOUT, async (t) => {
    const server = await serverWithNotes(t, 5);
    const net = inProcessTransport(server);
    let asked = 0;
    const transport = (request, context) => {
      asked += 1;
      return asked === 2 ? Promise.reject(networkError()) : net.transport(request, context);
    };
    const { client } = engineClient(t, { transport, triggers: FAST, batch: { pull: 2 } });
    await assert.rejects(client.sync(), (e) => e.code === 'TRANSPORT');
    assert.equal(client.serverVersion, 2, 'the first page applied');
    const summary = await client.sync();
    assert.equal(summary.pulled, 3);
    assert.deepEqual(client.list('note').map((note) => note.v).sort(), [0, 1, 2, 3, 4]);
  });

  test('a page asked for ahead and not needed is aborted: the page before it failed', TIMEOUT, async (t) => {
    const server = await serverWithNotes(t, 5);
    const net = inProcessTransport(server);
    const signals = [];
    const transport = async (request, context) => {
      signals.push(context.signal);
      const body = await net.transport(request, context);
      // The first page carries a change no client accepts; its end still says there is more.
      return signals.length === 1 ? body.replace('"type":"CREATED"', '"type":"RENAMED"') : body;
    };
    const { client } = engineClient(t, { transport, triggers: FAST, batch: { pull: 2 } });
    await assert.rejects(client.sync(), (e) => e instanceof SyncError);
    assert.equal(signals.length, 2, 'the next page was asked for while the bad one was read');
    assert.equal(signals[1].aborted, true);
    assert.equal(client.serverVersion, 0, 'nothing of the bad page applied');
  });
});
