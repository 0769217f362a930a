'use strict';

// Crash tests of the server: the SyncServer runs in a child process that SIGKILLs itself
// just before or just after its Nth COMMIT (the test hook
// DELTASYNC_TEST_HOOKS=server-crash-at-commit=±N), so a seed reproduces where each kill lands.
// Three devices in this process write their own documents and sync through the child over
// HTTP, a small push batch so that a cycle is several requests. A kill after a commit loses
// the response of a push the server kept; a kill before loses the push. Each time the child
// dies it is started again on the same file with the next seeded kill point; after the last
// kill it runs without one and the devices sync until nothing moves. Then:
// - the server's log is versions 1..N without gaps and holds every changeId once;
// - every change a device counts as synced is in the log at the version it was acknowledged at;
// - the log replays to exactly the documents the devices wrote, and every device holds them;
// - the server's file passes SQLite's integrity check.
// Replay one seed: SERVER_CRASH_SEED=<seed> node --test test/js/101.server-crash.test.js

const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { describe, test, after } = require('node:test');

const Database = require('better-sqlite3');

const { SyncClient, SyncServer, httpTransport } = require('../..');
const { tempDir } = require('./helpers');
const { recordFigures } = require('./fixtures/figures');
const { Random } = require('./fixtures/sim-random');
const { NOTE_IDS, planWrites, replayType, plain } = require('./fixtures/crash-model');

const CHILD = path.join(__dirname, 'fixtures', 'server-crash-child.js');
const TRIALS = Number(process.env.SERVER_CRASH_TRIALS ?? 8);
const KILLS = Number(process.env.SERVER_CRASH_KILLS ?? 6);
const DEVICES = ['d0', 'd1', 'd2'];
const USER = 'u';
// Kill points are drawn from the first commits of each server run: every run's workload
// commits more often than this, so every planned kill lands.
const MAX_KILL_COMMIT = 8;
const MAX_ROUNDS_PER_RUN = 200;
const seeds = process.env.SERVER_CRASH_SEED
  ? [Number(process.env.SERVER_CRASH_SEED)]
  : Array.from({ length: TRIALS }, (_, i) => i + 1);

/**
 * Starts a server child: { child, port, exited }, where `exited` resolves with { code, signal }.
 * A child killed while it opens its file (its first commits are the schema's) has port null.
 */
function startServer(file, killAt) {
  const env = { ...process.env };
  if (killAt !== 0) env.DELTASYNC_TEST_HOOKS = `server-crash-at-commit=${killAt}`;
  else delete env.DELTASYNC_TEST_HOOKS;
  const child = fork(CHILD, [file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ child, port: message.port, exited }));
    child.once('error', reject);
    exited.then(({ signal }) => {
      if (signal === 'SIGKILL' && killAt !== 0) resolve({ child, port: null, exited });
      else reject(new Error(`the server child exited before it was ready (${signal})`));
    });
  });
}

class Trial {
  constructor(seed, dir) {
    this.random = new Random(seed);
    this.file = path.join(dir, 'server.db');
    this.base = null; // the running child's URL; the transport follows it across restarts
    this.notes = new Map(DEVICES.map((device) => [device, new Map()])); // what each device wrote
    this.devices = DEVICES.map((device) => {
      const client = new SyncClient({
        path: path.join(dir, `${device}.db`),
        deviceId: device,
        transport: (request, options) => httpTransport({ url: this.base, headers: { 'x-user': USER } })(request, options),
        batch: { push: 5, pull: 7 },
        retry: { maxRetries: 1000 },
      });
      return { device, client, ids: NOTE_IDS.map((id) => `${device}-${id}`) };
    });
    this.kills = { before: 0, after: 0, whileOpening: 0 };
    this.server = null; // the running child, killed by close() if the trial fails midway
    this.failedSyncs = 0;
  }

  close() {
    if (this.server) this.server.child.kill('SIGKILL');
    for (const { client } of this.devices) client.close();
  }

  /** One round: each device makes a few writes, then syncs (a failure leaves its changes queued). */
  async round() {
    for (const { device, client, ids } of this.devices) {
      const writes = planWrites(this.random, this.notes.get(device), this.random.range(1, 4), ids);
      client.transaction(() => {
        for (const write of writes) {
          if (write.op === 'put') client.put('note', write.id, write.doc);
          else if (write.op === 'patch') client.patch('note', write.id, write.fields);
          else client.delete('note', write.id);
        }
      });
    }
    await Promise.all(
      this.devices.map(({ client }) =>
        client.sync().catch(() => {
          this.failedSyncs += 1;
        }),
      ),
    );
  }

