'use strict';

// Conflict resolvers an app writes itself, on the client: `conflicts` as a function or a map
// of entity types to names and functions. Every scenario: note "a" pulled at version 1 as
// SERVER, a local write, then a pulled change of "a" from another device.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');

const { SyncClient } = require('../..');
const { memoryClient, openClient, tempDir, assertSyncError, remote, collect } = require('./helpers');

const SERVER = { title: 'server', tags: ['x'] };

async function conflictOn(t, conflicts, options = {}) {
  const client = memoryClient(t, { conflicts, ...options });
  await client.applyRemote(JSON.stringify([remote(1, 'a', { data: SERVER, timestamp: 1 })]));
  client.patch('note', 'a', { title: 'local', tags: ['x', 'l'] });
  return client;
}

const remoteUpdate = (version = 2, data = { tags: ['x', 'r'] }) =>
  remote(version, 'a', { type: 'UPDATED', data, timestamp: 5000, deviceId: 'device-r' });

const queued = (client) => client.queue.pending().map((c) => ({ type: c.type, data: c.data, baseVersion: c.baseVersion }));

const unionOfTags = ({ local, remote: server }) => ({
  use: 'merged',
  data: { ...server, ...local, tags: [...new Set([...(server?.tags ?? []), ...(local?.tags ?? [])])] },
});

