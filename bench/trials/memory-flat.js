'use strict';

// (d) Memory stays flat while the queue grows: `total` changes enqueued with
// enqueueMany in batches of `batch`; RSS is sampled after every batch.
// Params: { impl: 'deltasync' | 'better-sqlite3', total, batch, dir }

const c = require('./common');

const { impl, total, batch, dir } = c.params();
const file = c.scratchDb(dir, `memory-${impl}`);
const batches = Math.ceil(total / batch);
const rssMb = [];
let busy = 0;
let sqliteVersion = '3.46.0 (bundled)';

let enqueueBatch;
let close;
if (impl === 'deltasync') {
  const client = c.openDeltasync(file);
  enqueueBatch = (changes) => {
    const result = client.queue.enqueueMany(changes);
    if (result.queued !== changes.length) throw new Error(`expected ${changes.length} queued, got ${result.queued}`);
  };
  close = () => client.close();
} else if (impl === 'better-sqlite3') {
  const db = c.openPeer(file);
  const insert = db.prepare(c.INSERT_CHANGE);
  enqueueBatch = db.transaction((changes) => {
    for (const change of changes) {
      const now = Date.now();
      insert.run(c.newChangeId(), change.entityType, change.entityId, change.type, JSON.stringify(change.data), now, now, now);
    }
  });
  sqliteVersion = c.peerSqliteVersion(db);
  close = () => db.close();
} else {
  throw new Error(`unknown impl ${impl}`);
}

const startRssMb = process.memoryUsage.rss() / 2 ** 20;
for (let b = 0; b < batches; ++b) {
  const size = Math.min(batch, total - b * batch);
  const changes = c.makeChanges(size, 'e', b * batch);
  const start = c.seconds();
  enqueueBatch(changes);
  busy += c.seconds() - start;
  rssMb.push(process.memoryUsage.rss() / 2 ** 20);
}
close();

// RSS after the first batch that reaches a fraction of the data.
const at = (fraction) => rssMb[Math.max(0, Math.ceil(batches * fraction) - 1)];
const bytes = c.dbBytes(file);
c.removeDb(file);
c.report({
  changes: total,
  batch,
  seconds: busy,
  changesPerSec: total / busy,
  startRssMb,
  rssAt10Mb: at(0.1),
  rssAt50Mb: at(0.5),
  rssAt100Mb: at(1),
  growth: at(1) / at(0.1),
  rssMb: rssMb.map((mb) => Math.round(mb * 10) / 10),
  dbBytes: bytes,
  sqliteVersion,
});
