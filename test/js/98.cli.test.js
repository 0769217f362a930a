'use strict';

// The deltasync command line (bin/deltasync.js), each subcommand run as a child process.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { SyncClient, SyncServer, httpTransport } = require('../..');
const { tempDir, stateSnapshot } = require('./helpers');
const {
  run,
  assertUsageError,
  assertFailure,
  startServe,
  hashFile,
  filesLike,
  writeJsonl,
  makeClientDb,
} = require('./fixtures/cli-helpers');
const { main, COMMANDS } = require('../../lib/cli');
const { progressLine, ProgressBar } = require('../../lib/cli/output');

const COMMAND_NAMES = ['serve', 'inspect', 'export', 'ingest', 'retry', 'discard'];
const CLIENT_COMMANDS = {
  inspect: (db) => ['inspect', db],
  export: (db) => ['export', db],
  ingest: (db, dir) => ['ingest', db, dir],
  retry: (db) => ['retry', db],
  discard: (db) => ['discard', db, 'some-change-id'],
};

/** A temp dir with a client database (see makeClientDb) and its ingested data dir. */
async function clientFixture(t) {
  const dir = tempDir(t);
  const db = path.join(dir, 'client.db');
  const data = path.join(dir, 'data');
  const made = await makeClientDb(db, data);
  return { dir, db, data, ...made };
}

/** Opens the database in this process and returns what it holds, then closes it. */
function stateOf(db) {
  const client = new SyncClient({ path: db, mustExist: true });
  try {
    return stateSnapshot(client, ['note', 'record']);
  } finally {
    client.close();
  }
}

describe('deltasync: help and bad arguments', () => {
  test('--help, help and help <command> print the usage and exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const result = await run(args);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, /^Usage: deltasync <command>/);
      for (const name of COMMAND_NAMES) assert.match(result.stdout, new RegExp(`^  ${name} `, 'm'));
    }
    const result = await run(['help', 'ingest']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: deltasync ingest <client.db> <dir>/);
  });

  test('every subcommand has --help listing its options', async () => {
    assert.deepEqual(Object.keys(COMMANDS).sort(), [...COMMAND_NAMES].sort());
    for (const name of COMMAND_NAMES) {
      for (const flag of ['--help', '-h']) {
        const result = await run([name, flag]);
        assert.equal(result.code, 0, `${name} ${flag}: ${result.stderr}`);
        assert.equal(result.stderr, '');
        assert.match(result.stdout, new RegExp(`^Usage: deltasync ${name}`));
        for (const option of Object.keys(COMMANDS[name].options)) {
          assert.match(result.stdout, new RegExp(`^  --${option}\\b`, 'm'), `${name} --help lists --${option}`);
        }
      }
    }
    // --help wins over anything else on the line, even bad arguments.
    const result = await run(['inspect', '--bogus', '--help']);
    assert.equal(result.code, 0);
  });

  test('--version prints the package version', async () => {
    const result = await run(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `${require('../../package.json').version}\n`);
  });

  test('bad arguments: one line on stderr, exit code 2, no file created', async (t) => {
    const cwd = tempDir(t);
    const cases = [
      [[], /missing command/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['help', 'frobnicate'], /unknown command/],
      [['inspect'], /missing <client.db>/],
      [['inspect', 'x.db', 'extra'], /unexpected argument "extra"/],
      [['inspect', 'x.db', '--limit', '0'], /--limit expects an integer >= 1, got "0"/],
      [['inspect', 'x.db', '--limit', '1.5'], /--limit/],
      [['inspect', 'x.db', '--limit'], /--limit needs a value/],
      [['inspect', 'x.db', '--bogus'], /unknown option --bogus/],
      [['inspect', 'x.db', '-x'], /unknown option -x/],
      [['inspect', 'x.db', '--json=yes'], /--json takes no value/],
      [['inspect', 'x.db', '--json', '--json'], /given twice/],
      [['inspect', ''], /must not be empty/],
      [['export', 'x.db', '--out'], /--out needs a value/],
      [['export', 'x.db', '--out', 'x.db'], /must not be the database file/],
      [['ingest', 'x.db'], /missing <dir>/],
      [['ingest', 'x.db', 'data', '--max-files', '0'], /--max-files/],
      [['ingest', 'x.db', 'data', '--max-files=-3'], /--max-files/],
      [['ingest', 'x.db', 'data', '--pattern='], /--pattern needs a non-empty value/],
      [['ingest', 'x.db', 'data', '--dry-run', 'more'], /unexpected argument "more"/],
      [['retry'], /missing <client.db>/],
      [['discard', 'x.db'], /missing <changeId>/],
      [['serve'], /give the database: --db <server.db> or --postgres <URL>/],
      [['serve', '--db', 'x.db', '--postgres', 'postgresql://h/db'], /one of them/],
      [['serve', '--db', 'x.db', '--port', '70000'], /--port expects an integer from 0 to 65535/],
      [['serve', '--db', 'x.db', '--port', 'http'], /--port/],
      [['serve', '--db', 'x.db', '--conflicts', 'coin_flip'], /--conflicts expects one of/],
      [['serve', '--db', 'x.db', 'extra'], /unexpected argument/],
    ];
    for (const [args, pattern] of cases) {
      const result = await run(args, { cwd });
      assertUsageError(result, pattern);
      if (COMMAND_NAMES.includes(args[0])) assert.match(result.stderr, new RegExp(`^deltasync ${args[0]}: .* \\(run "deltasync ${args[0]} --help"\\)\n$`));
    }
    assert.deepEqual(fs.readdirSync(cwd), [], 'nothing was created');
  });
});

