'use strict';

// Applying a pulled page of `count` mixed CREATED/UPDATED changes (the `newChanges`
// of a v2 response, built by common.applyPage) to a store that already holds `seed`
// documents: deltasync `await client.applyRemote(buffer)` vs the JS peer
// (common.makePeerApplier: JSON.parse of the whole page, better-sqlite3 upserts in
// one transaction, UPDATED fields merged in JS).
//
// Modes:
//   throughput  `iterations` applies, each on a freshly seeded database; the median rate.
//   stall       `runs` applies (each on a copy of the same seeded store), the event loop
//               watched by common.startStallProbe (1 ms); the worst run's max stall and
//               the peak RSS of the first apply. The store is seeded and the page written by a
//               child process (mode prepare), so this process only ever holds the page
//               bytes and what the apply itself allocates.
//   put         `runs` applies while a put() of a new document is due every `putEveryMs`
//               on the main thread: latency of each put, from when it was due to its
//               return (so a blocked event loop counts too); max and percentiles over all runs.
//   prepare     (internal) seeds `file` and writes the page to `pageFile`.
// Params: { impl: 'deltasync' | 'better-sqlite3', mode, seed, count, iterations?, runs?, putEveryMs?, dir }

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const assert = require('node:assert/strict');
const c = require('./common');

const params = c.params();
const { impl, mode = 'throughput', seed, count, dir } = params;
if (impl !== 'deltasync' && impl !== 'better-sqlite3') throw new Error(`unknown impl ${impl}`);
const SQLITE_DELTASYNC = '3.46.0 (bundled)';

// ---- The two implementations behind one interface.

function open(file) {
  if (impl === 'deltasync') {
    const client = c.openDeltasync(file);
    return {
      apply: (buffer) => client.applyRemote(buffer),
      put: (id, doc) => client.put(c.ENTITY_TYPE, id, doc),
      get: (id) => client.get(c.ENTITY_TYPE, id),
      sqliteVersion: () => SQLITE_DELTASYNC,
      close: () => client.close(),
    };
  }
  const db = c.openPeer(file);
  const apply = c.makePeerApplier(db);
  const load = db.prepare('SELECT data, deleted FROM documents WHERE entity_type = ? AND entity_id = ?');
  const upsertLocal = db.prepare(
    'INSERT INTO documents (entity_type, entity_id, data, base, deleted, updated_at, deleted_at) ' +
      'VALUES (?, ?, ?, NULL, 0, ?, NULL) ON CONFLICT (entity_type, entity_id) DO UPDATE SET ' +
      'data = excluded.data, base = excluded.base, deleted = 0, updated_at = excluded.updated_at, deleted_at = NULL',
  );
  const insertChange = db.prepare(c.INSERT_CHANGE);
  const put = db.transaction((id, doc) => {
    const now = Date.now();
    const json = JSON.stringify(doc);
    upsertLocal.run(c.ENTITY_TYPE, id, json, now);
    insertChange.run(c.newChangeId(), c.ENTITY_TYPE, id, 'CREATED', json, now, now, now);
  });
  return {
    apply: (buffer) => apply(buffer),
    put,
    get: (id) => {
      const row = load.get(c.ENTITY_TYPE, id);
      return row && !row.deleted ? JSON.parse(row.data) : undefined;
    },
    sqliteVersion: () => c.peerSqliteVersion(db),
    close: () => db.close(),
  };
}


/**
 * Checks the applied page: every entity there, created and updated ones as expected. Closes the
 * store, then counts the documents in `file` (c.countStoredDocuments: never while it is open).
 */
function verifyAndClose(store, file, result, extraDocs = 0) {
  if (result.applied !== count || result.skipped !== 0) {
    throw new Error(`expected ${count} applied and 0 skipped, got ${result.applied} and ${result.skipped}`);
  }
  const updated = Math.floor(count / 2);
  for (const j of [0, Math.floor(updated / 2), updated - 1]) {
    if (j >= 0 && j < updated) assert.deepEqual(store.get(`e${j}`), c.updatedDocument(j), `document e${j}`);
  }
  const lastNew = seed + Math.ceil(count / 2) - 1;
  if (lastNew >= updated) assert.deepEqual(store.get(`e${lastNew}`), c.makeDocument(lastNew), `document e${lastNew}`);
  store.close();
  assert.equal(c.countStoredDocuments(file), seed + Math.ceil(count / 2) + extraDocs, 'documents after the apply');
}

