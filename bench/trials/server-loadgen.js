'use strict';

// The load generator of server-load.js, in its own process: `clients` concurrent
// devices (two per user when clients = 2 * users) each send `requests` v2 requests
// of `changesPerRequest` changes over keep-alive HTTP to 127.0.0.1:port/api/sync/v2.
// changeIds are time-ordered UUID v7, as deltasync's SyncClient generates them
// (changeIds: 'v4' sends random ones, as older clients do).
// A request is 80% CREATED of new entities and 20% UPDATED of entities the device
// knows (its own or its user's other device's, learnt from applied[] and
// newChanges) with the version it knows as baseVersion, so the two devices of a user
// meet now and then (conflicts, newest_wins). Each device pulls with
// lastKnownServerVersion = what the previous response said. `warmup` requests per
// client run first, untimed.
// Sends { type: 'result', ... } over IPC: changes/s over the timed phase, request
// latency percentiles, outcome counts.
// Params (argv[2], JSON): { port, clients, users, requests, changesPerRequest, warmup, changeIds? }

const http = require('node:http');
const { randomUUID } = require('node:crypto');
const c = require('./common');

const { port, clients, users, requests, changesPerRequest, warmup, changeIds = 'v7' } = c.params();
// Several server processes (one database): device i talks to ports[i % ports.length].
const ports = c.params().ports ?? [port];

const newChangeId = changeIds === 'v4' ? randomUUID : c.newChangeId;
const agent = new http.Agent({ keepAlive: true, maxSockets: clients * 2 });

/** A small deterministic PRNG (mulberry32). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function post(userId, body, port) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/sync/v2',
        method: 'POST',
        agent,
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
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

class Device {
  constructor(index) {
    this.index = index;
    this.userId = `user-${index % users}`;
    this.deviceId = `device-${index}`;
    this.random = prng(index + 1);
    this.lastKnown = 0;
    this.versions = new Map();  // entityId -> the version this device knows
    this.pool = [];             // entity ids it may update
    this.created = 0;
    this.counts = { applied: 0, conflicts: 0, errors: 0, pulled: 0 };
  }

  request() {
    const changes = new Array(changesPerRequest);
    const now = Date.now();
    for (let j = 0; j < changesPerRequest; ++j) {
      if (this.pool.length > 0 && this.random() < 0.2) {
        const entityId = this.pool[Math.floor(this.random() * this.pool.length)];
        changes[j] = {
          changeId: newChangeId(),
          type: 'UPDATED',
          entityType: c.ENTITY_TYPE,
          entityId,
          data: c.updateFields(Math.floor(this.random() * 1e6)),
          baseVersion: this.versions.get(entityId),
          timestamp: now,
        };
      } else {
        const n = this.created++;
        changes[j] = {
          changeId: newChangeId(),
          type: 'CREATED',
          entityType: c.ENTITY_TYPE,
          entityId: `d${this.index}-${n}`,
          data: c.makeDocument(n),
          timestamp: now,
        };
      }
    }
    return { changes, body: Buffer.from(JSON.stringify({ deviceId: this.deviceId, lastKnownServerVersion: this.lastKnown, changes })) };
  }

  learn(entityId, version) {
    if (!this.versions.has(entityId)) this.pool.push(entityId);
    this.versions.set(entityId, version);
  }

  async exchange() {
    const { changes, body } = this.request();
    const text = await post(this.userId, body, ports[this.index % ports.length]);
    const response = JSON.parse(text);
    const byId = new Map(changes.map((change) => [change.changeId, change.entityId]));
    for (const { changeId, version } of response.applied) this.learn(byId.get(changeId), version);
    for (const change of response.newChanges) this.learn(change.entityId, change.version);
    this.counts.applied += response.applied.length;
    this.counts.conflicts += response.conflicts.length;
    this.counts.errors += response.errors.length;
    this.counts.pulled += response.newChanges.length;
    const answered = new Set(response.applied.map((a) => a.changeId));
    for (const conflict of response.conflicts) answered.add(conflict.changeId);
    for (const error of response.errors) answered.add(error.changeId);
    if (answered.size !== changes.length) throw new Error(`${changes.length} changes sent, ${answered.size} answered`);
    this.lastKnown = response.hasMore ? response.newChanges[response.newChanges.length - 1].version : response.latestServerVersion;
    return body.length;
  }
}

async function main() {
  const devices = Array.from({ length: clients }, (_, i) => new Device(i));
  await Promise.all(devices.map(async (device) => {
    for (let r = 0; r < warmup; ++r) await device.exchange();
  }));
  for (const device of devices) device.counts = { applied: 0, conflicts: 0, errors: 0, pulled: 0 };

  const latencies = [];
  let bytesSent = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(devices.map(async (device) => {
    for (let r = 0; r < requests; ++r) {
      const before = performance.now();
      const sent = await device.exchange();
      bytesSent += sent;
      latencies.push(performance.now() - before);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const totals = { applied: 0, conflicts: 0, errors: 0, pulled: 0 };
  for (const device of devices) for (const key of Object.keys(totals)) totals[key] += device.counts[key];
  const changes = clients * requests * changesPerRequest;
  process.send({
    type: 'result',
    changes,
    requests: clients * requests,
    seconds,
    changesPerSec: changes / seconds,
    requestsPerSec: (clients * requests) / seconds,
    p50Ms: c.percentile(latencies, 50),
    p99Ms: c.percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    meanRequestBytes: bytesSent / (clients * requests),
    ...totals,
    loadgenCpuMs: (cpu.user + cpu.system) / 1000,
    loadgenPeakRssKb: process.resourceUsage().maxRSS,
  }, () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
process.on('disconnect', () => process.exit(1));  // the orchestrator went away
