'use strict';

// deltasync/react in real headless Chromium, over the real Electron bridge: a SyncClient in
// Node served by exposeToRenderer() to a stand-in ipcMain; in each page, exposeSyncClient()
// over a stand-in ipcRenderer whose invoke() reaches Node through a Playwright binding; React
// apps on the hooks count their renders. Plus the in-process store in Node and the in-process
// adapter in the page (a client with synchronous reads). Every wait is on a condition.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');

const CHROMIUM = '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  test('deltasync/react in headless Chromium', (t) => t.skip(`${CHROMIUM} does not exist`));
  return;
}

const { SyncClient, SyncServer, inProcessTransport, httpError, FAST } = require('./fixtures/engine-harness');
const { exposeToRenderer } = require('../../lib/electron');
const { _createStore } = require('../../lib/react');
const { recordFigures } = require('./fixtures/figures');

const ORIGIN = 'http://deltasync.test';
const WAIT = { timeout: 15000 };
const figures = {};

/** A pulled page of changes, in the shape applyRemote takes. */
function remotePage(changes) {
  const newChanges = changes.map(([version, type, entityType, entityId, data]) => ({
    version,
    changeId: `remote-${version}`,
    type,
    entityType,
    entityId,
    data,
    timestamp: Date.now(),
    deviceId: 'remote-device',
  }));
  return JSON.stringify({ newChanges, latestServerVersion: newChanges[newChanges.length - 1].version, hasMore: false });
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

// ---- the in-process store, in Node

test('the in-process store reads at once and keeps snapshots on unrelated changes', async () => {
  const client = new SyncClient({ path: ':memory:' });
  try {
    client.put('note', 'n1', { title: 'a' });
    client.put('todo', 't1', { text: 'x' });
    const store = _createStore(client);
    const notes = store.snapshot('list', ['note']);
    assert.deepEqual(notes, [{ title: 'a' }], 'read synchronously, no loading state');
    assert.equal(store.snapshot('list', ['note']), notes, 'an unchanged read is the same object');
    const doc = store.snapshot('get', ['note', 'n1']);
    const calls = { notes: 0, doc: 0, status: 0 };
    const off = [
      store.subscribe('list', ['note'], () => calls.notes++),
      store.subscribe('get', ['note', 'n1'], () => calls.doc++),
      store.subscribe('status', [], () => calls.status++),
    ];
    assert.deepEqual(client.eventNames().sort(), ['change', 'progress', 'status'].sort());
    const status = store.snapshot('status', []);
    assert.equal(status.state, 'stopped');
    assert.equal(status.pendingChanges, 2);
    assert.equal(status.progress, null);

    client.put('todo', 't2', { text: 'y' });
    await tick();
    assert.deepEqual(calls, { notes: 0, doc: 0, status: 1 }, 'another type: only the status (pendingChanges) changed');
    assert.equal(store.snapshot('list', ['note']), notes);
    assert.equal(store.snapshot('status', []).pendingChanges, 3);

    client.put('note', 'n2', { title: 'b' });
    client.put('note', 'n3', { title: 'c' });
    await tick();
    assert.equal(calls.notes, 1, 'two writes, one refetch');
    assert.equal(calls.doc, 0, 'another document of the same type');
    assert.equal(store.snapshot('list', ['note']).length, 3);
    const three = store.snapshot('list', ['note']);

    await client.applyRemote(remotePage([[1, 'CREATED', 'todo', 't9', { text: 'remote' }]]));
    await tick();
    assert.equal(store.snapshot('list', ['note']), three, 'a remote page of another type: refetched, deep-equal, same object');
    assert.equal(store.snapshot('get', ['note', 'n1']), doc);
    assert.equal(calls.notes, 1);
    assert.equal(store.snapshot('status', []).serverVersion, 1);

    const before = calls.status;
    client.emit('progress', { applied: 1, total: 2, bytesParsed: 10 });
    assert.equal(calls.status, before + 1);
    assert.deepEqual(store.snapshot('status', []).progress, { applied: 1, total: 2, bytesParsed: 10 });
    client.emit('change', { source: 'remote', applied: 0, skipped: 0, latestServerVersion: 1 });
    await tick();
    assert.equal(store.snapshot('status', []).progress, null, 'a remote change event ends the progress');

    for (const unsubscribe of off) unsubscribe();
    store._sweep();
    assert.deepEqual(client.eventNames(), [], 'no client listener once no one reads');
    assert.equal(store._debug().entries, 3, 'entries wait one more sweep');
    store._sweep();
    assert.equal(store._debug().entries, 0);
    client.put('note', 'n4', { title: 'd' });
    assert.equal(store.snapshot('list', ['note']).length, 4, 'a read after everything was dropped is fresh');
  } finally {
    client.close();
  }
});

test('the async store: a remount during a read asks once; a change during a read asks again; a failure is not remembered', async () => {
  // A renderer-like client: every read is a promise the test settles, in any order.
  const reads = [];
  const listeners = new Map();
  const fake = {
    subscribe(event, listener) {
      listeners.set(event, listener);
      return () => listeners.delete(event);
    },
  };
  for (const method of ['get', 'list', 'status', 'conflicts', 'queueStats', 'put', 'patch', 'delete', 'batch', 'sync', 'resolveConflict', 'notify']) {
    fake[method] = (...args) => new Promise((resolve, reject) => reads.push({ method, args, resolve, reject }));
  }
  const store = _createStore(fake);
  let renders = 0;
  const off = store.subscribe('list', ['note'], () => renders++);
  assert.equal(reads.length, 1);
  off(); // StrictMode: unmount and mount again while the read is in flight
  const offAgain = store.subscribe('list', ['note'], () => renders++);
  reads[0].resolve([{ title: 'first' }]);
  await tick();
  assert.equal(reads.length, 1, 'nothing changed meanwhile: the remount read nothing more');
  assert.deepEqual(store.snapshot('list', ['note']), [{ title: 'first' }]);

  listeners.get('change')({ source: 'local', changes: [{ entityType: 'note', entityId: 'n1' }] });
  await tick();
  assert.equal(reads.length, 2);
  listeners.get('change')({ source: 'local', changes: [{ entityType: 'note', entityId: 'n1' }] });
  await tick();
  assert.equal(reads.length, 2, 'a change during the read waits for it');
  reads[1].resolve([{ title: 'old' }]);
  await tick();
  assert.equal(reads.length, 3, 'then reads again');
  reads[2].resolve([{ title: 'new' }]);
  await tick();
  assert.deepEqual(store.snapshot('list', ['note']), [{ title: 'new' }]);
  assert.equal(renders, 3);

  const offFailing = store.subscribe('get', ['note', 'bad'], () => {});
  reads[3].reject(Object.assign(new Error('INVALID_ARGUMENT: no'), { code: 'INVALID_ARGUMENT' }));
  await tick();
  assert.equal(store.snapshot('get', ['note', 'bad']).error.code, 'INVALID_ARGUMENT', 'the failure is the snapshot (a hook throws it)');
  offFailing();
  store._sweep();
  assert.equal(store._debug().entries, 1, 'a failed read no one holds is dropped at the first sweep');
  store.subscribe('get', ['note', 'bad'], () => {});
  assert.equal(reads.length, 5, 'and read again when asked for');
  offAgain();
});

// ---- the browser

let browser;
let html;
let script;
let server;
let other;
let client;
let net;
let dispose;
const handlers = new Map();
const ipcMain = {
  handle: (channel, handler) => handlers.set(channel, handler),
  removeHandler: (channel) => handlers.delete(channel),
};
/** The method of every invoke from any page, in order. */
const invokes = [];
const pageErrors = [];
const pages = [];

before(async () => {
  const esbuild = require('esbuild');
  const built = await esbuild.build({
    entryPoints: [path.join(__dirname, 'fixtures', 'react-page.jsx')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'silent',
  });
  script = built.outputFiles[0].text;
  html = '<!doctype html><html><body><div id="root"></div><div id="inprocess-root"></div><script src="/page.js"></script></body></html>';
  browser = await require('playwright-core').chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

  // A real server holding 50 changes of another device, so that the pages applied below
  // (versions 1..5) are behind its head and a later sync pulls the rest.
  server = new SyncServer({ path: ':memory:' });
  other = new SyncClient({ path: ':memory:', transport: inProcessTransport(server).transport, triggers: FAST });
  other.transaction(() => {
    for (let i = 0; i < 50; i++) other.put('seed', `s${i}`, { i });
  });
  await other.sync();
  net = inProcessTransport(server);
  client = new SyncClient({ path: ':memory:', conflicts: 'manual', transport: net.transport, triggers: FAST });
  client.on('error', () => {});
  dispose = exposeToRenderer(client, { ipcMain });
});

after(async () => {
  if (browser) await browser.close();
  if (dispose) dispose();
  if (client) client.close();
  if (other) other.close();
  if (server) server.close();
});

/** A page ("window") with its stand-in webContents, loaded with the bundled fixture. */
async function openPage() {
  const page = await browser.newPage();
  const sender = new EventEmitter();
  sender.send = (channel, ...args) => {
    page.evaluate(([name, payload]) => window.__ipcPush(name, payload), [channel, args]).catch(() => {});
  };
  sender.isDestroyed = () => page.isClosed();
  page.on('close', () => sender.emit('destroyed'));
  page.on('pageerror', (error) => pageErrors.push(error));
  await page.exposeBinding('__ipcInvoke', async (_source, channel, ...args) => {
    const handler = handlers.get(channel);
    if (!handler) throw new Error(`No handler registered for '${channel}'`);
    invokes.push(args[0]);
    return handler({ sender }, ...args);
  });
  await page.route(`${ORIGIN}/**`, (route) => {
    const isScript = route.request().url().endsWith('/page.js');
    return route.fulfill({ contentType: isScript ? 'text/javascript' : 'text/html', body: isScript ? script : html });
  });
  await page.goto(`${ORIGIN}/`);
  pages.push(page);
  return page;
}

/** Waits until the element's text is `expected` (a string) or matches it (a RegExp). */
async function waitText(page, id, expected) {
  const want = expected instanceof RegExp ? { source: expected.source } : { text: expected };
  try {
    await page.waitForFunction(
      ([elementId, w]) => {
        const element = document.getElementById(elementId);
        if (!element) return false;
        return w.text !== undefined ? element.textContent === w.text : new RegExp(w.source).test(element.textContent);
      },
      [id, want],
      WAIT,
    );
  } catch (error) {
    const actual = await page.evaluate((elementId) => document.getElementById(elementId)?.textContent, id).catch(() => '(page closed)');
    throw new Error(`#${id}: expected ${expected} but it shows ${JSON.stringify(actual)} (${error.message.split('\n')[0]})`);
  }
}

/** The render counts once every push and read in flight is handled and React has rendered. */
const settle = (page) => page.evaluate(() => window.__settle());

/** The render counts that changed between two readings. */
function delta(before, now) {
  const out = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(now)])) out[name] = (now[name] || 0) - (before[name] || 0);
  return out;
}

