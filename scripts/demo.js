#!/usr/bin/env node
'use strict';

// The main job, end to end: a sync server on a free loopback port, two clients on
// their own database files, edits made while "offline", a conflicting edit, then
// reconnection and sync. Prints an account of what happened and checks that both
// clients and the server ended equal (exit code 1 if not). Leaves nothing running.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const { SyncClient, SyncServer, httpTransport, TransportError } = require('..');
const { createSyncRouter } = require('../lib/express');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-demo-'));
let failures = 0;
const check = (ok, what) => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
};
const sortById = (docs) => [...docs].sort((a, b) => String(a.id).localeCompare(String(b.id)));

/** A transport that fails like a dropped network while its device is "offline". It keeps
 *  httpTransport's live stream, so a started device hears of changes as they happen. */
function deviceTransport(url, device) {
  const http = httpTransport({ url, headers: { authorization: 'Bearer demo-user' } });
  const offline = () => new TransportError(`${device.name} is offline`);
  return Object.assign(
    async (request, context) => {
      if (!device.online) throw offline();
      return http(request, context);
    },
    { events: async (options) => (device.online ? http.events(options) : Promise.reject(offline())) },
  );
}

async function main() {
  const server = new SyncServer({ path: path.join(dir, 'server.db'), conflicts: 'newest_wins', toleranceMs: 1000 });
  const app = express();
  app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.headers.authorization?.slice(7) }));
  const http = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  const url = `http://127.0.0.1:${http.address().port}/api/sync`;
  console.log(`deltasync demo: server on ${url}, databases in ${dir}\n`);

  const devices = ['laptop', 'phone'].map((name) => ({ name, online: true }));
  const [laptop, phone] = devices.map(
    (device) =>
      new SyncClient({
        path: path.join(dir, `${device.name}.db`),
        deviceId: device.name,
        transport: deviceTransport(url, device),
        triggers: { periodicMs: 0, minIntervalMs: 0, localChangeDelayMs: 50 },
        retry: { baseDelayMs: 50, maxDelayMs: 200 },
      }),
  );
  const conflicts = [];
  for (const [client, device] of [[laptop, devices[0]], [phone, devices[1]]]) {
    client.on('conflict', (conflict) => conflicts.push({ device: device.name, ...conflict }));
    client.on('error', () => {}); // offline attempts fail by design here; the account below reports them
  }

  console.log('1. Both devices start from the same data');
  laptop.put('logbook_entry', 'e1', { id: 'e1', title: 'Scales', duration: 20 });
  laptop.put('goal', 'g1', { id: 'g1', title: 'Practice daily' });
  await laptop.sync();
  await phone.sync();
  check(phone.get('logbook_entry', 'e1')?.title === 'Scales', 'the phone pulled what the laptop wrote');

  console.log('\n2. Both go offline and keep editing');
  for (const device of devices) device.online = false;
  laptop.notify('offline');
  phone.notify('offline');
  laptop.patch('logbook_entry', 'e1', { duration: 25 });                  // laptop: one field
  laptop.put('logbook_entry', 'e2', { id: 'e2', title: 'Arpeggios', duration: 15 });
  phone.patch('goal', 'g1', { title: 'Practice every day' });           // phone: another entity
  phone.delete('logbook_entry', 'e2-never-synced');                    // nothing to delete: no change queued
  await new Promise((resolve) => setTimeout(resolve, 1100));           // the conflicting edits below are > toleranceMs apart
  phone.patch('logbook_entry', 'e1', { title: 'Scales in thirds' });   // phone: the same entity as the laptop
  await laptop.sync().catch((error) => console.log(`   laptop tried to sync: ${error.message}`));
  console.log(`   laptop queue: ${laptop.queue.stats().pending} pending, phone queue: ${phone.queue.stats().pending} pending`);
  check(laptop.queue.stats().pending === 2 && phone.queue.stats().pending === 2, 'offline edits wait in the queues');

  console.log('\n3. Back online: the scheduler syncs by itself');
  for (const device of devices) device.online = true;
  const synced = (client) => new Promise((resolve) => client.once('sync', resolve));
  laptop.start();
  phone.start();
  const laptopFirst = synced(laptop);
  laptop.notify('online');
  console.log(`   laptop cycle: ${JSON.stringify(await laptopFirst)}`);
  const phoneFirst = synced(phone);
  phone.notify('online');
  console.log(`   phone cycle:  ${JSON.stringify(await phoneFirst)}`);
  await laptop.sync(); // pulls what the phone pushed
  for (const conflict of conflicts) {
    console.log(`   conflict on ${conflict.device}: ${conflict.entityType}/${conflict.entityId}, ${conflict.resolution ?? conflict.strategy}, winner ${conflict.winner}`);
  }
  check(conflicts.length >= 1, 'the concurrent edit of e1 was detected as a conflict');

  console.log('\n4. Live: a write on one device reaches the other without polling');
  const live = () => laptop.status.live && phone.status.live;
  for (let waited = 0; !live() && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  check(live(), 'both devices hold the live stream (no periodic sync is configured)');
  const arrived = new Promise((resolve) => {
    const onChange = (event) => {
      if (event.source === 'remote' && phone.get('goal', 'g2')) {
        phone.off('change', onChange);
        resolve();
      }
    };
    phone.on('change', onChange);
  });
  const writtenAt = performance.now();
  laptop.put('goal', 'g2', { id: 'g2', title: 'Sight-read one page' });
  await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 5000))]);
  const readable = phone.get('goal', 'g2') !== undefined;
  console.log(`   the phone could read the laptop's new goal ${(performance.now() - writtenAt).toFixed(0)} ms after put()`);
  check(readable, 'the phone has it');

  console.log('\n5. Final state');
  const laptopDocs = { logbook_entry: sortById(laptop.list('logbook_entry')), goal: sortById(laptop.list('goal')) };
  const phoneDocs = { logbook_entry: sortById(phone.list('logbook_entry')), goal: sortById(phone.list('goal')) };
  const pulled = await server.pull('demo-user', { since: 0, limit: 1000 });
  const serverDocs = { logbook_entry: [], goal: [] };
  const state = new Map();
  for (const change of pulled.newChanges) {
    const key = `${change.entityType}/${change.entityId}`;
    if (change.type === 'DELETED') state.delete(key);
    else if (change.type === 'CREATED') state.set(key, { entityType: change.entityType, data: change.data });
    else {
      const data = { ...state.get(key).data, ...change.data };
      for (const [field, value] of Object.entries(change.data)) if (value === null) delete data[field];
      state.set(key, { entityType: change.entityType, data });
    }
  }
  for (const { entityType, data } of state.values()) serverDocs[entityType].push(data);
  serverDocs.logbook_entry = sortById(serverDocs.logbook_entry);
  serverDocs.goal = sortById(serverDocs.goal);
  console.log(`   e1 everywhere: ${JSON.stringify(laptop.get('logbook_entry', 'e1'))}`);
  console.log(`   g1 everywhere: ${JSON.stringify(laptop.get('goal', 'g1'))}`);
  console.log(`   server log: versions 1..${pulled.latestServerVersion}, ${pulled.newChanges.length} changes`);
  check(JSON.stringify(laptopDocs) === JSON.stringify(phoneDocs), 'laptop and phone hold the same documents');
  check(JSON.stringify(laptopDocs) === JSON.stringify(serverDocs), 'and they equal the server\'s change log replayed');
  check(laptop.status.pendingChanges === 0 && phone.status.pendingChanges === 0, 'nothing left in either queue');
  const versions = pulled.newChanges.map((change) => change.version);
  check(versions.every((version, index) => version === index + 1), 'server versions are gapless');

  laptop.close();
  phone.close();
  await new Promise((resolve) => http.close(resolve));
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(failures === 0 ? '\nAll expectations held.' : `\n${failures} expectation(s) failed.`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
