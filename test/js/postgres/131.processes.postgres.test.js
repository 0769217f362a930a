'use strict';

// Several `deltasync serve --postgres` processes on one PostgreSQL database, driven over real
// HTTP: 32 clients spread over 4 processes, retries and the same request sent to two processes
// at once, a live client streaming from another process than the writer's, a process killed
// with SIGKILL in the middle of a push, and database connections terminated mid-transaction.
// Checked: every user's versions are gapless, every changeId is applied exactly once, and every
// replica converges to the server's state.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { SyncClient, SyncServer, httpTransport } = require('../../..');
const { startServe } = require('../fixtures/cli-helpers');
const { startPostgres, stopPostgres, freshSchema } = require('../postgres-harness');

const TOKEN = 'multi-process-test-token';
const USERS = ['ada', 'bob', 'cy', 'dee'];

let pg;
let schema;
const processes = [];
// The serve processes outlive one test: they are stopped when the suite ends.
const cleanups = [];
const suiteScope = { after: (fn) => cleanups.push(fn) };

/** `deltasync serve` on the shared schema: the real CLI, in a process of its own. */
async function serve(t) {
  const env = pg.libpq ? { LD_LIBRARY_PATH: path.dirname(pg.libpq) } : {};
  const started = await startServe(t, ['--postgres', pg.url, '--schema', schema, '--port', '0', '--token', TOKEN,
    '--insecure-dev-users'], env);
  return started;
}

function headers(user, extra = {}) {
  return { authorization: `Bearer ${TOKEN}`, 'x-user-id': user, 'content-type': 'application/json', ...extra };
}