const clientListeners = () => Object.fromEntries(['change', 'status', 'progress', 'conflict'].map((name) => [name, client.listenerCount(name)]));

/** Waits until the page's store listens to nothing, then until main has handled the unsubscribes. */
async function waitUnsubscribed(page) {
  await page.waitForFunction(() => window.__storeDebug().events.length === 0 && window.__storeDebug().entries === 0, null, WAIT);
  await page.evaluate(() => window.deltasync.queueStats()); // invokes are handled in order
}

let page1;

test('the hooks render the store, and re-render only what they read', async () => {
  client.put('note', 'n1', { title: 'Alpha' });
  client.put('todo', 't1', { text: 'one', done: false });
  page1 = await openPage();
  await page1.evaluate(() => window.__mount({ withBad: true }));

  await waitText(page1, 'client', 'bridge'); // useSyncClient
  await waitText(page1, 'notes', 'Alpha'); // useQuery
  await waitText(page1, 'todos', 'one');
  await waitText(page1, 'doc', '(none)'); // useDocument
  await waitText(page1, 'state', 'stopped'); // useSyncStatus(selector)
  await waitText(page1, 'pending', '2@0'); // useSyncStatus()
  await waitText(page1, 'progress', 'none');
  await waitText(page1, 'conflicts', '');
  await waitText(page1, 'useSync', 'stopped|none|ready|');
  await waitText(page1, 'triggers', 'still');
  await waitText(page1, 'bad', /^caught INVALID_ARGUMENT: /); // a failed read throws to the error boundary
  await waitText(page1, 'orphan', 'caught deltasync/react: useDocument() must be called inside <SyncProvider client={...}>');
  const initial = await settle(page1);
  figures.initialRenders = initial;

  // a local write of another entity type, in main
  client.put('todo', 't2', { text: 'two', done: false });
  await waitText(page1, 'todos', 'one,two');
  await waitText(page1, 'pending', '3@0');
  const afterTodo = await settle(page1);
  const todoDelta = delta(initial, afterTodo);
  assert.equal(todoDelta.NoteList, 0, 'a todo write does not re-render the note list');
  assert.equal(todoDelta.NoteDoc, 0);
  assert.equal(todoDelta.TodoList, 1);
  assert.equal(todoDelta.StateBadge, 0);
  assert.equal(todoDelta.ProgressBar, 0);
  figures.localWriteOfAnotherType = todoDelta;

  // a local write from the page, through window.deltasync
  await page1.evaluate(() => window.deltasync.put('note', 'n2', { title: 'Beta' }));
  await waitText(page1, 'notes', 'AlphaBeta');
  await waitText(page1, 'pending', '4@0');
  const afterNote = await settle(page1);
  const noteDelta = delta(afterTodo, afterNote);
  assert.equal(noteDelta.NoteList, 1);
  assert.equal(noteDelta.NoteDoc, 0, 'another note: useDocument(r1) does not re-render');
  assert.equal(noteDelta.TodoList, 0);
  assert.equal(noteDelta.StateBadge, 0);
  figures.localWriteFromThePage = noteDelta;

  // a remote page of another type: every read is refetched (the event names no type), the note list is deep-equal
  await client.applyRemote(remotePage([[1, 'CREATED', 'todo', 't3', { text: 'three', done: false }]]));
  await waitText(page1, 'todos', 'one,two,three');
  await waitText(page1, 'pending', '4@1');
  await waitText(page1, 'progress', 'none');
  const afterRemoteTodo = await settle(page1);
  const remoteTodoDelta = delta(afterNote, afterRemoteTodo);
  assert.equal(remoteTodoDelta.NoteList, 0, 'a remote todo does not re-render the note list');
  assert.equal(remoteTodoDelta.NoteDoc, 0);
  assert.equal(remoteTodoDelta.TodoList, 1);
  assert.equal(remoteTodoDelta.StateBadge, 0);
  figures.remotePageOfAnotherType = remoteTodoDelta;

  // a remote change of the document shown
  await client.applyRemote(remotePage([[2, 'CREATED', 'note', 'r1', { title: 'Remote' }]]));
  await waitText(page1, 'doc', 'Remote');
  await waitText(page1, 'notes', 'AlphaBetaRemote');
  const afterRemoteNote = await settle(page1);
  const remoteNoteDelta = delta(afterRemoteTodo, afterRemoteNote);
  assert.equal(remoteNoteDelta.NoteList, 1);
  assert.equal(remoteNoteDelta.NoteDoc, 1);
  assert.equal(remoteNoteDelta.TodoList, 0);
  assert.equal(remoteNoteDelta.StateBadge, 0);
  figures.remotePageOfTheNote = remoteNoteDelta;

  // progress ticks: only what selects progress re-renders
  client.emit('progress', { applied: 1, total: 4, bytesParsed: 10 });
  await waitText(page1, 'progress', '1/4');
  client.emit('progress', { applied: 2, total: 4, bytesParsed: 20 });
  await waitText(page1, 'progress', '2/4');
  client.emit('change', { source: 'remote', applied: 0, skipped: 0, latestServerVersion: 2 });
  await waitText(page1, 'progress', 'none');
  const afterProgress = await settle(page1);
  const progressDelta = delta(afterRemoteNote, afterProgress);
  assert.equal(progressDelta.ProgressBar, 3, 'two ticks and the end');
  assert.equal(progressDelta.StateBadge, 0, 'useSyncStatus(s => s?.state) ignores progress');
  assert.equal(progressDelta.NoteList, 0);
  assert.equal(progressDelta.TodoList, 0);
  assert.equal(progressDelta.SyncButton, 0, 'useSync selects state and error only');
  assert.equal(progressDelta.Triggers, 0);
  figures.twoProgressTicksAndTheEnd = progressDelta;
});

