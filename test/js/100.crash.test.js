'use strict';

// Crash tests (issue "Reliability suite", item 1). A child process
// (fixtures/crash-writer.js) writes through the store in transactions, queues
// changes with enqueue / enqueueMany, applies pages pulled from the server and
// runs sync cycles against a SyncServer that lives here, in the parent, behind
// Express on 127.0.0.1, so it survives every kill. The child kills itself with
// SIGKILL at a commit of its database drawn from the trial's seeded generator: just
// before or just after its Nth COMMIT (the test hook DELTASYNC_TEST_HOOKS=crash-at-commit,
// src/core/sqlite.cc), so kills land on local writes, apply chunks, queue transitions and
// crash recovery at open, and a seed reproduces its kills exactly. After each kill:
// - the file passes PRAGMA integrity_check (better-sqlite3, read-only);
// - reopened with SyncClient, every acknowledged write is there, with its queued
//   (or already synced) change, and the operation in flight is all there or not
//   at all; the server's log plus the client's unsynced changes replay to exactly
//   the documents the writes made; each dirty document equals its server base
//   with its unacknowledged changes on top; pulled entities match the server's
//   log up to the client's cursor;
// then a new child continues on the same file. At the end of a trial, the
// parent syncs the file to quiescence and the server must hold each change
// exactly once (gapless versions, unique changeIds, one log entry per synced
// queue row) and every acknowledged write's effect.
//
//   CRASH_TRIALS=N      trials (default 20), each on its own file and user, seeds from CRASH_FIRST_SEED (1)
//   CRASH_KILLS=K       kills per trial (default 10)
//   CRASH_SEED=s        run only trial s (what a failure prints)
//   CRASH_KEEP=1        on failure, keep a copy of the trial's files and print where
//   CRASH_VERBOSE=1     print what each child did and where it was killed
// The server's own commits are not kill points: the server lives in this process.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { isDeepStrictEqual } = require('node:util');
const { recordFigures } = require('./fixtures/figures');
const Database = require('better-sqlite3');

const { SyncClient, SyncServer, httpTransport } = require('../..');
const { tempDir } = require('./helpers');
const { startApp } = require('./fixtures/server-http');
const { Random, mixSeed } = require('./fixtures/sim-random');
const { NOTE_IDS, REMOTE_IDS, WORDS, applyWrite, applyChange, replayType, plain } = require('./fixtures/crash-model');

const CHILD = path.join(__dirname, 'fixtures', 'crash-writer.js');
const TRIALS = Number(process.env.CRASH_TRIALS ?? 20);
const KILLS = Number(process.env.CRASH_KILLS ?? 10);
const FIRST_SEED = Number(process.env.CRASH_FIRST_SEED ?? 1);
const seeds = process.env.CRASH_SEED
  ? [Number(process.env.CRASH_SEED)]
  : Array.from({ length: TRIALS }, (_, i) => FIRST_SEED + i);

function replayCommand(seed) {
  const kills = process.env.CRASH_KILLS ? `CRASH_KILLS=${KILLS} ` : '';
  return `${kills}CRASH_SEED=${seed} node --test test/js/100.crash.test.js`;
}

/** Every change of `user` in the server's log, oldest first. */
async function serverLog(server, user) {
  const changes = [];
  let since = 0;
  for (;;) {
    const page = await server.pull(user, { since, limit: 1000 });
    changes.push(...page.newChanges);
    if (page.newChanges.length > 0) since = page.newChanges[page.newChanges.length - 1].version;
    if (!page.hasMore) return changes;
  }
}

function assertExactlyOnce(log) {
  assert.deepEqual(
    log.map((change) => change.version),
    Array.from({ length: log.length }, (_, i) => i + 1),
    'server versions are 1..N without gaps',
  );
  assert.equal(new Set(log.map((change) => change.changeId)).size, log.length, 'every changeId is in the server log once');
}

/**
 * Starts the child on `planPath` with its kill point, the `killAt`th commit of its database
 * (> 0: just before it, < 0: just after it), and resolves when it has died: { code, signal,
 * output, ready, reached }. A child that has not reached its kill point after a minute is
 * killed from here and `reached` is false.
 */
function runChild(planPath, { killAt }) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, ['--deltasync-crash-writer', planPath], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, DELTASYNC_TEST_HOOKS: `crash-at-commit=${killAt}` },
    });
    let output = '';
    let ready = false;
    let reached = true;
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const fallback = setTimeout(() => {
      reached = false;
      child.kill('SIGKILL');
    }, 60000);
    child.on('message', (message) => {
      if (message && message.type === 'ready') ready = true;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(fallback);
      resolve({ code, signal, output, ready, reached });
    });
  });
}

