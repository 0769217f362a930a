'use strict';

// deltasync/electron and deltasync/electron-preload, with Electron's processes as worker
// threads: the main process (a SyncClient served by exposeToRenderer) in one, two renderers
// (exposeSyncClient) in others, joined by MessageChannels, so every request and event is
// structured-cloned as Electron's IPC copies. Electron's modules are stand-ins that follow its
// documented signatures (fixtures/electron-standins.js); nothing here ran in real Electron.

const assert = require('node:assert/strict');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { MessageChannel, Worker } = require('node:worker_threads');
const { describe, test } = require('node:test');

const { SyncClient, SyncError } = require('../..');
const { attachToElectron, exposeToRenderer } = require('deltasync/electron');
const { exposeSyncClient } = require('deltasync/electron-preload');
const { tempDir } = require('./helpers');
const { recordFigures } = require('./fixtures/figures');
const { IpcMainStandIn, createIpcRenderer, createContextBridge } = require('./fixtures/electron-standins');

const MAIN = path.join(__dirname, 'fixtures', 'electron-main-worker.js');
const RENDERER = path.join(__dirname, 'fixtures', 'electron-renderer-worker.js');

/** A worker answering { id, cmd } messages. */
class WorkerHandle {
  constructor(file, workerData, transferList) {
    this.worker = new Worker(file, { workerData, transferList });
    this.waiters = new Map();
    this.next = 0;
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('error', reject);
      this.worker.on('message', (message) => {
        if (message.ready) return resolve();
        const waiter = this.waiters.get(message.id);
        this.waiters.delete(message.id);
        if (message.error !== undefined) waiter.reject(new Error(message.error));
        else waiter.resolve(message.value);
      });
    });
  }

  run(cmd, fields = {}, transferList) {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, ...fields }, transferList);
    });
  }

  async terminate() {
    await this.worker.terminate();
  }
}

/** A main worker and `count` renderers connected to it. */
async function startElectron(t, { count = 2, example = false } = {}) {
  const dir = tempDir(t);
  const main = new WorkerHandle(MAIN, { dbPath: path.join(dir, 'app.db'), dir, example });
  await main.ready;
  const renderers = [];
  for (let i = 0; i < count; i++) {
    const { port1, port2 } = new MessageChannel();
    await main.run('connect', { port: port1 }, [port1]);
    const renderer = new WorkerHandle(RENDERER, { port: port2, example }, [port2]);
    await renderer.ready;
    renderers.push(renderer);
  }
  t.after(async () => {
    await Promise.all(renderers.map((renderer) => renderer.terminate()));
    await main.terminate();
  });
  return { main, renderers };
}

/**
 * Calls window.deltasync[method] in a renderer; resolves with the value or rejects with the
 * error, its code read from the message as a page must (contextBridge drops error.code).
 */
async function call(renderer, method, ...args) {
  const { value, error } = await renderer.run('call', { method, args });
  if (error) {
    assert.equal(error.code, undefined, 'the stand-in contextBridge drops custom error properties, as Electron does');
    throw Object.assign(new Error(error.message), { code: /^([A-Z_]+): /.exec(error.message)?.[1] });
  }
  return value;
}