test('useConflicts lists the open conflicts and resolves one', async () => {
  client.put('note', 'k1', { title: 'Mine' });
  await waitText(page1, 'notes', 'AlphaBetaMineRemote');
  await client.applyRemote(remotePage([[3, 'UPDATED', 'note', 'k1', { title: 'Theirs' }]]));
  await waitText(page1, 'conflicts', /^\d+:k1:Theirs$/);
  const [conflict] = client.conflicts();
  const before = await settle(page1);
  const resolved = await page1.evaluate((id) => window.__resolve(id, { use: 'remote' }), conflict.id);
  assert.deepEqual(resolved, { title: 'Theirs' });
  await waitText(page1, 'conflicts', '');
  // The resolution's 'change' event (source 'resolution') reaches the page: the entity's reads are made again
  await waitText(page1, 'notes', 'AlphaBetaRemoteTheirs');
  const after = await settle(page1);
  assert.equal(delta(before, after).TodoList, 0);
  assert.deepEqual(client.conflicts(), []);
});

test('useSync and useSyncTriggers run a manual sync and show its state', async () => {
  const before = await settle(page1);
  const hold = net.holdBefore();
  await page1.click('#sync');
  await hold.reached;
  await waitText(page1, 'useSync', 'syncing|none|loading|');
  await waitText(page1, 'triggers', 'syncing');
  hold.release();
  await waitText(page1, 'useSync', /^stopped\|none\|ready\|pushed \d+$/);
  await waitText(page1, 'triggers', 'still');
  await waitText(page1, 'pending', /^0@5\d$/); // pushed everything, pulled the 50 seeds
  const afterSync = await settle(page1);
  const syncDelta = delta(before, afterSync);
  assert.equal(syncDelta.NoteList, 0, 'a sync that pulls 50 documents of another type does not re-render the note list');
  assert.equal(syncDelta.TodoList, 0);
  figures.syncPulling50OfAnotherType = syncDelta;

  net.fail(httpError(500));
  await page1.click('#sync');
  await waitText(page1, 'useSync', /^\w+\|TRANSPORT\|ready\|failed TRANSPORT$/);

  const summary = await page1.evaluate(() => window.__manualSync());
  assert.equal(typeof summary.pushed, 'number');
  await waitText(page1, 'useSync', /^stopped\|none\|ready\|failed TRANSPORT$/);

  // the preload reports the window's focus; useSyncTriggers adds nothing for the renderer client
  const from = invokes.length;
  await page1.evaluate(() => window.dispatchEvent(new Event('focus')));
  await settle(page1);
  assert.deepEqual(invokes.slice(from).filter((method) => method === 'notify'), ['notify']);
});

