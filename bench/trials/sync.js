'use strict';

// The sync client against a sync server in another process, over loopback HTTP:
// deltasync's SyncClient (httpTransport) against createSyncRouter(SyncServer), vs the
// JS peer client (peer-client.js: fetch + JSON.parse + better-sqlite3) against the JS
// peer server (bench/peer-server.js). Each server runs in its own process
// (server-child.js); this process is the client.
//
// Modes:
//   cycle   a full sync cycle of one change: `await client.put(...)` of a new document,
//           then `await client.sync()` (push it, pull what the server has: the change
//           itself), `cycles` times after `warmup` untimed cycles; latency of each cycle,
//           median and p99, and how much of it was spent waiting for HTTP (request sent
//           to response body received, server included) and how much in the client.
//           With `history`, the client first queues and syncs that many changes (untimed),
//           as a client that has been in use for a while; they stay in its queue as synced.
//   cold    a cold initial sync: a server preloaded with `total` changes of one user
//           (common.pageChange with no seed: CREATED of a new entity, then an UPDATED of
//           it; pushed in batches of 1000 by a seeding child process before the server
//           starts), pulled by an empty client with one `await client.sync()` in pages of
//           `pull`; `runs` runs, each into a fresh client database, after one untimed
//           warm-up sync of another user's 2,000 changes. changes/s, and the client's
//           event loop during the sync (common.startStallProbe: max gap of a 1 ms
//           interval and monitorEventLoopDelay), worst run.
//   push    a client that made `total` writes offline (put() of new documents, untimed) comes
//           online: one `await client.sync()` pushes them in requests of `push` changes;
//           `runs` runs, each with a fresh client database and a user of its own, after one
//           untimed warm-up push of 1,000. changes/s, and the client's event loop during the
//           sync (max gap, monitorEventLoopDelay p99), worst run.
//   seed    (internal) preloads the server database `file`.
// Params: { impl: 'deltasync' | 'better-sqlite3', mode, dir, cycles?, warmup?, history?, total?, pull?, push?, runs? }

const { spawnSync } = require('node:child_process');
const assert = require('node:assert/strict');
const c = require('./common');
const { createPeerClient } = require('./peer-client');

const params = c.params();
const { impl, mode, dir } = params;
if (impl !== 'deltasync' && impl !== 'better-sqlite3') throw new Error(`unknown impl ${impl}`);
const SQLITE_DELTASYNC = '3.46.0 (bundled)';
const USER = 'user-1';
const WARM_USER = 'user-warm';
const WARM_CHANGES = 2000;
const SEED_BATCH = 1000;

/**
 * A client of `url` on `file`; `pull` is the page size it asks for. transportMs() is the
 * time spent waiting for HTTP responses (request sent to body received).
 */
function openClient(file, url, userId, pull, push = 100) {
  const headers = { 'x-user-id': userId };
  let transportMs = 0;
  if (impl === 'deltasync') {
    const { SyncClient, httpTransport } = require('../..');
    const http = httpTransport({ url, headers });
    const client = new SyncClient({
      path: file,
      deviceId: 'device-bench',
      transport: async (request, context) => {
        const started = performance.now();
        try {
          return await http(request, context);
        } finally {
          transportMs += performance.now() - started;
        }
      },
      batch: { pull, push },
    });
    return {
      put: (id, doc) => client.put(c.ENTITY_TYPE, id, doc),
      enqueueMany: (changes) => client.queue.enqueueMany(changes),
      sync: () => client.sync(),
      get: (id) => client.get(c.ENTITY_TYPE, id),
      cursor: () => client.serverVersion,
      pending: () => client.queue.stats().pending,
      transportMs: () => transportMs,
      sqliteVersion: () => SQLITE_DELTASYNC,
      close: () => client.close(),
    };
  }
  // The peer's fetch, timed the same way (to the whole body received).
  const timedFetch = async (...args) => {
    const started = performance.now();
    const response = await fetch(...args);
    const text = await response.text();
    transportMs += performance.now() - started;
    return { ok: response.ok, status: response.status, text: async () => text };
  };
  const peer = createPeerClient({ file, url, headers, deviceId: 'device-bench', pullLimit: pull, pushBatch: push, fetch: timedFetch });
  return {
    put: (id, doc) => peer.put(c.ENTITY_TYPE, id, doc),
    enqueueMany: (changes) => peer.enqueueMany(changes),
    sync: () => peer.sync(),
    get: (id) => peer.get(c.ENTITY_TYPE, id),
    cursor: () => peer.cursor(),
    pending: () => peer.pending(),
    transportMs: () => transportMs,
    sqliteVersion: () => peer.sqliteVersion(),
    close: () => peer.close(),
  };
}

// ---- cycle

