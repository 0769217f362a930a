'use strict';

// Load: 32 real SyncClients (httpTransport, each on its own file) write at random to
// shared and private entities and call sync() over and over, for LOAD_SECONDS
// (default 5; the full run is LOAD_SECONDS=30), against ONE Express server
// (createSyncRouter over a SyncServer on a file) in a child process whose event loop is
// measured with monitorEventLoopDelay. Then the clients quiesce, and:
// - nothing failed: no sync rejected, no 'error' event, no change rejected or failed,
//   no 4xx/5xx answered by the server;
// - the server's log has gapless versions 1..N and unique changeIds;
// - nothing lost or duplicated: every write a client acknowledged ('change' event) is
//   in the log exactly once, or was coalesced into / cancelled with another queued
//   change, or lost a conflict the server reported; nothing is in the log that no
//   client wrote;
// - every client's documents equal the state replayed from the server's log, and every
//   queue is empty.
// Prints (as test diagnostics) changes/s and the server's event-loop p50/p99/max.
// The duration is the only wall-clock input; no assertion depends on timing.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');

const { SyncClient, tempDir } = require('./helpers');
const { SyncServer, logOf, assertGapless, replay } = require('./fixtures/server-http');
const { httpTransport } = require('../..');
const { recordFigures } = require('./fixtures/figures');

const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 5);
const CLIENTS = Number(process.env.LOAD_CLIENTS ?? 32);
const SHARED_ENTITIES = 24; // every client writes these: contention and conflicts
const PRIVATE_ENTITIES = 12; // per client: only its owner writes them
const USER = 'load-user';
const TYPES = ['shared', 'private'];
const CHILD = path.join(__dirname, 'fixtures', 'load-server.js');
const MAX_QUIESCE_ROUNDS = 25;

