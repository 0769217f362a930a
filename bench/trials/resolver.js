'use strict';

// The cost of an app's own conflict resolver (a JS function) per conflicting change, against a
// built-in strategy settling the same conflicts in C++. Every change timed is a conflict.
//   side: 'server'  SyncServer in-process (no HTTP): `count` entities written by two devices,
//                   then a third pushes an UPDATED of each on the old base, in requests of `batch`
//   side: 'client'  SyncClient: `count` pulled documents edited locally, then a pulled page
//                   updating each of them (applyRemote: the apply, then the resolvers)
//   impl: 'custom'  a resolver that merges the two sides' fields (what an app would write)
//   impl: 'builtin' the 'merge' strategy
// Median of `rounds` rounds on fresh entities. Params: { side, impl, count, batch, rounds, dir }

const c = require('./common');

const { side, impl, count, batch = 100, rounds, dir } = c.params();
const USER = 'user-resolver';

const mergeFields = (mine, theirs) => ({ use: 'merged', data: { ...theirs, ...mine } });

function change(changeId, type, entityId, data, extra) {
  return { changeId, type, entityType: c.ENTITY_TYPE, entityId, data, timestamp: c.REMOTE_TIMESTAMP, ...extra };
}

async function serverRound(round) {
  const { SyncServer } = require('../..');
  const resolver = ({ client, server }) => mergeFields(client, server);
  const server = new SyncServer({
    path: c.scratchDb(dir, `resolver-server-${impl}`),
    perType: { [c.ENTITY_TYPE]: impl === 'custom' ? resolver : 'merge' },
  });
  const ids = Array.from({ length: count }, (_, i) => `r${round}-e${i}`);
  const requests = (device, make) => {
    const out = [];
    for (let from = 0; from < count; from += batch) {
      out.push({ deviceId: device, lastKnownServerVersion: 0, limit: 1, changes: ids.slice(from, from + batch).map(make) });
    }
    return out;
  };
  for (const request of requests('d1', (id, i) => change(`${id}-1`, 'CREATED', id, c.makeDocument(i)))) {
    await server.sync(USER, request);
  }
  for (const request of requests('d2', (id) => change(`${id}-2`, 'UPDATED', id, { title: 'two' }, { baseVersion: 1 }))) {
    await server.sync(USER, request);
  }
  const conflicting = requests('d3', (id) => change(`${id}-3`, 'UPDATED', id, { notes: 'three' }, { baseVersion: 1 }));
  let conflicts = 0;
  const start = c.seconds();
  for (const request of conflicting) conflicts += (await server.sync(USER, request)).conflicts.length;
  const elapsed = c.seconds() - start;
  server.close();
  if (conflicts !== count) throw new Error(`expected ${count} conflicts, got ${conflicts}`);
  return elapsed;
}

async function clientRound(round) {
  const { SyncClient } = require('../..');
  const resolver = ({ local, remote }) => mergeFields(local, remote);
  const client = new SyncClient({
    path: c.scratchDb(dir, `resolver-client-${impl}`),
    conflicts: { [c.ENTITY_TYPE]: impl === 'custom' ? resolver : 'merge' },
  });
  const ids = Array.from({ length: count }, (_, i) => `r${round}-e${i}`);
  const page = (type, at, data) =>
    JSON.stringify(ids.map((id, i) => ({ ...change(`${id}-v${at}`, type, id, data(i)), version: at * count + i + 1, deviceId: 'other' })));
  await client.applyRemote(page('CREATED', 0, (i) => c.makeDocument(i)));
  client.transaction(() => {
    for (const id of ids) client.patch(c.ENTITY_TYPE, id, { notes: 'mine' });
  });
  const later = Date.now() + 3600000; // newer than the local edits: merge takes the remote's fields
  const remotePage = JSON.stringify(
    ids.map((id, i) => ({ ...change(`${id}-v1`, 'UPDATED', id, { title: 'theirs' }, { timestamp: later }), version: count + i + 1, deviceId: 'other' })),
  );
  const start = c.seconds();
  const result = await client.applyRemote(remotePage);
  const elapsed = c.seconds() - start;
  client.close();
  if (result.conflicts.length !== count) throw new Error(`expected ${count} conflicts, got ${result.conflicts.length}`);
  return elapsed;
}

async function main() {
  const perRound = [];
  for (let round = 0; round < rounds; round++) perRound.push(await (side === 'server' ? serverRound(round) : clientRound(round)));
  const seconds = c.median(perRound);
  c.report({
    side,
    impl,
    count,
    batch,
    rounds,
    changesPerSec: count / seconds,
    usPerConflict: (seconds * 1e6) / count,
    usPerConflictPerRound: perRound.map((s) => (s * 1e6) / count),
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
