#!/usr/bin/env node
'use strict';

// npm run bench: a declarative list of trials, each run in its own child
// process (a bench/trials/*.js script or a C++ binary) that prints one JSON
// line. Ratios compare trials of the same run only, so a noisy machine moves
// both sides together. The full results go to bench/results/latest.json.
//
//   node bench/run.js                   every trial, full sizes
//   node bench/run.js --quick           small sizes (a smoke test; skips building the C++ trials)
//                                       --quick and --filter runs write os.tmpdir()/deltasync-bench-partial.json
//   node bench/run.js --filter many     only trials whose id contains "many"
//   node bench/run.js --repeat 3        run the list 3 times, interleaved; keep each trial's median run
//   node bench/run.js --out file.json   write the results elsewhere
//   node bench/run.js --list            print the trial ids
//
// Scratch databases live in a fresh directory under os.tmpdir(), removed after each trial.
// Exits 1 when a trial crashes (non-zero exit, signal, timeout or no JSON line).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BENCH_BUILD_DIR = path.join(ROOT, 'build', 'bench');
const BUILD_LOCK = '/tmp/deltasync-build.lock';
const TRIAL_TIMEOUT_MS = 15 * 60 * 1000;

// ---- The trials. `params(quick)` gives the child's parameters; `binary` names a
// CMake target in build/bench instead of a script; `nodeArgs` go before the script.

const GC = ['--expose-gc'];
const applySizes = (quick) => (quick ? { seed: 5000, count: 10000 } : { seed: 50000, count: 100000 });
const storeSizes = (quick) => ({ count: quick ? 2000 : 20000, rounds: 5, warmup: quick ? 200 : 1000 });
const loadSizes = (quick) => ({
  clients: 8,
  users: 4,
  changesPerRequest: 100,
  requests: quick ? 10 : 200,
  warmup: quick ? 2 : 5,
  changeIds: 'v7',
});

const cycleSizes = (quick) => ({ mode: 'cycle', cycles: quick ? 30 : 200, warmup: quick ? 20 : 50 });
const historySizes = (quick) => ({ mode: 'cycle', cycles: quick ? 20 : 100, warmup: 5, history: quick ? 10000 : 100000 });
const coldSizes = (quick, pull) => ({ mode: 'cold', total: quick ? 10000 : 100000, pull, runs: quick ? 1 : 3 });
const ingestSizes = (quick) => ({ files: quick ? 20 : 200, fileBytes: quick ? 100 * 1024 : 1024 * 1024 });

