'use strict';

// Conflict resolvers an app writes itself, on the server (`conflicts` / `perType` as functions),
// through SyncServer's methods and over real HTTP; and two started clients converging through
// them. Every scenario: device d1 creates note "a" (version 1), d2 edits it from that base,
// then d3 pushes an edit based on version 1 too: a conflict.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');

const { SyncClient, SyncServer, httpTransport } = require('../..');
const { storeOptions } = require('./postgres-harness');
const { startApp, logOf, assertGapless, stateOf, change } = require('./fixtures/server-http');
const { assertSyncError } = require('./helpers');

const T0 = 1_700_000_000_000;
const USER = 'alice';

async function serverWithConflict(t, resolverOptions) {
  const server = new SyncServer({ ...storeOptions('resolvers'), ...resolverOptions });
  t.after(() => server.close());
  await server.push(USER, 'd1', [change('c1', 'CREATED', 'a', { title: 'first', tags: ['x'] }, { timestamp: T0 })]);
  await server.push(USER, 'd2', [change('c2', 'UPDATED', 'a', { tags: ['x', 'two'] }, { baseVersion: 1, timestamp: T0 + 10 })]);
  return server;
}

const conflicting = (id = 'c3', data = { title: 'three', tags: ['x', 'three'] }) =>
  change(id, 'UPDATED', 'a', data, { baseVersion: 1, timestamp: T0 + 20 });

const counting = (resolve) => {
  const calls = [];
  const fn = (context) => {
    calls.push(structuredClone(context));
    return resolve(context);
  };
  fn.calls = calls;
  return fn;
};

/** The server's document note/`entityId` (or `type`/`entityId`), from its log. */
async function current(server, entityId = 'a', type = 'note') {
  return (await stateOf(server, USER))[`${type}/${entityId}`];
}

/** The user's log is gapless. */
async function gapless(server) {
  assertGapless((await logOf(server, USER)).changes);
}