describe('deltasync: missing and foreign files are refused and left alone', () => {
  test('a missing database: exit 1, a clear message, and no file is created', async (t) => {
    const dir = tempDir(t);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    for (const [name, args] of Object.entries(CLIENT_COMMANDS)) {
      const result = await run(args(path.join(dir, 'missing.db'), data));
      assertFailure(result, /no such file: .*missing\.db/);
      assert.match(result.stderr, new RegExp(`^deltasync ${name}: `));
      assert.deepEqual(filesLike(dir, 'missing'), [], `${name} created nothing`);
    }
  });

  test('files that are not deltasync client databases: exit 1, bytes unchanged, no side files', async (t) => {
    const dir = tempDir(t);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'just some text, definitely not SQLite\n'.repeat(10));
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    const foreign = path.join(dir, 'foreign.db');
    const Database = require('better-sqlite3');
    const other = new Database(foreign);
    other.exec("CREATE TABLE things (a TEXT); INSERT INTO things VALUES ('x')");
    other.close();
    const serverDb = path.join(dir, 'server.db');
    new SyncServer({ path: serverDb }).close();

    const cases = [
      [text, /not a deltasync client database/],
      [empty, /empty: not a deltasync client database/],
      [foreign, /not a deltasync client database: .*not a deltasync database/],
      [serverDb, /is a deltasync server database, not a client database/],
    ];
    for (const [file, pattern] of cases) {
      const base = path.basename(file);
      const before = { hash: hashFile(file), files: filesLike(dir, base) };
      for (const [name, args] of Object.entries(CLIENT_COMMANDS)) {
        const result = await run(args(file, data));
        assertFailure(result, pattern);
        assert.match(result.stderr, new RegExp(`^deltasync ${name}: `));
        assert.deepEqual({ hash: hashFile(file), files: filesLike(dir, base) }, before, `${name} ${base} untouched`);
      }
    }
    const result = await run(['inspect', dir]);
    assertFailure(result, /is a directory/);
  });

  test('a blank SQLite database (no tables) is refused, not initialized', async (t) => {
    const dir = tempDir(t);
    const blank = path.join(dir, 'blank.db');
    const Database = require('better-sqlite3');
    const db = new Database(blank);
    db.exec('VACUUM');
    db.close();
    const before = hashFile(blank);
    const result = await run(['inspect', blank]);
    assertFailure(result, /not a deltasync client database/);
    assert.equal(hashFile(blank), before);
  });

  test('a server database given to a client command is named as such', async (t) => {
    const dir = tempDir(t);
    const serverDb = path.join(dir, 'server.db');
    new SyncServer({ path: serverDb }).close();
    const result = await run(['inspect', serverDb]);
    assertFailure(result, /not a deltasync client database/);
  });

  test('serve refuses a client database and leaves it alone', async (t) => {
    const { dir, db } = await clientFixture(t);
    const before = { hash: hashFile(db), files: filesLike(dir, 'client.db') };
    const result = await run(['serve', '--db', db, '--port', '0']);
    assertFailure(result, /cannot open .*client\.db as a deltasync server database/);
    assert.deepEqual({ hash: hashFile(db), files: filesLike(dir, 'client.db') }, before);
  });
});