async function cycle() {
  const { cycles, warmup, history = 0 } = params;
  const server = await c.startServerChild({ impl, file: c.scratchDb(dir, `sync-cycle-server-${impl}`) });
  const file = c.scratchDb(dir, `sync-cycle-client-${impl}`);
  const client = openClient(file, server.url, USER, 1000, 1000);
  if (history > 0) {
    // A client with a past: `history` changes queued and synced (untimed), kept in its queue.
    client.enqueueMany(c.makeChanges(history, 'h'));
    const summary = await client.sync();
    if (summary.pushed !== history) throw new Error(`history: expected ${history} pushed, got ${JSON.stringify(summary)}`);
  }
  const latencies = [];
  const transport = [];
  const clientSide = [];
  const run = async (k) => {
    const before = client.transportMs();
    const started = performance.now();
    await client.put(`cycle-${k}`, c.makeDocument(k));
    const summary = await client.sync();
    const ms = performance.now() - started;
    if (summary.pushed !== 1) throw new Error(`cycle ${k}: expected 1 change pushed, got ${JSON.stringify(summary)}`);
    return { ms, transportMs: client.transportMs() - before };
  };
  for (let k = 0; k < warmup; ++k) await run(k);
  server.server.send({ type: 'cpu' });
  const serverCpuBefore = (await server.server.next('cpu')).threadCpuMs;
  const cpuBefore = c.threadCpuMs();
  for (let k = warmup; k < warmup + cycles; ++k) {
    const { ms, transportMs } = await run(k);
    latencies.push(ms);
    transport.push(transportMs);
    clientSide.push(ms - transportMs);
  }
  const clientCpu = c.threadCpuDelta(cpuBefore, c.threadCpuMs());
  server.server.send({ type: 'cpu' });
  const serverCpu = c.threadCpuDelta(serverCpuBefore, (await server.server.next('cpu')).threadCpuMs);
  const last = warmup + cycles - 1;
  assert.deepEqual(client.get(`cycle-${last}`), c.makeDocument(last));
  assert.equal(client.pending(), 0, 'changes left in the queue');
  assert.equal(client.cursor(), history + warmup + cycles, 'the cursor after the last cycle');
  const sqliteVersion = client.sqliteVersion();
  client.close();
  c.removeDb(file);
  const serverStats = await server.stop();
  const total = latencies.reduce((a, b) => a + b, 0);
  c.report({
    cycles,
    warmup,
    history,
    changesPerSec: (cycles * 1000) / total,
    p50Ms: c.percentile(latencies, 50),
    p99Ms: c.percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    meanMs: total / cycles,
    transportP50Ms: c.percentile(transport, 50),
    transportP99Ms: c.percentile(transport, 99),
    clientSideP50Ms: c.percentile(clientSide, 50),
    clientSideP99Ms: c.percentile(clientSide, 99),
    clientCpuMsPerCycle: scale(clientCpu, 1 / cycles),
    serverCpuMsPerCycle: scale(serverCpu, 1 / cycles),
    serverPeakRssKb: serverStats.peakRssKb,
    sqliteVersion,
  });
}

function scale(byThread, factor) {
  const out = {};
  for (const [key, ms] of Object.entries(byThread)) out[key] = Math.round(ms * factor * 1000) / 1000;
  return out;
}

// ---- cold