  async run() {
    for (let kill = 0; kill < KILLS; kill++) {
      const killAt = this.random.range(1, MAX_KILL_COMMIT) * (this.random.chance(0.5) ? 1 : -1);
      const server = await startServer(this.file, killAt);
      this.server = server;
      if (server.port === null) {
        this.kills.whileOpening += 1;
        continue;
      }
      this.base = `http://127.0.0.1:${server.port}/api/sync`;
      let died = null;
      server.exited.then((result) => (died = result));
      for (let rounds = 0; died === null && rounds < MAX_ROUNDS_PER_RUN; rounds++) await this.round();
      const { signal } = await Promise.race([server.exited, new Promise((resolve) => setTimeout(resolve, 5000, {}))]);
      assert.equal(signal, 'SIGKILL', `the server run with kill point ${killAt} did not die at it`);
      this.kills[killAt > 0 ? 'before' : 'after'] += 1;
    }
    const server = await startServer(this.file, 0);
    this.server = server;
    this.base = `http://127.0.0.1:${server.port}/api/sync`;
    try {
      await this.converge();
    } finally {
      server.child.disconnect();
      await server.exited;
      this.server = null;
    }
  }

  /** Syncs every device until none has anything queued and all stand at the server's head. */
  async converge() {
    for (let pass = 0; pass < 20; pass++) {
      for (const { client } of this.devices) await client.sync();
      const settled = this.devices.every(({ client }) => {
        const stats = client.queue.stats();
        return stats.pending + stats.syncing + stats.failed === 0;
      });
      const versions = new Set(this.devices.map(({ client }) => client.serverVersion));
      if (settled && versions.size === 1) return;
    }
    assert.fail('the devices did not settle within 20 sync passes');
  }
}

function serverPull(server, since) {
  return server.pull(USER, { since, limit: 1000 });
}

async function checkTrial(trial) {
  const server = new SyncServer({ path: trial.file });
  const log = [];
  try {
    for (let since = 0; ; ) {
      const page = await serverPull(server, since);
      log.push(...page.newChanges);
      if (page.newChanges.length > 0) since = page.newChanges[page.newChanges.length - 1].version;
      if (!page.hasMore) break;
    }
  } finally {
    server.close();
  }
  assert.deepEqual(
    log.map((change) => change.version),
    Array.from({ length: log.length }, (_, i) => i + 1),
    'server versions are 1..N without gaps',
  );
  assert.equal(new Set(log.map((change) => change.changeId)).size, log.length, 'every changeId is in the server log once');
  const byChangeId = new Map(log.map((change) => [change.changeId, change]));
  const written = new Map();
  for (const notes of trial.notes.values()) for (const [id, doc] of notes) written.set(id, doc);
  assert.deepEqual(plain(replayType(log, 'note')), plain(written), 'the server log replays to every write the devices made');
  for (const { device, client } of trial.devices) {
    for (const row of client.queue.export().changes.filter((change) => change.status === 'synced')) {
      const logged = byChangeId.get(row.changeId);
      assert.ok(logged, `${device}: synced change ${row.changeId} is not in the server log`);
      assert.equal(logged.version, row.serverVersion, `${device}: ${row.changeId} was acknowledged at another version`);
    }
    const held = new Map(client.list('note').map((doc) => [doc.id, doc]));
    assert.deepEqual(plain(held), plain(written), `${device} holds every device's documents`);
  }
  const db = new Database(trial.file, { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', "the server's file passes integrity_check");
  } finally {
    db.close();
  }
  return log.length;
}

describe('server SIGKILLed at seeded commits', () => {
  const passed = { trials: 0, kills: 0, killsBeforeCommit: 0, killsAfterCommit: 0, killsWhileOpening: 0, changes: 0 };
  after(() => {
    if (!process.env.SERVER_CRASH_SEED && passed.trials === seeds.length) recordFigures('server-crash', passed);
  });

  for (const seed of seeds) {
    test(`server crash trial seed ${seed}`, { timeout: 120000 }, async (t) => {
      const trial = new Trial(seed, tempDir(t));
      try {
        await trial.run();
        const changes = await checkTrial(trial);
        t.diagnostic(`seed ${seed}: kills ${JSON.stringify(trial.kills)}, ${changes} changes, ${trial.failedSyncs} failed syncs`);
        passed.trials += 1;
        passed.kills += trial.kills.before + trial.kills.after + trial.kills.whileOpening;
        passed.killsWhileOpening += trial.kills.whileOpening;
        passed.killsBeforeCommit += trial.kills.before;
        passed.killsAfterCommit += trial.kills.after;
        passed.changes += changes;
      } catch (error) {
        error.message = `server crash trial seed ${seed} failed: ${error.message}\n` +
          `replay: SERVER_CRASH_SEED=${seed} node --test test/js/101.server-crash.test.js`;
        throw error;
      } finally {
        trial.close();
      }
    });
  }
});