/** A small seeded generator (mulberry32), one per client. */
function random(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

function request(child, message, reply) {
  const answer = new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg && msg.type === reply) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(msg);
      }
    };
    const onExit = (code) => reject(new Error(`the server child exited (${code}) before answering ${reply}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
  if (message) child.send(message);
  return answer;
}

/** One load client: the SyncClient and what it saw. */
function makeClient(dir, base, index) {
  const client = new SyncClient({
    path: path.join(dir, `client-${index}.db`),
    deviceId: `device-${index}`,
    transport: httpTransport({ url: base, headers: { 'x-user': USER } }),
    retry: { maxRetries: 5, baseDelayMs: 10, maxDelayMs: 200 },
  });
  const seen = {
    index,
    client,
    rng: random(0x9e3779b9 ^ (index * 7919)),
    counter: 0,
    writes: 0,
    queued: new Set(), // changeIds that became queue rows
    merged: new Set(), // changeIds coalesced into the entity's queued row, or cancelled with it
    cancelledHeads: new Set(), // queued changeIds removed by a later cancelling write
    lastQueued: new Map(), // entity key -> the last queued changeId
    lost: new Set(), // changeIds the server reported as a conflict the client lost
    errors: [],
    syncs: 0,
    pushed: 0,
    pulled: 0,
    rejected: 0,
    failed: [],
    conflicts: 0,
  };
  client.on('change', (event) => {
    if (event.source !== 'local') return;
    for (const change of event.changes) {
      seen.writes += 1;
      const key = `${change.entityType}/${change.entityId}`;
      if (change.outcome === 'queued') {
        seen.queued.add(change.changeId);
        seen.lastQueued.set(key, change.changeId);
      } else if (change.outcome === 'coalesced') {
        // Merged into the entity's latest queued change (only a never-sent pending row coalesces).
        seen.merged.add(change.changeId);
        if (!seen.lastQueued.has(key)) seen.errors.push(`coalesced ${change.changeId} with no queued change of ${key}`);
      } else if (change.outcome === 'cancelled') {
        seen.merged.add(change.changeId);
        const head = seen.lastQueued.get(key);
        if (head === undefined) seen.errors.push(`cancelled ${change.changeId} with no queued change of ${key}`);
        else seen.cancelledHeads.add(head);
        seen.lastQueued.delete(key);
      } else {
        seen.errors.push(`unexpected outcome ${change.outcome} for ${change.changeId}`);
      }
    }
  });
  client.on('conflict', (conflict) => {
    if (conflict.source !== 'server') return;
    if (conflict.winner !== 'client' && conflict.winner !== 'merged') seen.lost.add(conflict.changeId);
  });
  client.on('error', (error) => seen.errors.push(`'error' event: ${error.code} ${error.message}`));
  return seen;
}

const FIELDS = ['a', 'b', 'c', 'd', 'e'];

/** One random write: put (with a random subset of fields), patch (set or remove a field) or delete. */
function randomWrite(seen) {
  const { client, rng, index } = seen;
  const shared = rng.next() < 0.5;
  const type = shared ? 'shared' : 'private';
  const id = shared ? `s${rng.int(SHARED_ENTITIES)}` : `p${index}-${rng.int(PRIVATE_ENTITIES)}`;
  seen.counter += 1;
  const roll = rng.next();
  if (roll < 0.45) {
    const doc = { id, by: index, n: seen.counter };
    for (const field of FIELDS) if (rng.next() < 0.5) doc[field] = `${index}:${seen.counter}:${field}`;
    client.put(type, id, doc);
  } else if (roll < 0.8) {
    if (client.get(type, id) === undefined) return;
    const field = FIELDS[rng.int(FIELDS.length)];
    const fields = { n: seen.counter, by: index, [field]: rng.next() < 0.25 ? null : `${index}:${seen.counter}` };
    try {
      client.patch(type, id, fields);
    } catch (error) {
      // A pulled delete can land between get() and patch() (applyRemote runs on a worker thread).
      if (error.code !== 'NOT_FOUND') throw error;
    }
  } else {
    client.delete(type, id);
  }
}

async function syncOnce(seen) {
  try {
    const summary = await seen.client.sync();
    seen.syncs += 1;
    seen.pushed += summary.pushed;
    seen.pulled += summary.pulled;
    seen.rejected += summary.rejected;
    seen.failed.push(...summary.failed);
    seen.conflicts += summary.conflicts;
    return summary;
  } catch (error) {
    seen.errors.push(`sync() rejected: ${error.code} ${error.message}`);
    return null;
  }
}

async function runLoad(seen, deadline) {
  while (Date.now() < deadline) {
    const writes = 1 + seen.rng.int(6);
    for (let i = 0; i < writes; i += 1) randomWrite(seen);
    await syncOnce(seen);
  }
}

/** Documents of `client` as "type/id" -> doc (every document carries its id). */
function clientState(client) {
  const state = {};
  for (const type of TYPES) {
    for (const doc of client.list(type)) state[`${type}/${doc.id}`] = doc;
  }
  return state;
}

test(`load: ${CLIENTS} clients through one Express server for ${LOAD_SECONDS} s`, { timeout: (LOAD_SECONDS + 120) * 1000 }, async (t) => {
  const dir = tempDir(t);
  const serverFile = path.join(dir, 'server.db');
  const child = fork(CHILD, [serverFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  const { port } = await request(child, null, 'ready');
  const base = `http://127.0.0.1:${port}/api/sync`;

  const clients = Array.from({ length: CLIENTS }, (_, i) => makeClient(dir, base, i));
  t.after(() => {
    for (const { client } of clients) client.close();
  });

  // Load.
  child.send({ type: 'start' });
  const startedAt = process.hrtime.bigint();
  const deadline = Date.now() + LOAD_SECONDS * 1000;
  await Promise.all(clients.map((seen) => runLoad(seen, deadline)));
  const loadSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;

  // Quiesce: sync every client until a round pushes nothing and every queue is empty.
  let rounds = 0;
  for (; rounds < MAX_QUIESCE_ROUNDS; rounds += 1) {
    const summaries = await Promise.all(clients.map((seen) => syncOnce(seen)));
    const pushed = summaries.reduce((sum, s) => sum + (s ? s.pushed : 0), 0);
    const idle = clients.every(({ client }) => {
      const stats = client.queue.stats();
      return stats.pending + stats.syncing + stats.failed === 0;
    });
    if (pushed === 0 && idle) break;
  }
  // One more round so every client pulls what the last pushes wrote.
  await Promise.all(clients.map((seen) => syncOnce(seen)));
  const report = await request(child, { type: 'report' }, 'report');
  child.send({ type: 'stop' });
  const [exitCode] = await exited;
  assert.equal(exitCode, 0, 'the server child exits cleanly');

  // The server's log, read through a SyncServer on the same file once the child is gone.
  const server = new SyncServer({ path: serverFile });
  t.after(() => server.close());
  const log = await logOf(server, USER, 10000);
  const changes = log.changes;
  const state = replay(changes);

  const total = (key) => clients.reduce((sum, seen) => sum + (Array.isArray(seen[key]) ? seen[key].length : seen[key]), 0);
  const figures = {
    clients: CLIENTS,
    loadSeconds: Math.round(loadSeconds * 100) / 100,
    writes: total('writes'),
    logged: changes.length,
    changesPerSecond: Math.round(changes.length / loadSeconds),
    writesPerSecond: Math.round(total('writes') / loadSeconds),
    syncs: total('syncs'),
    requests: report.requests,
    conflicts: total('conflicts'),
    lostConflicts: clients.reduce((sum, seen) => sum + seen.lost.size, 0),
    coalescedOrCancelled: clients.reduce((sum, seen) => sum + seen.merged.size, 0),
    quiesceRounds: rounds + 1,
    serverEventLoopMs: report.eventLoop,
    serverLatencyMs: report.latencyMs,
    serverCpuPercent: report.cpuPercent,
  };
  t.diagnostic(`load figures: ${JSON.stringify(figures)}`);
  console.log(`[130.load] ${JSON.stringify(figures)}`);
  const loadFigures = { clients: CLIENTS, ...figures };

  // Nothing failed.
  for (const seen of clients) {
    assert.deepEqual(seen.errors, [], `client ${seen.index}: errors`);
    assert.equal(seen.rejected, 0, `client ${seen.index}: changes rejected by the server`);
    assert.deepEqual(seen.failed, [], `client ${seen.index}: changes that ran out of retries`);
  }
  assert.equal(report.errors, 0, `the server answered errors: ${JSON.stringify(report.statuses)}`);
  assert.ok(changes.length > 0, 'the load wrote something');

  // Gapless versions, unique changeIds.
  assertGapless(changes);
  assert.equal(log.latestServerVersion, changes.length);

  // Nothing lost, nothing duplicated, nothing invented.
  const logged = new Map(changes.map((change) => [change.changeId, change]));
  const written = new Set();
  for (const seen of clients) {
    for (const id of seen.queued) {
      written.add(id);
      if (seen.cancelledHeads.has(id)) {
        assert.ok(!logged.has(id), `client ${seen.index}: cancelled change ${id} reached the log`);
      } else if (seen.lost.has(id)) {
        assert.ok(!logged.has(id), `client ${seen.index}: change ${id} lost a conflict but is in the log`);
      } else {
        assert.ok(logged.has(id), `client ${seen.index}: acknowledged change ${id} is not in the server's log`);
        assert.equal(logged.get(id).deviceId, `device-${seen.index}`, `change ${id} is logged under its device`);
      }
    }
    for (const id of seen.merged) assert.ok(!logged.has(id), `client ${seen.index}: merged change ${id} reached the log`);
  }
  for (const change of changes) assert.ok(written.has(change.changeId), `the log holds ${change.changeId}, which no client queued`);

  // Every client converged on the server's replayed state, with an empty queue.
  for (const [key, doc] of Object.entries(state)) {
    assert.equal(`${key.split('/')[0]}/${doc.id}`, key, `${key} carries its own id`);
  }
  for (const seen of clients) {
    const { client } = seen;
    const stats = client.queue.stats();
    assert.equal(stats.pending + stats.syncing + stats.failed, 0, `client ${seen.index}: queue ${JSON.stringify(stats)}`);
    assert.equal(client.serverVersion, log.latestServerVersion, `client ${seen.index}: pulled to the end`);
    assert.deepEqual(clientState(client), state, `client ${seen.index}: documents equal the server's replayed log`);
  }
  for (const { client } of clients) client.close();
  server.close();
  recordFigures('load', loadFigures); // for the README (scripts/figures.js): every check above passed
});
