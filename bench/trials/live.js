'use strict';

// Live updates end to end: a deltasync server in its own process, two started clients of one
// user over loopback HTTP. Device a writes, one write at a time; the time is taken from
// a.put() returning to the document being readable on b (its 'change' event). Then both sit
// idle for `idleMs` and b's requests are counted.
//   impl: 'live'     the default: b keeps the live stream open and pulls on each poke
//   impl: 'polling'  b with live: false and periodic sync every `periodicMs`
// Both devices have localChangeDelayMs 0 and minIntervalMs 0.
// Params: { impl, writes, idleMs, periodicMs, dir }

const c = require('./common');

const { impl, writes, idleMs, periodicMs, dir } = c.params();

function device(url, name, live) {
  const { SyncClient, httpTransport } = require('../..');
  const inner = httpTransport({ url, headers: { 'x-user-id': 'user-live' } });
  const counted = { requests: 0 };
  const transport = Object.assign(
    (request, options) => {
      counted.requests += 1;
      return inner(request, options);
    },
    { events: inner.events, probe: inner.probe },
  );
  const client = new SyncClient({
    path: c.scratchDb(dir, `live-${impl}-${name}`),
    transport,
    live,
    triggers: { periodicMs: live ? 30000 : periodicMs, minIntervalMs: 0, localChangeDelayMs: 0 },
  });
  client.on('error', () => {});
  return { client, counted };
}

async function main() {
  const server = await c.startServerChild({ impl: 'deltasync', file: c.scratchDb(dir, `live-server-${impl}`) });
  const live = impl === 'live';
  const a = device(server.url, 'a', true);
  const b = device(server.url, 'b', live);
  const firstSync = new Promise((resolve) => b.client.once('sync', resolve));
  a.client.start();
  b.client.start();
  await firstSync;
  while (live && !(a.client.status.live && b.client.status.live)) await new Promise((resolve) => setTimeout(resolve, 5));
  const latencies = [];
  for (let i = 0; i < writes; i++) {
    const id = `w${i}`;
    const seen = new Promise((resolve) => {
      const onChange = (event) => {
        if (event.source === 'remote' && b.client.get(c.ENTITY_TYPE, id)) {
          b.client.off('change', onChange);
          resolve(c.seconds());
        }
      };
      b.client.on('change', onChange);
    });
    a.client.put(c.ENTITY_TYPE, id, c.makeDocument(i));
    const start = c.seconds();
    latencies.push(((await seen) - start) * 1000);
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last cycles settle
  const before = b.counted.requests;
  await new Promise((resolve) => setTimeout(resolve, idleMs));
  const idleRequests = b.counted.requests - before;
  a.client.close();
  b.client.close();
  await server.stop();
  const total = latencies.reduce((sum, ms) => sum + ms, 0) / 1000;
  c.report({
    impl,
    writes,
    idleMs,
    periodicMs,
    changesPerSec: writes / total,
    p50Ms: c.percentile(latencies, 50),
    p99Ms: c.percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    idleRequestsPerMin: (idleRequests * 60000) / idleMs,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