/** The child's acknowledgement file: the operations in order, each { intent, ack? }. */
function readAcks(ackPath) {
  if (!fs.existsSync(ackPath)) return [];
  const lines = fs.readFileSync(ackPath, 'utf8').split('\n');
  const ops = [];
  lines.forEach((line, index) => {
    if (line === '') return;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch (error) {
      // Only the very last line can be cut short by the kill.
      assert.equal(index, lines.length - 1, `ack line ${index} is not JSON: ${line}`);
      return;
    }
    if (entry.t === 'intent') ops.push({ intent: entry });
    else if (entry.t === 'ack') {
      const op = ops[ops.length - 1];
      assert.ok(op && op.intent.i === entry.i && !op.ack, `ack ${entry.i} does not follow its intent`);
      op.ack = entry;
    }
  });
  ops.forEach((op, index) => assert.ok(op.ack || index === ops.length - 1, `operation ${op.intent.i} has no ack but is not the last`));
  return ops;
}

/**
 * Reads the raw tables with better-sqlite3 (read-only) after checking integrity.
 * A kill in the middle of the first open can leave a hot rollback journal, which only
 * a writer may roll back ("attempt to write a readonly database"): then SyncClient
 * opens the file first, as the next child would, and the check runs after it.
 */
function readRaw(file) {
  try {
    return readRawOnce(file);
  } catch (error) {
    if (!/^SQLITE_READONLY/.test(error.code ?? '')) throw error;
    new SyncClient({ path: file }).close();
    return readRawOnce(file);
  }
}

function readRawOnce(file) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    assert.equal(integrity, 'ok', `PRAGMA integrity_check: ${integrity}`);
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all());
    if (!tables.has('documents')) return null; // killed before the schema was created
    return {
      documents: db.prepare("SELECT entity_id, data, base, version, deleted FROM documents WHERE entity_type = 'note'").all(),
      changeIds: new Set([
        ...db.prepare('SELECT change_id FROM changes').pluck().all(),
        ...db.prepare('SELECT change_id FROM change_aliases').pluck().all(),
      ]),
    };
  } finally {
    db.close();
  }
}

/** `type` documents of a client, for ids, as a Map id -> document. */
function docsOf(client, type, ids) {
  const docs = new Map();
  for (const id of ids) {
    const doc = client.get(type, id);
    if (doc !== undefined) docs.set(id, doc);
  }
  return docs;
}

/** The entries of `map` whose keys are in `keys`. */
function pick(map, keys) {
  return new Map([...map.entries()].filter(([key]) => keys.includes(key)));
}

/** A JSON column (or null) as a Map id -> document for one id. */
function single(id, json) {
  return json === null ? new Map() : new Map([[id, JSON.parse(json)]]);
}

class Trial {
  constructor(app, seed, dir) {
    this.app = app;
    this.seed = seed;
    this.random = new Random(mixSeed('crash-trial', seed));
    this.dir = dir;
    this.file = path.join(dir, 'client.db');
    this.user = `crash-${seed}`;
    this.notes = new Map(); // what the committed store writes made
    this.events = new Map(); // what the committed queue changes made (as the server must end up)
    this.liveEvents = new Set();
    this.remoteLive = new Set();
    this.remoteCount = 0;
    this.kills = 0;
    this.history = []; // one line per child, for failure messages
  }

  async run() {
    for (let k = 0; k < KILLS; k++) {
      await this.remoteWrites();
      await this.child(k);
    }
    await this.finalSync();
  }

  /** Another device writes the "remote" entities straight to the server, between children. */
  async remoteWrites() {
    const random = this.random;
    const changes = [];
    for (let n = random.int(3); n > 0; n--) {
      const entityId = random.pick(REMOTE_IDS);
      const changeId = `${this.user}-other-${this.remoteCount++}`;
      if (!this.remoteLive.has(entityId)) {
        changes.push({ changeId, type: 'CREATED', entityType: 'remote', entityId, data: { id: entityId, w: random.pick(WORDS) } });
        this.remoteLive.add(entityId);
      } else if (random.chance(0.25)) {
        changes.push({ changeId, type: 'DELETED', entityType: 'remote', entityId });
        this.remoteLive.delete(entityId);
      } else {
        changes.push({ changeId, type: 'UPDATED', entityType: 'remote', entityId, data: { w: random.pick(WORDS), n: random.int(100) } });
      }
    }
    if (changes.length === 0) return;
    const result = await this.app.server.push(this.user, 'other-device', changes);
    assert.equal(result.applied.length, changes.length, `remote writes applied: ${JSON.stringify(result)}`);
  }