async function eventually(check, what) {
  for (let i = 0; i < 2000; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

const note = (id, fields) => ({ changeId: `r-${id}-${fields.title}`, type: 'CREATED', entityType: 'note', entityId: id, data: fields, timestamp: Date.now() });

describe('exposeToRenderer and exposeSyncClient between worker threads', () => {
  test('every method answers the renderer with plain data', async (t) => {
    const { main, renderers: [r1] } = await startElectron(t, { count: 1 });
    const written = await call(r1, 'put', 'note', 'a', { title: 'first' });
    assert.equal(written.type, 'CREATED');
    assert.deepEqual(await call(r1, 'get', 'note', 'a'), { title: 'first' });
    assert.equal((await call(r1, 'get', 'note', 'a', { meta: true })).meta.dirty, true);
    assert.equal(await call(r1, 'get', 'note', 'missing'), undefined);
    assert.equal((await call(r1, 'patch', 'note', 'a', { done: true })).outcome, 'coalesced');
    const batch = await call(r1, 'batch', [
      { op: 'put', entityType: 'note', entityId: 'b', doc: { title: 'second' } },
      { op: 'patch', entityType: 'note', entityId: 'b', fields: { done: false } },
      { op: 'delete', entityType: 'note', entityId: 'nothing' },
    ]);
    assert.deepEqual(batch.map((result) => (typeof result === 'boolean' ? result : result.type)), ['CREATED', 'UPDATED', false]);
    assert.deepEqual(await call(r1, 'list', 'note', { orderBy: 'title' }), [
      { title: 'first', done: true },
      { title: 'second', done: false },
    ]);
    assert.equal(await call(r1, 'delete', 'note', 'b'), true);
    assert.equal((await call(r1, 'queueStats')).pending, 1, 'the CREATED of b and its delete cancel out');
    assert.equal((await call(r1, 'status')).pendingChanges, 1);
    const summary = await call(r1, 'sync');
    assert.equal(summary.pushed, 1);
    assert.equal((await main.run('serverLog')).length, 1, 'the renderer-made write reached the server');
    assert.equal(await call(r1, 'notify', 'focus'), undefined);

    // A conflict (the client's strategy is manual): a remote CREATED of an entity with a local one pending.
    await call(r1, 'put', 'note', 'c', { title: 'mine' });
    await main.run('applyRemote', {
      page: { newChanges: [{ ...note('c', { title: 'theirs' }), version: 2 }], latestServerVersion: 2, hasMore: false },
    });
    const conflicts = await call(r1, 'conflicts');
    assert.equal(conflicts.length, 1);
    assert.deepEqual(await call(r1, 'resolveConflict', conflicts[0].id, { use: 'remote' }), { title: 'theirs' });
    assert.deepEqual(await call(r1, 'conflicts'), []);
  });

  test('events reach every subscribed renderer, and only those', async (t) => {
    const { main, renderers: [r1, r2] } = await startElectron(t);
    await r1.run('subscribe', { event: 'change' });
    await r2.run('subscribe', { event: 'change' });
    await r2.run('subscribe', { event: 'progress' });
    await eventually(async () => (await main.run('listeners')).change === 1, 'one change forwarder on the client');
    await call(r1, 'put', 'note', 'a', { title: 'x' });
    for (const renderer of [r1, r2]) {
      const [event] = await eventually(async () => {
        const got = await renderer.run('events');
        return got.length > 0 && got;
      }, 'the change event');
      assert.equal(event.event, 'change');
      assert.equal(event.payload.source, 'local');
      assert.equal(event.payload.changes[0].entityId, 'a');
    }
    await main.run('progress', { report: { applied: 1, total: 2, bytesParsed: 10 } });
    const [progress] = await eventually(async () => {
      const got = await r2.run('events');
      return got.length > 0 && got;
    }, 'the progress event in the subscribed renderer');
    assert.deepEqual(progress.payload, { applied: 1, total: 2, bytesParsed: 10 });
    await call(r1, 'get', 'note', 'a'); // a round trip after the progress: r1 would have it by now
    assert.deepEqual(await r1.run('events'), [], 'r1 never subscribed to progress');

    await r1.run('subscribe', { event: 'status' });
    await main.run('start');
    await call(r1, 'notify', 'offline');
    const statuses = [];
    await eventually(async () => {
      statuses.push(...(await r1.run('events')));
      return statuses.some((e) => e.event === 'status' && e.payload.state === 'offline');
    }, 'a status event saying offline');
    await r1.run('subscribe', { event: 'conflict' });
    await call(r1, 'put', 'note', 'c', { title: 'mine' });
    await main.run('applyRemote', { page: { newChanges: [{ ...note('c', { title: 'theirs' }), version: 1 }], latestServerVersion: 1, hasMore: false } });
    const got = await eventually(async () => {
      const all = await r1.run('events');
      return all.some((e) => e.event === 'conflict') && all;
    }, 'the conflict event');
    assert.equal(got.find((e) => e.event === 'conflict').payload.entityId, 'c');
  });

  test('the renderer reports its window to the client as notify events', async (t) => {
    const { main, renderers: [r1] } = await startElectron(t, { count: 1 });
    await main.run('start');
    const sequence = [
      [{ target: 'window', type: 'offline' }, 'offline'],
      [{ target: 'window', type: 'online' }, 'online'],
      [{ target: 'document', type: 'visibilitychange', visibilityState: 'hidden' }, 'hidden'],
      [{ target: 'document', type: 'visibilitychange', visibilityState: 'visible' }, 'visible'],
      [{ target: 'window', type: 'blur' }, 'blur'],
      [{ target: 'window', type: 'focus' }, 'focus'],
    ];
    for (const [dispatch, expected] of sequence) {
      await r1.run('dispatch', dispatch);
      const told = await eventually(async () => {
        const events = await main.run('notified');
        return events.length > 0 && events;
      }, `${expected} reached the client`);
      assert.deepEqual(told, [expected]);
      if (expected === 'offline') {
        await eventually(async () => (await main.run('status')).state === 'offline', 'the client is offline (once a running cycle ends)');
      }
    }
    assert.notEqual((await main.run('status')).state, 'offline');
  });

  test('a renderer that goes away loses its subscriptions', async (t) => {
    const { main, renderers: [r1, r2] } = await startElectron(t);
    await r1.run('subscribe', { event: 'change' });
    await r2.run('subscribe', { event: 'change' });
    await r2.run('subscribe', { event: 'status' });
    await eventually(async () => {
      const listeners = await main.run('listeners');
      return listeners.change === 1 && listeners.status === 1;
    }, 'forwarders for change and status');
    await r2.terminate();
    await eventually(async () => (await main.run('senders'))[1].destroyed, 'the second webContents is destroyed');
    assert.equal((await main.run('listeners')).status, 0, 'no one listens to status any more');
    await call(r1, 'put', 'note', 'a', { title: 'x' });
    await eventually(async () => (await r1.run('events')).length === 1, 'the first renderer still gets events');
    const senders = await main.run('senders');
    assert.equal(senders[1].sentAfterDestroyed, 0, 'nothing was sent to the renderer that went away');
    await r1.run('unsubscribe', { event: 'change' });
    await eventually(async () => (await main.run('listeners')).change === 0, 'the last unsubscribe removes the forwarder');
  });

  test('allow serves only the listed methods; the disposer removes the handler', async (t) => {
    const { main, renderers: [r1] } = await startElectron(t, { count: 1 });
    await main.run('expose', { channel: 'readonly', allow: ['get', 'list'] });
    const hash = await main.run('hash');
    const refused = await r1.run('raw', { channel: 'readonly', args: ['put', 'note', 'a', { title: 'x' }] });
    assert.equal(refused.reply.ok, false);
    assert.equal(refused.reply.error.code, 'FORBIDDEN');
    assert.equal((await r1.run('raw', { channel: 'readonly', args: ['list', 'note'] })).reply.ok, true);
    assert.equal(await main.run('hash'), hash);
    await main.run('dispose', { channel: 'deltasync' });
    const error = await call(r1, 'get', 'note', 'a').catch((e) => e);
    assert.equal(error.code, 'CLOSED', 'a removed bridge is CLOSED, not an internal error');
    assert.match(error.message, /No handler registered/);
  });

  test('IPC round trips (median, worker-thread stand-in)', async (t) => {
    const { renderers: [r1] } = await startElectron(t, { count: 1 });
    const ops = Array.from({ length: 100 }, (_, i) => ({ op: 'put', entityType: 'note', entityId: `n${i}`, doc: { title: `note ${i}`, body: 'x'.repeat(200), n: i } }));
    await call(r1, 'batch', ops);
    const getMs = await r1.run('roundTrip', { method: 'get', args: ['note', 'n1'], times: 300 });
    const list100Ms = await r1.run('roundTrip', { method: 'list', args: ['note', { limit: 100 }], times: 100 });
    assert.equal((await call(r1, 'list', 'note', { limit: 100 })).length, 100);
    t.diagnostic(`get ${getMs.toFixed(3)} ms, list of 100 ${list100Ms.toFixed(3)} ms`);
    recordFigures('electron', { getMedianMs: getMs, list100MedianMs: list100Ms });
  });
});

// Hostile requests straight on the channel, as a compromised renderer could send them. Each
// must answer a coded { ok: false } and leave the whole database unchanged.
const big = 'x'.repeat(9 * 1024 * 1024);
const deep = () => {
  let value = {};
  for (let i = 0; i < 200; i++) value = { v: value };
  return value;
};
const HOSTILE = [
  ['an unknown method', ['close'], 'FORBIDDEN'],
  ['a method of the client not served', ['applyRemote', '{}'], 'FORBIDDEN'],
  ['transaction', ['transaction'], 'FORBIDDEN'],
  ['__proto__ as the method', ['__proto__'], 'FORBIDDEN'],
  ['constructor as the method', ['constructor'], 'FORBIDDEN'],
  ['hasOwnProperty as the method', ['hasOwnProperty', 'x'], 'FORBIDDEN'],
  ['a number as the method', [42], 'FORBIDDEN'],
  ['no method', [], 'FORBIDDEN'],
  ['an object as the method', [{ toString: 'put' }], 'FORBIDDEN'],
  ['too many arguments', ['put', 'note', 'a', { t: 1 }, 'extra'], 'INVALID_ARGUMENT'],
  ['a number as the entity id', ['put', 'note', 1, { t: 1 }], 'INVALID_ARGUMENT'],
  ['__proto__ as the entity type', ['put', '__proto__', 'a', { t: 1 }], 'INVALID_ARGUMENT'],
  ['an array as the document', ['put', 'note', 'a', [1, 2]], 'INVALID_ARGUMENT'],
  ['a string as the document', ['put', 'note', 'a', 'doc'], 'INVALID_ARGUMENT'],
  ['an own __proto__ key', ['put', 'note', 'a', JSON.parse('{"__proto__": {"polluted": true}, "t": 1}')], 'INVALID_ARGUMENT'],
  ['a nested own __proto__ key', ['patch', 'note', 'seed', JSON.parse('{"meta": {"__proto__": {"polluted": true}}}')], 'INVALID_ARGUMENT'],
  ['constructor.prototype', ['put', 'note', 'a', { constructor: { prototype: { polluted: true } } }], 'INVALID_ARGUMENT'],
  ['a Map as the document', ['put', 'note', 'a', new Map([['t', 1]])], 'INVALID_ARGUMENT'],
  ['a Date inside the document', ['put', 'note', 'a', { at: new Date(0) }], 'INVALID_ARGUMENT'],
  ['bytes inside the document', ['put', 'note', 'a', { bytes: new Uint8Array(4) }], 'INVALID_ARGUMENT'],
  ['a Set inside a batch', ['batch', [{ op: 'put', entityType: 'note', entityId: 'a', doc: { s: new Set([1]) } }]], 'INVALID_ARGUMENT'],
  ['a RegExp as list options', ['list', 'note', { where: { title: /x/ } }], 'INVALID_ARGUMENT'],
  ['NaN in a document', ['put', 'note', 'a', { n: NaN }], 'INVALID_ARGUMENT'],
  ['a 9 MB document', ['put', 'note', 'a', { big }], 'LIMIT_EXCEEDED'],
  ['200 levels of nesting', ['put', 'note', 'a', deep()], 'LIMIT_EXCEEDED'],
  ['a patch of nothing', ['patch', 'note', 'missing', { t: 1 }], 'NOT_FOUND'],
  ['a batch failing at its last op', ['batch', [
    { op: 'put', entityType: 'note', entityId: 'a', doc: { t: 1 } },
    { op: 'delete', entityType: 'note', entityId: 'seed' },
    { op: 'patch', entityType: 'note', entityId: 'missing', fields: { t: 1 } },
  ]], 'NOT_FOUND'],
  ['a batch op with an unknown key', ['batch', [{ op: 'put', entityType: 'note', entityId: 'a', doc: {}, sql: 'DROP' }]], 'INVALID_ARGUMENT'],
  ['a batch op named __proto__', ['batch', [{ op: '__proto__', entityType: 'note', entityId: 'a' }]], 'INVALID_ARGUMENT'],
  ['a batch that is not an array', ['batch', { 0: { op: 'delete', entityType: 'note', entityId: 'seed' }, length: 1 }], 'INVALID_ARGUMENT'],
  ['10,001 batch ops', ['batch', Array.from({ length: 10001 }, (_, i) => ({ op: 'put', entityType: 'note', entityId: `x${i}`, doc: {} }))], 'INVALID_ARGUMENT'],
  ['an unknown list operator', ['list', 'note', { where: { t: { $where: 'x' } } }], 'INVALID_ARGUMENT'],
  ['an unknown get option', ['get', 'note', 'seed', { sql: 'x' }], 'INVALID_ARGUMENT'],
  ['a conflict that does not exist', ['resolveConflict', 999, { use: 'local' }], 'NOT_FOUND'],
  ['a resolution with extra keys', ['resolveConflict', 1, { use: 'merged', data: {}, extra: 1 }], 'INVALID_ARGUMENT'],
  ['an unknown notify event', ['notify', 'explode'], 'INVALID_ARGUMENT'],
  ['sync with a wrong option', ['sync', { manual: 'yes' }], 'INVALID_ARGUMENT'],
  ['a subscription to error', ['subscribe', 'error'], 'INVALID_ARGUMENT'],
  ['a subscription to __proto__', ['subscribe', '__proto__'], 'INVALID_ARGUMENT'],
  ['subscribe without an event', ['subscribe'], 'INVALID_ARGUMENT'],
];

test('hostile requests from a renderer', async (t) => {
  const { main, renderers: [r1] } = await startElectron(t, { count: 1 });
  await call(r1, 'put', 'note', 'seed', { title: 'kept' });
  const hash = await main.run('hash');
  let refused = 0;
  for (const [name, args, code] of HOSTILE) {
    await t.test(name, async () => {
      const { reply, rejected } = await r1.run('raw', { args });
      assert.equal(rejected, undefined, 'main answered instead of throwing');
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, code, reply.error.message);
      assert.equal(typeof reply.error.message, 'string');
      assert.equal(await main.run('hash'), hash, 'the database is unchanged');
      assert.equal(await main.run('polluted'), false, 'Object.prototype is untouched');
      refused += 1;
    });
  }
  if (refused === HOSTILE.length) recordFigures('electron-hostile', { cases: refused });
});

describe('the preload in the renderer', () => {
  test('a bridged error keeps its code in the message, as contextBridge keeps only messages', async () => {
    const ipcMain = new IpcMainStandIn();
    const client = new SyncClient({ path: ':memory:' });
    const dispose = exposeToRenderer(client, { ipcMain });
    const { port1, port2 } = new MessageChannel();
    ipcMain.connect(port1);
    const page = {};
    const api = exposeSyncClient({ contextBridge: createContextBridge(page), ipcRenderer: createIpcRenderer(port2) }, { window: null });
    const direct = await api.put('note', 'a', 'not a document').catch((e) => e);
    assert.equal(direct.code, 'INVALID_ARGUMENT', 'the preload sets code');
    const error = await page.deltasync.put('note', 'a', 'not a document').catch((e) => e);
    assert.ok(error instanceof Error);
    assert.equal(error.code, undefined, 'contextBridge keeps only the message');
    assert.match(error.message, /^INVALID_ARGUMENT: Expected a plain object for doc/);
    assert.throws(() => page.deltasync.subscribe('nope', () => {}), /INVALID_ARGUMENT/);
    const uncloneable = await api.put('note', 'a', { run: () => 1 }).catch((e) => e);
    assert.equal(uncloneable.code, 'INVALID_ARGUMENT', 'what IPC cannot copy is the caller\'s mistake');
    assert.match(uncloneable.message, /could not be cloned/);
    const tooMany = await api.get('note', 'a', {}, 'extra').catch((e) => e);
    assert.equal(tooMany.message, 'INVALID_ARGUMENT: get() takes at most 3 arguments but received 4');
    dispose();
    port1.close();
    client.close();
  });

  test('exposeSyncClient refuses what is not Electron', () => {
    assert.throws(() => exposeSyncClient(null), TypeError);
    assert.throws(() => exposeSyncClient({ contextBridge: {}, ipcRenderer: {} }), /exposeInMainWorld/);
    assert.throws(() => exposeSyncClient({ contextBridge: { exposeInMainWorld() {} }, ipcRenderer: {} }), /ipcRenderer/);
  });
});

describe('exposeToRenderer arguments', () => {
  test('bad options are coded errors', () => {
    const client = new SyncClient({ path: ':memory:' });
    const ipcMain = new IpcMainStandIn();
    for (const options of [undefined, {}, { ipcMain: {} }, { ipcMain, allow: ['close'] }, { ipcMain, channel: '' }, { ipcMain, limits: { maxDepth: 0 } }, { ipcMain, nope: 1 }]) {
      assert.throws(() => exposeToRenderer(client, options), (error) => error instanceof SyncError && error.code === 'INVALID_ARGUMENT');
    }
    assert.throws(() => exposeToRenderer({}, { ipcMain }), (error) => error.code === 'INVALID_ARGUMENT');
    client.close();
  });

  test("a window that subscribes again and again is watched for 'destroyed' once", async () => {
    const client = new SyncClient({ path: ':memory:' });
    const ipcMain = new IpcMainStandIn();
    exposeToRenderer(client, { ipcMain });
    const handler = ipcMain._handlers.get('deltasync');
    const sender = new EventEmitter();
    sender.send = () => {};
    for (let i = 0; i < 20; i++) {
      assert.equal((await handler({ sender }, 'subscribe', 'change')).ok, true);
      assert.equal((await handler({ sender }, 'unsubscribe', 'change')).ok, true);
    }
    assert.equal(sender.listenerCount('destroyed'), 1);
    assert.equal(client.listenerCount('change'), 0);
    client.close();
  });

  /** The handler exposeToRenderer registered, called as Electron would, with a stand-in webContents. */
  function directBridge(options = {}) {
    const client = new SyncClient({ path: ':memory:', transport: async () => new Promise(() => {}) });
    const ipcMain = new IpcMainStandIn();
    const dispose = exposeToRenderer(client, { ipcMain, ...options });
    const handler = ipcMain._handlers.get('deltasync');
    const webContents = () => {
      const sender = new EventEmitter();
      sender.sent = [];
      sender.send = (...args) => sender.sent.push(args);
      sender.mainFrame = { routingId: 1, processId: 7 };
      return sender;
    };
    return { client, dispose, handler, webContents };
  }

  test('isAllowedSender may be async; only true lets a request in', async () => {
    for (const verdict of [false, 'yes', 1, undefined]) {
      const { client, handler, webContents } = directBridge({ isAllowedSender: async () => verdict });
      const sender = webContents();
      assert.equal((await handler({ sender }, 'put', 'note', 'a', {})).error.code, 'FORBIDDEN', String(verdict));
      assert.equal((await handler({ sender }, 'subscribe', 'change')).error.code, 'FORBIDDEN');
      assert.deepEqual(client.list('note'), []);
      client.close();
    }
    const { client, handler, webContents } = directBridge({ isAllowedSender: async () => true });
    assert.equal((await handler({ sender: webContents() }, 'put', 'note', 'a', {})).ok, true);
    client.close();
  });

  test('events limits the subscriptions; a subframe cannot subscribe', async () => {
    const { client, handler, webContents } = directBridge({ allow: ['get'], events: ['status'] });
    const sender = webContents();
    assert.equal((await handler({ sender }, 'subscribe', 'conflict')).error.code, 'FORBIDDEN');
    assert.equal((await handler({ sender }, 'subscribe', 'change')).error.code, 'FORBIDDEN');
    assert.equal((await handler({ sender }, 'subscribe', 'status')).ok, true);
    const subframe = { routingId: 9, processId: 7 };
    assert.equal((await handler({ sender, senderFrame: subframe }, 'subscribe', 'status')).error.code, 'FORBIDDEN');
    assert.equal(client.listenerCount('conflict') + client.listenerCount('change'), 0);
    assert.equal(client.listenerCount('status'), 1);
    client.close();
  });

  test('a renderer cannot leave non-manual syncs waiting in main', async () => {
    const { client, handler, webContents } = directBridge();
    const reply = await handler({ sender: webContents() }, 'sync', { manual: false });
    assert.equal(reply.error.code, 'INVALID_ARGUMENT');
    assert.match(reply.error.message, /manual/);
    client.close();
  });

  test('navigation and destruction end a window\'s subscriptions; dispose removes every listener', async () => {
    const { client, dispose, handler, webContents } = directBridge();
    const a = webContents();
    const b = webContents();
    for (const sender of [a, b]) assert.equal((await handler({ sender }, 'subscribe', 'change')).ok, true);
    client.put('note', 'x', { t: 1 });
    assert.equal(a.sent.length, 1);
    assert.equal(b.sent.length, 1);
    a.emit('did-navigate');
    client.put('note', 'y', { t: 1 });
    assert.equal(a.sent.length, 1, 'the page that navigated away gets nothing until it subscribes again');
    assert.equal(b.sent.length, 2);
    b.emit('destroyed');
    assert.equal(b.listenerCount('destroyed'), 0);
    assert.equal(client.listenerCount('change'), 0, 'no window subscribes: the client is not listened to');
    assert.equal((await handler({ sender: a }, 'subscribe', 'change')).ok, true);
    assert.equal(client.listenerCount('change'), 1);
    dispose();
    assert.equal(client.listenerCount('change'), 0);
    assert.deepEqual([a.listenerCount('destroyed'), a.listenerCount('did-navigate')], [0, 0]);
    assert.equal((await handler({ sender: a }, 'get', 'note', 'x')).error.code, 'CLOSED');
    client.close();
  });

  test('a window that cannot take one event keeps its subscriptions', async () => {
    const { client, handler, webContents } = directBridge();
    const sender = webContents();
    let fail = true;
    sender.send = (...args) => {
      if (fail) throw new Error('An object could not be cloned.');
      sender.sent.push(args);
    };
    await handler({ sender }, 'subscribe', 'change');
    client.put('note', 'x', { t: 1 });
    fail = false;
    client.put('note', 'y', { t: 1 });
    assert.equal(sender.sent.length, 1);
    client.close();
  });

  test('isAllowedSender refuses other senders with FORBIDDEN', async () => {
    const client = new SyncClient({ path: ':memory:' });
    const ipcMain = new IpcMainStandIn();
    exposeToRenderer(client, { ipcMain, isAllowedSender: (event) => event.sender.id === 1 });
    const handler = ipcMain._handlers.get('deltasync');
    const sender = (id) => ({ sender: { id, send() {} } });
    assert.equal((await handler(sender(1), 'put', 'note', 'a', {})).ok, true);
    assert.deepEqual((await handler(sender(2), 'get', 'note', 'a')).error.code, 'FORBIDDEN');
    client.close();
  });
});

describe('examples/electron-react', () => {
  test("its main and preload run as written, against the stand-ins", async (t) => {
    const { main, renderers: [r1, r2] } = await startElectron(t, { example: true });
    const [window] = await eventually(async () => {
      const windows = await main.run('exampleWindows');
      return windows.length > 0 && windows;
    }, 'the example opened its window');
    assert.deepEqual(
      { contextIsolation: window.options.webPreferences.contextIsolation, sandbox: window.options.webPreferences.sandbox, nodeIntegration: window.options.webPreferences.nodeIntegration },
      { contextIsolation: true, sandbox: true, nodeIntegration: false },
    );
    assert.match(window.options.webPreferences.preload, /dist[\\/]preload\.js$/);
    assert.match(window.loaded, /index\.html$/);
    assert.equal(window.opens, 'deny', 'window.open is denied');
    assert.equal(window.navigationPrevented, true, 'navigating away is prevented');
    assert.equal(await main.run('exampleAllowsSender', { url: 'https://elsewhere.example/' }), false);
    assert.equal(await main.run('exampleAllowsSender', { url: 'file:///app/index.html' }), true);
    await r2.run('subscribe', { event: 'change' });
    await call(r1, 'put', 'note', 'n1', { id: 'n1', title: 'from window 1' });
    assert.deepEqual(await call(r2, 'list', 'note'), [{ id: 'n1', title: 'from window 1' }]);
    await eventually(async () => (await r2.run('events')).length === 1, 'the write reached the other window');
    const summary = await call(r1, 'sync').catch((error) => error);
    assert.equal(summary.code, 'TRANSPORT', 'no server: the sync fails with a coded error, nothing crashes');
    assert.equal((await call(r1, 'queueStats')).pending, 1, 'the write stays queued');
    await main.run('quitExample');
    const closed = await call(r1, 'get', 'note', 'n1').catch((error) => error);
    assert.match(closed.message, /^CLOSED: .*No handler registered/, 'quitting removed the bridge');
  });

  test("the README's Electron section is the example, pasted", () => {
    const fs = require('node:fs');
    const root = path.join(__dirname, '..', '..');
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\n```\w*\n([\s\S]*?)```/g)];
    assert.deepEqual(blocks.map((block) => block[1]), [
      'examples/electron-react/main.js',
      'examples/electron-react/preload.js',
      'examples/electron-react/renderer/index.jsx',
    ]);
    for (const [, file, code] of blocks) assert.equal(code, fs.readFileSync(path.join(root, file), 'utf8'), `README block of ${file}`);
  });

  test('its preload bundles for a sandboxed renderer', async () => {
    const esbuild = require('esbuild');
    const result = await esbuild.build({
      entryPoints: [path.join(__dirname, '..', '..', 'examples', 'electron-react', 'preload.js')],
      bundle: true,
      write: false,
      platform: 'node',
      external: ['electron'],
      plugins: [{
        // The example's dependency, as if installed: this package, through its export map.
        name: 'deltasync-as-installed',
        setup(build) {
          build.onResolve({ filter: /^deltasync(\/|$)/ }, (args) => ({ path: require.resolve(args.path) }));
        },
      }],
      logLevel: 'silent',
    });
    const code = result.outputFiles[0].text;
    const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((match) => match[1]);
    assert.deepEqual([...new Set(required)], ['electron'], 'the bundle requires only electron');
  });
});

