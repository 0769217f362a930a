'use strict';

// PouchDB, the offline-first library a team would otherwise install, on the same work as
// deltasync's trials: the pouchdb-node client (LevelDB) replicating with PouchDB's own server
// (express-pouchdb on LevelDB, in another process: server-child.js), over loopback HTTP.
//
// Modes (each mirrors a deltasync trial, which run.js compares it with):
//   cold   as sync.js cold: the server holds `total` changes of one user, a CREATED and then an
//          UPDATED of each of total/2 documents (the documents common.pageChange makes, seeded by
//          a child process before the server starts); an empty client pulls them with one
//          `await local.replicate.from(remote, { batch_size: pull })`. PouchDB sends each
//          document's latest revision (total/2 documents); the rate is the server's changes
//          brought to the client per second, as for deltasync. `runs` runs, each into a fresh
//          client database, after an untimed warm-up replication of another database; the
//          client's event loop (common.startStallProbe) and its peak RSS.
//   push   as sync.js push: a client that made `total` writes offline (new documents, put
//          untimed) replicates them to an empty server database with
//          `await local.replicate.to(remote, { batch_size: push })`; `runs` runs.
//   put    as store-ops.js put: `count` new documents, one `await db.put(doc)` each, timed in
//          `rounds` equal rounds (the median round is reported) after `warmup` untimed puts.
//          LevelDB writes of PouchDB are not synced to disk; deltasync's put() returns with its
//          change committed to SQLite's log.
//   seed   (internal) writes the cold trial's server database.
// Params: { mode, total?, pull?, push?, runs?, count?, rounds?, warmup?, dir }

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const assert = require('node:assert/strict');
const c = require('./common');

const params = c.params();
const { mode, dir } = params;
const SEED_BATCH = 1000;
const COLD_DB = 'user-1';
const WARM_DB = 'user-warm';
const WARM_DOCUMENTS = 1000;

/** PouchDB with its databases under `root` (LevelDB directories). */
function pouchAt(root) {
  fs.mkdirSync(root, { recursive: true });
  return require('pouchdb-node').defaults({ prefix: `${root}${path.sep}` });
}

