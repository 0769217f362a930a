'use strict';

// Shared by every JS trial: parameters, the workload (identical for both peers),
// the peer's schema and pragmas, and the one-line JSON report.

const { randomUUID } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** The trial's parameters, passed by run.js as one JSON argument. */
function params() {
  return JSON.parse(process.argv[2] || '{}');
}

// ---- Workload. Deterministic and index-based, so bench/cpp/ceiling.cc builds the same bytes.

const ENTITY_TYPE = 'logbook_entry';
const TAGS = ['night', 'ifr', 'cross-country', 'training', 'solo'];
const NOTES = [
  'Smooth flight, light chop on descent, vectors for the ILS, landed long on 27.',
  'Practice approaches at the regional field; one go-around for traffic on final.',
  'Crosswind 12 knots gusting 18; two touch-and-goes, then a full stop taxi back.',
  'Night currency: three full-stop landings, beacon out on the north ramp again.',
];

/** The document of change `i`: {title, duration, tags[], notes}. */
function makeDocument(i) {
  return {
    title: `Flight ${i}`,
    duration: (i * 37) % 7200,
    tags: [TAGS[i % 5], TAGS[(i * 7 + 3) % 5]],
    notes: NOTES[i % 4],
  };
}

/** `count` CREATED changes for distinct entities `${prefix}${i}`. */
function makeChanges(count, prefix = 'e', start = 0) {
  const changes = new Array(count);
  for (let i = 0; i < count; ++i) {
    const n = start + i;
    changes[i] = { type: 'CREATED', entityType: ENTITY_TYPE, entityId: `${prefix}${n}`, data: makeDocument(n) };
  }
  return changes;
}

// ---- Pulled pages (the `newChanges` of a v2 response), also deterministic so that
// bench/cpp/apply_ceiling.cc writes the same documents.
//
// A store is seeded with `seed` documents e0..e{seed-1} (CREATED, versions 1..seed).
// Change k of the page that follows (version versionBase + k + 1) is, for even k, a
// CREATED of the new entity e{seed + k/2} and, for odd k, an UPDATED of e{(k-1)/2}
// setting two fields (duration, tags). With seed = 0 the entity an odd change
// updates is the one the change before it created.

const REMOTE_DEVICE = 'device-remote';
const REMOTE_TIMESTAMP = 1731000000000;

/** The fields an UPDATED of entity `j` sets. */
function updateFields(j) {
  return { duration: (j * 53 + 11) % 7200, tags: [TAGS[(j + 2) % 5]] };
}

/** The document entity `j` holds after its CREATED and its UPDATED. */
function updatedDocument(j) {
  return { ...makeDocument(j), ...updateFields(j) };
}

function remoteChangeId(version) {
  return `00000000-0000-4000-8000-${version.toString(16).padStart(12, '0')}`;
}

function remoteChange(version, type, n, data) {
  return {
    version,
    changeId: remoteChangeId(version),
    type,
    entityType: ENTITY_TYPE,
    entityId: `e${n}`,
    data,
    timestamp: REMOTE_TIMESTAMP + version,
    deviceId: REMOTE_DEVICE,
  };
}

/** Change k of a page following a seed of `seed` documents. */
function pageChange(k, seed, versionBase) {
  const version = versionBase + k + 1;
  if (k % 2 === 0) return remoteChange(version, 'CREATED', seed + k / 2, makeDocument(seed + k / 2));
  return remoteChange(version, 'UPDATED', (k - 1) / 2, updateFields((k - 1) / 2));
}

/** JSON text of a v2 pull response: changes from..to-1 of `changeAt`, hasMore false. */
function pageText(from, to, changeAt) {
  const parts = new Array(to - from);
  let latest = 0;
  for (let k = from; k < to; ++k) {
    const change = changeAt(k);
    parts[k - from] = JSON.stringify(change);
    latest = change.version;
  }
  return `{"newChanges":[${parts.join(',')}],"latestServerVersion":${latest},"hasMore":false}`;
}

/** The seed page: CREATED of e0..e{seed-1}, versions 1..seed. */
function seedPage(seed) {
  return Buffer.from(pageText(0, seed, (i) => remoteChange(i + 1, 'CREATED', i, makeDocument(i))));
}

/** The page of `count` mixed changes after a seed of `seed` documents. */
function applyPage(seed, count, { from = 0, versionBase = seed } = {}) {
  return Buffer.from(pageText(from, from + count, (k) => pageChange(k, seed, versionBase)));
}

// ---- The JS peer of applyRemote: JSON.parse of the whole page, then better-sqlite3
// upserts in one transaction (deltasync's statement, table and pragmas), UPDATED
// fields merged in JS onto the stored document.

