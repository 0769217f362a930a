'use strict';

// (b) A batch in one call: client.queue.enqueueMany(changes) vs better-sqlite3
// inserting the same rows in one transaction with one prepared statement
// (JSON.stringify of each document and a UUID v7 per change, common.newChangeId, as
// deltasync generates a changeId per change internally).
// Each iteration runs on a fresh database; the median is reported.
// Params: { impl, count, iterations, dir }

const c = require('./common');

const { impl, count, iterations, dir } = c.params();

function runDeltasync(changes) {
  const file = c.scratchDb(dir, 'many-deltasync');
  const client = c.openDeltasync(file);
  const start = c.seconds();
  const result = client.queue.enqueueMany(changes);
  const elapsed = c.seconds() - start;
  if (result.queued !== changes.length) throw new Error(`expected ${changes.length} queued, got ${result.queued}`);
  client.close();
  const bytes = c.dbBytes(file);
  c.removeDb(file);
  return { elapsed, bytes };
}

function runPeer(changes) {
  const file = c.scratchDb(dir, 'many-better-sqlite3');
  const db = c.openPeer(file);
  const insert = db.prepare(c.INSERT_CHANGE);
  const insertAll = db.transaction((list) => {
    const ids = new Array(list.length);
    for (let i = 0; i < list.length; ++i) {
      const change = list[i];
      const now = Date.now();
      ids[i] = c.newChangeId();
      insert.run(ids[i], change.entityType, change.entityId, change.type, JSON.stringify(change.data), now, now, now);
    }
    return ids;
  });
  const start = c.seconds();
  const ids = insertAll(changes);
  const elapsed = c.seconds() - start;
  if (ids.length !== changes.length) throw new Error('short insert');
  const rows = db.prepare('SELECT count(*) AS n FROM changes').get().n;
  if (rows !== changes.length) throw new Error(`expected ${changes.length} rows, found ${rows}`);
  sqliteVersion = c.peerSqliteVersion(db);
  db.close();
  const bytes = c.dbBytes(file);
  c.removeDb(file);
  return { elapsed, bytes };
}

let sqliteVersion = '3.46.0 (bundled)';
const run = impl === 'deltasync' ? runDeltasync : impl === 'better-sqlite3' ? runPeer : null;
if (!run) throw new Error(`unknown impl ${impl}`);

run(c.makeChanges(Math.min(1000, count), 'w'));  // warm-up: load code, JIT the loops
const perIteration = [];
let bytes = 0;
for (let i = 0; i < iterations; ++i) {
  const changes = c.makeChanges(count, 'e');
  const outcome = run(changes);
  perIteration.push(count / outcome.elapsed);
  bytes = outcome.bytes;
}
const changesPerSec = c.median(perIteration);
c.report({ changes: count, iterations, changesPerSec, seconds: count / changesPerSec, perIteration, dbBytes: bytes, sqliteVersion });