describe('a server resolver', () => {
  test('is given the conflict as plain data: server, client, base from the log, and the client change', async (t) => {
    const resolver = counting(() => ({ use: 'remote' }));
    const server = await serverWithConflict(t, { perType: { note: resolver } });
    await server.push(USER, 'd3', [conflicting()]);
    assert.deepEqual(resolver.calls, [
      {
        entityType: 'note',
        entityId: 'a',
        server: { title: 'first', tags: ['x', 'two'] },
        client: { title: 'three', tags: ['x', 'three'] },
        base: { title: 'first', tags: ['x'] },
        serverVersion: 2,
        clientChange: {
          changeId: 'c3',
          type: 'UPDATED',
          data: { title: 'three', tags: ['x', 'three'] },
          baseVersion: 1,
          timestamp: T0 + 20,
          deviceId: 'd3',
        },
      },
    ]);
  });

  const verdicts = [
    ["{ use: 'local' } is the client's side", () => ({ use: 'local' }), 'client', { title: 'three', tags: ['x', 'three'] }],
    ["{ use: 'remote' } is the server's side", async () => ({ use: 'remote' }), 'server', { title: 'first', tags: ['x', 'two'] }],
    [
      "{ use: 'merged', data } replaces the document as a whole",
      ({ server, client }) => ({ use: 'merged', data: { title: client.title, tags: [...new Set([...server.tags, ...client.tags])] } }),
      'merged',
      { title: 'three', tags: ['x', 'two', 'three'] },
    ],
  ];
  for (const [what, resolve, winner, expected] of verdicts) {
    test(what, async (t) => {
      const server = await serverWithConflict(t, { conflicts: resolve });
      const response = await server.push(USER, 'd3', [conflicting()]);
      assert.equal(response.conflicts.length, 1);
      assert.equal(response.conflicts[0].winner, winner);
      assert.equal(response.conflicts[0].resolution, 'custom');
      assert.deepEqual(await current(server), expected);
      await gapless(server);
    });
  }

  test('needsManualReview opens a manual conflict that resolveConflict settles', async (t) => {
    const server = await serverWithConflict(t, { perType: { note: () => ({ needsManualReview: true }) } });
    const response = await server.push(USER, 'd3', [conflicting()]);
    assert.equal(response.conflicts[0].winner, 'manual');
    const [open] = await server.conflicts(USER);
    assert.equal(open.changeId, 'c3');
    await server.resolveConflict(USER, open.conflictId ?? open.id, { use: 'client' });
    assert.deepEqual(await current(server), { title: 'three', tags: ['x', 'three'] });
  });

  const failures = [
    ['throws', () => { throw new Error('boom'); }, /the resolver threw: boom/i],
    ['returns garbage', () => 'yes', /returned "yes" of type string/],
    ['returns merged data too deep to store', () => ({ use: 'merged', data: deep(80) }), /merged data was refused/],
    ['is late', () => new Promise(() => {}), /did not answer within 20 ms/],
  ];
  for (const [what, resolve, reason] of failures) {
    test(`a resolver that ${what} makes a manual conflict with the reason, and changes nothing`, async (t) => {
      const server = await serverWithConflict(t, { perType: { note: resolve }, resolverTimeoutMs: 20 });
      const response = await server.push(USER, 'd3', [conflicting()]);
      assert.equal(response.conflicts[0].winner, 'manual');
      assert.match(response.conflicts[0].reason, reason);
      assert.deepEqual(await current(server), { title: 'first', tags: ['x', 'two'] });
      assert.equal((await server.conflicts(USER)).length, 1);
    });
  }

  test('is asked for conflicting changes only, once each, and its verdict is stable across replays', async (t) => {
    let flip = 0;
    const resolver = counting(() => ((flip += 1) % 2 === 1 ? { use: 'local' } : { use: 'remote' }));
    const server = await serverWithConflict(t, { perType: { note: resolver } });
    const request = { deviceId: 'd3', lastKnownServerVersion: 0, changes: [change('n1', 'CREATED', 'fresh', { a: 1 }), conflicting()] };
    const first = await server.sync(USER, request);
    assert.equal(resolver.calls.length, 1, 'the CREATED of a new entity does not ask the resolver');
    const again = await server.sync(USER, request);
    const third = await server.sync(USER, JSON.stringify(request));
    assert.equal(resolver.calls.length, 1, 'replays return the recorded verdict');
    assert.deepEqual(again.conflicts, first.conflicts);
    assert.deepEqual(third.conflicts, first.conflicts);
    assert.equal(first.conflicts[0].winner, 'client');
    const log = (await logOf(server, USER)).changes;
    assert.equal(log.filter((c) => c.changeId === 'c3').length, 1, 'the change is logged once');
  });

  test('a verdict on a state that changed meanwhile is asked again on the new state', async (t) => {
    let server;
    const seen = [];
    const resolver = async (context) => {
      seen.push(context.serverVersion);
      if (seen.length === 1) {
        await server.push(USER, 'd2', [change('c4', 'UPDATED', 'a', { title: 'meanwhile' }, { baseVersion: 2, timestamp: T0 + 30 })]);
      }
      return { use: 'merged', data: { ...context.server, ...context.client, server: context.serverVersion } };
    };
    server = await serverWithConflict(t, { perType: { note: resolver } });
    const response = await server.push(USER, 'd3', [conflicting()]);
    assert.deepEqual(seen, [2, 3]);
    assert.equal(response.conflicts[0].winner, 'merged');
    assert.equal((await current(server)).server, 3, 'the verdict applied is the one made on version 3');
    await gapless(server);
  });

  test('options: a function in conflicts or perType; anything else is INVALID_ARGUMENT', () => {
    const open = (options) => new SyncServer({ path: ':memory:', ...options }).close();
    open({ conflicts: () => ({ use: 'local' }), perType: { task: 'manual', note: () => ({ use: 'remote' }) } });
    assertSyncError(() => open({ conflicts: 'mine' }), 'INVALID_ARGUMENT', /options\.conflicts/);
    assertSyncError(() => open({ perType: { note: {} } }), 'INVALID_ARGUMENT', /options\.perType\.note/);
    assertSyncError(() => open({ perType: { 'a b': 'manual' } }), 'INVALID_ARGUMENT', /keys of options\.perType/);
    assertSyncError(() => open({ resolverTimeoutMs: -1 }), 'INVALID_ARGUMENT', /options\.resolverTimeoutMs/);
  });
});