test('StrictMode: fresh data after remounting, and no subscription left after unmounting', async () => {
  assert.deepEqual(clientListeners(), { change: 1, status: 1, progress: 1, conflict: 1 }, 'one forwarder per event');
  await page1.evaluate(() => window.__unmount());
  await waitUnsubscribed(page1);
  assert.deepEqual(clientListeners(), { change: 0, status: 0, progress: 0, conflict: 0 });

  client.put('note', 'n3', { title: 'Gamma' }); // while nothing listens
  await page1.evaluate(() => window.__mount({ strict: true }));
  await waitText(page1, 'notes', 'AlphaBetaGammaRemoteTheirs');
  await waitText(page1, 'doc', 'Remote');
  client.patch('note', 'r1', { title: 'Remote 2' });
  await waitText(page1, 'doc', 'Remote 2');
  await waitText(page1, 'notes', 'AlphaBetaGammaRemote 2Theirs');
  await page1.evaluate(() => window.deltasync.put('todo', 't4', { text: 'four', done: false }));
  await waitText(page1, 'todos', 'one,two,three,four');
  const next = client.serverVersion + 1;
  await client.applyRemote(remotePage([[next, 'UPDATED', 'todo', 't3', { text: 'three!' }]]));
  await waitText(page1, 'todos', 'one,two,three!,four');
  await settle(page1);
  const debug = await page1.evaluate(() => window.__storeDebug());
  assert.equal(debug.entries, 5, 'two queries, one document, the status, the conflicts: one entry each despite the double mount');
  assert.deepEqual(debug.events.sort(), ['change', 'conflict', 'progress', 'status']);
  assert.deepEqual(clientListeners(), { change: 1, status: 1, progress: 1, conflict: 1 });
});