/** Stand-ins for the modules attachToElectron listens to. */
function electronModules() {
  class Window extends EventEmitter {
    constructor() {
      super();
      this.visible = true;
      this.minimized = false;
    }
    isVisible() {
      return this.visible;
    }
    isMinimized() {
      return this.minimized;
    }
  }
  const windows = [new Window()];
  let focused = windows[0];
  let online = true;
  return {
    windows,
    Window,
    setOnline: (value) => (online = value),
    setFocused: (window) => (focused = window),
    modules: {
      app: new EventEmitter(),
      powerMonitor: new EventEmitter(),
      net: { isOnline: () => online },
      BrowserWindow: { getAllWindows: () => windows, getFocusedWindow: () => focused },
    },
  };
}

describe('attachToElectron', () => {
  function clientWithTransport(t) {
    const requests = [];
    const client = new SyncClient({
      path: ':memory:',
      transport: async (request) => {
        requests.push(request);
        return JSON.stringify({ applied: [], conflicts: [], errors: [], newChanges: [], latestServerVersion: 0, hasMore: false });
      },
      triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
    });
    t.after(() => client.close());
    return { client, requests };
  }

  test('each Electron event reaches client.notify as documented; the disposer removes every listener', async (t) => {
    const { client } = clientWithTransport(t);
    const electron = electronModules();
    const told = [];
    const notify = client.notify.bind(client);
    client.notify = (event) => {
      told.push(event);
      notify(event);
    };
    const take = () => told.splice(0);
    electron.setOnline(false);
    const dispose = attachToElectron(client, { ...electron.modules, onlineCheckMs: 1 });
    assert.deepEqual(take(), ['offline'], 'net.isOnline() at attach');
    electron.setOnline(true);
    await eventually(() => told.length > 0, 'the online check');
    assert.deepEqual(take(), ['online']);
    const { app, powerMonitor } = electron.modules;
    powerMonitor.emit('suspend');
    electron.setOnline(false);
    powerMonitor.emit('resume');
    assert.deepEqual(take(), ['offline', 'offline'], 'suspend is offline; resume asks net again, which says offline');
    electron.setOnline(true);
    powerMonitor.emit('resume');
    assert.deepEqual(take(), ['online']);
    powerMonitor.emit('lock-screen');
    powerMonitor.emit('unlock-screen');
    assert.deepEqual(take(), ['hidden', 'visible']);
    app.emit('browser-window-focus', {}, electron.windows[0]);
    electron.setFocused(electron.windows[0]);
    app.emit('browser-window-blur', {}, electron.windows[0]);
    electron.setFocused(null);
    app.emit('browser-window-blur', {}, electron.windows[0]);
    assert.deepEqual(take(), ['focus', 'blur'], 'blur only once no window has the focus');

    const second = new electron.Window();
    electron.windows.push(second);
    app.emit('browser-window-created', {}, second);
    electron.windows[0].visible = false;
    electron.windows[0].emit('hide');
    assert.deepEqual(take(), [], 'another window is still visible');
    second.minimized = true;
    second.emit('minimize');
    assert.deepEqual(take(), ['hidden']);
    second.minimized = false;
    second.emit('restore');
    electron.windows[0].visible = true;
    electron.windows[0].emit('show');
    assert.deepEqual(take(), ['visible', 'visible']);
    second.isVisible = () => {
      throw new Error('Object has been destroyed');
    };
    electron.windows[0].visible = false;
    assert.doesNotThrow(() => electron.windows[0].emit('hide'), 'a destroyed window never throws into Electron');
    second.emit('closed');
    assert.deepEqual(second.eventNames(), [], "a closed window's listeners are removed");

    dispose();
    for (const emitter of [app, powerMonitor, electron.windows[0]]) {
      assert.deepEqual(emitter.eventNames(), [], 'every listener removed');
    }
    take();
    electron.setOnline(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(told, [], 'the online check stopped');
  });

  test('needs a client with a transport', () => {
    const client = new SyncClient({ path: ':memory:' });
    assert.throws(() => attachToElectron(client, electronModules().modules), (error) => error.code === 'INVALID_ARGUMENT');
    assert.throws(() => attachToElectron(client, null), (error) => error.code === 'INVALID_ARGUMENT');
    client.close();
  });
});