describe('over HTTP', () => {
  const union = ({ server, client }) => ({
    use: 'merged',
    data: { ...server, ...client, items: [...new Set([...(server?.items ?? []), ...(client?.items ?? [])])].sort() },
  });

  test('the v2 route and the compatible /push route go through the resolver', async (t) => {
    const resolver = counting(union);
    const app = await startApp({ serverOptions: { perType: { note: resolver, customers: resolver } } });
    t.after(() => app.close());
    await app.sync({ deviceId: 'd1', lastKnownServerVersion: 0, changes: [change('c1', 'CREATED', 'a', { items: ['a'] })] });
    await app.sync({ deviceId: 'd2', lastKnownServerVersion: 1, changes: [change('c2', 'UPDATED', 'a', { items: ['a', 'b'] }, { baseVersion: 1 })] });
    const v2 = await app.sync({ deviceId: 'd3', lastKnownServerVersion: 1, changes: [change('c3', 'UPDATED', 'a', { items: ['a', 'c'] }, { baseVersion: 1 })] });
    assert.equal(v2.conflicts[0].winner, 'merged');
    assert.deepEqual((await current(app.server)).items, ['a', 'b', 'c']);

    const record = (items, at) => ({ customer_id: 'C1', items, updated_at: at });
    const first = await app.post('/push', { deviceId: 'p1', changes: { customers: [record(['x'], '2025-01-15T11:00:00Z')] } });
    assert.equal(first.status, 200, first.text);
    const second = await app.post('/push', { deviceId: 'p2', changes: { customers: [record(['y'], '2025-01-15T10:00:00Z')] } });
    assert.equal(second.status, 200, second.text);
    assert.equal(resolver.calls.at(-1).entityType, 'customers');
    assert.deepEqual(resolver.calls.at(-1).server.items, ['x']);
  });

  test('resolvers that merge two lists make two started devices converge, on the server and on a device', async (t) => {
    const onServer = counting(union);
    const app = await startApp({ serverOptions: { perType: { list: onServer } } });
    t.after(() => app.close());
    const onDevice = counting(({ local, remote }) => union({ server: remote, client: local }));
    const device = (name, options) => {
      const client = new SyncClient({
        path: ':memory:',
        deviceId: name,
        transport: httpTransport({ url: app.base, headers: { 'x-user': USER } }),
        triggers: { periodicMs: 0, localChangeDelayMs: 0, minIntervalMs: 0 },
        conflicts: { list: onDevice },
        ...options,
      });
      t.after(() => client.close());
      return client;
    };
    const a = device('a');
    // b pushes one change per request, so a pulled change can meet one it has not sent yet.
    const b = device('b', { batch: { push: 1 } });
    const expected = { items: ['bread', 'eggs', 'milk'] };

    // Both edit while b's edit is still unsent: the server's resolver decides.
    a.put('list', 'groceries', { items: ['milk'] });
    await a.sync();
    await b.sync();
    a.put('list', 'groceries', { items: ['bread', 'milk'] });
    b.put('list', 'groceries', { items: ['eggs', 'milk'] });
    await a.sync();
    await b.sync();
    await a.sync();
    assert.deepEqual(a.get('list', 'groceries'), expected);
    assert.deepEqual(b.get('list', 'groceries'), expected);
    assert.deepEqual(await current(app.server, 'groceries', 'list'), expected);
    assert.equal(onServer.calls.length, 1);

    // b's edit waits behind another change: a's edit is pulled first and meets it on b.
    a.put('list', 'chores', { items: ['dishes'] });
    await a.sync();
    await b.sync();
    a.put('list', 'chores', { items: ['dishes', 'laundry'] });
    await a.sync();
    b.put('list', 'other', { items: [] });
    b.put('list', 'chores', { items: ['dishes', 'vacuum'] });
    await b.sync();
    await a.sync();
    const chores = { items: ['dishes', 'laundry', 'vacuum'] };
    assert.equal(onDevice.calls.length, 1, "b's resolver settled the conflict it met");
    assert.deepEqual(a.get('list', 'chores'), chores);
    assert.deepEqual(b.get('list', 'chores'), chores);
    assert.deepEqual(await current(app.server, 'chores', 'list'), chores);
    assert.equal(a.queue.stats().pending + b.queue.stats().pending, 0);
    assert.deepEqual([...a.conflicts(), ...b.conflicts()], []);
  });
});

function deep(levels) {
  let value = { leaf: true };
  for (let i = 0; i < levels; i++) value = { child: value };
  return value;
}
