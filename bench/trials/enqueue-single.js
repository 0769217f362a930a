'use strict';

// (a) One change per committed transaction: client.queue.enqueue(change) vs
// better-sqlite3 running the same INSERT in its own implicit transaction.
// The `count` changes are timed in `rounds` equal rounds; the median round is
// reported (robust to a burst of load from elsewhere on a shared machine), and
// the rate over all of them as overallChangesPerSec.
// Params: { impl: 'deltasync' | 'better-sqlite3', count, rounds, warmup, dir }

const c = require('./common');

const { impl, count, rounds = 1, warmup, dir } = c.params();
const file = c.scratchDb(dir, `single-${impl}`);
const warm = c.makeChanges(warmup, 'w');
const changes = c.makeChanges(count, 'e');
const roundSize = Math.ceil(count / rounds);
const perRound = [];
let elapsed = 0;

/** Times `enqueue` over the changes, round by round. */
function timeRounds(enqueue) {
  for (let from = 0; from < count; from += roundSize) {
    const to = Math.min(count, from + roundSize);
    const start = c.seconds();
    for (let i = from; i < to; ++i) enqueue(changes[i]);
    const seconds = c.seconds() - start;
    elapsed += seconds;
    perRound.push((to - from) / seconds);
  }
}
let sqliteVersion;

if (impl === 'deltasync') {
  const client = c.openDeltasync(file);
  for (const change of warm) client.queue.enqueue(change);
  timeRounds((change) => client.queue.enqueue(change));
  const stats = client.queue.stats();
  if (stats.pending !== warmup + count) throw new Error(`expected ${warmup + count} pending, found ${stats.pending}`);
  client.close();
  sqliteVersion = '3.46.0 (bundled)';
} else if (impl === 'better-sqlite3') {
  const db = c.openPeer(file);
  const insert = db.prepare(c.INSERT_CHANGE);
  const enqueue = (change) => {
    const now = Date.now();
    insert.run(c.newChangeId(), change.entityType, change.entityId, change.type, JSON.stringify(change.data), now, now, now);
  };
  for (const change of warm) enqueue(change);
  timeRounds(enqueue);
  const rows = db.prepare('SELECT count(*) AS n FROM changes').get().n;
  if (rows !== warmup + count) throw new Error(`expected ${warmup + count} rows, found ${rows}`);
  sqliteVersion = c.peerSqliteVersion(db);
  db.close();
} else {
  throw new Error(`unknown impl ${impl}`);
}

const bytes = c.dbBytes(file);
c.removeDb(file);
c.report({
  changes: count,
  rounds: perRound.length,
  changesPerSec: c.median(perRound),
  overallChangesPerSec: count / elapsed,
  seconds: elapsed,
  perRound,
  dbBytes: bytes,
  sqliteVersion,
});