  async child(k) {
    const random = this.random;
    const planPath = path.join(this.dir, `plan-${k}.json`);
    const ackPath = path.join(this.dir, `ack-${k}.jsonl`);
    const plan = {
      path: this.file,
      ackPath,
      url: this.app.base,
      user: this.user,
      seed: mixSeed('crash-child', this.seed, k),
      prefix: `s${this.seed}k${k}-`,
      liveEvents: [...this.liveEvents],
      notes: Object.fromEntries(this.notes),
    };
    fs.writeFileSync(planPath, JSON.stringify(plan));
    // Mostly within the first few dozen commits (the child commits at least once per
    // operation); a small N kills it while it opens the database.
    const commit = 1 + random.int(random.chance(0.1) ? 4 : 40);
    const killAt = random.chance(0.5) ? commit : -commit;
    const outcome = await runChild(planPath, { killAt });
    assert.equal(outcome.signal, 'SIGKILL', `the child ended on its own (code ${outcome.code}):\n${outcome.output}`);
    assert.ok(outcome.reached, `the child never reached its commit ${commit}:\n${outcome.output}`);
    this.kills += 1;
    const ops = readAcks(ackPath);
    const counts = {};
    for (const op of ops) counts[op.intent.kind] = (counts[op.intent.kind] ?? 0) + 1;
    const line = `child ${k}: killed just ${killAt > 0 ? 'before' : 'after'} its commit ${commit}${outcome.ready ? '' : ' (while opening)'}, ` +
      `${ops.length} operations ${JSON.stringify(counts)}`;
    this.history.push(line);
    const inFlight = ops.length > 0 && !ops[ops.length - 1].ack ? ops[ops.length - 1].intent.kind : null;
    const committed = await this.verify(ops);
    if (inFlight) this.history[this.history.length - 1] += `, killed during ${inFlight}${committed === undefined ? '' : committed ? ' (committed)' : ' (rolled back)'}`;
  }

  /** The checks after a kill; updates the model with the acknowledged operations and the one in flight, if it committed. */
  async verify(ops) {
    let inFlightCommitted;
    if (!fs.existsSync(this.file)) {
      assert.equal(ops.length, 0, 'operations were acknowledged but the database file does not exist');
      return inFlightCommitted;
    }
    const raw = readRaw(this.file);
    if (raw === null) {
      // Killed while creating the schema: nothing was acknowledged, and the file must still open.
      assert.equal(ops.length, 0, 'operations were acknowledged but the schema does not exist');
      new SyncClient({ path: this.file }).close();
      return inFlightCommitted;
    }
    const documents = new Map(raw.documents.map((row) => [row.entity_id, row]));
    const stored = (id) => {
      const row = documents.get(id);
      return row && row.data !== null && !row.deleted ? JSON.parse(row.data) : undefined;
    };
    for (const op of ops) {
      const { intent } = op;
      if (intent.kind === 'write' || intent.kind === 'tx' || intent.kind === 'bulk') {
        const after = new Map(this.notes);
        for (const write of intent.writes) applyWrite(after, write);
        if (!op.ack) {
          // In flight: the whole transaction is there, or none of it.
          const touched = [...new Set(intent.writes.map((write) => write.id))];
          const now = touched.map((id) => stored(id));
          const committed = touched.every((id, i) => JSON.stringify(now[i]) === JSON.stringify(after.get(id)));
          const rolledBack = touched.every((id, i) => JSON.stringify(now[i]) === JSON.stringify(this.notes.get(id)));
          assert.ok(committed || rolledBack, `a transaction in flight was half applied: ${JSON.stringify(intent.writes)}\nstored: ${JSON.stringify(now)}`);
          inFlightCommitted = committed;
          if (!committed) continue;
        } else {
          // Each acknowledged write left its change: queued, synced, or folded into another.
          for (const result of op.ack.results) {
            if (result && typeof result === 'object') {
              assert.ok(raw.changeIds.has(result.changeId), `the change ${result.changeId} of an acknowledged write is gone`);
            }
          }
        }
        this.notes = after;
      } else if (intent.kind === 'enqueue' || intent.kind === 'enqueueMany') {
        const present = intent.changes.filter((change) => raw.changeIds.has(change.changeId)).length;
        if (op.ack) {
          assert.equal(present, intent.changes.length, `acknowledged queue changes are missing: ${JSON.stringify(intent.changes)}`);
        } else {
          assert.ok(present === 0 || present === intent.changes.length, `enqueueMany in flight was half applied (${present} of ${intent.changes.length})`);
          inFlightCommitted = present > 0;
          if (present === 0) continue;
        }
        for (const change of intent.changes) {
          applyChange(this.events, change);
          if (change.type === 'CREATED') this.liveEvents.add(change.entityId);
          if (change.type === 'DELETED') this.liveEvents.delete(change.entityId);
        }
      }
    }

    const client = new SyncClient({ path: this.file });
    try {
      await this.checkReopened(client, documents, raw.changeIds);
    } finally {
      client.close();
    }
    return inFlightCommitted;
  }

