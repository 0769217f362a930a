#!/usr/bin/env node
'use strict';

// The main job, as far as this release goes: an app writes while "offline", the
// queue coalesces and survives a crash of the process, and a sync cycle takes,
// acknowledges and fails changes exactly as the engine will. Exit code 1 if any
// expectation does not hold.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { SyncClient } = require('..');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-demo-'));
const dbPath = path.join(dir, 'client.db');
let failures = 0;
const check = (ok, what) => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
};

if (process.argv[2] === '--crashing-writer') {
  // Child: write, take a batch "for sending", then die without closing anything.
  const client = new SyncClient({ path: process.argv[3] });
  client.queue.enqueue({ type: 'CREATED', entityType: 'goal', entityId: 'g1', data: { title: 'Practice daily' } });
  client._handle.takeBatch(10);
  process.send('ready');
  setInterval(() => {}, 1000);
  return;
}

async function main() {
  console.log(`deltasync demo (database in ${dir})\n`);
  console.log('1. Offline edits are queued durably, and coalesce while pending');
  let client = new SyncClient({ path: dbPath, userId: 'demo-user' });
  const created = client.queue.enqueue({
    type: 'CREATED', entityType: 'logbook_entry', entityId: 'e1', data: { title: 'Scales', duration: 20 },
  });
  const edit = client.queue.enqueue({ type: 'UPDATED', entityType: 'logbook_entry', entityId: 'e1', data: { duration: 25 } });
  client.queue.enqueue({ type: 'CREATED', entityType: 'logbook_entry', entityId: 'tmp', data: { title: 'typo' } });
  const cancelled = client.queue.enqueue({ type: 'DELETED', entityType: 'logbook_entry', entityId: 'tmp' });
  const pending = client.queue.pending();
  console.log(`   queued ${pending.length} change(s): ${pending.map((c) => `${c.type} ${c.entityType}/${c.entityId} ${JSON.stringify(c.data)}`).join('; ')}`);
  check(edit.outcome === 'coalesced' && edit.into === created.changeId, 'UPDATED folded into the pending CREATED');
  check(cancelled.outcome === 'cancelled', 'CREATED then DELETED of an unsent entity left nothing to send');
  check(pending.length === 1 && pending[0].data.duration === 25, 'one CREATED with the merged fields');
  client.close();

  console.log('\n2. A process killed with SIGKILL mid-sync loses nothing');
  const child = fork(__filename, ['--crashing-writer', dbPath], { stdio: 'inherit' });
  await new Promise((resolve) => child.once('message', resolve));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  client = new SyncClient({ path: dbPath });
  const recovered = client._handle.recoveredAtOpen();
  console.log(`   reopened: ${recovered} in-flight change(s) returned to pending`);
  check(recovered >= 1, 'changes left in flight by the crash are pending again');
  check(client.queue.stats().pending === 2, 'both entities still queued');

  console.log('\n3. A sync cycle: one change accepted, one rejected until it fails alone');
  const batch = JSON.parse(client._handle.takeBatch(100));
  for (const change of batch) {
    if (change.entityType === 'goal') {
      for (let attempt = 1; attempt <= 3; attempt += 1) {
        if (attempt > 1) JSON.parse(client._handle.takeBatch(100));
        client._handle.markFailed(change.changeId, 'server said: title too short', 3);
      }
    } else {
      client._handle.markSynced(change.changeId, 1);
    }
  }
  const stats = client.queue.stats();
  console.log(`   stats: ${JSON.stringify({ pending: stats.pending, synced: stats.synced, failed: stats.failed })}`);
  check(stats.synced === 1 && stats.failed === 1 && stats.pending === 0, 'the poison change failed alone; the other was acknowledged');
  check(client.queue.retryFailed() === 1 && client.queue.stats().pending === 1, 'retryFailed() puts it back in the queue');

  const exported = client.queue.export();
  console.log(`\n4. Export for support: ${exported.changes.length} change(s), device ${exported.deviceId}`);
  client.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(failures === 0 ? '\nAll expectations held.' : `\n${failures} expectation(s) failed.`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