const TRIALS = [
  // Issue "Foundation": the durable queue.
  {
    id: 'enqueue-single/deltasync',
    group: 'a',
    label: 'deltasync queue.enqueue()',
    script: 'trials/enqueue-single.js',
    params: (quick) => ({ impl: 'deltasync', count: quick ? 2000 : 20000, rounds: 5, warmup: quick ? 200 : 1000 }),
  },
  {
    id: 'enqueue-single/better-sqlite3',
    group: 'a',
    label: 'better-sqlite3 INSERT, implicit tx',
    script: 'trials/enqueue-single.js',
    params: (quick) => ({ impl: 'better-sqlite3', count: quick ? 2000 : 20000, rounds: 5, warmup: quick ? 200 : 1000 }),
  },
  {
    id: 'enqueue-many/deltasync',
    group: 'b',
    label: 'deltasync queue.enqueueMany()',
    script: 'trials/enqueue-many.js',
    params: (quick) => ({ impl: 'deltasync', count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'enqueue-many/better-sqlite3',
    group: 'b',
    label: 'better-sqlite3 prepared INSERT, 1 tx',
    script: 'trials/enqueue-many.js',
    params: (quick) => ({ impl: 'better-sqlite3', count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'enqueue-many/sqlite-ceiling',
    group: 'c',
    label: 'C++ sqlite3 API, pre-built values',
    binary: 'bench_ceiling',
    params: (quick) => ({ count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'memory-flat/deltasync',
    group: 'd',
    label: 'deltasync queue.enqueueMany()',
    script: 'trials/memory-flat.js',
    params: (quick) => ({ impl: 'deltasync', total: quick ? 100000 : 1000000, batch: 10000 }),
  },
  {
    id: 'memory-flat/better-sqlite3',
    group: 'd',
    label: 'better-sqlite3 prepared INSERT, 1 tx/batch',
    script: 'trials/memory-flat.js',
    params: (quick) => ({ impl: 'better-sqlite3', total: quick ? 100000 : 1000000, batch: 10000 }),
  },

  // Issue "Store and delta application".
  {
    id: 'apply/deltasync',
    group: 'e',
    label: 'deltasync await client.applyRemote(buf)',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync', mode: 'throughput', ...applySizes(quick), iterations: quick ? 1 : 3 }),
  },
  {
    id: 'apply/better-sqlite3',
    group: 'e',
    label: 'JSON.parse + better-sqlite3 upserts, 1 tx',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'throughput', ...applySizes(quick), iterations: quick ? 1 : 3 }),
  },
  {
    id: 'apply/sqlite-ceiling',
    group: 'e',
    label: 'C++ sqlite3 API, pre-parsed values',
    binary: 'bench_apply_ceiling',
    params: (quick) => ({ ...applySizes(quick), iterations: quick ? 1 : 3 }),
  },
  {
    id: 'apply-stall/deltasync',
    group: 'f',
    label: 'deltasync await client.applyRemote(buf)',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync', mode: 'stall', runs: quick ? 1 : 3, ...applySizes(quick) }),
  },
  {
    id: 'apply-stall/better-sqlite3',
    group: 'f',
    label: 'JSON.parse + better-sqlite3 upserts, 1 tx',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'stall', runs: quick ? 1 : 3, ...applySizes(quick) }),
  },
  {
    id: 'apply-put/deltasync',
    group: 'g',
    label: 'deltasync applyRemote, put() every 5 ms',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync', mode: 'put', putEveryMs: 5, runs: quick ? 1 : 3, ...applySizes(quick) }),
  },
  {
    id: 'apply-put/better-sqlite3',
    group: 'g',
    label: 'JS peer apply, put() every 5 ms',
    script: 'trials/apply.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'put', putEveryMs: 5, runs: quick ? 1 : 3, ...applySizes(quick) }),
  },
  {
    id: 'apply-memory/deltasync',
    group: 'h',
    label: 'deltasync await client.applyRemote(buf)',
    script: 'trials/apply-memory.js',
    params: (quick) => ({ impl: 'deltasync', total: quick ? 100000 : 1000000, page: 10000 }),
  },
  {
    id: 'apply-memory/better-sqlite3',
    group: 'h',
    label: 'JSON.parse + better-sqlite3 upserts',
    script: 'trials/apply-memory.js',
    params: (quick) => ({ impl: 'better-sqlite3', total: quick ? 100000 : 1000000, page: 10000 }),
  },
  ...['put', 'get', 'patch'].flatMap((op, i) => [
    {
      id: `store-${op}/deltasync`,
      group: 'ijk'[i],
      label: `deltasync client.${op}()`,
      script: 'trials/store-ops.js',
      params: (quick) => ({ impl: 'deltasync', op, ...storeSizes(quick) }),
    },
    {
      id: `store-${op}/better-sqlite3`,
      group: 'ijk'[i],
      label: `better-sqlite3, same statements (${op})`,
      script: 'trials/store-ops.js',
      params: (quick) => ({ impl: 'better-sqlite3', op, ...storeSizes(quick) }),
    },
  ]),

  // Issue "Sync server".
  {
    id: 'server-load/deltasync',
    group: 'l',
    label: 'deltasync createSyncRouter (Express)',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'deltasync', mode: 'load', ...loadSizes(quick) }),
  },
  {
    id: 'server-load/better-sqlite3',
    group: 'l',
    label: 'JS peer: express.json + better-sqlite3',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'load', ...loadSizes(quick) }),
  },
  {
    id: 'server-load-v4/deltasync',
    group: 'l2',
    label: 'deltasync createSyncRouter (Express)',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'deltasync', mode: 'load', ...loadSizes(quick), requests: quick ? 10 : 100, changeIds: 'v4' }),
  },
  {
    id: 'server-load-v4/better-sqlite3',
    group: 'l2',
    label: 'JS peer: express.json + better-sqlite3',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'load', ...loadSizes(quick), requests: quick ? 10 : 100, changeIds: 'v4' }),
  },
  // The same load from 32 devices at once, where requests of different users arrive together.
  ...['deltasync', 'better-sqlite3'].map((impl) => ({
    id: `server-load-32/${impl}`,
    group: 'l4',
    label: impl === 'deltasync' ? 'deltasync createSyncRouter (Express)' : 'JS peer: express.json + better-sqlite3',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl, mode: 'load', ...loadSizes(quick), clients: 32, users: 16, requests: quick ? 10 : 100 }),
  })),
  // The load of (l''') with every commit synced to disk, where sharing a commit saves an fsync.
  ...['deltasync', 'better-sqlite3'].map((impl) => ({
    id: `server-load-32-full/${impl}`,
    group: 'l5',
    label: impl === 'deltasync' ? "deltasync createSyncRouter (Express), durability: 'full'" : 'JS peer: express.json + better-sqlite3, synchronous=FULL',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl, mode: 'load', ...loadSizes(quick), clients: 32, users: 16, requests: quick ? 10 : 100, durability: 'full' }),
  })),
  // Issue "The server past one machine": the same load through 1, 2 and 4 server processes
  // on one PostgreSQL (devices spread round robin over the processes).
  ...[1, 2, 4].map((processes) => ({
    id: `server-load-pg/deltasync-${processes}`,
    group: 'l3',
    label: `deltasync on PostgreSQL, ${processes} process${processes > 1 ? 'es' : ''}`,
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'deltasync', mode: 'load', ...loadSizes(quick), processes }),
  })),
  {
    id: 'server-pull/deltasync',
    group: 'm',
    label: 'deltasync await server.pull() (object)',
    script: 'trials/server-pull.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync', count: quick ? 2000 : 10000, iterations: quick ? 5 : 15 }),
  },
  {
    id: 'server-pull/deltasync-text',
    group: 'm',
    label: 'deltasync native pull (JSON text)',
    script: 'trials/server-pull.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync-text', count: quick ? 2000 : 10000, iterations: quick ? 5 : 15 }),
  },
  {
    id: 'server-pull/better-sqlite3',
    group: 'm',
    label: 'JS peer: .all() + JSON.stringify (text)',
    script: 'trials/server-pull.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3', count: quick ? 2000 : 10000, iterations: quick ? 5 : 15 }),
  },
  {
    id: 'server-pull/better-sqlite3-objects',
    group: 'm',
    label: 'JS peer: .all() + JSON.parse (object)',
    script: 'trials/server-pull.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3-objects', count: quick ? 2000 : 10000, iterations: quick ? 5 : 15 }),
  },
  {
    id: 'server-stall/deltasync',
    group: 'n',
    label: 'deltasync createSyncRouter (Express)',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'deltasync', mode: 'push-stall', pushBytes: quick ? 1 << 20 : 10 << 20, pushes: quick ? 1 : 3 }),
  },
  {
    id: 'server-stall/better-sqlite3',
    group: 'n',
    label: 'JS peer: express.json + better-sqlite3',
    script: 'trials/server-load.js',
    params: (quick) => ({ impl: 'better-sqlite3', mode: 'push-stall', pushBytes: quick ? 1 << 20 : 10 << 20, pushes: quick ? 1 : 3 }),
  },

  // Issue "Sync that runs itself".
  {
    id: 'sync-cycle/deltasync',
    group: 'o',
    label: 'deltasync put() + sync(), httpTransport',
    script: 'trials/sync.js',
    params: (quick) => ({ impl: 'deltasync', ...cycleSizes(quick) }),
  },
  {
    id: 'sync-cycle/better-sqlite3',
    group: 'o',
    label: 'JS peer: fetch + better-sqlite3',
    script: 'trials/sync.js',
    params: (quick) => ({ impl: 'better-sqlite3', ...cycleSizes(quick) }),
  },
  {
    id: 'sync-cycle-history/deltasync',
    group: 'o2',
    label: 'deltasync put() + sync(), httpTransport',
    script: 'trials/sync.js',
    params: (quick) => ({ impl: 'deltasync', ...historySizes(quick) }),
  },
  {
    id: 'sync-cycle-history/better-sqlite3',
    group: 'o2',
    label: 'JS peer: fetch + better-sqlite3',
    script: 'trials/sync.js',
    params: (quick) => ({ impl: 'better-sqlite3', ...historySizes(quick) }),
  },
  ...[1000, 10000].flatMap((pull) => [
    {
      id: `sync-cold${pull === 1000 ? '' : `-${pull / 1000}k`}/deltasync`,
      group: pull === 1000 ? 'p' : 'p2',
      label: `deltasync sync(), batch.pull ${pull}`,
      script: 'trials/sync.js',
      nodeArgs: GC,
      params: (quick) => ({ impl: 'deltasync', ...coldSizes(quick, pull) }),
    },
    {
      id: `sync-cold${pull === 1000 ? '' : `-${pull / 1000}k`}/better-sqlite3`,
      group: pull === 1000 ? 'p' : 'p2',
      label: `JS peer: fetch + JSON.parse + upserts, ${pull}`,
      script: 'trials/sync.js',
      nodeArgs: GC,
      params: (quick) => ({ impl: 'better-sqlite3', ...coldSizes(quick, pull) }),
    },
  ]),

  ...['deltasync', 'better-sqlite3'].map((impl) => ({
    id: `sync-push/${impl}`,
    group: 'p3',
    label: impl === 'deltasync' ? 'deltasync sync(), batch.push 100' : 'JS peer: JSON.stringify + fetch, 100',
    script: 'trials/sync.js',
    nodeArgs: GC,
    params: (quick) => ({ impl, mode: 'push', total: quick ? 2000 : 20000, push: 100, runs: quick ? 1 : 3 }),
  })),

  // Issue "ingestion".
  {
    id: 'ingest/deltasync',
    group: 'q',
    label: 'deltasync await client.ingest(dir)',
    script: 'trials/ingest.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'deltasync', ...ingestSizes(quick) }),
  },
  {
    id: 'ingest/better-sqlite3',
    group: 'q',
    label: 'JS peer: readline + JSON.parse + upserts',
    script: 'trials/ingest.js',
    nodeArgs: GC,
    params: (quick) => ({ impl: 'better-sqlite3', ...ingestSizes(quick) }),
  },
  // Issue "Live sync": write-to-read latency on another device, and the idle cost.
  {
    id: 'live/deltasync',
    group: 's',
    label: 'deltasync, live stream (default)',
    script: 'trials/live.js',
    params: (quick) => ({ impl: 'live', writes: quick ? 30 : 200, idleMs: quick ? 1000 : 5000, periodicMs: 1000 }),
  },
  {
    id: 'live/polling',
    group: 's',
    label: 'deltasync, live: false, periodic sync every 1 s',
    script: 'trials/live.js',
    params: (quick) => ({ impl: 'polling', writes: quick ? 5 : 20, idleMs: quick ? 1000 : 5000, periodicMs: 1000 }),
  },
  // Issue "Conflict resolution an app can write itself": the cost of a JS resolver.
  ...['server', 'client'].flatMap((side) =>
    ['custom', 'builtin'].map((impl) => ({
      id: `resolver-${side}/${impl}`,
      group: side === 'server' ? 'r' : 'r2',
      label: impl === 'custom' ? `deltasync ${side}, a JS resolver merging the fields` : `deltasync ${side}, the built-in 'merge'`,
      script: 'trials/resolver.js',
      params: (quick) => ({ side, impl, count: quick ? 500 : 5000, batch: 100, rounds: quick ? 1 : 5 }),
    })),
  ),
  // Issue "Speed round two": PouchDB (pouchdb-node client, express-pouchdb server, both on
  // LevelDB) on the work of the cold sync (p'), the push (p'') and the put (i) trials.
  {
    id: 'sync-cold-10k/pouchdb',
    group: 't',
    label: 'PouchDB replicate.from, batch_size 10000',
    script: 'trials/pouchdb.js',
    nodeArgs: GC,
    params: (quick) => ({ mode: 'cold', total: quick ? 10000 : 100000, pull: 10000, runs: quick ? 1 : 3 }),
  },
  {
    id: 'sync-push/pouchdb',
    group: 'u',
    label: 'PouchDB replicate.to, batch_size 100',
    script: 'trials/pouchdb.js',
    nodeArgs: GC,
    params: (quick) => ({ mode: 'push', total: quick ? 2000 : 20000, push: 100, runs: quick ? 1 : 3 }),
  },
  {
    id: 'store-put/pouchdb',
    group: 'v',
    label: 'PouchDB await db.put(doc)',
    script: 'trials/pouchdb.js',
    params: (quick) => ({ mode: 'put', ...storeSizes(quick) }),
  },
];