  async checkReopened(client, documents, knownChangeIds) {
    const stats = client.queue.stats();
    assert.equal(stats.syncing, 0, 'changes left in flight return to pending at open');
    assert.equal(stats.failed, 0, 'no change failed');

    const log = await serverLog(this.app.server, this.user);
    assertExactlyOnce(log);
    const rows = client.queue.export().changes;
    const unsynced = rows.filter((row) => row.status !== 'synced');
    const cursor = client.serverVersion;
    const of = (list, id) => list.filter((c) => c.entityType === 'note' && c.entityId === id);

    // Every committed store write is visible, including notes whose acknowledged change is not pulled yet.
    const compared = NOTE_IDS;
    assert.deepEqual(plain(docsOf(client, 'note', compared)), plain(pick(this.notes, compared)), 'the notes are what the committed writes made');
    // Nothing half applied: the server's state plus the client's unsynced changes give the documents.
    assert.deepEqual(
      plain(replayType(unsynced, 'note', replayType(log, 'note'))),
      plain(this.notes),
      'server log + queued note changes replay to the notes',
    );
    assert.deepEqual(
      plain(replayType(unsynced, 'event', replayType(log, 'event'))),
      plain(this.events),
      'server log + queued event changes replay to the events',
    );
    // Each dirty document is its server base with its local changes on top: the unacknowledged
    // ones, and the ones acknowledged at a version above the one pulled for it.
    for (const id of compared) {
      const row = documents.get(id);
      const meta = client.get('note', id, { meta: true });
      if (!row || !meta || !meta.meta.dirty) continue;
      const onTop = rows.filter((change) => change.status !== 'synced' || (change.serverVersion ?? 0) > (row.version ?? 0));
      assert.deepEqual(
        plain(replayType(of(onTop, id), 'note', single(id, row.base))),
        plain(single(id, row.deleted ? null : row.data)),
        `note ${id}: its base ${row.base} with its local changes on top is not what it shows`,
      );
    }
    // Pulled entities equal the server's log up to the cursor.
    assert.deepEqual(
      plain(docsOf(client, 'remote', REMOTE_IDS)),
      plain(replayType(log.filter((c) => c.version <= cursor), 'remote')),
      `remote entities equal the server's log up to version ${cursor}`,
    );
    // What the server has from this device, the client produced and still knows (queued or folded).
    for (const change of log) {
      if (change.deviceId !== 'crash-device') continue;
      assert.ok(knownChangeIds.has(change.changeId), `the server has ${change.changeId}, which the client does not know`);
    }
    for (const row of rows) {
      if (row.status !== 'synced') continue;
      const logged = log.find((change) => change.changeId === row.changeId);
      assert.ok(logged, `synced change ${row.changeId} is not in the server log`);
      assert.equal(logged.version, row.serverVersion, `synced change ${row.changeId} was acknowledged at another version`);
    }
  }

