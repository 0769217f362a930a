'use strict';

// Memory stays flat while pulled pages keep coming: `total` changes (common.pageChange
// with no seed: CREATED of a new entity, then an UPDATED of it) applied in pages of
// `page` changes, each page built as bytes just before it is applied; RSS sampled
// after every page. deltasync `await client.applyRemote(buffer)` vs the JS peer
// (common.makePeerApplier).
// Params: { impl: 'deltasync' | 'better-sqlite3', total, page, dir }

const c = require('./common');

const { impl, total, page: pageSize, dir } = c.params();
const file = c.scratchDb(dir, `apply-memory-${impl}`);
let apply;
let close;
let sqliteVersion = '3.46.0 (bundled)';
if (impl === 'deltasync') {
  const client = c.openDeltasync(file);
  apply = (buffer) => client.applyRemote(buffer);
  close = () => client.close();
} else if (impl === 'better-sqlite3') {
  const db = c.openPeer(file);
  const peerApply = c.makePeerApplier(db);
  apply = async (buffer) => peerApply(buffer);
  sqliteVersion = c.peerSqliteVersion(db);
  close = () => db.close();
} else {
  throw new Error(`unknown impl ${impl}`);
}

async function main() {
  const pages = Math.ceil(total / pageSize);
  const rssMb = [];
  let busy = 0;
  const startRssMb = process.memoryUsage.rss() / 2 ** 20;
  for (let p = 0; p < pages; ++p) {
    const from = p * pageSize;
    const count = Math.min(pageSize, total - from);
    const buffer = c.applyPage(0, count, { from, versionBase: 0 });
    const start = c.seconds();
    const result = await apply(buffer);
    busy += c.seconds() - start;
    if (result.applied !== count) throw new Error(`page ${p}: expected ${count} applied, got ${result.applied}`);
    rssMb.push(process.memoryUsage.rss() / 2 ** 20);
  }
  close();
  const at = (fraction) => rssMb[Math.max(0, Math.ceil(pages * fraction) - 1)];
  const bytes = c.dbBytes(file);
  c.removeDb(file);
  c.report({
    changes: total,
    page: pageSize,
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
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
