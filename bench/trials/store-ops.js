'use strict';

// The document store, one operation per committed transaction: client.put / get /
// patch vs better-sqlite3 running the same statements from JS on the same tables
// (common.CHANGES_SCHEMA + DOCUMENTS_SCHEMA):
//   put    read the stored document (CREATED or UPDATED?), upsert it into documents
//          and insert its change into changes, in one transaction
//   get    select the document and JSON.parse it
//   patch  read the document, merge the fields in JS, upsert it and insert the
//          UPDATED change, in one transaction
// put writes `count` new documents; get and patch work on `count` documents that a
// setup phase (untimed) put first. deltasync runs with its defaults (coalescing on,
// so a patch of a document whose CREATED is still queued folds into that change).
// The `count` operations are timed in `rounds` equal rounds; the median round is reported,
// with the CPU time per operation (less sensitive to a busy machine than the wall clock).
// Params: { impl: 'deltasync' | 'better-sqlite3', op: 'put' | 'get' | 'patch', count, rounds, warmup, dir }

const assert = require('node:assert/strict');
const c = require('./common');

const { impl, op, count, rounds = 5, warmup, dir } = c.params();
const file = c.scratchDb(dir, `store-${op}-${impl}`);
const TYPE = c.ENTITY_TYPE;

function openStore() {
  if (impl === 'deltasync') {
    const client = c.openDeltasync(file);
    return {
      put: (id, doc) => client.put(TYPE, id, doc),
      get: (id) => client.get(TYPE, id),
      patch: (id, fields) => client.patch(TYPE, id, fields),
      queued: () => client.queue.stats().pending,
      sqliteVersion: '3.46.0 (bundled)',
      close: () => client.close(),
    };
  }
  if (impl !== 'better-sqlite3') throw new Error(`unknown impl ${impl}`);
  const db = c.openPeer(file);
  const load = db.prepare('SELECT data, deleted, version FROM documents WHERE entity_type = ? AND entity_id = ?');
  const upsert = db.prepare(
    'INSERT INTO documents (entity_type, entity_id, data, base, deleted, updated_at, deleted_at) ' +
      'VALUES (?, ?, ?, NULL, 0, ?, NULL) ON CONFLICT (entity_type, entity_id) DO UPDATE SET ' +
      'data = excluded.data, deleted = 0, updated_at = excluded.updated_at, deleted_at = NULL',
  );
  const insertChange = db.prepare(c.INSERT_CHANGE);
  const put = db.transaction((id, doc) => {
    const now = Date.now();
    const existing = load.get(TYPE, id);
    const json = JSON.stringify(doc);
    upsert.run(TYPE, id, json, now);
    const type = existing && !existing.deleted ? 'UPDATED' : 'CREATED';
    insertChange.run(c.newChangeId(), TYPE, id, type, json, now, now, now);
  });
  const patch = db.transaction((id, fields) => {
    const now = Date.now();
    const existing = load.get(TYPE, id);
    if (!existing || existing.deleted) throw new Error(`No document ${TYPE}/${id} to patch`);
    const doc = JSON.parse(existing.data);
    for (const key of Object.keys(fields)) {
      if (fields[key] === null) delete doc[key];
      else doc[key] = fields[key];
    }
    upsert.run(TYPE, id, JSON.stringify(doc), now);
    insertChange.run(c.newChangeId(), TYPE, id, 'UPDATED', JSON.stringify(fields), now, now, now);
  });
  return {
    put,
    get: (id) => {
      const row = load.get(TYPE, id);
      return row && !row.deleted ? JSON.parse(row.data) : undefined;
    },
    patch,
    queued: () => db.prepare("SELECT count(*) AS n FROM changes WHERE status = 'pending'").get().n,
    sqliteVersion: c.peerSqliteVersion(db),
    close: () => db.close(),
  };
}

const store = openStore();
const docs = new Array(count);
for (let i = 0; i < count; ++i) docs[i] = c.makeDocument(i);
const fields = new Array(count);
for (let i = 0; i < count; ++i) fields[i] = c.updateFields(i);

// Warm-up on other ids, every operation.
for (let i = 0; i < warmup; ++i) {
  store.put(`w${i}`, docs[i % count]);
  store.get(`w${i}`);
  store.patch(`w${i}`, fields[i % count]);
}
if (op !== 'put') for (let i = 0; i < count; ++i) store.put(`e${i}`, docs[i]);

const operations = {
  put: (i) => store.put(`e${i}`, docs[i]),
  get: (i) => {
    if (store.get(`e${i}`) === undefined) throw new Error(`e${i} missing`);
  },
  patch: (i) => store.patch(`e${i}`, fields[i]),
};
const run = operations[op];
if (!run) throw new Error(`unknown op ${op}`);

const roundSize = Math.ceil(count / rounds);
const perRound = [];
let elapsed = 0;
const cpuBefore = process.cpuUsage();
for (let from = 0; from < count; from += roundSize) {
  const to = Math.min(count, from + roundSize);
  const start = c.seconds();
  for (let i = from; i < to; ++i) run(i);
  const seconds = c.seconds() - start;
  elapsed += seconds;
  perRound.push((to - from) / seconds);
}

const cpu = process.cpuUsage(cpuBefore);

// The operations did what they should.
const last = count - 1;
assert.deepEqual(store.get(`e${last}`), op === 'patch' ? c.updatedDocument(last) : c.makeDocument(last));
const queued = store.queued();
const sqliteVersion = store.sqliteVersion;
store.close();
const bytes = c.dbBytes(file);
c.removeDb(file);
c.report({
  op,
  operations: count,
  rounds: perRound.length,
  changesPerSec: c.median(perRound),
  overallOpsPerSec: count / elapsed,
  seconds: elapsed,
  perRound,
  wallUsPerOp: (elapsed * 1e6) / count,
  cpuUsPerOp: (cpu.user + cpu.system) / count,  // this process, all threads
  queued,
  dbBytes: bytes,
  sqliteVersion,
});
