'use strict';

// Shared by every JS trial: parameters, the workload (identical for both peers),
// the peer's schema and pragmas, and the one-line JSON report.

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

// ---- The peer: better-sqlite3 on the same table as deltasync's `changes`
// (copied from src/core/schema.cc kClientV1) with the same pragmas as
// src/core/sqlite.cc Database::Open.

const CHANGES_SCHEMA = `
CREATE TABLE changes (
  id             INTEGER PRIMARY KEY,
  change_id      TEXT NOT NULL UNIQUE,
  tenant_id      TEXT,
  user_id        TEXT,
  entity_type    TEXT NOT NULL,
  entity_id      TEXT NOT NULL,
  type           TEXT NOT NULL CHECK (type IN ('CREATED', 'UPDATED', 'DELETED')),
  data           TEXT,
  base_version   INTEGER,
  timestamp      INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  synced_at      INTEGER,
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'syncing', 'synced', 'failed')),
  retry_count    INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  server_version INTEGER
);
CREATE INDEX changes_by_entity ON changes (entity_type, entity_id, id);
CREATE INDEX changes_by_status ON changes (status, id);
`;

// The column list of deltasync's INSERT (src/core/queue.cc kInsertChange), with
// anonymous parameters because better-sqlite3 binds them positionally.
const INSERT_CHANGE =
  'INSERT INTO changes (change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, ' +
  "timestamp, created_at, updated_at, status, retry_count, last_error) " +
  "VALUES (?, NULL, NULL, ?, ?, ?, ?, NULL, ?, ?, ?, 'pending', 0, NULL)";

const PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'foreign_keys = ON', 'temp_store = MEMORY', 'cache_size = -16000'];

/** Opens a better-sqlite3 database with deltasync's pragmas and the `changes` table. */
function openPeer(file) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  for (const pragma of PRAGMAS) db.pragma(pragma);
  db.exec(CHANGES_SCHEMA);
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

/** Prints the trial's one JSON line, with the process's peak RSS. */
function report(result) {
  const peakRssKb = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify({ ...result, peakRssKb, node: process.version })}\n`);
}

module.exports = {
  params,
  ENTITY_TYPE,
  makeDocument,
  makeChanges,
  CHANGES_SCHEMA,
  INSERT_CHANGE,
  PRAGMAS,
  openPeer,
  openDeltasync,
  peerSqliteVersion,
  seconds,
  median,
  dbBytes,
  removeDb,
  scratchDb,
  report,
};