const ISSUES = {
  foundation: 'Foundation',
  store: 'Store and delta application',
  server: 'Sync server',
  engine: 'Sync that runs itself',
  ingest: 'ingestion',
  resolvers: 'Conflict resolution an app can write itself',
  live: 'Live sync',
  scale: 'The server past one machine',
  speed: 'Speed round two',
};

const resolverTitle = (letter, side, p) =>
  `(${letter}) every change a conflict: ${fmtInt(p.count)} ${side === 'server' ? `pushed UPDATEDs (requests of ${p.batch}) on an old base` : 'pulled UPDATEDs meeting local edits'}, ` +
  `settled by a JS resolver against the built-in 'merge' (median of ${p.rounds} rounds)`;
const resolverExtra = (s, subject, peer) => ({
  usPerConflict: subject?.usPerConflict,
  builtinUsPerConflict: peer?.usPerConflict,
  resolverCostUs: subject && peer ? subject.usPerConflict - peer.usPerConflict : NaN,
});

const STORE_DETAILS = {
  header: ['wall us/op', 'CPU us/op', 'queued', ''],
  row: (r) => [r.wallUsPerOp.toFixed(1), r.cpuUsPerOp.toFixed(1), fmtInt(r.queued), ''],
};

const CYCLE_DETAILS = {
  header: ['p50', 'p99', 'HTTP p50', 'client p50'],
  row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.transportP50Ms), fmtMs(r.clientSideP50Ms)],
  note: (r) => `max ${fmtMs(r.maxMs)}; HTTP = request sent to response body received (server included), client = the rest`,
};

function cycleExtra(s, subject, peer) {
  return {
    p50Ms: subject?.p50Ms,
    p99Ms: subject?.p99Ms,
    peerP50Ms: peer?.p50Ms,
    peerP99Ms: peer?.p99Ms,
    p50VsPeer: subject && peer ? peer.p50Ms / subject.p50Ms : NaN,
    p99VsPeer: subject && peer ? peer.p99Ms / subject.p99Ms : NaN,
  };
}

function coldTitle(letter, p) {
  return (
    `(${letter}) cold initial sync of ${fmtInt(p.changes ?? p.total)} server changes into an empty client, pages of ` +
    `${fmtInt(p.pull)} (one await sync(); worst of ${plural(p.runs, 'run')} for the stall)`
  );
}

const COLD_DETAILS = {
  header: ['max stall', 'ELD p99', 'requests', 'seconds'],
  row: (r) => [fmtMs(r.maxStallMs), fmtMs(r.eldP99Ms), fmtInt(r.requests), r.seconds.toFixed(2)],
  note: (r) => `max stall per run: ${r.maxStallPerRunMs.map(fmtMs).join(', ')}`,
};

const POUCHDB_DETAILS = {
  header: ['max stall', 'ELD p99', 'peak RSS', 'seconds'],
  row: (r) => [fmtMs(r.maxStallMs), fmtMs(r.eldP99Ms), fmtMb(r.peakRssKb / 1024), r.seconds.toFixed(2)],
};

function coldExtra(s, subject, peer) {
  return { maxStallMs: subject?.maxStallMs, eldP99Ms: subject?.eldP99Ms, peerMaxStallMs: peer?.maxStallMs };
}