async function seedStore(store) {
  if (seed === 0) return;
  const result = await store.apply(c.seedPage(seed));
  if (result.applied !== seed) throw new Error(`seed: expected ${seed} applied, got ${result.applied}`);
}

function collect() {
  if (global.gc) global.gc();
}

// ---- Modes.

async function throughput() {
  const { iterations } = params;
  // Warm-up on a small store: loads code, JITs the JS peer's loops.
  {
    const file = c.scratchDb(dir, `apply-warm-${impl}`);
    const store = open(file);
    await store.apply(c.seedPage(200));
    await store.apply(c.applyPage(200, 2000));
    store.close();
    c.removeDb(file);
  }
  const page = c.applyPage(seed, count);
  const perIteration = [];
  let sqliteVersion;
  let dbBytes = 0;
  for (let i = 0; i < iterations; ++i) {
    const file = c.scratchDb(dir, `apply-${impl}`);
    const store = open(file);
    await seedStore(store);
    collect();
    const start = c.seconds();
    const result = await store.apply(page);
    const elapsed = c.seconds() - start;
    perIteration.push(count / elapsed);
    sqliteVersion = store.sqliteVersion();
    verifyAndClose(store, file, result);
    dbBytes = c.dbBytes(file);
    c.removeDb(file);
  }
  const changesPerSec = c.median(perIteration);
  c.report({
    changes: count,
    seed,
    pageBytes: page.length,
    iterations,
    changesPerSec,
    seconds: count / changesPerSec,
    perIteration,
    dbBytes,
    sqliteVersion,
  });
}

/** Runs this script as a child in mode prepare; returns the database and page paths. */
function prepareInChild() {
  const file = c.scratchDb(dir, `apply-${mode}-${impl}`);
  const pageFile = path.join(dir, `page-${process.pid}.json`);
  const child = spawnSync(process.execPath, [__filename, JSON.stringify({ ...params, mode: 'prepare', file, pageFile })], {
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (child.status !== 0) throw new Error(`prepare failed (${child.status ?? child.signal}): ${child.stderr}`);
  return { file, pageFile };
}

async function prepare() {
  const store = open(params.file);
  await seedStore(store);
  store.close();
  fs.writeFileSync(params.pageFile, c.applyPage(seed, count));
}

/** A copy of the prepared store for one run (the child closed it, so it has no WAL left). */
function copyOfStore(file, run) {
  const copy = `${file}-run${run}`;
  fs.copyFileSync(file, copy);
  for (const suffix of ['-wal', '-shm']) {
    if (fs.existsSync(file + suffix)) fs.copyFileSync(file + suffix, copy + suffix);
  }
  return copy;
}

/** Starts the apply from a setImmediate callback (the peer's apply is synchronous, like a handler's). */
function applyFromCallback(store, page) {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      Promise.resolve()
        .then(() => store.apply(page))
        .then(resolve, reject);
    });
  });
}