describe('a resolver function', () => {
  test('is given the conflict as plain data: both sides, the base and both changes', async (t) => {
    const contexts = [];
    const client = await conflictOn(t, (context) => {
      contexts.push(structuredClone(context));
      return { use: 'remote' };
    });
    await client.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.equal(contexts.length, 1);
    const [context] = contexts;
    const localChange = context.localChange;
    assert.deepEqual(context, {
      entityType: 'note',
      entityId: 'a',
      local: { title: 'local', tags: ['x', 'l'] },
      remote: { title: 'server', tags: ['x', 'r'] },
      base: SERVER,
      localChange: { changeId: localChange.changeId, type: 'UPDATED', data: { title: 'local', tags: ['x', 'l'] }, timestamp: localChange.timestamp },
      remoteChange: { changeId: 'r2', version: 2, type: 'UPDATED', data: { tags: ['x', 'r'] }, timestamp: 5000, deviceId: 'device-r' },
    });
    assert.equal(typeof localChange.changeId, 'string');
  });

  test("'merged': the merge is visible, its difference to the remote is queued, the conflict is closed", async (t) => {
    const client = await conflictOn(t, unionOfTags);
    const conflicts = collect(client, 'conflict');
    const changes = collect(client, 'change');
    const result = await client.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'r', 'l'] });
    assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', tags: ['x', 'r', 'l'] }, baseVersion: 2 }]);
    assert.deepEqual(client.conflicts(), []);
    assert.equal(result.conflicts[0].winner, 'merged');
    assert.equal(result.conflicts[0].strategy, 'custom');
    assert.deepEqual(conflicts.map((c) => c.winner), ['merged']);
    assert.deepEqual(
      changes.map((c) => c.source),
      ['remote', 'resolution'],
      "'change' tells of the page, then of the resolution",
    );
  });

  test("'local' keeps the local state, queued against the remote version; 'remote' takes the server's", async (t) => {
    const local = await conflictOn(t, () => ({ use: 'local' }));
    await local.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.deepEqual(local.get('note', 'a'), { title: 'local', tags: ['x', 'l'] });
    assert.deepEqual(queued(local), [{ type: 'UPDATED', data: { title: 'local', tags: ['x', 'l'] }, baseVersion: 2 }]);

    const remoteWins = await conflictOn(t, async () => ({ use: 'remote' }));
    await remoteWins.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.deepEqual(remoteWins.get('note', 'a'), { title: 'server', tags: ['x', 'r'] });
    assert.deepEqual(queued(remoteWins), []);
    assert.deepEqual(remoteWins.conflicts(), []);
  });

  test('needsManualReview keeps the conflict open for a person, with nothing lost', async (t) => {
    const client = await conflictOn(t, () => ({ needsManualReview: true }));
    const result = await client.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.equal(result.conflicts[0].winner, 'manual');
    const [open] = client.conflicts();
    assert.equal(open.awaitingResolver, false);
    assert.equal(open.resolverError, null);
    assert.deepEqual(open.base, SERVER);
    assert.deepEqual(open.remote, { title: 'server', tags: ['x', 'r'] });
    assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'l'] });
    assert.equal(queued(client).length, 1);
    client.resolveConflict(open.id, { use: 'merged', data: { title: 'both', tags: [] } });
    assert.deepEqual(client.get('note', 'a'), { title: 'both', tags: [] });
  });

  const failures = [
    ['throws', () => { throw new Error('boom'); }, /The resolver threw: boom/],
    ['rejects', async () => { throw new TypeError('async boom'); }, /The resolver threw: async boom/],
    ['returns a number', () => 42, /returned 42 of type number/],
    ['returns an unknown use', () => ({ use: 'theirs' }), /returned use "theirs"/],
    ['returns merged without data', () => ({ use: 'merged' }), /use "merged" with data that is undefined/],
    ['returns merged data with NaN', () => ({ use: 'merged', data: { n: NaN } }), /merged data was refused/],
    ['returns merged data past the depth limit', () => ({ use: 'merged', data: deep(40) }), /merged data was refused/],
  ];
  for (const [what, resolver, message] of failures) {
    test(`a resolver that ${what} leaves the conflict open with the error, and loses neither side`, async (t) => {
      const client = await conflictOn(t, resolver, { limits: { maxDepth: 16 } });
      const events = collect(client, 'conflict');
      await client.applyRemote(JSON.stringify([remoteUpdate()]));
      const [open] = client.conflicts();
      assert.ok(open, 'the conflict stays open');
      assert.match(open.resolverError, message);
      assert.equal(open.awaitingResolver, false);
      assert.deepEqual(open.remote, { title: 'server', tags: ['x', 'r'] });
      assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'l'] });
      assert.deepEqual(queued(client), [{ type: 'UPDATED', data: { title: 'local', tags: ['x', 'l'] }, baseVersion: 1 }]);
      assert.deepEqual(events.map((c) => c.winner), ['manual']);
    });
  }

  test('a hostile answer (a throwing getter, a Proxy) leaves the conflict open, never throws', async (t) => {
    const answers = [
      () => ({ get use() { throw new Error('getter'); } }),
      () => new Proxy({}, { getPrototypeOf() { throw new Error('trap'); } }),
      () => {
        let reads = 0;
        return { get use() { reads += 1; return reads === 1 ? 'local' : 'nonsense'; } };
      },
    ];
    for (const answer of answers) {
      const client = await conflictOn(t, answer);
      await client.applyRemote(JSON.stringify([remoteUpdate()]));
      const open = client.conflicts();
      if (open.length === 0) {
        assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'l'] }, 'read once: local');
      } else {
        assert.match(open[0].resolverError, /getter|trap/);
      }
    }
  });

  test('pages applied while a resolver decides do not ask it twice about one conflict', async (t) => {
    let calls = 0;
    const client = await conflictOn(t, async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { use: 'remote' };
    });
    await Promise.all([
      client.applyRemote(JSON.stringify([remoteUpdate()])),
      client.applyRemote('[]'),
      client.applyRemote('[]'),
    ]);
    assert.equal(calls, 1);
    assert.deepEqual(client.conflicts(), []);
  });

  test('a resolver that never answers is given up on after resolverTimeoutMs', async (t) => {
    const client = await conflictOn(t, () => new Promise(() => {}), { resolverTimeoutMs: 20 });
    await client.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.match(client.conflicts()[0].resolverError, /did not answer within 20 ms/);
  });

  test('one failing entity does not hold back the others: they are settled in the same batch', async (t) => {
    const client = memoryClient(t, {
      conflicts: (context) => {
        if (context.entityId === 'a') throw new Error('not a');
        return { use: 'remote' };
      },
    });
    await client.applyRemote(JSON.stringify([remote(1, 'a', { timestamp: 1 }), remote(2, 'b', { timestamp: 1 })]));
    client.patch('note', 'a', { mine: 1 });
    client.patch('note', 'b', { mine: 1 });
    await client.applyRemote(
      JSON.stringify([
        remote(3, 'a', { type: 'UPDATED', data: { theirs: 1 }, timestamp: 5000 }),
        remote(4, 'b', { type: 'UPDATED', data: { theirs: 1 }, timestamp: 5000 }),
      ]),
    );
    assert.deepEqual(client.conflicts().map((c) => c.entityId), ['a']);
    assert.deepEqual(client.get('note', 'b'), { v: 2, theirs: 1 });
  });
});