// What each group compares, and the targets of the issues (reported, never enforced).
// A target names a number of the group's summary (see summarize): { what, metric,
// min | max, unit: 'ratio' | 'rate' | 'pct' | 'ms' | 'perMin' }. `details` adds one line per
// trial under the group with four more numbers; `extra` adds numbers to the summary;
// `letter` names the group in the list of targets when its key does not.
const GROUPS = {
  a: {
    issue: 'foundation',
    title: (p) => `(a) enqueue: one committed transaction per change, ${fmtInt(p.count)} changes (median of ${p.rounds} rounds)`,
    subject: 'enqueue-single/deltasync',
    peer: 'enqueue-single/better-sqlite3',
    targets: [{ what: '>= 1.0x better-sqlite3', metric: 'vsPeer', min: 1.0, unit: 'ratio' }],
  },
  b: {
    issue: 'foundation',
    title: (p) => `(b) enqueueMany: ${fmtInt(p.count)} changes in one transaction (median of ${p.iterations})`,
    subject: 'enqueue-many/deltasync',
    peer: 'enqueue-many/better-sqlite3',
    ceiling: 'enqueue-many/sqlite-ceiling',
    targets: [
      { what: '>= 2.0x better-sqlite3', metric: 'vsPeer', min: 2.0, unit: 'ratio' },
      { what: '>= 300,000 changes/s', metric: 'changesPerSec', min: 300000, unit: 'rate' },
    ],
  },
  c: {
    issue: 'foundation',
    title: (p) => `(c) raw SQLite ceiling: the same ${fmtInt(p.count)} rows, one prepared statement, one tx`,
    subject: 'enqueue-many/sqlite-ceiling',
    ceiling: 'enqueue-many/sqlite-ceiling',
  },
  d: {
    issue: 'foundation',
    title: (p) => `(d) memory: ${fmtInt(p.total)} changes via enqueueMany in batches of ${fmtInt(p.batch)}`,
    subject: 'memory-flat/deltasync',
    peer: 'memory-flat/better-sqlite3',
    memory: true,
  },
  e: {
    issue: 'store',
    title: (p) =>
      `(e) apply: a page of ${fmtInt(p.count)} changes (half CREATED, half UPDATED) into a store of ${fmtInt(p.seed)} ` +
      `documents${p.iterations ? ` (median of ${p.iterations})` : ''}`,
    subject: 'apply/deltasync',
    peer: 'apply/better-sqlite3',
    ceiling: 'apply/sqlite-ceiling',
    targets: [
      { what: '>= 3.0x JS peer', metric: 'vsPeer', min: 3.0, unit: 'ratio' },
      { what: '>= 50% of the SQLite ceiling', metric: 'ofCeiling', min: 0.5, unit: 'pct' },
    ],
  },
  f: {
    issue: 'store',
    title: (p) => `(f) event loop and memory during that apply (worst of ${plural(p.runs, 'run')}; the page read from a file)`,
    subject: 'apply-stall/deltasync',
    peer: 'apply-stall/better-sqlite3',
    details: {
      header: ['max stall', 'ELD p99', 'RSS before', 'apply peak'],
      row: (r) => [fmtMs(r.maxStallMs), fmtMs(r.eldP99Ms), fmtMb(r.rssBeforeMb), fmtMb(r.applyPeakRssKb / 1024)],
      note: (r) =>
        `max stall per run: ${r.maxStallPerRunMs.map(fmtMs).join(', ')}; ` +
        `RSS before each run: ${r.rssBeforePerRunMb.map(fmtMb).join(', ')}`,
    },
    extra: (s, subject, peer) => ({
      maxStallMs: subject?.maxStallMs,
      peerMaxStallMs: peer?.maxStallMs,
      applyPeakRssMb: subject && subject.applyPeakRssKb / 1024,
      peerApplyPeakRssMb: peer && peer.applyPeakRssKb / 1024,
      peakRssVsPeer: subject && peer ? subject.applyPeakRssKb / peer.applyPeakRssKb : NaN,
    }),
    targets: [
      { what: 'max event-loop stall <= 10 ms', metric: 'maxStallMs', max: 10, unit: 'ms' },
      { what: 'apply peak RSS <= 0.5x JS peer', metric: 'peakRssVsPeer', max: 0.5, unit: 'ratio' },
    ],
  },
  g: {
    issue: 'store',
    title: (p) =>
      `(g) a put() due every ${p.putEveryMs} ms on the main thread while that page applies (${plural(p.runs, 'run')}; latency ` +
      'from when it was due)',
    subject: 'apply-put/deltasync',
    peer: 'apply-put/better-sqlite3',
    details: {
      header: ['put max', 'put p99', 'put p50', 'puts'],
      row: (r) => [fmtMs(r.putMaxMs), fmtMs(r.putP99Ms), fmtMs(r.putP50Ms), fmtInt(r.puts)],
      note: (r) => `max per run: ${r.putMaxPerRunMs.map(fmtMs).join(', ')}`,
    },
    extra: (s, subject, peer) => ({
      putMaxMs: subject?.putMaxMs,
      putP99Ms: subject?.putP99Ms,
      peerPutMaxMs: peer?.putMaxMs,
      peerPutP99Ms: peer?.putP99Ms,
    }),
    targets: [{ what: 'put() max latency during an apply <= 10 ms', metric: 'putMaxMs', max: 10, unit: 'ms' }],
  },
  h: {
    issue: 'store',
    title: (p) => `(h) memory: ${fmtInt(p.total)} changes applied in pages of ${fmtInt(p.page)}`,
    subject: 'apply-memory/deltasync',
    peer: 'apply-memory/better-sqlite3',
    memory: true,
    // "Flat" read as: RSS after all the data within 25% of RSS after the first tenth.
    targets: [{ what: 'RSS flat (100%/10% <= 1.25x)', metric: 'growth', max: 1.25, unit: 'ratio' }],
  },
  i: {
    issue: 'store',
    title: (p) => `(i) put: ${fmtInt(p.count)} new documents, one transaction each; operations/s (median of ${p.rounds} rounds)`,
    subject: 'store-put/deltasync',
    peer: 'store-put/better-sqlite3',
    details: STORE_DETAILS,
    targets: [{ what: '>= 1.0x better-sqlite3', metric: 'vsPeer', min: 1.0, unit: 'ratio' }],
  },
  j: {
    issue: 'store',
    title: (p) => `(j) get: ${fmtInt(p.count)} documents by id; operations/s (median of ${p.rounds} rounds)`,
    subject: 'store-get/deltasync',
    peer: 'store-get/better-sqlite3',
    details: STORE_DETAILS,
    targets: [{ what: '>= 1.0x better-sqlite3', metric: 'vsPeer', min: 1.0, unit: 'ratio' }],
  },
  k: {
    issue: 'store',
    title: (p) => `(k) patch: 2 fields of ${fmtInt(p.count)} documents, one transaction each; operations/s (median of ${p.rounds} rounds)`,
    subject: 'store-patch/deltasync',
    peer: 'store-patch/better-sqlite3',
    details: STORE_DETAILS,
    targets: [{ what: '>= 1.0x better-sqlite3', metric: 'vsPeer', min: 1.0, unit: 'ratio' }],
  },
  l: {
    issue: 'server',
    title: (p) =>
      `(l) ${p.clients} clients (${p.users} users x 2 devices), ${fmtInt(p.requests)} v2 requests each of ` +
      `${p.changesPerRequest} changes (UUID v7 changeIds, as SyncClient makes them), Express on loopback`,
    subject: 'server-load/deltasync',
    peer: 'server-load/better-sqlite3',
    details: {
      header: ['p50', 'p99', 'max', 'server RSS'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer) => ({
      p50Ms: subject?.p50Ms,
      p99Ms: subject?.p99Ms,
      peerP50Ms: peer?.p50Ms,
      peerP99Ms: peer?.p99Ms,
    }),
    targets: [{ what: '>= 2.0x JS peer changes/s', metric: 'vsPeer', min: 2.0, unit: 'ratio' }],
  },
  l3: {
    issue: 'scale',
    title: (p) =>
      `(l'') the load of (l), ${fmtInt(p.requests)} requests each, through 1, 2 and 4 Express processes on one PostgreSQL ` +
      '(ratios against the JS peer of (l) and deltasync on SQLite, one process)',
    subject: 'server-load-pg/deltasync-1',
    peer: 'server-load/better-sqlite3',
    vsPeer: ['server-load-pg/deltasync-1', 'server-load-pg/deltasync-2', 'server-load-pg/deltasync-4'],
    details: {
      header: ['p50', 'p99', 'max', 'RSS/proc'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer, rate) => ({
      p99Ms: subject?.p99Ms,
      twoProcessesVsPeer: rate('server-load-pg/deltasync-2') / rate('server-load/better-sqlite3'),
      fourProcessesVsPeer: rate('server-load-pg/deltasync-4') / rate('server-load/better-sqlite3'),
      oneProcessVsSqlite: rate('server-load-pg/deltasync-1') / rate('server-load/deltasync'),
      fourVsOneProcess: rate('server-load-pg/deltasync-4') / rate('server-load-pg/deltasync-1'),
    }),
    notes: (s) => [
      `  PostgreSQL 1 process vs SQLite 1 process ${fmtRatio(s.oneProcessVsSqlite)}; ` +
        `4 processes vs 1 ${fmtRatio(s.fourVsOneProcess)} (on ${require('node:os').cpus().length} cores shared by ` +
        'PostgreSQL, the servers and the load generator)',
    ],
  },
  l4: {
    issue: 'server',
    letter: "l'''",
    title: (p) => `(l''') the load of (l) from ${fmtInt(p.clients)} devices of ${fmtInt(p.users)} users at once, ${fmtInt(p.requests)} requests each`,
    subject: 'server-load-32/deltasync',
    peer: 'server-load-32/better-sqlite3',
    details: {
      header: ['p50', 'p99', 'max', 'server RSS'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer) => ({ p50Ms: subject?.p50Ms, p99Ms: subject?.p99Ms, peerP50Ms: peer?.p50Ms, peerP99Ms: peer?.p99Ms }),
    targets: [{ what: '>= 2.0x JS peer changes/s', metric: 'vsPeer', min: 2.0, unit: 'ratio' }],
  },
  l5: {
    issue: 'server',
    letter: "l''''",
    title: (p) =>
      `(l'''') the load of (l''') with every commit synced to disk (durability 'full'; the peer with synchronous=FULL), ` +
      `${fmtInt(p.requests)} requests each`,
    subject: 'server-load-32-full/deltasync',
    peer: 'server-load-32-full/better-sqlite3',
    details: {
      header: ['p50', 'p99', 'max', 'server RSS'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer) => ({ p50Ms: subject?.p50Ms, p99Ms: subject?.p99Ms, peerP50Ms: peer?.p50Ms, peerP99Ms: peer?.p99Ms }),
  },
  l2: {
    issue: 'server',
    title: (p) => `(l') the same load with random (UUID v4) changeIds, as older clients send them, ${fmtInt(p.requests)} requests each`,
    subject: 'server-load-v4/deltasync',
    peer: 'server-load-v4/better-sqlite3',
    details: {
      header: ['p50', 'p99', 'max', 'server RSS'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer) => ({ p50Ms: subject?.p50Ms, p99Ms: subject?.p99Ms, peerP50Ms: peer?.p50Ms, peerP99Ms: peer?.p99Ms }),
  },
  m: {
    issue: 'server',
    title: (p) => `(m) pull: ${fmtInt(p.count)} changes in one page, in-process (median of ${p.iterations})`,
    subject: 'server-pull/deltasync',
    peer: 'server-pull/better-sqlite3',
    vsPeer: ['server-pull/deltasync', 'server-pull/deltasync-text'],
    extra: (s, subject, peer, rate) => ({
      textVsPeer: rate('server-pull/deltasync-text') / rate('server-pull/better-sqlite3'),
      vsPeerObjects: rate('server-pull/deltasync') / rate('server-pull/better-sqlite3-objects'),
    }),
    notes: (s) => [
      `  server.pull() vs the peer's objects ${fmtRatio(s.vsPeerObjects)}; ` +
        `the JSON text /v2 sends vs the peer's text ${fmtRatio(s.textVsPeer)}`,
    ],
    targets: [
      { what: '>= 2.0x JS peer (server.pull)', metric: 'vsPeer', min: 2.0, unit: 'ratio' },
      { what: '>= 2.0x JS peer (JSON text)', metric: 'textVsPeer', min: 2.0, unit: 'ratio' },
    ],
  },
  n: {
    issue: 'server',
    title: (p) => `(n) server event loop while a ${fmtMb(p.pushBytes / 2 ** 20)} v2 push is processed (worst of ${p.pushes})`,
    subject: 'server-stall/deltasync',
    peer: 'server-stall/better-sqlite3',
    details: {
      header: ['max stall', 'ELD p99', 'changes', 'server RSS'],
      row: (r) => [fmtMs(r.maxStallMs), fmtMs(r.eldP99Ms), fmtInt(r.changesPerPush), fmtMb(r.serverPeakRssKb / 1024)],
    },
    extra: (s, subject, peer) => ({ maxStallMs: subject?.maxStallMs, peerMaxStallMs: peer?.maxStallMs }),
    targets: [{ what: 'max event-loop stall <= 20 ms', metric: 'maxStallMs', max: 20, unit: 'ms' }],
  },
  o: {
    issue: 'engine',
    title: (p) =>
      `(o) one sync cycle of 1 change, put() + await sync(), over loopback HTTP to a server process; ` +
      `${p.cycles} cycles (${p.warmup} warm-up); changes/s = cycles/s`,
    subject: 'sync-cycle/deltasync',
    peer: 'sync-cycle/better-sqlite3',
    details: CYCLE_DETAILS,
    extra: cycleExtra,
    notes: (s) => [`  latency, JS peer / deltasync: p50 ${fmtRatio(s.p50VsPeer)}, p99 ${fmtRatio(s.p99VsPeer)} (above 1: deltasync is faster)`],
  },
  o2: {
    issue: 'engine',
    letter: "o'",
    title: (p) =>
      `(o') the same cycle on a client that has already synced ${fmtInt(p.history)} changes (kept in its queue as ` +
      `synced); ${p.cycles} cycles (${p.warmup} warm-up)`,
    subject: 'sync-cycle-history/deltasync',
    peer: 'sync-cycle-history/better-sqlite3',
    details: CYCLE_DETAILS,
    // historyCost: cycles/s of (o), with no history, over cycles/s here.
    extra: (s, subject, peer, rate) => ({ ...cycleExtra(s, subject, peer), historyCost: rate('sync-cycle/deltasync') / s.changesPerSec }),
    targets: [
      { what: '>= 1.0x JS peer', metric: 'vsPeer', min: 1.0, unit: 'ratio' },
      { what: 'flat: (o) cycles/s / these <= 1.25x', metric: 'historyCost', max: 1.25, unit: 'ratio' },
    ],
    notes: (s) => [`  latency, JS peer / deltasync: p50 ${fmtRatio(s.p50VsPeer)}, p99 ${fmtRatio(s.p99VsPeer)} (above 1: deltasync is faster)`],
  },
  p: {
    issue: 'engine',
    title: (p) => coldTitle('p', p),
    subject: 'sync-cold/deltasync',
    peer: 'sync-cold/better-sqlite3',
    ceiling: 'apply/sqlite-ceiling',
    details: COLD_DETAILS,
    extra: coldExtra,
    targets: [
      { what: 'max stall (client) <= 10 ms', metric: 'maxStallMs', max: 10, unit: 'ms' },
      { what: '>= 50% of the C++ apply ceiling (e)', metric: 'ofCeiling', min: 0.5, unit: 'pct' },
    ],
  },
  p2: {
    issue: 'engine',
    letter: "p'",
    title: (p) => coldTitle("p'", p),
    subject: 'sync-cold-10k/deltasync',
    peer: 'sync-cold-10k/better-sqlite3',
    ceiling: 'apply/sqlite-ceiling',
    details: COLD_DETAILS,
    extra: coldExtra,
    targets: [
      { what: 'max stall (client) <= 10 ms', metric: 'maxStallMs', max: 10, unit: 'ms' },
      { what: '>= 50% of the C++ apply ceiling (e)', metric: 'ofCeiling', min: 0.5, unit: 'pct' },
    ],
  },
  p3: {
    issue: 'engine',
    letter: "p''",
    title: (p) =>
      `(p'') a client back online with ${fmtInt(p.changes ?? p.total)} offline writes: one await sync() pushes them in ` +
      `requests of ${fmtInt(p.push)} (worst of ${plural(p.runs, 'run')} for the stall)`,
    subject: 'sync-push/deltasync',
    peer: 'sync-push/better-sqlite3',
    details: COLD_DETAILS,
    extra: coldExtra,
    targets: [{ what: 'max stall (client) <= 10 ms', metric: 'maxStallMs', max: 10, unit: 'ms' }],
  },
  q: {
    issue: 'ingest',
    title: (p) =>
      `(q) ingest ${p.files} JSONL files of ${p.fileBytes >= 2 ** 20 ? fmtMb(p.fileBytes / 2 ** 20) : `${fmtInt(p.fileBytes / 1024)} KB`} ` +
      '(session-log records) into an empty store, then again unchanged, then with 10% of the files changed; ' +
      'changes/s = records/s of the first run',
    subject: 'ingest/deltasync',
    peer: 'ingest/better-sqlite3',
    details: {
      header: ['MB/s', 'unchanged', '10% changed', 'records'],
      row: (r) => [r.mbPerSec.toFixed(1), fmtMs(r.unchangedSeconds * 1000), fmtMs(r.changedSeconds * 1000), fmtInt(r.records)],
    },
    extra: (s, subject, peer) => ({
      mbPerSec: subject?.mbPerSec,
      peerMbPerSec: peer?.mbPerSec,
      unchangedVsPeer: subject && peer ? peer.unchangedSeconds / subject.unchangedSeconds : NaN,
      changedVsPeer: subject && peer ? peer.changedSeconds / subject.changedSeconds : NaN,
    }),
    notes: (s) => [
      `  second run, nothing changed: ${fmtRatio(s.unchangedVsPeer)} the peer's speed; ` +
        `third run, 10% of files changed: ${fmtRatio(s.changedVsPeer)}`,
    ],
    targets: [{ what: '>= 3.0x JS peer (records/s)', metric: 'vsPeer', min: 3.0, unit: 'ratio' }],
  },
  t: {
    issue: 'speed',
    title: (p) =>
      `(t) against PouchDB: the cold sync of (p'), ${fmtInt(p.total)} changes (${fmtInt(p.total / 2)} documents) in pages of ` +
      `${fmtInt(p.pull)}; PouchDB replicates each document's latest revision`,
    subject: 'sync-cold-10k/deltasync',
    peer: 'sync-cold-10k/pouchdb',
    details: POUCHDB_DETAILS,
    extra: (s, subject, peer) => ({
      peakRssMb: subject ? subject.peakRssKb / 1024 : NaN,
      peerPeakRssMb: peer ? peer.peakRssKb / 1024 : NaN,
      peakRssVsPeer: subject && peer ? subject.peakRssKb / peer.peakRssKb : NaN,
      maxStallMs: subject?.maxStallMs,
      peerMaxStallMs: peer?.maxStallMs,
    }),
    targets: [{ what: "client peak RSS below PouchDB's", metric: 'peakRssVsPeer', max: 0.999, unit: 'ratio' }],
  },
  u: {
    issue: 'speed',
    title: (p) => `(u) against PouchDB: the push of (p''), ${fmtInt(p.total)} offline writes in requests of ${fmtInt(p.push)}`,
    subject: 'sync-push/deltasync',
    peer: 'sync-push/pouchdb',
    details: POUCHDB_DETAILS,
    extra: (s, subject, peer) => ({ maxStallMs: subject?.maxStallMs, peerMaxStallMs: peer?.maxStallMs }),
  },
  v: {
    issue: 'speed',
    title: (p) => `(v) against PouchDB: the put of (i), ${fmtInt(p.count)} new documents one at a time (median of ${p.rounds} rounds)`,
    subject: 'store-put/deltasync',
    peer: 'store-put/pouchdb',
    details: {
      header: ['CPU µs/op', 'peak RSS'],
      row: (r) => [r.cpuUsPerOp.toFixed(1), fmtMb(r.peakRssKb / 1024)],
    },
  },
  s: {
    issue: 'live',
    title: (p) =>
      `(s) live: ${p.writes} writes one at a time on device a, timed from put() to readable on device b (loopback, ` +
      `server in its own process), then ${fmtInt(p.idleMs)} ms idle; writes/s = 1 / mean latency`,
    subject: 'live/deltasync',
    peer: 'live/polling',
    details: {
      header: ['p50', 'p99', 'max', 'idle req/min'],
      row: (r) => [fmtMs(r.p50Ms), fmtMs(r.p99Ms), fmtMs(r.maxMs), r.idleRequestsPerMin.toFixed(0)],
    },
    extra: (s, subject, peer) => ({
      p50Ms: subject?.p50Ms,
      p99Ms: subject?.p99Ms,
      idleRequestsPerMin: subject?.idleRequestsPerMin,
      peerP50Ms: peer?.p50Ms,
      peerIdleRequestsPerMin: peer?.idleRequestsPerMin,
    }),
    targets: [
      { what: 'p50 write-to-read <= 50 ms', metric: 'p50Ms', max: 50, unit: 'ms' },
      { what: 'idle requests/min == 0', metric: 'idleRequestsPerMin', max: 0, unit: 'perMin' },
    ],
  },
  r: {
    issue: 'resolvers',
    title: (p) => resolverTitle('r', 'server', p),
    subject: 'resolver-server/custom',
    peer: 'resolver-server/builtin',
    extra: resolverExtra,
  },
  r2: {
    issue: 'resolvers',
    letter: "r'",
    title: (p) => resolverTitle("r'", 'client', p),
    subject: 'resolver-client/custom',
    peer: 'resolver-client/builtin',
    extra: resolverExtra,
  },
};

// ---- Command line.

function parseArgs(argv) {
  const options = { quick: false, filter: null, out: null, list: false, build: null, repeat: 1 };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--list') options.list = true;
    else if (arg === '--build') options.build = true;
    else if (arg === '--no-build') options.build = false;
    else if (arg === '--filter' || arg === '--out' || arg === '--repeat') {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      options[arg.slice(2)] = argv[++i];
    } else if (arg.startsWith('--repeat=')) options.repeat = arg.slice('--repeat='.length); else if (arg.startsWith('--filter=')) options.filter = arg.slice('--filter='.length);
    else if (arg.startsWith('--out=')) options.out = arg.slice('--out='.length);
    else if (arg === '--help' || arg === '-h') usage(null);
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  options.repeat = Number(options.repeat);
  if (!Number.isSafeInteger(options.repeat) || options.repeat < 1) usage('--repeat needs a positive integer');
  return options;
}

function usage(error) {
  const text =
    'Usage: node bench/run.js [--quick] [--filter <substring of a trial id>] [--repeat <n>] [--out <file.json>] [--list]\n' +
    '                         [--build | --no-build]   (build the C++ trials in build/bench; default: full runs only)\n';
  if (error) {
    process.stderr.write(`bench: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

// ---- Formatting.

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US');
}
function fmtRatio(r) {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '-';
}
function fmtPct(f) {
  return Number.isFinite(f) ? `${(f * 100).toFixed(0)}%` : '-';
}
function fmtMb(mb) {
  return Number.isFinite(mb) ? `${mb.toFixed(0)} MB` : '-';
}
function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
function fmtTarget(value, unit) {
  if (unit === 'rate') return `${fmtInt(value ?? NaN)} changes/s`;
  if (unit === 'perMin') return `${fmtInt(value ?? NaN)}/min`;
  if (unit === 'pct') return fmtPct(value ?? NaN);
  if (unit === 'ms') return fmtMs(value ?? NaN);
  return fmtRatio(value ?? NaN);
}
function pad(text, width, right = false) {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

// ---- Building the C++ trials.

function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    let stat;
    try {
      stat = fs.statSync(p);
    } catch {
      continue;
    }
    if (stat.isDirectory()) newest = Math.max(newest, newestMtime(fs.readdirSync(p).map((f) => path.join(p, f))));
    else newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

/** Builds `target` in build/bench unless it is newer than its sources. Returns an error message or null. */
function buildBinary(target) {
  const binary = path.join(BENCH_BUILD_DIR, target);
  const inputs = [path.join(ROOT, 'bench', 'cpp'), path.join(ROOT, 'src', 'core'), path.join(ROOT, 'CMakeLists.txt')];
  if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= newestMtime(inputs)) return null;
  const steps = [
    ['cmake', '-S', '.', '-B', 'build/bench', '-DDELTASYNC_BENCH=ON', '-DCMAKE_BUILD_TYPE=Release'],
    ['cmake', '--build', 'build/bench', '--target', target, '-j2'],
  ];
  process.stdout.write(`building ${target} (flock ${BUILD_LOCK} ...)\n`);
  for (const step of steps) {
    const run = spawnSync('flock', [BUILD_LOCK, ...step], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (run.error || run.status !== 0) {
      const output = `${run.stdout || ''}${run.stderr || ''}`.trim().split('\n').slice(-20).join('\n');
      return `build of ${target} failed (${step.join(' ')}): ${run.error ? run.error.message : `exit ${run.status}`}\n${output}`;
    }
  }
  return null;
}

// ---- Running one trial.

function runTrial(trial, quick) {
  const params = trial.params(quick);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-bench-'));
  let command;
  let args;
  if (trial.binary) {
    command = path.join(BENCH_BUILD_DIR, trial.binary);
    args = ['--dir', dir];
    for (const [key, value] of Object.entries(params)) args.push(`--${key}`, String(value));
  } else {
    command = process.execPath;
    args = [...(trial.nodeArgs || []), path.join(__dirname, trial.script), JSON.stringify({ ...params, dir })];
  }
  const started = Date.now();
  const child = spawnSync(command, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: TRIAL_TIMEOUT_MS,
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const durationMs = Date.now() - started;
  fs.rmSync(dir, { recursive: true, force: true });

  const entry = { id: trial.id, group: trial.group, label: trial.label, params, durationMs, ok: false };
  const stderr = (child.stderr || '').trim();
  if (child.error) {
    entry.error = child.error.code === 'ETIMEDOUT' ? `timed out after ${TRIAL_TIMEOUT_MS} ms` : child.error.message;
  } else if (child.signal) {
    entry.error = `killed by ${child.signal}`;
  } else if (child.status !== 0) {
    entry.error = `exited with code ${child.status}`;
  } else {
    const line = (child.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
    try {
      entry.result = JSON.parse(line);
      entry.ok = Number.isFinite(entry.result.changesPerSec);
      if (!entry.ok) entry.error = 'the JSON line has no changesPerSec';
    } catch {
      entry.error = 'printed no JSON line';
    }
  }
  if (!entry.ok && stderr) entry.stderr = stderr.split('\n').slice(-20).join('\n');
  return entry;
}

// ---- Summary and table.

function summarize(entries) {
  const byId = new Map(entries.filter((e) => e.ok).map((e) => [e.id, e]));
  const rate = (id) => (byId.has(id) ? byId.get(id).result.changesPerSec : NaN);
  const result = (id) => (byId.has(id) ? byId.get(id).result : undefined);
  const summary = {};
  for (const [key, group] of Object.entries(GROUPS)) {
    if (!entries.some((e) => e.group === key)) continue;
    const s = { issue: ISSUES[group.issue], subject: group.subject, changesPerSec: rate(group.subject) };
    if (group.peer) {
      s.peer = group.peer;
      s.peerChangesPerSec = rate(group.peer);
      s.vsPeer = s.changesPerSec / s.peerChangesPerSec;
    }
    if (group.ceiling && group.ceiling !== group.subject) {
      s.ceilingChangesPerSec = rate(group.ceiling);
      s.ofCeiling = s.changesPerSec / s.ceilingChangesPerSec;
      if (group.peer) s.peerOfCeiling = s.peerChangesPerSec / s.ceilingChangesPerSec;
    }
    if (group.memory && byId.has(group.subject)) {
      const r = byId.get(group.subject).result;
      Object.assign(s, { rssAt10Mb: r.rssAt10Mb, rssAt50Mb: r.rssAt50Mb, rssAt100Mb: r.rssAt100Mb, growth: r.growth });
      if (byId.has(group.peer)) s.peerGrowth = byId.get(group.peer).result.growth;
    }
    if (group.extra) Object.assign(s, group.extra(s, result(group.subject), result(group.peer), rate));
    if (group.targets) {
      s.targets = group.targets.map((t) => {
        const value = s[t.metric];
        const limit = t.min ?? t.max;
        const met = Number.isFinite(value) ? (t.min !== undefined ? value >= t.min : value <= t.max) : null;
        return { what: t.what, metric: t.metric, unit: t.unit, value: Number.isFinite(value) ? value : null,
          [t.min !== undefined ? 'min' : 'max']: limit, met };
      });
    }
    // JSON has no NaN: a missing side becomes null.
    for (const [k, v] of Object.entries(s)) if (typeof v === 'number' && !Number.isFinite(v)) s[k] = null;
    for (const [k, v] of Object.entries(s)) if (v === undefined) delete s[k];
    summary[key] = s;
  }
  return summary;
}

function printTable(entries, summary, quick) {
  const out = [];
  const W = [44, 12, 10, 12, 11];
  const row = (label, cells, indent = 2) =>
    `${' '.repeat(indent)}${pad(label, W[0] - indent)}${cells.map((cell, i) => pad(cell, W[i + 1], true)).join('')}`;
  out.push(
    `${pad('trial', W[0])}${pad('changes/s', W[1], true)}${pad('vs peer', W[2], true)}` +
      `${pad('of ceiling', W[3], true)}${pad('peak RSS', W[4], true)}`,
  );
  out.push('-'.repeat(W.reduce((a, b) => a + b)));
  let issue = null;
  for (const [key, group] of Object.entries(GROUPS)) {
    const members = entries.filter((e) => e.group === key);
    if (members.length === 0) continue;
    // A group may compare a trial of another group (its subject) with a peer of its own.
    const borrowed = entries.find((e) => e.id === group.subject && e.group !== key);
    if (borrowed) members.unshift(borrowed);
    if (group.issue !== issue) {
      issue = group.issue;
      out.push(`[issue "${ISSUES[issue]}"]`);
    }
    out.push(group.title(members[0].params));
    const s = summary[key] || {};
    const peerRate = s.peerChangesPerSec;
    const compared = group.vsPeer || [group.subject];
    for (const e of members) {
      if (!e.ok) {
        out.push(`  ${pad(e.label, W[0] - 2)}${pad(e.skipped ? 'skipped' : 'CRASHED', W[1], true)}  ${e.error}`);
        continue;
      }
      const r = e.result;
      const vsPeer = group.peer && compared.includes(e.id) ? fmtRatio(r.changesPerSec / peerRate) : '';
      let ofCeiling = '';
      if (group.ceiling) {
        if (e.id === group.ceiling) ofCeiling = '100%';
        else if (e.id === group.subject) ofCeiling = fmtPct(s.ofCeiling ?? NaN);
        else if (e.id === group.peer) ofCeiling = fmtPct(s.peerOfCeiling ?? NaN);
      }
      out.push(row(e.label, [fmtInt(r.changesPerSec), vsPeer, ofCeiling, fmtMb(r.peakRssKb / 1024)]));
    }
    if (group.memory) {
      out.push(row('RSS after 10% / 50% / 100% of the data', ['RSS@10%', 'RSS@50%', 'RSS@100%', '100%/10%']));
      for (const e of members.filter((m) => m.ok)) {
        const r = e.result;
        out.push(row(e.id.split('/')[1], [fmtMb(r.rssAt10Mb), fmtMb(r.rssAt50Mb), fmtMb(r.rssAt100Mb), fmtRatio(r.growth)], 4));
      }
    }
    if (group.details) {
      out.push(row('', group.details.header));
      for (const e of members.filter((m) => m.ok)) {
        out.push(row(e.id.split('/')[1], group.details.row(e.result), 4));
        if (group.details.note) out.push(`      ${group.details.note(e.result)}`);
      }
    }
    if (group.notes && members.every((m) => m.ok)) out.push(...group.notes(s));
  }
  let targetIssue = null;
  const targetLines = [];
  for (const [key, s] of Object.entries(summary)) {
    for (const t of s.targets || []) {
      if (GROUPS[key].issue !== targetIssue) {
        targetIssue = GROUPS[key].issue;
        targetLines.push(`  issue "${ISSUES[targetIssue]}":`);
      }
      const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED';
      targetLines.push(`    ${pad(`(${GROUPS[key].letter ?? key})`, 4)} ${pad(t.what, 32)} ${pad(fmtTarget(t.value, t.unit), 20)} ${verdict}`);
    }
  }
  if (targetLines.length) {
    out.push('');
    out.push(`Targets (reported, not enforced${quick ? '; --quick sizes are not representative' : ''}):`);
    out.push(...targetLines);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---- Main.

function main() {
  const options = parseArgs(process.argv.slice(2));
  const filter = options.filter ? options.filter.toLowerCase() : null;
  const selected = TRIALS.filter(
    (t) => !filter || t.id.toLowerCase().includes(filter) || t.label.toLowerCase().includes(filter),
  );
  if (options.list) {
    for (const t of TRIALS) process.stdout.write(`${t.id}\n`);
    return 0;
  }
  if (selected.length === 0) usage(`no trial matches --filter ${JSON.stringify(options.filter)} (see --list)`);

  const mode = options.quick ? 'quick' : 'full';
  const partial = options.quick || Boolean(filter);
  // Only a full, unfiltered run replaces the committed summary; partial runs go to the temp dir.
  const outFile = path.resolve(
    options.out ||
      (partial ? path.join(os.tmpdir(), 'deltasync-bench-partial.json') : path.join(__dirname, 'results', 'latest.json')),
  );
  const cpus = os.cpus();
  const machine = {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown',
    totalMemMb: Math.round(os.totalmem() / 2 ** 20),
    scratchDir: os.tmpdir(),
    loadavgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
  process.stdout.write(
    `deltasync bench (${mode}${filter ? `, filter "${options.filter}"` : ''}): node ${machine.node}, ` +
      `${machine.cpus} x ${machine.cpuModel}, load ${machine.loadavgAtStart.join(' ')}, scratch ${machine.scratchDir}\n`,
  );

  // Build (or find) the C++ trials first; a trial that cannot run is reported once.
  const built = new Map();
  const unrunnable = new Map();
  for (const trial of selected.filter((t) => t.binary)) {
    const binary = path.join(BENCH_BUILD_DIR, trial.binary);
    const build = options.build ?? !options.quick;
    if (!built.has(trial.binary)) built.set(trial.binary, build ? buildBinary(trial.binary) : null);
    const buildError = built.get(trial.binary);
    if (buildError || !fs.existsSync(binary)) {
      const skipped = !buildError;
      unrunnable.set(trial.id, {
        id: trial.id,
        group: trial.group,
        label: trial.label,
        params: trial.params(options.quick),
        ok: false,
        skipped,
        error: buildError || `${path.relative(ROOT, binary)} is not built (run without --quick, or pass --build)`,
      });
      process.stdout.write(`  ${pad(trial.id, 34)} ${skipped ? 'skipped: not built' : 'BUILD FAILED'}\n`);
    }
  }

  // With --repeat N the whole list runs N times, interleaved, and each trial keeps its median run.
  const runs = new Map(selected.map((t) => [t.id, []]));
  for (let round = 1; round <= options.repeat; ++round) {
    if (options.repeat > 1) process.stdout.write(`round ${round} of ${options.repeat}\n`);
    for (const trial of selected) {
      if (unrunnable.has(trial.id)) continue;
      process.stdout.write(`  ${pad(trial.id, 34)} `);
      const entry = runTrial(trial, options.quick);
      runs.get(trial.id).push(entry);
      process.stdout.write(
        entry.ok
          ? `${fmtInt(entry.result.changesPerSec)} changes/s (${(entry.durationMs / 1000).toFixed(1)} s)\n`
          : `CRASHED: ${entry.error}\n${entry.stderr ? `${entry.stderr.replace(/^/gm, '      ')}\n` : ''}`,
      );
    }
  }
  const entries = selected.map((trial) => {
    if (unrunnable.has(trial.id)) return unrunnable.get(trial.id);
    const list = runs.get(trial.id);
    const crashed = list.find((e) => !e.ok);
    if (crashed || list.length === 1) return crashed || list[0];
    const sorted = [...list].sort((x, y) => x.result.changesPerSec - y.result.changesPerSec);
    const median = sorted[(sorted.length - 1) >> 1];
    return { ...median, repeats: list.map((e) => e.result.changesPerSec) };
  });
  machine.loadavgAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);

  const summary = summarize(entries);
  process.stdout.write('\n');
  printTable(entries, summary, options.quick);

  const results = {
    generatedAt: new Date().toISOString(),
    mode,
    filter: options.filter,
    repeat: options.repeat,
    machine,
    versions: {
      deltasync: require('../package.json').version,
      betterSqlite3: require('better-sqlite3/package.json').version,
    },
    sqlite: {
      deltasync: entries.find((e) => e.ok && e.id.endsWith('/deltasync'))?.result.sqliteVersion ?? null,
      betterSqlite3: entries.find((e) => e.ok && e.id.endsWith('/better-sqlite3'))?.result.sqliteVersion ?? null,
    },
    pragmas: 'journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON, temp_store=MEMORY, cache_size=-4000 (client-side peers and ceilings, as deltasync\'s client) or -16000 (the server peer, as deltasync\'s server)',
    summary,
    trials: entries,
  };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\nresults: ${outFile}\n`);

  const crashed = entries.filter((e) => !e.ok && !e.skipped);
  if (crashed.length > 0) {
    process.stderr.write(`bench: ${crashed.length} trial(s) crashed: ${crashed.map((e) => e.id).join(', ')}\n`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
