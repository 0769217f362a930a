'use strict';

// Pulling `count` changes in one page from a server log that holds them, in-process
// (no HTTP): the time from the call to a usable result.
//   deltasync               await server.pull(userId, { since: 0, limit })  (a parsed JS object)
//   deltasync-text          await server._native().pull(...): the JSON text, as createSyncRouter sends it
//   better-sqlite3          the peer's pull (bench/peer-server.js): .all() of the rows, then the
//                           response text (JSON.stringify of each string, stored data spliced in)
//   better-sqlite3-objects  the same rows as JS objects: .all() and JSON.parse of each row's data
// The log is seeded untimed through each server's own v2 sync (requests of 1000 CREATED changes).
// Params: { impl, count, iterations, dir }

const c = require('./common');

const { impl, count, iterations, dir } = c.params();
const USER = 'user-pull';
const file = c.scratchDb(dir, `pull-${impl}`);
const limits = { maxPullLimit: Math.max(10000, count) };

function seedRequests() {
  const requests = [];
  for (let from = 0; from < count; from += 1000) {
    const changes = [];
    for (let i = from; i < Math.min(count, from + 1000); ++i) {
      changes.push({ changeId: c.newChangeId(), type: 'CREATED', entityType: c.ENTITY_TYPE, entityId: `e${i}`, data: c.makeDocument(i), timestamp: c.REMOTE_TIMESTAMP + i });
    }
    requests.push({ deviceId: 'device-seed', lastKnownServerVersion: count, changes });
  }
  return requests;
}

async function main() {
  let pull;
  let close;
  let check;
  if (impl === 'deltasync' || impl === 'deltasync-text') {
    const { SyncServer } = require('../..');
    const server = new SyncServer({ path: file, limits });
    for (const request of seedRequests()) await server.sync(USER, JSON.stringify(request));
    pull =
      impl === 'deltasync'
        ? () => server.pull(USER, { since: 0, limit: count })
        : () => server._native().pull(USER, null, 0, count);
    check = impl === 'deltasync' ? (result) => result : (text) => JSON.parse(text);
    close = () => server.close();
  } else if (impl === 'better-sqlite3' || impl === 'better-sqlite3-objects') {
    const { createPeerServer } = require('../peer-server');
    const peer = createPeerServer({ path: file, limits });
    for (const request of seedRequests()) peer.sync(USER, request);
    if (impl === 'better-sqlite3') {
      pull = async () => peer.pull(USER, { since: 0, limit: count });
      check = (text) => JSON.parse(text);
    } else {
      const Database = require('better-sqlite3');
      const db = new Database(file);
      const rows = db.prepare(
        'SELECT version, change_id AS changeId, change_type AS type, entity_type AS entityType, entity_id AS entityId, ' +
          'change_data AS data, client_timestamp AS timestamp, device_id AS deviceId ' +
          'FROM entity_changes WHERE user_id = ? AND version > ? ORDER BY version LIMIT ?',
      );
      const latest = db.prepare('SELECT version FROM user_versions WHERE user_id = ?').pluck();
      pull = async () => {
        const newChanges = rows.all(USER, 0, count + 1);
        const hasMore = newChanges.length > count;
        if (hasMore) newChanges.pop();
        for (const change of newChanges) if (change.data !== null) change.data = JSON.parse(change.data);
        return { newChanges, latestServerVersion: latest.get(USER), hasMore };
      };
      check = (result) => result;
      const closePeer = peer.close;
      peer.close = () => {
        db.close();
        closePeer();
      };
    }
    close = () => peer.close();
  } else {
    throw new Error(`unknown impl ${impl}`);
  }

  // Warm-up, and a check of what comes back.
  const first = check(await pull());
  if (first.newChanges.length !== count || first.hasMore || first.newChanges[count - 1].version !== count) {
    throw new Error(`expected ${count} changes up to version ${count}, got ${first.newChanges.length}`);
  }
  if (first.newChanges[7].data.title !== 'Flight 7') throw new Error('unexpected data in the pull');
  await pull();

  const perIteration = [];
  for (let i = 0; i < iterations; ++i) {
    if (global.gc) global.gc();
    const start = c.seconds();
    await pull();
    perIteration.push(count / (c.seconds() - start));
  }
  close();
  const bytes = c.dbBytes(file);
  c.removeDb(file);
  const changesPerSec = c.median(perIteration);
  c.report({ changes: count, iterations, changesPerSec, msPerPull: (1000 * count) / changesPerSec, perIteration, dbBytes: bytes });
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