describe('a map of entity types to strategies and resolvers', () => {
  test("each type gets its own; '*' names the others; unnamed types fall back to newest_wins", async (t) => {
    const calls = [];
    const client = memoryClient(t, {
      conflicts: {
        note: (context) => {
          calls.push(context.entityType);
          return { use: 'local' };
        },
        task: 'manual',
      },
    });
    const page = (version, type, extra) => remote(version, 'a', { entityType: type, ...extra });
    await client.applyRemote(JSON.stringify([page(1, 'note', { timestamp: 1 }), page(2, 'task', { timestamp: 1 }), page(3, 'memo', { timestamp: 1 })]));
    for (const type of ['note', 'task', 'memo']) client.patch(type, 'a', { mine: true });
    const result = await client.applyRemote(
      JSON.stringify([
        page(4, 'note', { type: 'UPDATED', data: { theirs: true }, timestamp: Date.now() + 3600000 }),
        page(5, 'task', { type: 'UPDATED', data: { theirs: true }, timestamp: Date.now() + 3600000 }),
        page(6, 'memo', { type: 'UPDATED', data: { theirs: true }, timestamp: Date.now() + 3600000 }),
      ]),
    );
    assert.deepEqual(calls, ['note']);
    assert.deepEqual(
      result.conflicts.map((c) => [c.entityType, c.strategy, c.winner]),
      [['note', 'custom', 'local'], ['task', 'manual', 'manual'], ['memo', 'newest_wins', 'remote']],
    );

    const withDefault = memoryClient(t, { conflicts: { '*': 'manual', note: 'client_wins' } });
    await withDefault.applyRemote(JSON.stringify([page(1, 'memo', { timestamp: 1 })]));
    withDefault.patch('memo', 'a', { mine: true });
    const other = await withDefault.applyRemote(JSON.stringify([page(2, 'memo', { type: 'UPDATED', data: { x: 1 }, timestamp: 5000 })]));
    assert.equal(other.conflicts[0].strategy, 'manual');
  });

  test('bad strategies, keys and timeouts are INVALID_ARGUMENT naming the option', (t) => {
    const open = (options) => new SyncClient({ path: ':memory:', ...options });
    assertSyncError(() => open({ conflicts: 'theirs' }), 'INVALID_ARGUMENT', /or a resolver function for options\.conflicts but/);
    assertSyncError(() => open({ conflicts: { note: 42 } }), 'INVALID_ARGUMENT', /options\.conflicts\.note/);
    assertSyncError(() => open({ conflicts: { 'no spaces': 'manual' } }), 'INVALID_ARGUMENT', /keys of options\.conflicts/);
    assertSyncError(() => open({ conflicts: { __proto__: null, constructor: 'manual' } }), 'INVALID_ARGUMENT', /keys of options\.conflicts/);
    assertSyncError(() => open({ conflicts: { '*': () => 1, note: [] } }), 'INVALID_ARGUMENT', /options\.conflicts\.note/);
    assertSyncError(() => open({ resolverTimeoutMs: 0 }), 'INVALID_ARGUMENT', /options\.resolverTimeoutMs/);
    assertSyncError(() => open({ resolverTimeoutMs: 2 ** 31 }), 'INVALID_ARGUMENT', /options\.resolverTimeoutMs/);
  });
});