  /** The parent syncs the file until nothing moves; then the server must hold every change once. */
  async finalSync() {
    const client = new SyncClient({
      path: this.file,
      transport: httpTransport({ url: this.app.base, headers: { 'x-user': this.user } }),
    });
    client.on('error', () => {});
    try {
      let quiet = 0;
      for (let round = 0; quiet < 2; round++) {
        assert.ok(round < 20, `no quiescence after 20 syncs: ${JSON.stringify(client.queue.stats())}`);
        const summary = await client.sync();
        const stats = client.queue.stats();
        const moved = summary.pushed + summary.pulled + summary.rejected + stats.pending + stats.syncing + stats.failed;
        quiet = moved > 0 ? 0 : quiet + 1;
      }
      const log = await serverLog(this.app.server, this.user);
      assertExactlyOnce(log);
      assert.equal(client.serverVersion, log.length, 'the client pulled everything');
      // Every acknowledged write's effect is on the server, and on the client.
      assert.deepEqual(plain(replayType(log, 'note')), plain(this.notes), 'the server has every committed note write');
      assert.deepEqual(plain(replayType(log, 'event')), plain(this.events), 'the server has every committed queue change');
      assert.deepEqual(plain(docsOf(client, 'note', NOTE_IDS)), plain(this.notes), 'the client shows the notes');
      const events = new Map(client.list('event').map((doc) => [doc.id, doc]));
      assert.deepEqual(plain(events), plain(this.events), 'the client shows the events');
      assert.deepEqual(plain(docsOf(client, 'remote', REMOTE_IDS)), plain(replayType(log, 'remote')), 'the client shows the remote entities');
      // Exactly once: each queue row is synced and is one log entry of this device, and the reverse.
      const rows = client.queue.export().changes;
      for (const row of rows) assert.equal(row.status, 'synced', `change ${row.changeId} is ${row.status}`);
      const mine = log.filter((change) => change.deviceId === 'crash-device');
      assert.deepEqual(
        rows.map((row) => `${row.changeId}@${row.serverVersion}`).sort(),
        mine.map((change) => `${change.changeId}@${change.version}`).sort(),
        'the synced queue rows and the log entries of this device are the same changes',
      );
    } finally {
      client.close();
    }
  }
}

describe('SIGKILL at seeded commits', () => {
  let app;
  const passed = { trials: 0, kills: 0 };
  before(async () => {
    app = await startApp({ serverOptions: { conflicts: 'newest_wins', toleranceMs: 1000 } });
  });
  after(() => {
    if (app) app.close();
    // Figures for the README (scripts/figures.js), from a full default run only.
    if (!process.env.CRASH_SEED && passed.trials === seeds.length) recordFigures('crash', passed);
  });

  for (const seed of seeds) {
    test(`crash trial seed ${seed}`, { timeout: 120000 }, async (t) => {
      const trial = new Trial(app, seed, tempDir(t));
      const started = Date.now();
      try {
        await trial.run();
      } catch (error) {
        let kept = '';
        if (process.env.CRASH_KEEP) {
          const keep = fs.mkdtempSync(path.join(os.tmpdir(), `deltasync-crash-${seed}-`));
          fs.cpSync(trial.dir, keep, { recursive: true });
          kept = `\nthe trial's files (database, plans, acknowledgements) are in ${keep}`;
        }
        error.message = `crash trial seed ${seed} failed after ${trial.kills} kills: ${error.message}\n` +
          `replay: ${replayCommand(seed)}${kept}\n${trial.history.join('\n')}`;
        throw error;
      }
      t.diagnostic(`seed ${seed}: ${trial.kills} kills, ${Date.now() - started} ms`);
      passed.trials += 1;
      passed.kills += trial.kills;
      if (process.env.CRASH_VERBOSE) for (const line of trial.history) t.diagnostic(line);
    });
  }
});

// The minimal sequence of a bug the crash trials once found: a pulled change older than a
// change of ours that the server already acknowledged at a later version must not take the
// document back (src/core/apply.cc DeltaApplier::ApplyOne keeps such changes on top).
test('a pulled older echo does not take back a newer acknowledged local write', async () => {
  const server = new SyncServer({ path: ':memory:' });
  const hooks = [];
  const seen = [];
  const transport = async (request) => {
    const hook = hooks.shift();
    if (hook) hook(request);
    return JSON.stringify(await server.sync('u', request));
  };
  const client = new SyncClient({ path: ':memory:', deviceId: 'A', transport, batch: { push: 1, pull: 1 } });
  try {
    client.put('note', 'x', { v: 0 });
    await client.sync();
    // Another device writes twice: this client's pulls now lag two versions behind its pushes.
    for (const n of [1, 2]) {
      await server.push('u', 'B', [{ changeId: `b${n}`, type: 'CREATED', entityType: 'note', entityId: `b${n}`, data: { n } }]);
    }
    client.patch('note', 'x', { v: 1 });
    hooks.push(() => client.patch('note', 'x', { v: 2 })); // while v: 1 is in flight
    for (let i = 0; i < 4; i++) hooks.push(() => seen.push(client.get('note', 'x').v));
    await client.sync();
    assert.deepEqual(seen, seen.map(() => 2), 'the app never sees x.v go back to 1 during the sync');
  } finally {
    client.close();
    server.close();
  }
});