function bytesUnder(root) {
  let total = 0;
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

async function startServer(root) {
  const server = c.forkScript('server-child.js', { impl: 'pouchdb', file: root });
  const { port } = await server.next('ready');
  return {
    server,
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    async stop() {
      server.send({ type: 'exit' });
      const bye = await server.next('bye');
      await new Promise((resolve) => (server.child.exitCode !== null ? resolve() : server.child.on('exit', resolve)));
      const dbBytes = bytesUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
      return { ...bye, dbBytes };
    },
  };
}

/**
 * One timed replication, the event loop watched (common.startStallProbe) from just before it
 * to just after: { result, run: { seconds, changesPerSec, ...the probe's stats } }.
 */
async function watchedReplication(changes, replicate) {
  if (global.gc) global.gc();
  await c.sleep(50);
  const rssBeforeMb = process.memoryUsage.rss() / 2 ** 20;
  const probe = c.startStallProbe();
  await c.sleep(20);
  const started = c.seconds();
  const result = await replicate();
  const seconds = c.seconds() - started;
  await c.sleep(20);
  const stats = probe.stop();
  return { result, run: { seconds, changesPerSec: changes / seconds, rssBeforeMb, ...stats } };
}

const documentOf = (doc) => {
  const { _id, _rev, ...rest } = doc;
  return rest;
};

// ---- seed (a child process: LevelDB allows one process per database)

async function seed() {
  const { total, root } = params;
  const PouchDB = pouchAt(root);
  const warm = new PouchDB(WARM_DB);
  const warmDocs = [];
  for (let j = 0; j < WARM_DOCUMENTS; ++j) warmDocs.push({ _id: `w${j}`, ...c.makeDocument(j) });
  await warm.bulkDocs(warmDocs);
  await warm.close();
  // The log of sync.js's cold trial, a batch at a time: its CREATED changes, then its UPDATED ones.
  const db = new PouchDB(COLD_DB);
  for (let from = 0; from < total; from += SEED_BATCH) {
    const created = [];
    for (let k = from; k < Math.min(total, from + SEED_BATCH); k += 2) {
      const change = c.pageChange(k, 0, 0);
      created.push({ _id: change.entityId, ...change.data });
    }
    const revisions = await db.bulkDocs(created);
    const updated = created.map((doc, i) => {
      const j = Number(doc._id.slice(1));
      assert.ok(revisions[i].ok, JSON.stringify(revisions[i]));
      return { ...doc, ...c.updateFields(j), _rev: revisions[i].rev };
    });
    for (const result of await db.bulkDocs(updated)) assert.ok(result.ok, JSON.stringify(result));
  }
  await db.close();
}

// ---- cold

async function cold() {
  const { total, pull, runs } = params;
  if (total % SEED_BATCH !== 0) throw new Error('total must be a multiple of 1000');
  const serverRoot = path.join(dir, `pouchdb-cold-server-${process.pid}`);
  const child = spawnSync(process.execPath, [__filename, JSON.stringify({ ...params, mode: 'seed', root: serverRoot })], {
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (child.status !== 0) throw new Error(`seed failed (${child.status ?? child.signal}): ${child.stderr}`);
  const server = await startServer(serverRoot);
  const clientRoot = path.join(dir, `pouchdb-cold-client-${process.pid}`);
  const PouchDB = pouchAt(clientRoot);
  {
    const warm = new PouchDB('warm');
    const result = await warm.replicate.from(server.url(WARM_DB), { batch_size: pull });
    assert.equal(result.docs_written, WARM_DOCUMENTS);
    await warm.destroy();
  }
  const perRun = [];
  for (let run = 0; run < runs; ++run) {
    const local = new PouchDB(`cold-${run}`);
    const { result, run: measured } = await watchedReplication(total, () =>
      local.replicate.from(server.url(COLD_DB), { batch_size: pull }),
    );
    assert.equal(result.docs_written, total / 2, 'documents written by the replication');
    const info = await local.info();
    assert.equal(info.doc_count, total / 2, 'documents after the replication');
    for (const j of [0, Math.floor(total / 4), total / 2 - 1]) {
      assert.deepEqual(documentOf(await local.get(`e${j}`)), c.updatedDocument(j), `e${j}`);
    }
    await local.destroy();
    perRun.push(measured);
  }
  const serverStats = await server.stop();
  fs.rmSync(clientRoot, { recursive: true, force: true });
  c.report({
    changes: total,
    documents: total / 2,
    pull,
    runs,
    ...c.summarizeWatchedRuns(perRun),
    perRun,
    serverPeakRssKb: serverStats.peakRssKb,
    serverDbBytes: serverStats.dbBytes,
    pouchdb: require('pouchdb-node/package.json').version,
  });
}

// ---- push

async function push() {
  const { total, runs, push: pushBatch } = params;
  const serverRoot = path.join(dir, `pouchdb-push-server-${process.pid}`);
  fs.mkdirSync(serverRoot, { recursive: true });
  const server = await startServer(serverRoot);
  const clientRoot = path.join(dir, `pouchdb-push-client-${process.pid}`);
  const PouchDB = pouchAt(clientRoot);
  const offline = async (db, count, prefix) => {
    for (let i = 0; i < count; ++i) await db.put({ _id: `${prefix}${i}`, ...c.makeDocument(i) });
  };
  {
    const warm = new PouchDB('warm');
    await offline(warm, 1000, 'w');
    await warm.replicate.to(server.url('warm'), { batch_size: pushBatch });
    await warm.destroy();
  }
  const perRun = [];
  for (let run = 0; run < runs; ++run) {
    const local = new PouchDB(`push-${run}`);
    await offline(local, total, 'p');
    const { result, run: measured } = await watchedReplication(total, () =>
      local.replicate.to(server.url(`push-${run}`), { batch_size: pushBatch }),
    );
    assert.equal(result.docs_written, total, 'documents written by the replication');
    const remote = new PouchDB(server.url(`push-${run}`));
    assert.equal((await remote.info()).doc_count, total, 'documents on the server');
    assert.deepEqual(documentOf(await remote.get(`p${total - 1}`)), c.makeDocument(total - 1));
    await local.destroy();
    perRun.push(measured);
  }
  const serverStats = await server.stop();
  fs.rmSync(clientRoot, { recursive: true, force: true });
  c.report({
    changes: total,
    push: pushBatch,
    runs,
    ...c.summarizeWatchedRuns(perRun),
    perRun,
    serverPeakRssKb: serverStats.peakRssKb,
    pouchdb: require('pouchdb-node/package.json').version,
  });
}

// ---- put

async function put() {
  const { count, rounds, warmup } = params;
  const root = path.join(dir, `pouchdb-put-${process.pid}`);
  const PouchDB = pouchAt(root);
  const db = new PouchDB('store');
  const docs = new Array(count);
  for (let i = 0; i < count; ++i) docs[i] = c.makeDocument(i);
  for (let i = 0; i < warmup; ++i) await db.put({ _id: `w${i}`, ...docs[i % count] });
  const roundSize = Math.ceil(count / rounds);
  const perRound = [];
  let elapsed = 0;
  const cpuBefore = process.cpuUsage();
  for (let from = 0; from < count; from += roundSize) {
    const to = Math.min(count, from + roundSize);
    const start = c.seconds();
    for (let i = from; i < to; ++i) await db.put({ _id: `e${i}`, ...docs[i] });
    const seconds = c.seconds() - start;
    elapsed += seconds;
    perRound.push((to - from) / seconds);
  }
  const cpu = process.cpuUsage(cpuBefore);
  assert.deepEqual(documentOf(await db.get(`e${count - 1}`)), c.makeDocument(count - 1));
  assert.equal((await db.info()).doc_count, count + warmup);
  await db.close();
  const dbBytes = bytesUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
  c.report({
    op: 'put',
    operations: count,
    rounds: perRound.length,
    changesPerSec: c.median(perRound),
    overallOpsPerSec: count / elapsed,
    perRound,
    cpuUsPerOp: (cpu.user + cpu.system) / count,
    dbBytes,
    pouchdb: require('pouchdb-node/package.json').version,
  });
}

const modes = { seed, cold, push, put };
if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
modes[mode]().catch((error) => {
  console.error(error);
  process.exit(1);
});