describe('verdicts and what happens meanwhile', () => {
  test('a local write while the resolver decides makes its verdict stale: it is asked again with the new local side', async (t) => {
    const locals = [];
    let client;
    client = await conflictOn(t, (context) => {
      locals.push(context.local);
      if (locals.length === 1) client.patch('note', 'a', { late: true });
      return { use: 'local' };
    });
    await client.applyRemote(JSON.stringify([remoteUpdate()]));
    assert.equal(locals.length, 2);
    assert.equal(locals[1].late, true, 'the second ask sees the write made meanwhile');
    assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'l'], late: true });
    assert.deepEqual(client.conflicts(), []);
  });

  test("a verdict never drops a local write made after the conflict opened ('local' keeps it)", async (t) => {
    const client = await conflictOn(t, () => ({ needsManualReview: true }));
    await client.applyRemote(JSON.stringify([remoteUpdate()]));
    client.patch('note', 'a', { after: 1 });
    const [open] = client.conflicts();
    assert.deepEqual(open.local, { title: 'local', tags: ['x', 'l'], after: 1 }, 'the list shows the local side as it is now');
    client.resolveConflict(open.id, { use: 'local' });
    assert.deepEqual(client.get('note', 'a'), { title: 'local', tags: ['x', 'l'], after: 1 });
  });

  test('conflicts a closed client left awaiting its resolver are settled with the next page after reopening', async (t) => {
    const file = `${tempDir(t)}/client.db`;
    let release;
    const first = openClient(t, { path: file, conflicts: () => new Promise((resolve) => { release = resolve; }) });
    await first.applyRemote(JSON.stringify([remote(1, 'a', { data: SERVER, timestamp: 1 })]));
    first.patch('note', 'a', { title: 'local' });
    const pending = first.applyRemote(JSON.stringify([remoteUpdate()]));
    while (!release) await new Promise((resolve) => setImmediate(resolve));
    first.close();
    release({ use: 'remote' });
    await pending;

    const again = openClient(t, { path: file, conflicts: unionOfTags });
    const [awaiting] = again.conflicts();
    assert.equal(awaiting.awaitingResolver, true, 'the conflict survived the close, awaiting the resolver');
    await again.applyRemote('[]');
    assert.deepEqual(again.conflicts(), []);
    assert.deepEqual(again.get('note', 'a'), { title: 'local', tags: ['x', 'r'] });
  });
});

function deep(levels) {
  let value = { leaf: true };
  for (let i = 0; i < levels; i++) value = { child: value };
  return value;
}

describe('resolver timing, on a mocked clock', () => {
  const { decide } = require('../../lib/resolver');

  /** decide() with a resolver answering after `answerMs`, the clock moved by hand. */
  async function decideAfter(t, answerMs, timeoutMs) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const resolver = () => new Promise((resolve) => setTimeout(() => resolve({ use: 'local' }), answerMs));
    const decision = decide(resolver, {}, timeoutMs);
    for (let ms = 0; ms < Math.max(answerMs, timeoutMs) + 1; ms++) {
      await new Promise((resolve) => setImmediate(resolve)); // every pending promise settles first
      t.mock.timers.tick(1);
    }
    return decision;
  }

  test('an answer within the timeout counts, to the millisecond', async (t) => {
    assert.deepEqual(await decideAfter(t, 999, 1000), { use: 'local' });
  });

  test('an answer after the timeout does not, and says how long it waited', async (t) => {
    assert.deepEqual(await decideAfter(t, 1001, 1000), { use: null, error: 'The resolver did not answer within 1000 ms' });
  });

  test('the timer is cleared once the resolver answers', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const cleared = [];
    const original = globalThis.clearTimeout;
    t.after(() => {
      globalThis.clearTimeout = original;
    });
    globalThis.clearTimeout = (timer) => {
      cleared.push(timer);
      return original(timer);
    };
    assert.deepEqual(await decide(() => ({ use: 'remote' }), {}, 1000), { use: 'remote' });
    assert.equal(cleared.length, 1);
  });
});