test('two windows on one client: a write in one reaches the other', async () => {
  const page2 = await openPage();
  await page2.evaluate(() => window.__mount({ strict: true }));
  await waitText(page2, 'notes', 'AlphaBetaGammaRemote 2Theirs');
  const before = await settle(page2);
  await page1.evaluate(() => window.deltasync.put('note', 'w1', { title: 'Window' }));
  await waitText(page2, 'notes', 'AlphaBetaGammaRemote 2TheirsWindow');
  await waitText(page1, 'notes', 'AlphaBetaGammaRemote 2TheirsWindow');
  const after = await settle(page2);
  figures.otherWindowOnANoteWriteStrictMode = delta(before, after); // StrictMode renders each component twice per update
  assert.equal(figures.otherWindowOnANoteWriteStrictMode.TodoList, 0);

  await page2.close(); // its webContents is destroyed: main forgets it
  assert.deepEqual(clientListeners(), { change: 1, status: 1, progress: 1, conflict: 1 }, 'window 1 still listens');
  client.put('note', 'w2', { title: 'Zeta' });
  await waitText(page1, 'notes', 'AlphaBetaGammaRemote 2TheirsWindowZeta');

  await page1.evaluate(() => window.__unmount());
  await waitUnsubscribed(page1);
  assert.deepEqual(clientListeners(), { change: 0, status: 0, progress: 0, conflict: 0 });
});