async function stall() {
  const { runs = 1 } = params;
  const { file, pageFile } = prepareInChild();
  const page = fs.readFileSync(pageFile);
  fs.rmSync(pageFile);
  const perRun = [];
  let sqliteVersion;
  let firstApplyPeakRssKb = 0;
  for (let run = 0; run < runs; ++run) {
    const copy = copyOfStore(file, run);
    const store = open(copy);
    collect();
    await c.sleep(50);
    const rssBeforeMb = process.memoryUsage.rss() / 2 ** 20;
    const probe = c.startStallProbe();
    await c.sleep(20);
    const start = c.seconds();
    const result = await applyFromCallback(store, page);
    const seconds = c.seconds() - start;
    await c.sleep(20);
    const stats = probe.stop();
    // The peak of one apply: later runs start from whatever the first left allocated.
    if (run === 0) firstApplyPeakRssKb = process.resourceUsage().maxRSS;
    sqliteVersion = store.sqliteVersion();
    verifyAndClose(store, copy, result);
    c.removeDb(copy);
    perRun.push({ seconds, rssBeforeMb, ...stats });
  }
  c.removeDb(file);
  const worst = perRun.reduce((a, b) => (b.maxGapMs > a.maxGapMs ? b : a));
  c.report({
    changes: count,
    seed,
    pageBytes: page.length,
    runs,
    changesPerSec: c.median(perRun.map((r) => count / r.seconds)),
    maxStallMs: worst.maxGapMs,
    eldMaxMs: Math.max(...perRun.map((r) => r.eldMaxMs)),
    eldP99Ms: Math.max(...perRun.map((r) => r.eldP99Ms)),
    maxStallPerRunMs: perRun.map((r) => Math.round(r.maxGapMs * 10) / 10),
    rssBeforeMb: perRun[0].rssBeforeMb,
    applyPeakRssKb: firstApplyPeakRssKb,
    rssBeforePerRunMb: perRun.map((r) => Math.round(r.rssBeforeMb)),
    maxRssSeenMb: Math.max(...perRun.map((r) => r.maxRssMb)),
    perRun,
    sqliteVersion,
  });
}

async function putsDuringApply() {
  const { putEveryMs, runs = 1 } = params;
  const { file, pageFile } = prepareInChild();
  const page = fs.readFileSync(pageFile);
  fs.rmSync(pageFile);
  const latencies = [];
  const blocked = [];
  const perRun = [];
  let sqliteVersion;
  for (let run = 0; run < runs; ++run) {
    const copy = copyOfStore(file, run);
    const store = open(copy);
    for (let i = 0; i < 200; ++i) store.put(`warm-${i}`, c.makeDocument(i));  // warm-up
    collect();
    await c.sleep(50);

    const runLatencies = [];
    const runBlocked = [];
    let applyEnd = Infinity;
    // Puts due at origin + k * putEveryMs until the apply has ended. A put whose time
    // came while the event loop was blocked runs as soon as it is free, and its latency
    // counts from when it was due.
    const loop = (async () => {
      const origin = performance.now();
      for (let k = 1; ; ++k) {
        const due = origin + k * putEveryMs;
        const wait = due - performance.now();
        if (wait > 0) await c.sleep(wait);
        if (due > applyEnd) break;
        const before = performance.now();
        store.put(`local-${k}`, c.makeDocument(k));
        const after = performance.now();
        runLatencies.push(after - due);
        runBlocked.push(after - before);
      }
    })();
    await c.sleep(2 * putEveryMs);
    const start = c.seconds();
    const result = await applyFromCallback(store, page);
    const seconds = c.seconds() - start;
    applyEnd = performance.now();
    await loop;
    sqliteVersion = store.sqliteVersion();
    verifyAndClose(store, copy, result, runLatencies.length + 200);
    c.removeDb(copy);
    latencies.push(...runLatencies);
    blocked.push(...runBlocked);
    perRun.push({
      seconds,
      puts: runLatencies.length,
      putMaxMs: Math.max(...runLatencies),
      putBlockedMaxMs: Math.max(...runBlocked),
    });
  }
  c.removeDb(file);
  c.report({
    changes: count,
    seed,
    runs,
    changesPerSec: c.median(perRun.map((r) => count / r.seconds)),
    putEveryMs,
    puts: latencies.length,
    putMaxMs: Math.max(...latencies),
    putP99Ms: c.percentile(latencies, 99),
    putP50Ms: c.percentile(latencies, 50),
    putBlockedMaxMs: Math.max(...blocked),
    putBlockedP99Ms: c.percentile(blocked, 99),
    putMaxPerRunMs: perRun.map((r) => Math.round(r.putMaxMs * 10) / 10),
    perRun,
    sqliteVersion,
  });
}

const modes = { throughput, stall, put: putsDuringApply, prepare };
if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
modes[mode]().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