/**
 * The transaction of the JS peer's apply, on parsed changes: (changes, cursor?) ->
 * { applied, skipped }; the cursor, when given, is stored in `meta` with them.
 */
function makePeerChangeApplier(db) {
  const load = db.prepare('SELECT data, version, deleted FROM documents WHERE entity_type = ? AND entity_id = ?');
  const upsert = db.prepare(UPSERT_REMOTE);
  const setCursor = db.prepare(
    "INSERT INTO meta (key, value) VALUES ('server_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  );
  const apply = db.transaction((changes, latest) => {
    let applied = 0;
    let skipped = 0;
    const now = Date.now();
    for (const change of changes) {
      const { type, entityType, entityId, version } = change;
      if (typeof entityType !== 'string' || typeof entityId !== 'string' || !Number.isSafeInteger(version)) {
        throw new Error(`bad change ${JSON.stringify(change).slice(0, 200)}`);
      }
      let data = null;
      if (type === 'CREATED') {
        data = JSON.stringify(change.data);
      } else if (type === 'UPDATED') {
        const row = load.get(entityType, entityId);
        if (row && row.version !== null && row.version >= version) {
          ++skipped;
          continue;
        }
        const doc = row && !row.deleted && row.data !== null ? JSON.parse(row.data) : {};
        for (const key of Object.keys(change.data)) {
          const value = change.data[key];
          if (value === null) delete doc[key];
          else doc[key] = value;
        }
        data = JSON.stringify(doc);
      } else if (type !== 'DELETED') {
        throw new Error(`bad change type ${type}`);
      }
      const deleted = data === null ? 1 : 0;
      const info = upsert.run(entityType, entityId, data, null, version, deleted, now, now, deleted, now);
      if (info.changes > 0) ++applied;
      else ++skipped;
    }
    if (latest !== undefined) setCursor.run(String(latest));
    return { applied, skipped };
  });
  return apply;
}

function makePeerApplier(db) {
  const apply = makePeerChangeApplier(db);
  /** Applies a page given as bytes, like client.applyRemote. */
  return (buffer) => {
    const page = JSON.parse(buffer);
    const changes = Array.isArray(page) ? page : page.newChanges;
    const last = changes.length > 0 ? changes[changes.length - 1].version : 0;
    return apply(changes, Math.max(last, page.latestServerVersion ?? 0));
  };
}

// ---- The peer: better-sqlite3 on the same tables as deltasync's client schema v2
// (copied from src/core/schema.cc: kClientV1 plus the kClientV2 `attempts` column
// and `documents` table, with the CHECKs as version 7 writes them) with the same pragmas as src/core/sqlite.cc Database::Open.

const CHANGES_SCHEMA = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE changes (
  id             INTEGER PRIMARY KEY,
  change_id      TEXT NOT NULL UNIQUE,
  tenant_id      TEXT,
  user_id        TEXT,
  entity_type    TEXT NOT NULL,
  entity_id      TEXT NOT NULL,
  type           TEXT NOT NULL CHECK (type = 'CREATED' OR type = 'UPDATED' OR type = 'DELETED'),
  data           TEXT,
  base_version   INTEGER,
  timestamp      INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  synced_at      INTEGER,
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status = 'pending' OR status = 'syncing' OR status = 'synced' OR status = 'failed'),
  retry_count    INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  server_version INTEGER,
  attempts       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX changes_by_entity ON changes (entity_type, entity_id, id);
CREATE INDEX changes_by_status ON changes (status, id);
CREATE INDEX changes_synced_by_time ON changes (synced_at) WHERE status = 'synced';
CREATE INDEX changes_synced_by_version ON changes (server_version) WHERE status = 'synced';
`;

const DOCUMENTS_SCHEMA = `
CREATE TABLE documents (
  id             INTEGER PRIMARY KEY,
  entity_type    TEXT NOT NULL,
  entity_id      TEXT NOT NULL,
  data           TEXT,
  base           TEXT,
  version        INTEGER,
  deleted        INTEGER NOT NULL DEFAULT 0,
  updated_at     INTEGER NOT NULL,
  last_synced_at INTEGER,
  deleted_at     INTEGER,
  UNIQUE (entity_type, entity_id)
);
`;

// The manifest of ingested files (src/core/schema.cc kClientV3).
const INGEST_SCHEMA = `
CREATE TABLE IF NOT EXISTS ingest_files (
  root        TEXT NOT NULL,
  path        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  mtime_ms    INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  records     INTEGER NOT NULL,
  ingested_at INTEGER NOT NULL,
  PRIMARY KEY (root, path)
) WITHOUT ROWID;
`;

// The column list of deltasync's INSERT (src/core/queue.cc kInsertChange), with
// anonymous parameters because better-sqlite3 binds them positionally.
const INSERT_CHANGE =
  'INSERT INTO changes (change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, ' +
  'timestamp, created_at, updated_at, status, retry_count, last_error, attempts) ' +
  "VALUES (?, NULL, NULL, ?, ?, ?, ?, NULL, ?, ?, ?, 'pending', 0, NULL, 0)";

// deltasync's upsert of a pulled state (src/core/apply.cc kUpsertRemote), with its
// numbered parameters spelled out (better-sqlite3 binds ? positionally): entity_type,
// entity_id, data, base, version, deleted, now, now, deleted, now.
const UPSERT_REMOTE =
  'INSERT INTO documents (entity_type, entity_id, data, base, version, deleted, updated_at, last_synced_at, ' +
  'deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN ? END) ' +
  'ON CONFLICT (entity_type, entity_id) DO UPDATE SET data = excluded.data, base = excluded.base, ' +
  'version = excluded.version, deleted = excluded.deleted, updated_at = excluded.updated_at, ' +
  'last_synced_at = excluded.last_synced_at, ' +
  'deleted_at = CASE WHEN excluded.deleted THEN coalesce(documents.deleted_at, excluded.deleted_at) END ' +
  'WHERE documents.version IS NULL OR documents.version < excluded.version';

// deltasync's client connections (src/core/sqlite.h kClientCacheKib sets the cache).
const PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'foreign_keys = ON', 'temp_store = MEMORY', 'cache_size = -4000'];

/** Opens a better-sqlite3 database with deltasync's pragmas and its `meta`, `changes` and `documents` tables. */
function openPeer(file) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  for (const pragma of PRAGMAS) db.pragma(pragma);
  if (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'changes'").get().n === 0) {
    db.exec(CHANGES_SCHEMA + DOCUMENTS_SCHEMA);
  }
  return db;
}

/** Opens a deltasync client on `file` with default options (WAL, synchronous=NORMAL). */
function openDeltasync(file) {
  const { SyncClient } = require('../..');
  return new SyncClient({ path: file });
}

function peerSqliteVersion(db) {
  return db.prepare('SELECT sqlite_version() AS v').get().v;
}

// ---- Measurement helpers.

/** Seconds since an arbitrary origin, high resolution. */
function seconds() {
  return Number(process.hrtime.bigint()) / 1e9;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The p-th percentile (0..100) of `values`, nearest rank. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Watches the event loop: perf_hooks.monitorEventLoopDelay (1 ms resolution) plus a
 * 1 ms setInterval whose largest gap between two ticks is the longest stall. stop()
 * returns { maxGapMs, eldMaxMs, eldP99Ms, eldMeanMs, ticks, maxRssMb } (maxRssMb: the
 * largest RSS seen by the ticks; a stall hides what happens during it, see peakRssKb).
 */
function startStallProbe() {
  const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  let maxRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last > maxGap) maxGap = now - last;
    last = now;
    ++ticks;
    const rss = process.memoryUsage.rss();
    if (rss > maxRss) maxRss = rss;
  }, 1);
  return {
    stop() {
      const now = performance.now();
      if (now - last > maxGap) maxGap = now - last;
      clearInterval(timer);
      histogram.disable();
      return {
        maxGapMs: maxGap,
        eldMaxMs: histogram.max / 1e6,
        eldP99Ms: histogram.percentile(99) / 1e6,
        eldMeanMs: histogram.mean / 1e6,
        ticks,
        maxRssMb: maxRss / 2 ** 20,
      };
    },
  };
}

// ---- Child processes.

/**
 * Forks a script of this directory with its parameters as one JSON argument; next(type)
 * resolves with the next IPC message of that type (rejects if the child dies first).
 */
function forkScript(script, args) {
  const { fork } = require('node:child_process');
  const child = fork(path.join(__dirname, script), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue = [];
  const waiters = [];
  let failure = null;
  child.on('message', (message) => {
    const index = waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) waiters.splice(index, 1)[0].resolve(message);
    else queue.push(message);
  });
  child.on('exit', (code, signal) => {
    if (code === 0) return;
    failure = new Error(`${script} exited with ${code ?? signal}`);
    for (const w of waiters.splice(0)) w.reject(failure);
  });
  return {
    child,
    send: (message) => child.send(message),
    next(type) {
      const index = queue.findIndex((m) => m.type === type);
      if (index >= 0) return Promise.resolve(queue.splice(index, 1)[0]);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiters.push({ type, resolve, reject }));
    },
  };
}

/**
 * Starts a sync server in its own process (server-child.js: Express on 127.0.0.1,
 * deltasync's createSyncRouter or the JS peer at /api/sync, the user from x-user-id)
 * on `file`. stop() ends it, deletes the database and returns the child's last report.
 */
async function startServerChild({ impl, file, limits = {}, postgres, durability }) {
  const server = forkScript('server-child.js', { impl, file, limits, postgres, durability });
  const { port } = await server.next('ready');
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}/api/sync`,
    async stop() {
      server.send({ type: 'exit' });
      const bye = await server.next('bye');
      await new Promise((resolve) => (server.child.exitCode !== null ? resolve() : server.child.on('exit', resolve)));
      const bytes = dbBytes(file);
      removeDb(file);
      return { ...bye, dbBytes: bytes };
    },
  };
}