test('an in-process client in the page: synchronous reads, window triggers to notify()', async () => {
  await page1.evaluate(() => window.__mountInProcess());
  await waitText(page1, 'inprocess', 'A|1|false');
  assert.equal(await page1.evaluate(() => window.fakeClient.listenerCount('change')), 1, 'one listener despite StrictMode');
  await page1.evaluate(() => {
    window.dispatchEvent(new Event('focus'));
    window.dispatchEvent(new Event('blur')); // its notify throws: ignored
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('offline'));
  });
  assert.deepEqual(await page1.evaluate(() => window.fakeClient.notified), ['focus', 'blur', 'visible', 'offline']);
  await page1.evaluate(() => window.fakeClient.put('thing', 'b', { title: 'B' }));
  await waitText(page1, 'inprocess', 'A,B|2|false');
  const before = await page1.evaluate(() => window.renders.InProcessList);
  await page1.evaluate(() => window.fakeClient.emit('change', { source: 'remote', applied: 0, skipped: 0, latestServerVersion: 1 }));
  await settle(page1);
  assert.equal(await page1.evaluate(() => window.renders.InProcessList), before, 'an unchanged refetch renders nothing');

  await page1.evaluate(() => window.__unmountInProcess());
  await page1.waitForFunction(() => window.__inProcessDebug().events.length === 0, null, WAIT);
  assert.equal(await page1.evaluate(() => window.fakeClient.listenerCount('change')), 0);
  await page1.evaluate(() => window.dispatchEvent(new Event('focus')));
  assert.equal(await page1.evaluate(() => window.fakeClient.notified.length), 4, 'the window listeners went with the last component');
});

test('no page error, and the render counts recorded', (t) => {
  // React's development build reports the errors its boundaries caught as window errors too
  const expected = [/^Error: deltasync\/react: useDocument\(\) must be called inside/, /^SyncError: INVALID_ARGUMENT: Expected field paths/];
  assert.deepEqual(pageErrors.map(String).filter((error) => !expected.some((pattern) => pattern.test(error))), []);
  recordFigures('react', figures);
  t.diagnostic(`render counts: ${JSON.stringify(figures)}`);
});