async function postV2(base, user, body) {
  const response = await fetch(`${base}/v2`, { method: 'POST', headers: headers(user), body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

async function until(predicate, what, ms = 20000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out waiting for ${what}` });
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function client(t, base, user, options = {}) {
  const synced = new SyncClient({
    path: ':memory:',
    transport: httpTransport({ url: base, headers: { authorization: `Bearer ${TOKEN}`, 'x-user-id': user } }),
    triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 0 },
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    live: false,
    ...options,
  });
  synced.on('error', () => {});
  t.after(() => synced.close());
  return synced;
}

/** The whole log of a user, read directly from the database. */
async function logOf(server, user) {
  const changes = [];
  for (let since = 0; ;) {
    const page = await server.pull(user, { since, limit: 1000 });
    changes.push(...page.newChanges);
    if (!page.hasMore) return changes;
    since = page.latestServerVersion;
  }
}

function assertGaplessOnce(changes, user) {
  changes.forEach((change, i) => assert.equal(change.version, i + 1, `${user}: version ${i + 1} is missing or out of order`));
  const ids = changes.map((change) => change.changeId);
  assert.equal(new Set(ids).size, ids.length, `${user}: a changeId was applied twice`);
}

/** What the log makes of a user's entities: type/id -> document (deleted ones absent). */
function replay(changes) {
  const state = new Map();
  for (const change of changes) {
    const key = `${change.entityType}/${change.entityId}`;
    if (change.type === 'DELETED') state.delete(key);
    else if (change.type === 'CREATED') state.set(key, change.data);
    else state.set(key, { ...(state.get(key) ?? {}), ...change.data });
  }
  return state;
}

describe('many deltasync serve processes on one PostgreSQL', { timeout: 120000 }, () => {
  let direct;
  before(async () => {
    pg = await startPostgres();
    schema = freshSchema('processes');
  });
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
    direct?.close();
    await stopPostgres();
  });

  test('4 processes, 32 clients, duplicated requests across processes: gapless, exactly once, converged', async (t) => {
    for (let i = 0; i < 4; i += 1) processes.push(await serve(suiteScope));
    direct = new SyncServer({ postgres: { connectionString: pg.url, schema, libpq: pg.libpq } });

    // The same request reaching two processes at the same moment is applied once.
    const body = {
      deviceId: 'twin',
      lastKnownServerVersion: 0,
      changes: [{ changeId: 'twin-1', type: 'CREATED', entityType: 'note', entityId: 'twin', data: { n: 1 }, timestamp: 1 }],
    };
    const twins = await Promise.all(processes.map((p) => postV2(p.url, 'ada', body)));
    for (const twin of twins) {
      assert.equal(twin.status, 200);
      assert.deepEqual(twin.body.applied, [{ changeId: 'twin-1', version: 1 }]);
    }

    // 32 clients, 8 per user, each on process i % 4; each writes its own notes and edits shared ones.
    const clients = [];
    for (let i = 0; i < 32; i += 1) {
      const user = USERS[i % USERS.length];
      clients.push({ user, client: client(t, processes[i % 4].url, user) });
    }
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(clients.map(async ({ client: c }, i) => {
        for (let k = 0; k < 5; k += 1) c.put('note', `c${i}-n${k}`, { round, k, by: i });
        c.put('shared', `s${round}`, { by: i, round });
        await c.sync();
      }));
    }
    // Retries: a client whose pushes are sent twice (to two processes) by a flaky proxy.
    const doubled = client(t, processes[0].url, 'bob', {
      transport: async (request) => {
        const other = await postV2(processes[1].url, 'bob', request);
        assert.equal(other.status, 200);
        const response = await postV2(processes[2].url, 'bob', request);
        assert.equal(response.status, 200);
        return Buffer.from(JSON.stringify(response.body));
      },
    });
    for (let k = 0; k < 20; k += 1) doubled.put('note', `doubled-${k}`, { k });
    await doubled.sync();

    // Everyone pulls until nothing is left; then each replica equals its user's log.
    for (let pass = 0; pass < 2; pass += 1) await Promise.all(clients.map(({ client: c }) => c.sync()));
    await doubled.sync();
    for (const user of USERS) {
      const log = await logOf(direct, user);
      assertGaplessOnce(log, user);
      const state = replay(log);
      for (const { client: c } of clients.filter((entry) => entry.user === user).concat(user === 'bob' ? [{ client: doubled }] : [])) {
        assert.equal(c.serverVersion, log.length, `${user}: a replica is behind`);
        const held = c.list('note').length + c.list('shared').length;
        assert.equal(held, state.size, `${user}: a replica holds ${held} documents, the log ${state.size}`);
        for (const [key, doc] of state) assert.deepEqual(c.get(...key.split('/')), doc, `${user}: ${key}`);
      }
    }
    const bobLog = await logOf(direct, 'bob');
    assert.equal(bobLog.filter((change) => change.changeId.startsWith('doubled') || change.entityId.startsWith('doubled')).length, 20);
  });

  test('a write through process 1 reaches a live client streaming from process 2', async (t) => {
    const writer = client(t, processes[0].url, 'cy');
    const reader = client(t, processes[1].url, 'cy', { live: true });
    reader.start();
    await until(() => reader.status.live === true, 'the reader to be live');
    writer.put('note', 'live-across', { text: 'from process 1' });
    await writer.sync();
    // No sync is asked of the reader: only the poke from process 2's stream can bring the note.
    await until(() => reader.get('note', 'live-across') !== undefined, 'the poke from the other process');
    assert.deepEqual(reader.get('note', 'live-across'), { text: 'from process 1' });
    reader.stop();
  });

  test('SIGKILL of a process mid-push leaves all or nothing; the retry through another process applies once', async (t) => {
    const victim = await serve(t);
    const changes = Array.from({ length: 3000 }, (_, i) => ({
      changeId: `kill-${i}`, type: 'CREATED', entityType: 'note', entityId: `kill-${i}`, data: { i, pad: 'x'.repeat(200) }, timestamp: 1,
    }));
    const body = { deviceId: 'victim', lastKnownServerVersion: 0, changes };
    const before = (await logOf(direct, 'dee')).length;
    const sent = fetch(`${victim.url}/v2`, { method: 'POST', headers: headers('dee'), body: JSON.stringify(body) }).catch((error) => error);
    await new Promise((resolve) => setTimeout(resolve, 30));
    victim.child.kill('SIGKILL');
    await sent;
    await victim.exited;
    const afterKill = await logOf(direct, 'dee');
    assertGaplessOnce(afterKill, 'dee');
    const applied = afterKill.length - before;
    assert.ok(applied === 0 || applied === changes.length, `the killed push left ${applied} of ${changes.length} changes`);
    t.diagnostic(`the killed push had applied ${applied} of ${changes.length} changes`);
    const retried = await postV2(processes[3].url, 'dee', body);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.applied.length, changes.length);
    const final = await logOf(direct, 'dee');
    assertGaplessOnce(final, 'dee');
    assert.equal(final.length - before, changes.length);
  });

  test('connections terminated mid-transaction: requests are retried inside the server, nothing half-applied', async (t) => {
    const { Client } = require('pg');
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    const before = (await logOf(direct, 'ada')).length;
    let killing = true;
    let terminated = 0;
    const killer = (async () => {
      while (killing) {
        const result = await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'deltasync' AND state <> 'idle'");
        terminated += result.rowCount;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const statuses = [];
    for (let batch = 0; batch < 12; batch += 1) {
      const body = {
        deviceId: `fault-${batch}`,
        lastKnownServerVersion: 0,
        limit: 1,
        changes: Array.from({ length: 50 }, (_, i) => ({
          changeId: `fault-${batch}-${i}`, type: 'CREATED', entityType: 'note', entityId: `fault-${batch}-${i}`, data: { i }, timestamp: 1,
        })),
      };
      // Sent until it succeeds; a 503 (retries exhausted) must say when to come back.
      for (;;) {
        const response = await fetch(`${processes[batch % 4].url}/v2`, { method: 'POST', headers: headers('ada'), body: JSON.stringify(body) });
        statuses.push(response.status);
        if (response.status === 503) {
          assert.equal(response.headers.get('retry-after'), '1');
          assert.equal((await response.json()).error.code, 'UNAVAILABLE');
          continue;
        }
        const text = await response.text();
        assert.equal(response.status, 200, text);
        break;
      }
    }
    killing = false;
    await killer;
    await admin.end();
    const log = await logOf(direct, 'ada');
    assertGaplessOnce(log, 'ada');
    assert.equal(log.length - before, 12 * 50);
    t.diagnostic(`terminated ${terminated} backends; responses ${statuses.length} (503: ${statuses.filter((s) => s === 503).length})`);
  });
});