/** CPU milliseconds of each thread of this process, by thread name (Linux /proc; {} elsewhere). */
function threadCpuMs() {
  const out = {};
  try {
    const ticks = 100; // USER_HZ on Linux
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
      const key = tid === String(process.pid) ? 'main' : name;
      out[key] = (out[key] || 0) + ms;
    }
  } catch {
    // not Linux
  }
  return out;
}

/** The CPU milliseconds of each thread spent between two threadCpuMs() readings. */
function threadCpuDelta(before, after) {
  const out = {};
  for (const [key, ms] of Object.entries(after)) {
    const spent = ms - (before[key] || 0);
    if (spent > 0) out[key] = spent;
  }
  return out;
}

/** Size of a database and its WAL, in bytes. */
function dbBytes(file) {
  let total = 0;
  for (const suffix of ['', '-wal']) {
    try {
      total += fs.statSync(file + suffix).size;
    } catch {
      // absent
    }
  }
  return total;
}

/** Deletes a database file and its WAL/SHM companions. */
function removeDb(file) {
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(file + suffix, { force: true });
}

let scratchCounter = 0;
/** A fresh database path inside the trial's scratch directory (created by run.js in os.tmpdir()). */
function scratchDb(dir, name) {
  return path.join(dir, `${name}-${process.pid}-${scratchCounter++}.db`);
}