describe('deltasync inspect, export, retry, discard', () => {
  test('inspect: device, cursor, queue, pending and failed changes, conflicts, last ingest', async (t) => {
    const { db, data, deviceId, failedId, pendingIds } = await clientFixture(t);
    const result = await run(['inspect', db]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const out = result.stdout;
    assert.match(out, new RegExp(`device id\\s+${deviceId}`));
    assert.match(out, /server version\s+7\n/);
    assert.match(out, /queue\s+3 pending, 0 syncing, 1 failed, 0 synced/);
    assert.match(out, /pending changes: 3\n/);
    for (const id of pendingIds) assert.ok(out.includes(id), `pending ${id} listed`);
    assert.match(out, /failed changes: 1\n/);
    assert.match(out, new RegExp(`${failedId}\\s+CREATED\\s+note/n1 .*last error: boom`));
    assert.match(out, /open conflicts: 1\n  #1  note\/n2  remote version 7/);
    assert.ok(out.includes(`last ingest: completed (${fs.realpathSync(data)})`));
    assert.match(out, /records\s+1 inserted, 0 updated, 0 unchanged/);

    const limited = await run(['inspect', db, '--limit', '1']);
    assert.match(limited.stdout, /pending changes: 3 \(first 1 shown; --limit N\)/);
    assert.ok(limited.stdout.includes(pendingIds[0]));
    assert.ok(!limited.stdout.includes(pendingIds[1]));
  });

  test('inspect --json: the same facts, machine-readable', async (t) => {
    const { db, data, deviceId, failedId, pendingIds, conflicts } = await clientFixture(t);
    const result = await run(['inspect', db, '--json', '--limit', '2']);
    assert.equal(result.code, 0, result.stderr);
    const state = JSON.parse(result.stdout);
    assert.deepEqual(Object.keys(state).sort(), ['conflicts', 'deviceId', 'failed', 'ingest', 'path', 'pending', 'serverVersion', 'stats'].sort());
    assert.equal(state.path, db);
    assert.equal(state.deviceId, deviceId);
    assert.equal(state.serverVersion, 7);
    assert.equal(state.stats.pending, 3);
    assert.equal(state.stats.failed, 1);
    assert.deepEqual(state.pending.map((change) => change.changeId), pendingIds.slice(0, 2));
    assert.deepEqual(state.failed.map(({ changeId, lastError }) => ({ changeId, lastError })), [{ changeId: failedId, lastError: 'boom' }]);
    assert.deepEqual(state.conflicts, conflicts);
    assert.equal(state.ingest.status, 'completed');
    assert.equal(state.ingest.dir, fs.realpathSync(data));
    assert.equal(state.ingest.report.recordsInserted, 1);
  });

  test('inspect does not change what the database holds', async (t) => {
    const { db } = await clientFixture(t);
    const before = stateOf(db);
    await run(['inspect', db]);
    await run(['inspect', db, '--json']);
    await run(['export', db]);
    assert.deepEqual(stateOf(db), before);
  });

  test('export: the queue export as JSON on stdout, or in --out', async (t) => {
    const { dir, db, deviceId } = await clientFixture(t);
    const result = await run(['export', db]);
    assert.equal(result.code, 0, result.stderr);
    const exported = JSON.parse(result.stdout);
    assert.equal(exported.format, 'deltasync.queue-export');
    assert.equal(exported.deviceId, deviceId);
    assert.equal(exported.changes.length, 4);
    assert.deepEqual(exported.stats, stateOf(db).queue.stats);

    const out = path.join(dir, 'queue.json');
    const toFile = await run(['export', db, '--out', out]);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal(toFile.stdout, '');
    assert.match(toFile.stderr, /exported the queue of .* to .*queue\.json/);
    const { exportedAt: a, ...fromFile } = JSON.parse(fs.readFileSync(out, 'utf8'));
    const { exportedAt: b, ...fromStdout } = exported;
    assert.deepEqual(fromFile, fromStdout);

    const unwritable = await run(['export', db, '--out', path.join(dir, 'no', 'such', 'dir', 'q.json')]);
    assertFailure(unwritable, /cannot write/);
  });

  test('retry: failed changes become pending again, and the count is printed', async (t) => {
    const { db, failedId } = await clientFixture(t);
    const result = await run(['retry', db]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '1 failed change pending again\n');
    const state = stateOf(db);
    assert.equal(state.queue.stats.failed, 0);
    const change = state.queue.changes.find((c) => c.changeId === failedId);
    assert.equal(change.status, 'pending');
    assert.equal(change.retryCount, 0);
    const again = await run(['retry', db, '--json']);
    assert.equal(again.code, 0);
    assert.deepEqual(JSON.parse(again.stdout), { retried: 0 });
  });

  test('discard: removes one change; an unknown id is a clear error (exit 1)', async (t) => {
    const { db, pendingIds } = await clientFixture(t);
    const result = await run(['discard', db, pendingIds[1]]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `discarded change ${pendingIds[1]}\n`);
    const state = stateOf(db);
    assert.equal(state.queue.stats.pending, 2);
    assert.ok(!state.queue.changes.some((change) => change.changeId === pendingIds[1]));

    const json = await run(['discard', db, pendingIds[2], '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { discarded: pendingIds[2] });
    const before = stateOf(db);
    const unknown = await run(['discard', db, 'no-such-change']);
    assertFailure(unknown, /no-such-change.*NOT_FOUND/);
    assert.deepEqual(stateOf(db), before);
  });
});

describe('deltasync ingest', () => {
  async function fixture(t) {
    const dir = tempDir(t);
    const db = path.join(dir, 'client.db');
    new SyncClient({ path: db }).close();
    const data = path.join(dir, 'data');
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1' }, { id: 'a2' }]);
    writeJsonl(path.join(data, 'sub', 'b.jsonl'), [{ id: 'b1' }, 'not json', { id: 'b2' }]);
    writeJsonl(path.join(data, 'c.ndjson'), [{ sku: 7 }]);
    return { dir, db, data };
  }

  test('prints the report (no progress bar when stdout is not a terminal), bad lines with file:line', async (t) => {
    const { db, data } = await fixture(t);
    const result = await run(['ingest', db, data]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.ok(!result.stdout.includes('\r'), 'no progress bar');
    assert.match(result.stdout, /^ingested /);
    assert.match(result.stdout, /files\s+2 new, 0 updated, 0 unchanged, 0 skipped/);
    assert.match(result.stdout, /records\s+4 inserted, 0 updated, 0 unchanged/);
    assert.match(result.stdout, /errors\s+1 /);
    assert.match(result.stdout, /sub\/b\.jsonl:2  INVALID_ARGUMENT  /);
    assert.match(result.stdout, /queue\s+4 changes pending sync/);
    const state = stateOf(db);
    assert.deepEqual(state.documents.record.map((doc) => doc.id).sort(), ['a1', 'a2', 'b1', 'b2']);
    assert.equal(state.queue.stats.pending, 4);

    const again = await run(['ingest', db, data, '--json']);
    const report = JSON.parse(again.stdout);
    assert.equal(report.dryRun, false);
    assert.equal(report.filesUnchanged, 2);
    assert.equal(report.recordsInserted, 0);
  });

  test('--dry-run writes nothing', async (t) => {
    const { db, data } = await fixture(t);
    const before = stateOf(db);
    const result = await run(['ingest', db, data, '--dry-run']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^dry run of .* \(nothing was written\)/);
    assert.match(result.stdout, /records\s+4 inserted/);
    const json = JSON.parse((await run(['ingest', db, data, '--dry-run', '--json'])).stdout);
    assert.equal(json.dryRun, true);
    assert.equal(json.recordsInserted, 4);
    assert.deepEqual(stateOf(db), before);
    const inspected = JSON.parse((await run(['inspect', db, '--json'])).stdout);
    assert.equal(inspected.ingest, null);
  });

  test('--max-files, --force, --pattern, --entity-type, --id-field, --skip-existing', async (t) => {
    const { db, data } = await fixture(t);
    const ingest = async (...args) => {
      const result = await run(['ingest', db, data, '--json', ...args]);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    };
    let report = await ingest('--max-files', '1');
    assert.deepEqual([report.filesNew, report.filesSkipped], [1, 1]);
    report = await ingest('--max-files=1');
    assert.deepEqual([report.filesNew, report.filesUnchanged, report.filesSkipped], [1, 1, 0]);
    report = await ingest('--force');
    assert.deepEqual([report.filesUpdated, report.recordsUnchanged], [2, 4]);
    report = await ingest('--pattern', '*.ndjson', '--entity-type', 'product', '--id-field', 'sku');
    assert.deepEqual([report.filesNew, report.recordsInserted], [1, 1]);
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1', changed: true }, { id: 'a3' }]);
    report = await ingest('--skip-existing');
    assert.deepEqual([report.recordsInserted, report.recordsUnchanged], [1, 1]);
    const state = stateOf(db);
    assert.deepEqual(state.documents.record.find((doc) => doc.id === 'a1'), { id: 'a1' });
    const client = new SyncClient({ path: db });
    t.after(() => client.close());
    assert.deepEqual(client.get('product', '7'), { sku: 7 });
  });

  test('a missing directory: exit 1; a bad --entity-type: exit 1 with the library message', async (t) => {
    const { dir, db, data } = await fixture(t);
    assertFailure(await run(['ingest', db, path.join(dir, 'nope')]), /not a directory: .*nope/);
    assertFailure(await run(['ingest', db, path.join(data, 'a.jsonl')]), /not a directory/);
    assertFailure(await run(['ingest', db, data, '--entity-type', 'has space']), /ingest failed: .*entityType.*\(INVALID_ARGUMENT\)/);
  });

  test('on a terminal, a progress bar is drawn in place and ends with a newline', async (t) => {
    const { db, data } = await fixture(t);
    const written = [];
    const stdout = { isTTY: true, columns: 100, write: (text) => written.push(text) };
    const stderr = { write: (text) => written.push(`[stderr] ${text}`) };
    const code = await main(['ingest', db, data], { stdout, stderr });
    assert.equal(code, 0, written.join(''));
    const bars = written.filter((text) => text.startsWith('\r'));
    assert.ok(bars.length >= 1, 'at least one progress line');
    assert.match(bars.at(-1), /^\r\[#+\] 100%  2\/2 files  4 records  \d+ B\x1b\[K$/);
    const afterBars = written.indexOf(bars.at(-1)) + 1;
    assert.equal(written[afterBars], '\n');
    assert.match(written.slice(afterBars + 1).join(''), /^ingested /);
  });

  test('progressLine and ProgressBar', () => {
    assert.equal(progressLine({ filesDone: 0, filesTotal: 4, records: 0, bytes: 0 }, 8), '[--------]   0%  0/4 files  0 records  0 B');
    assert.equal(progressLine({ filesDone: 1, filesTotal: 4, records: 1, bytes: 2048 }, 8), '[##------]  25%  1/4 files  1 record  2.0 KiB');
    assert.equal(progressLine({ filesDone: 4, filesTotal: 4, records: 9, bytes: 3 * 1024 * 1024 }, 8), '[########] 100%  4/4 files  9 records  3.0 MiB');
    assert.equal(progressLine({ filesDone: 0, filesTotal: 0, records: 0, bytes: 0 }, 4), '[####] 100%  0/0 files  0 records  0 B');
    const written = [];
    const bar = new ProgressBar({ columns: 20, write: (text) => written.push(text) });
    bar.done();
    assert.deepEqual(written, [], 'nothing drawn, no newline');
    bar.update({ filesDone: 1, filesTotal: 2, records: 5, bytes: 10 });
    bar.done();
    assert.equal(written.length, 2);
    assert.equal(written[0], `\r${progressLine({ filesDone: 1, filesTotal: 2, records: 5, bytes: 10 }).slice(0, 19)}\x1b[K`);
    assert.equal(written[1], '\n');
  });
});

describe('deltasync serve', () => {
  test('--tokens: each bearer token is its user, one log line per request, clean stop on SIGTERM', { timeout: 60000 }, async (t) => {
    const dir = tempDir(t);
    const db = path.join(dir, 'server.db');
    const tokens = path.join(dir, 'tokens.json');
    fs.writeFileSync(tokens, JSON.stringify({ 'alice-token-0123456789': 'alice', 'bob-token-0123456789ab': 'bob' }));
    const server = await startServe(t, ['--db', db, '--port', '0', '--tokens', tokens]);
    const url = new URL(server.url);
    assert.equal(url.hostname, '127.0.0.1');
    assert.equal(url.pathname, '/api/sync', 'mounted at /api/sync by default');
    const alice = { authorization: 'Bearer alice-token-0123456789' };
    const bob = { authorization: 'Bearer bob-token-0123456789ab' };
    const push = {
      deviceId: 'd1',
      lastKnownServerVersion: 0,
      changes: [{ changeId: 'c1', type: 'CREATED', entityType: 'note', entityId: 'n1', data: { title: 'hi' }, timestamp: 1 }],
    };
    const post = (headers, body = push) =>
      fetch(`${server.url}/v2`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    const ok = await post(alice);
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).applied, [{ changeId: 'c1', version: 1 }]);
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.equal((await post({ authorization: 'alice-token-0123456789' })).status, 401);
    // The x-user-id header is refused without --insecure-dev-users: bob cannot claim to be alice.
    const spoof = await fetch(`${server.url}/status/d1`, { headers: { ...bob, 'x-user-id': 'alice' } });
    assert.equal(spoof.status, 401);
    assert.match((await spoof.json()).error.message, /x-user-id header is honoured only with --insecure-dev-users/);
    const bobStatus = await fetch(`${server.url}/status/d1`, { headers: bob });
    assert.equal(bobStatus.status, 404, 'bob has no device d1');
    await bobStatus.arrayBuffer();
    const status = await fetch(`${server.url}/status/d1`, { headers: alice });
    assert.equal(status.status, 200);
    assert.equal((await status.json()).changesPushed, 1);

    // A real client syncs through it.
    const client = new SyncClient({
      path: path.join(dir, 'client.db'),
      deviceId: 'd2',
      transport: httpTransport({ url: server.url, headers: alice }),
    });
    t.after(() => client.close());
    client.put('note', 'n2', { title: 'from d2' });
    await client.sync();
    assert.equal(client.queue.stats().pending, 0);
    assert.deepEqual(client.get('note', 'n1'), { title: 'hi' }, 'pulled what d1 pushed');
    client.close();

    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    const lines = server.stdout().split('\n');
    assert.match(lines[0], /^deltasync server listening on http:\/\/127\.0\.0\.1:\d+\/api\/sync /);
    assert.match(lines[1], /tokens file/);
    const logs = lines.filter((line) => /^(GET|POST) /.test(line));
    for (const line of logs) assert.match(line, /^(GET|POST) \/api\/sync\/\S* (\d{3}|aborted) \d+\.\dms$/);
    assert.equal(logs.filter((line) => /^POST \/api\/sync\/v2 401 /.test(line)).length, 3);
    assert.match(server.stdout(), /SIGTERM: stopping\nstopped\n$/);
    assert.equal(server.stderr(), '');

    const reopened = new SyncServer({ path: db });
    t.after(() => reopened.close());
    const pulled = await reopened.pull('alice', { since: 0 });
    assert.deepEqual(pulled.newChanges.map((change) => change.entityId), ['n1', 'n2']);
    assert.equal((await reopened.pull('bob', { since: 0 })).newChanges.length, 0);
  });

  test('--jwt-secret: HS256 tokens verified, the user from the sub claim (or --jwt-claim)', { timeout: 60000 }, async (t) => {
    const { SignJWT } = require('jose');
    const dir = tempDir(t);
    const secret = 'a-secret-of-at-least-thirty-two-bytes!!';
    const server = await startServe(t, ['--db', path.join(dir, 'server.db'), '--port', '0', '--jwt-secret', secret,
      '--jwt-issuer', 'https://auth.example.test']);
    const sign = (claims, key = secret, issuer = 'https://auth.example.test', expires = '5m') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(issuer).setIssuedAt().setExpirationTime(expires)
        .sign(new TextEncoder().encode(key));
    const status = async (token) => {
      const response = await fetch(`${server.url}/v2/status?deviceId=d1`, { headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, body: await response.json() };
    };
    const good = await status(await sign({ sub: 'carol' }));
    assert.equal(good.status, 404, 'carol is authenticated (her device is simply unknown)');
    assert.equal(good.body.error.code, 'NOT_FOUND');
    for (const token of [
      await sign({ sub: 'carol' }, 'another-secret-of-thirty-two-bytes!!!'),
      await sign({ sub: 'carol' }, secret, 'https://evil.example.test'),
      await sign({ sub: 'carol' }, secret, 'https://auth.example.test', Math.floor(Date.now() / 1000) - 120),
      await sign({ name: 'no subject' }),
      await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://auth.example.test')
        .sign(new TextEncoder().encode(secret)), // no expiry
      'not.a.jwt',
    ]) {
      const refused = await status(token);
      assert.equal(refused.status, 401, token);
      assert.equal(refused.body.error.code, 'UNAUTHENTICATED');
    }
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.stdout(), /HS256.*"sub" claim/);
  });

  test('--jwt-public-key: RS256 verified with a PEM key', { timeout: 60000 }, async (t) => {
    const { SignJWT } = require('jose');
    const dir = tempDir(t);
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(dir, 'public.pem');
    fs.writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const server = await startServe(t, ['--db', path.join(dir, 'server.db'), '--port', '0', '--jwt-public-key', keyFile,
      '--jwt-claim', 'uid']);
    const token = await new SignJWT({ uid: 'dave' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(privateKey);
    const body = { deviceId: 'd1', lastKnownServerVersion: 0, changes: [] };
    const post = (auth) => fetch(`${server.url}/v2`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body) });
    const ok = await post(`Bearer ${token}`);
    assert.equal(ok.status, 200);
    await ok.json();
    const hs = await new SignJWT({ uid: 'dave' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32)));
    const refused = await post(`Bearer ${hs}`);
    assert.equal(refused.status, 401, 'an HS256 token is not accepted where RS256 is configured');
    await refused.arrayBuffer();
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  test('without authentication: every request is user "default", said on start; x-user-id only with --insecure-dev-users', { timeout: 60000 }, async (t) => {
    const dir = tempDir(t);
    const db = path.join(dir, 'server.db');
    const server = await startServe(t, ['--db', db, '--port', '0', '--base', '/sync']);
    assert.match(server.url, /\/sync$/);
    const body = { deviceId: 'd1', lastKnownServerVersion: 0, changes: [{ changeId: 'c1', type: 'CREATED', entityType: 'note', entityId: 'n1', data: {}, timestamp: 1 }] };
    const response = await fetch(`${server.url}/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 200);
    await response.json();
    const claimed = await fetch(`${server.url}/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'someone' },
      body: JSON.stringify(body),
    });
    assert.equal(claimed.status, 401, 'a user named in x-user-id is refused, never silently merged into "default"');
    await claimed.arrayBuffer();
    const outside = await fetch(new URL('/elsewhere', server.url));
    assert.equal(outside.status, 404);
    assert.equal((await outside.json()).error.code, 'NOT_FOUND');
    server.child.kill('SIGINT');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.stdout(), /^POST \/sync\/v2 200 /m);
    assert.match(server.stderr(), /^warning: no authentication: every request is served as user "default"\n$/);
    const reopened = new SyncServer({ path: db });
    t.after(() => reopened.close());
    assert.equal((await reopened.pull('default', { since: 0 })).newChanges.length, 1);
    assert.equal((await reopened.pull('someone', { since: 0 })).newChanges.length, 0);
    reopened.close();

    const dev = await startServe(t, ['--db', path.join(dir, 'dev.db'), '--port', '0', '--token', 'shared-token', '--insecure-dev-users']);
    const devResponse = await fetch(`${dev.url}/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer shared-token', 'x-user-id': 'erin' },
      body: JSON.stringify(body),
    });
    assert.equal(devResponse.status, 200);
    await devResponse.json();
    dev.child.kill('SIGTERM');
    assert.deepEqual(await dev.exited, { code: 0, signal: null });
    assert.match(dev.stderr(), /warning: --insecure-dev-users: the x-user-id header picks the user.*For development only/);
    const devDb = new SyncServer({ path: path.join(dir, 'dev.db') });
    t.after(() => devDb.close());
    assert.equal((await devDb.pull('erin', { since: 0 })).newChanges.length, 1);
  });

  test('authentication options are checked before listening', async (t) => {
    const dir = tempDir(t);
    const db = path.join(dir, 'server.db');
    const tokens = path.join(dir, 'tokens.json');
    fs.writeFileSync(tokens, JSON.stringify({ short: 'alice' }));
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--tokens', tokens]), /at least 16 characters/);
    fs.writeFileSync(tokens, '[1, 2]');
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--tokens', tokens]), /JSON object mapping each bearer token/);
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--tokens', path.join(dir, 'missing.json')]), /cannot read --tokens/);
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--jwt-secret', 'short']), /at least 32 bytes/);
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--jwt-secret', 'x'.repeat(32), '--token', 't']), /choose one way to authenticate/);
    assertFailure(await run(['serve', '--db', db, '--port', '0', '--jwt-public-key', tokens]), /cannot read --jwt-public-key/);
  });

  test('a port already in use: exit 1 with a clear message', { timeout: 60000 }, async (t) => {
    const dir = tempDir(t);
    const first = await startServe(t, ['--db', path.join(dir, 'one.db'), '--port', '0']);
    const port = new URL(first.url).port;
    const second = await run(['serve', '--db', path.join(dir, 'two.db'), '--port', port]);
    assertFailure(second, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    first.child.kill('SIGTERM');
    assert.equal((await first.exited).code, 0);
  });
});