/** Runs this script as a child in mode seed: the server database, preloaded. */
function seedInChild(file) {
  const child = spawnSync(process.execPath, [__filename, JSON.stringify({ ...params, mode: 'seed', file })], {
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (child.status !== 0) throw new Error(`seed failed (${child.status ?? child.signal}): ${child.stderr}`);
}

/** Change k of the seeded log, as a device pushes it. */
function seedChange(k) {
  const { version, ...change } = c.pageChange(k, 0, 0);
  return { changeId: c.newChangeId(), type: change.type, entityType: change.entityType, entityId: change.entityId,
    data: change.data, timestamp: change.timestamp };
}

async function seed() {
  const { total, file } = params;
  const users = [[WARM_USER, WARM_CHANGES], [USER, total]];
  if (impl === 'deltasync') {
    const { SyncServer } = require('../..');
    const server = new SyncServer({ path: file });
    for (const [userId, count] of users) {
      for (let from = 0; from < count; from += SEED_BATCH) {
        const changes = [];
        for (let k = from; k < Math.min(count, from + SEED_BATCH); ++k) changes.push(seedChange(k));
        const result = await server.push(userId, 'device-seed', changes);
        if (result.applied.length !== changes.length) throw new Error(`seed: ${JSON.stringify(result).slice(0, 300)}`);
      }
    }
    server.close();
    return;
  }
  const { createPeerServer } = require('../peer-server');
  const server = createPeerServer({ path: file });
  for (const [userId, count] of users) {
    let latest = 0;
    for (let from = 0; from < count; from += SEED_BATCH) {
      const changes = [];
      for (let k = from; k < Math.min(count, from + SEED_BATCH); ++k) changes.push(seedChange(k));
      const result = JSON.parse(server.sync(userId, { deviceId: 'device-seed', lastKnownServerVersion: latest, changes, limit: 1 }));
      if (result.applied.length !== changes.length) throw new Error(`seed: ${JSON.stringify(result).slice(0, 300)}`);
      latest = result.latestServerVersion;
    }
  }
  server.close();
}

/**
 * The client holds the whole log: every entity, created and updated, and the cursor at the end.
 * Closes the client, then counts its documents in the file.
 */
function verifyColdAndClose(client, file, count) {
  assert.equal(client.cursor(), count, 'the cursor after the sync');
  for (const j of [0, Math.floor(count / 4), count / 2 - 1]) assert.deepEqual(client.get(`e${j}`), c.updatedDocument(j), `e${j}`);
  client.close();
  assert.equal(c.countStoredDocuments(file), count / 2, 'documents after the sync');
}

async function cold() {
  const { total, pull, runs } = params;
  if (total % 2 !== 0 || total % SEED_BATCH !== 0) throw new Error('total must be a multiple of 1000');
  const serverFile = c.scratchDb(dir, `sync-cold-server-${impl}`);
  seedInChild(serverFile);
  const server = await c.startServerChild({ impl, file: serverFile });

  // Warm-up: another user's small log (code, JIT, connections, the server's statements).
  {
    const file = c.scratchDb(dir, `sync-cold-warm-${impl}`);
    const client = openClient(file, server.url, WARM_USER, pull);
    await client.sync();
    verifyColdAndClose(client, file, WARM_CHANGES);
    c.removeDb(file);
  }

  const perRun = [];
  let sqliteVersion;
  for (let run = 0; run < runs; ++run) {
    const file = c.scratchDb(dir, `sync-cold-client-${impl}`);
    const client = openClient(file, server.url, USER, pull);
    if (global.gc) global.gc();
    await c.sleep(50);
    server.server.send({ type: 'cpu' });
    const serverCpuBefore = (await server.server.next('cpu')).threadCpuMs;
    const cpuBefore = c.threadCpuMs();
    const rssBeforeMb = process.memoryUsage.rss() / 2 ** 20;
    const probe = c.startStallProbe();
    await c.sleep(20);
    const transportBefore = client.transportMs();
    const started = c.seconds();
    const summary = await client.sync();
    const seconds = c.seconds() - started;
    const transportMs = client.transportMs() - transportBefore;
    await c.sleep(20);
    const stats = probe.stop();
    const clientCpu = c.threadCpuDelta(cpuBefore, c.threadCpuMs());
    server.server.send({ type: 'cpu' });
    const serverCpu = c.threadCpuDelta(serverCpuBefore, (await server.server.next('cpu')).threadCpuMs);
    if (summary.pulled !== total) throw new Error(`expected ${total} changes pulled, got ${JSON.stringify(summary)}`);
    sqliteVersion = client.sqliteVersion();
    verifyColdAndClose(client, file, total);
    const clientDbBytes = c.dbBytes(file);
    c.removeDb(file);
    perRun.push({
      seconds,
      changesPerSec: total / seconds,
      requests: summary.requests,
      transportMs,
      rssBeforeMb,
      clientCpuMs: clientCpu,
      serverCpuMs: serverCpu,
      clientDbBytes,
      ...stats,
    });
  }
  const serverStats = await server.stop();
  c.report({
    changes: total,
    pull,
    runs,
    ...c.summarizeWatchedRuns(perRun),
    requests: perRun[0].requests,
    perRun,
    serverPeakRssKb: serverStats.peakRssKb,
    serverDbBytes: serverStats.dbBytes,
    sqliteVersion,
  });
}

// ---- push

async function push() {
  const { total, runs, push: pushBatch = 100 } = params;
  const server = await c.startServerChild({ impl, file: c.scratchDb(dir, `sync-push-server-${impl}`) });
  const offline = (client, count, prefix) => {
    for (let i = 0; i < count; ++i) client.put(`${prefix}${i}`, c.makeDocument(i));
  };
  {
    const file = c.scratchDb(dir, `sync-push-warm-${impl}`);
    const client = openClient(file, server.url, WARM_USER, 1000, pushBatch);
    offline(client, 1000, 'w');
    await client.sync();
    client.close();
    c.removeDb(file);
  }
  const perRun = [];
  let sqliteVersion;
  for (let run = 0; run < runs; ++run) {
    const file = c.scratchDb(dir, `sync-push-client-${impl}`);
    const client = openClient(file, server.url, `${USER}-push-${run}`, 1000, pushBatch);
    offline(client, total, 'p');
    if (global.gc) global.gc();
    await c.sleep(50);
    const probe = c.startStallProbe();
    await c.sleep(20);
    const started = c.seconds();
    await client.sync();
    const seconds = c.seconds() - started;
    await c.sleep(20);
    const stats = probe.stop();
    assert.equal(client.pending(), 0, 'every offline write was pushed');
    assert.equal(client.cursor(), total, 'the cursor after the push');
    sqliteVersion = client.sqliteVersion();
    client.close();
    c.removeDb(file);
    perRun.push({ seconds, changesPerSec: total / seconds, ...stats });
  }
  await server.stop();
  c.report({
    changes: total,
    push: pushBatch,
    runs,
    ...c.summarizeWatchedRuns(perRun),
    requests: Math.ceil(total / pushBatch),
    perRun,
    sqliteVersion,
  });
}

const modes = { cycle, cold, push, seed };
if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
modes[mode]().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