/**
 * The figures of runs each watched by startStallProbe ({ seconds, changesPerSec, ...its stats }):
 * the median rate and time, and the event loop's worst over all runs.
 */
function summarizeWatchedRuns(perRun) {
  return {
    changesPerSec: median(perRun.map((r) => r.changesPerSec)),
    seconds: median(perRun.map((r) => r.seconds)),
    maxStallMs: Math.max(...perRun.map((r) => r.maxGapMs)),
    eldMaxMs: Math.max(...perRun.map((r) => r.eldMaxMs)),
    eldP99Ms: Math.max(...perRun.map((r) => r.eldP99Ms)),
    maxStallPerRunMs: perRun.map((r) => Math.round(r.maxGapMs * 10) / 10),
    secondsPerRun: perRun.map((r) => Math.round(r.seconds * 1000) / 1000),
  };
}

/** Prints the trial's one JSON line, with the process's peak RSS. */
function report(result) {
  const peakRssKb = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify({ ...result, peakRssKb, node: process.version })}\n`);
}

/**
 * The rows of the `documents` table of a store whose owner has closed it. (A second SQLite
 * library must not open a file that this process's deltasync client still has open: POSIX
 * locks are per process, so closing that connection would drop the client's locks.)
 */
function countStoredDocuments(file) {
  const Database = require('better-sqlite3');
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT count(*) AS n FROM documents').get().n;
  } finally {
    db.close();
  }
}

/**
 * A changeId as deltasync makes them (src/core/env.cc Random::UuidV7): a UUID v7, 48 bits of
 * Unix milliseconds first, then random bits. Every peer uses it, so both sides insert into the
 * same UNIQUE index in the same order; trials labelled v4 use crypto.randomUUID instead.
 */
function newChangeId() {
  const ms = Date.now().toString(16).padStart(12, '0');
  const random = randomUUID();
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19)}`;
}

module.exports = {
  newChangeId,
  countStoredDocuments,
  params,
  ENTITY_TYPE,
  makeDocument,
  makeChanges,
  REMOTE_TIMESTAMP,
  updateFields,
  updatedDocument,
  pageChange,
  pageText,
  seedPage,
  applyPage,
  makePeerChangeApplier,
  makePeerApplier,
  CHANGES_SCHEMA,
  DOCUMENTS_SCHEMA,
  INGEST_SCHEMA,
  INSERT_CHANGE,
  UPSERT_REMOTE,
  PRAGMAS,
  openPeer,
  openDeltasync,
  peerSqliteVersion,
  seconds,
  median,
  percentile,
  sleep,
  startStallProbe,
  summarizeWatchedRuns,
  forkScript,
  startServerChild,
  threadCpuMs,
  threadCpuDelta,
  dbBytes,
  removeDb,
  scratchDb,
  report,
};
