'use strict';

// client.ingest(dir, options) / previewIngest / ingestStatus / resetIngest:
// incremental ingestion of a tree of JSONL files through the store.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  SyncClient,
  tempDir,
  openClient,
  memoryClient,
  assertRejectsSyncError,
  stateSnapshot,
  snapshot,
  takeBatch,
  collect,
} = require('./helpers');

const ZERO_REPORT = {
  filesNew: 0,
  filesUpdated: 0,
  filesUnchanged: 0,
  filesSkipped: 0,
  recordsInserted: 0,
  recordsUpdated: 0,
  recordsUnchanged: 0,
};

/** The report without bytesRead and errors, for count comparisons. */
function counts(report) {
  const { bytesRead, errors, ...rest } = report;
  assert.ok(Number.isSafeInteger(bytesRead) && bytesRead >= 0, `bytesRead ${bytesRead}`);
  assert.ok(Array.isArray(errors));
  return rest;
}

/** Writes `records` (objects, or raw strings written as they are) one per line. */
function writeJsonl(file, records) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record))).join('\n') + '\n');
}

/** Sets a file's modification time to `seconds` after the epoch (distinct from any real write). */
function setMtime(file, seconds) {
  fs.utimesSync(file, seconds, seconds);
}

/** A data directory and a client on its own file, both removed / closed after the test. */
function setup(t, options = {}) {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  const dbPath = path.join(root, 'client.db');
  const client = openClient(t, { path: dbPath, ...options });
  return { root, data, dbPath, client };
}

/** Acknowledges every queued change, so the next ones are visible on their own. */
function markAllSynced(client) {
  let version = client.queue.stats().synced;
  for (const change of takeBatch(client, 1000)) {
    version += 1;
    client._handle.markSynced(change.changeId, version);
  }
  assert.equal(client.queue.stats().pending, 0);
}

/** The three-file tree most tests start from: 5 records in nested directories. */
function writeTree(data) {
  writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1', n: 1 }, { id: 'a2', n: 2 }]);
  writeJsonl(path.join(data, 'sub', 'b.jsonl'), [{ id: 'b1', tags: ['x'] }, { id: 'b2', nested: { deep: true } }]);
  writeJsonl(path.join(data, 'sub', 'deeper', 'c.jsonl'), [{ id: 'c1', n: null }]);
}

const TREE_IDS = ['a1', 'a2', 'b1', 'b2', 'c1'];

function ids(client, entityType = 'record') {
  return client
    .list(entityType)
    .map((doc) => String(doc.id ?? doc.sku))
    .sort();
}

describe('ingest: new, updated and unchanged files', () => {
  test('new files in nested directories are ingested and their records queued for sync', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    const changes = [];
    client.on('change', (event) => changes.push(event));
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 3, recordsInserted: 5 });
    assert.deepEqual(changes, [{ source: 'ingest', entityType: 'record', inserted: 5, updated: 0 }], "one 'change' for the run");
    await client.ingest(data);
    assert.equal(changes.length, 1, "an ingest that wrote nothing emits no 'change'");
    assert.deepEqual(report.errors, []);
    assert.equal(report.bytesRead, ['a.jsonl', 'sub/b.jsonl', 'sub/deeper/c.jsonl'].reduce((sum, f) => sum + fs.statSync(path.join(data, f)).size, 0));
    assert.deepEqual(ids(client), TREE_IDS);
    assert.deepEqual(client.get('record', 'b2'), { id: 'b2', nested: { deep: true } });
    assert.deepEqual(client.get('record', 'c1'), { id: 'c1', n: null });

    const pending = client.queue.pending({ entityType: 'record' });
    assert.equal(pending.length, 5);
    assert.deepEqual(pending.map((change) => change.entityId).sort(), TREE_IDS);
    for (const change of pending) {
      assert.equal(change.type, 'CREATED');
      assert.equal(change.status, 'pending');
      assert.deepEqual(change.data, client.get('record', change.entityId));
    }
  });

  test('a second run skips unchanged files and queues nothing', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    const before = stateSnapshot(client, ['record']);
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUnchanged: 3 });
    assert.deepEqual(report.errors, []);
    assert.deepEqual(stateSnapshot(client, ['record']), before);
  });

  test('a file modified between two runs is updated: changed records updated, unchanged records skipped', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    markAllSynced(client);
    // a1 unchanged, a2 changed (a field dropped, one added), a3 new.
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1', n: 1 }, { id: 'a2', m: 'two' }, { id: 'a3', n: 3 }]);
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), {
      ...ZERO_REPORT,
      filesUpdated: 1,
      filesUnchanged: 2,
      recordsInserted: 1,
      recordsUpdated: 1,
      recordsUnchanged: 1,
    });
    assert.deepEqual(client.get('record', 'a2'), { id: 'a2', m: 'two' });
    const pending = client.queue.pending();
    assert.deepEqual(
      pending.map(({ type, entityId, data: fields }) => ({ type, entityId, data: fields })),
      [
        { type: 'UPDATED', entityId: 'a2', data: { id: 'a2', m: 'two', n: null } },
        { type: 'CREATED', entityId: 'a3', data: { id: 'a3', n: 3 } },
      ],
    );
  });

  test('same size, new content and a new mtime: read again and updated', async (t) => {
    const { data, client } = setup(t);
    const file = path.join(data, 'a.jsonl');
    writeJsonl(file, [{ id: 'a1', v: 'x' }]);
    setMtime(file, 1_000_000);
    await client.ingest(data);
    writeJsonl(file, [{ id: 'a1', v: 'y' }]);
    setMtime(file, 1_000_100);
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUpdated: 1, recordsUpdated: 1 });
    assert.deepEqual(client.get('record', 'a1'), { id: 'a1', v: 'y' });
  });

  test('a file touched but not changed is unchanged, and its new time is remembered', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    const before = stateSnapshot(client, ['record']);
    setMtime(path.join(data, 'a.jsonl'), 2_000_000);
    const touched = await client.ingest(data);
    assert.deepEqual(counts(touched), { ...ZERO_REPORT, filesUnchanged: 3 });
    assert.ok(touched.bytesRead >= fs.statSync(path.join(data, 'a.jsonl')).size, 'the touched file was read to compare its hash');
    const again = await client.ingest(data);
    assert.deepEqual(counts(again), { ...ZERO_REPORT, filesUnchanged: 3 });
    assert.deepEqual(stateSnapshot(client, ['record']), before);
  });

  test('a file appended after its stat and read, while the run goes on, is updated by the next run', async (t) => {
    const { data, client } = setup(t);
    const file = path.join(data, 'big.jsonl');
    const records = Array.from({ length: 2500 }, (_, i) => ({ id: `r${i}`, i }));
    writeJsonl(file, records); // 3 chunks of at most 1000 records: progress is reported during the run
    let appended = false;
    const append = () => {
      if (appended) return;
      appended = true;
      fs.appendFileSync(file, `${JSON.stringify({ id: 'late', i: -1 })}\n`);
    };
    // The first progress event comes after the first chunk, when the file has been read.
    client.on('ingest-progress', append);
    const first = await client.ingest(data);
    append(); // in case no progress event arrived before the run ended: still after the read
    client.off('ingest-progress', append);
    assert.deepEqual(counts(first), { ...ZERO_REPORT, filesNew: 1, recordsInserted: 2500 });
    assert.equal(client.get('record', 'late'), undefined, 'the appended line was not in what the run read');

    const second = await client.ingest(data);
    assert.deepEqual(counts(second), { ...ZERO_REPORT, filesUpdated: 1, recordsInserted: 1, recordsUnchanged: 2500 });
    assert.deepEqual(client.get('record', 'late'), { id: 'late', i: -1 });
    const third = await client.ingest(data);
    assert.deepEqual(counts(third), { ...ZERO_REPORT, filesUnchanged: 1 });
  });

  test('a file deleted after a run is simply not seen; its records stay', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    fs.rmSync(path.join(data, 'a.jsonl'));
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUnchanged: 2 });
    assert.deepEqual(ids(client), TREE_IDS);
  });
});

describe('ingest: options', () => {
  test('maxFiles: at most N new or changed files per run, the rest in later runs', async (t) => {
    const { data, client } = setup(t);
    for (const name of ['a', 'b', 'c', 'd', 'e']) writeJsonl(path.join(data, `${name}.jsonl`), [{ id: name }]);
    const first = await client.ingest(data, { maxFiles: 2 });
    assert.deepEqual(counts(first), { ...ZERO_REPORT, filesNew: 2, filesSkipped: 3, recordsInserted: 2 });
    assert.deepEqual(ids(client), ['a', 'b'], 'files are taken in path order');
    const second = await client.ingest(data, { maxFiles: 2 });
    assert.deepEqual(counts(second), { ...ZERO_REPORT, filesNew: 2, filesUnchanged: 2, filesSkipped: 1, recordsInserted: 2 });
    const third = await client.ingest(data, { maxFiles: 2 });
    assert.deepEqual(counts(third), { ...ZERO_REPORT, filesNew: 1, filesUnchanged: 4, recordsInserted: 1 });
    assert.deepEqual(ids(client), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(client.queue.stats().pending, 5);
  });

  test('maxFiles counts only files that are read for their records, not unchanged ones', async (t) => {
    const { data, client } = setup(t);
    for (const name of ['a', 'b', 'c']) writeJsonl(path.join(data, `${name}.jsonl`), [{ id: name }]);
    await client.ingest(data);
    writeJsonl(path.join(data, 'c.jsonl'), [{ id: 'c', changed: true }]);
    const report = await client.ingest(data, { maxFiles: 1 });
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUpdated: 1, filesUnchanged: 2, recordsUpdated: 1 });
  });

  test('forceFullSync reads every file again; unchanged records are still skipped', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    const before = stateSnapshot(client, ['record']);
    const forced = await client.ingest(data, { forceFullSync: true });
    assert.deepEqual(counts(forced), { ...ZERO_REPORT, filesUpdated: 3, recordsUnchanged: 5 });
    assert.ok(forced.bytesRead > 0);
    assert.deepEqual(stateSnapshot(client, ['record']), before, 'nothing new was queued');
    const full = await client.ingest(data, { incremental: false });
    assert.deepEqual(counts(full), { ...ZERO_REPORT, filesUpdated: 3, recordsUnchanged: 5 });
    const incremental = await client.ingest(data);
    assert.deepEqual(counts(incremental), { ...ZERO_REPORT, filesUnchanged: 3 });
  });

  test('forceFullSync brings back a record changed locally since it was ingested', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    client.patch('record', 'a1', { n: 100 });
    const incremental = await client.ingest(data);
    assert.equal(incremental.recordsUpdated, 0, 'an unchanged file is not read');
    assert.deepEqual(client.get('record', 'a1'), { id: 'a1', n: 100 });
    const forced = await client.ingest(data, { forceFullSync: true });
    assert.deepEqual(counts(forced), { ...ZERO_REPORT, filesUpdated: 3, recordsUpdated: 1, recordsUnchanged: 4 });
    assert.deepEqual(client.get('record', 'a1'), { id: 'a1', n: 1 });
  });

  test('skipExisting only adds new records', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1', n: 'changed' }, { id: 'a9' }]);
    const report = await client.ingest(data, { skipExisting: true });
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUpdated: 1, filesUnchanged: 2, recordsInserted: 1, recordsUnchanged: 1 });
    assert.deepEqual(client.get('record', 'a1'), { id: 'a1', n: 1 });
    assert.deepEqual(client.get('record', 'a9'), { id: 'a9' });
  });

  test('entityType and idField: integer and string ids, stored under the given type', async (t) => {
    const { data, client } = setup(t);
    writeJsonl(path.join(data, 'products.jsonl'), [{ sku: 42, name: 'bolt' }, { sku: 'X-1', name: 'nut' }]);
    const report = await client.ingest(data, { entityType: 'product', idField: 'sku' });
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 1, recordsInserted: 2 });
    assert.deepEqual(client.get('product', '42'), { sku: 42, name: 'bolt' });
    assert.deepEqual(client.get('product', 'X-1'), { sku: 'X-1', name: 'nut' });
    assert.deepEqual(client.list('record'), []);
    assert.deepEqual(client.queue.pending().map((change) => change.entityType), ['product', 'product']);
  });

  test('ids: escaped strings unescaped, integers in decimal, only a top-level field counts', async (t) => {
    const { data, client } = setup(t);
    fs.writeFileSync(
      path.join(data, 'ids.jsonl'),
      [
        '{"meta":{"id":"nested"},"id":"plain"}',
        '{"id":"\\u0061\\"q\\" \\u00e9"}',
        '{"\\u0069d":"key-escaped"}',
        '{"id":-7}',
        '{"id":9007199254740991}',
        '{"meta":{"id":"only-nested"}}',
        '{"id":1e3}',
        '{"id":{"a":1}}',
        '{"id":true}',
        '{"id":""}',
        JSON.stringify({ id: 'x'.repeat(257) }),
        JSON.stringify({ id: 'y'.repeat(256) }),
      ].join('\n'),
    );
    const report = await client.ingest(data);
    assert.deepEqual(report.errors.map(({ line }) => line), [6, 7, 8, 9, 10, 11]);
    for (const error of report.errors) assert.match(error.message, /id of 1-256 bytes in field "id"/);
    assert.deepEqual(ids(client), ['-7', '9007199254740991', 'a"q" é', 'key-escaped', 'plain', 'y'.repeat(256)].sort());
    assert.deepEqual(client.get('record', 'plain'), { meta: { id: 'nested' }, id: 'plain' });
    assert.deepEqual(client.get('record', 'a"q" é'), { id: 'a"q" é' });
  });

  test('pattern: ** spans directories, * and ? do not', async (t) => {
    const { data } = setup(t);
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a' }]);
    writeJsonl(path.join(data, 'b.ndjson'), [{ id: 'b' }]);
    writeJsonl(path.join(data, 'sub', 'c.jsonl'), [{ id: 'c' }]);
    writeJsonl(path.join(data, 'sub', 'notes.txt'), [{ id: 'txt' }]);
    writeJsonl(path.join(data, 'sub', 'x', 'e.jsonl'), [{ id: 'e' }]);
    writeJsonl(path.join(data, 'sub', 'x', 'long.jsonl'), [{ id: 'long' }]);
    const cases = [
      [undefined, ['a', 'c', 'e', 'long']],
      ['**/*.jsonl', ['a', 'c', 'e', 'long']],
      ['*.jsonl', ['a']],
      ['**/*.ndjson', ['b']],
      ['sub/*.jsonl', ['c']],
      ['sub/**/*.jsonl', ['c', 'e', 'long']],
      ['**/?.jsonl', ['a', 'c', 'e']],
      ['**/*', ['a', 'b', 'c', 'e', 'long', 'txt']],
      ['nothing/**', []],
    ];
    for (const [pattern, expected] of cases) {
      const client = memoryClient(t);
      const report = await client.ingest(data, pattern === undefined ? undefined : { pattern });
      assert.deepEqual(ids(client), expected, `pattern ${pattern}`);
      assert.equal(report.filesNew, expected.length, `pattern ${pattern}`);
      client.close();
    }
  });

  test('ingest-progress events: files done out of the total, records and bytes, ending complete', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    const events = collect(client, 'ingest-progress');
    const report = await client.ingest(data);
    assert.ok(events.length >= 1);
    for (const event of events) {
      assert.deepEqual(Object.keys(event).sort(), ['bytes', 'filesDone', 'filesTotal', 'records']);
      assert.equal(event.filesTotal, 3);
      assert.ok(event.filesDone <= event.filesTotal);
    }
    for (let i = 1; i < events.length; i += 1) {
      assert.ok(events[i].filesDone >= events[i - 1].filesDone);
      assert.ok(events[i].records >= events[i - 1].records);
    }
    assert.deepEqual(events.at(-1), { filesDone: 3, filesTotal: 3, records: 5, bytes: report.bytesRead });
  });
});

describe('ingest: bad input', () => {
  test('a bad line is reported with its file and line; the rest of the file is ingested', async (t) => {
    const { data, client } = setup(t);
    fs.mkdirSync(path.join(data, 'sub'));
    fs.writeFileSync(
      path.join(data, 'sub', 'mixed.jsonl'),
      [
        '{"id":"m1"}',
        'not json',
        '',
        '[1, 2]',
        '{"id":"m2"} {"id":"m3"}',
        '{"noid":true}',
        '{"id":1.5}',
        '{"id":"m4","ok":true}\r',
        '   ',
        '{"id":"m5"}',
      ].join('\n'),
    );
    writeJsonl(path.join(data, 'good.jsonl'), [{ id: 'g1' }]);
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 2, recordsInserted: 4 });
    assert.deepEqual(
      report.errors.map(({ file, line, code }) => ({ file, line, code })),
      [
        { file: 'sub/mixed.jsonl', line: 2, code: 'INVALID_ARGUMENT' },
        { file: 'sub/mixed.jsonl', line: 4, code: 'INVALID_ARGUMENT' },
        { file: 'sub/mixed.jsonl', line: 5, code: 'INVALID_ARGUMENT' },
        { file: 'sub/mixed.jsonl', line: 6, code: 'INVALID_ARGUMENT' },
        { file: 'sub/mixed.jsonl', line: 7, code: 'INVALID_ARGUMENT' },
      ],
    );
    assert.match(report.errors[2].message, /Trailing content/);
    assert.match(report.errors[3].message, /id/);
    assert.match(report.errors[4].message, /id/);
    for (const error of report.errors) assert.ok(error.message.length > 0);
    assert.deepEqual(ids(client), ['g1', 'm1', 'm4', 'm5']);
    assert.deepEqual(client.get('record', 'm4'), { id: 'm4', ok: true });
    assert.equal(client.queue.stats().pending, 4);
    // The file is in the manifest with its errors: a fixed file is read again.
    fs.writeFileSync(path.join(data, 'sub', 'mixed.jsonl'), '{"id":"m1"}\n{"id":"m2"}\n');
    const fixed = await client.ingest(data);
    assert.deepEqual(counts(fixed), { ...ZERO_REPORT, filesUpdated: 1, filesUnchanged: 1, recordsInserted: 1, recordsUnchanged: 1 });
    assert.deepEqual(fixed.errors, []);
  });

  test('across chunks and files, bad lines are reported in file and line order and every good record is stored', async (t) => {
    // Files are read one step ahead of their writing: a later chunk's errors must not overtake an earlier one's.
    const { data, client } = setup(t);
    const bad = new Set([5, 1500, 2400]);
    const lines = Array.from({ length: 2500 }, (_, i) => (bad.has(i + 1) ? `bad ${i + 1}` : JSON.stringify({ id: `a${i + 1}` })));
    fs.writeFileSync(path.join(data, 'a.jsonl'), lines.join('\n'));
    fs.writeFileSync(path.join(data, 'b.jsonl'), '');
    fs.writeFileSync(path.join(data, 'c.jsonl'), '{"id":"c1"}\n{"id":\n{"id":"c3"}\n');
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 3, recordsInserted: 2499 });
    assert.deepEqual(
      report.errors.map(({ file, line }) => `${file}:${line}`),
      ['a.jsonl:5', 'a.jsonl:1500', 'a.jsonl:2400', 'c.jsonl:2'],
    );
    assert.equal(client.list('record').length, 2499);
    const again = await client.ingest(data);
    assert.deepEqual(counts(again), { ...ZERO_REPORT, filesUnchanged: 3 });
  });

  test('a record over the document limits is reported, not stored', async (t) => {
    const { data, client } = setup(t, { limits: { maxDepth: 3 } });
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'deep', a: { b: { c: { d: 1 } } } }, { id: 'flat' }]);
    const report = await client.ingest(data);
    assert.equal(report.recordsInserted, 1);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0].line, 1);
    assert.equal(report.errors[0].file, 'a.jsonl');
    assert.equal(client.get('record', 'deep'), undefined);
  });

  test('argument errors', async (t) => {
    const { root, data, client } = setup(t);
    writeTree(data);
    const invalid = (promise, message) => assertRejectsSyncError(promise, 'INVALID_ARGUMENT', message);
    await invalid(client.ingest(), /dir/);
    await invalid(client.ingest(''), /dir/);
    await invalid(client.ingest(42), /dir/);
    await invalid(client.ingest(path.join(root, 'missing')), /directory/);
    fs.writeFileSync(path.join(root, 'file.jsonl'), '{"id":1}\n');
    await invalid(client.ingest(path.join(root, 'file.jsonl')), /directory/);
    await invalid(client.ingest(data, 'x'), /options/);
    await invalid(client.ingest(data, { bogus: 1 }), /Unknown option "bogus"/);
    await invalid(client.ingest(data, { pattern: '' }), /options.pattern/);
    await invalid(client.ingest(data, { pattern: 7 }), /options.pattern/);
    await invalid(client.ingest(data, { entityType: '' }), /entityType/);
    await invalid(client.ingest(data, { entityType: 'no spaces allowed' }), /entityType/);
    await invalid(client.ingest(data, { idField: '' }), /options.idField/);
    for (const key of ['incremental', 'dryRun', 'skipExisting', 'forceFullSync']) {
      await invalid(client.ingest(data, { [key]: 'yes' }), new RegExp(`options.${key}`));
    }
    for (const maxFiles of [0, -1, 1.5, '2', Infinity]) {
      await invalid(client.ingest(data, { maxFiles }), /options.maxFiles/);
    }
    await invalid(client.previewIngest(data, { maxFiles: 0 }), /options.maxFiles/);
    assert.equal(client.ingestStatus(), null, 'no run was recorded');
    assert.equal(client.queue.stats().pending, 0);
  });

  test('inside a transaction: CONFLICT; on a closed client: CLOSED', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    let pending;
    client.transaction(() => {
      pending = client.ingest(data);
    });
    await assertRejectsSyncError(pending, 'CONFLICT', /transaction/);
    client.close();
    await assertRejectsSyncError(client.ingest(data), 'CLOSED');
    assert.throws(() => client.ingestStatus(), { code: 'CLOSED' });
    assert.throws(() => client.resetIngest(), { code: 'CLOSED' });
  });

  test('a line that is a bare word or number says that each line must be an object, in plain words', async (t) => {
    const { data, client } = setup(t);
    fs.writeFileSync(path.join(data, 'a.jsonl'), 'not json\n42\n"text"\n');
    const report = await client.ingest(data);
    assert.deepEqual(report.errors.map((error) => [error.line, error.code, error.message]), [
      [1, 'INVALID_ARGUMENT', 'Expected a JSON object on each line'],
      [2, 'INVALID_ARGUMENT', 'Expected a JSON object on each line'],
      [3, 'INVALID_ARGUMENT', 'Expected a JSON object on each line'],
    ]);
  });
});

describe('ingest: dry run, status, reset', () => {
  test('a dry run (previewIngest or dryRun: true) reports the same counts and writes nothing', async (t) => {
    const { data, client, dbPath } = setup(t);
    writeTree(data);
    const before = stateSnapshot(client, ['record']);
    const preview = await client.previewIngest(data);
    assert.deepEqual(counts(preview), { ...ZERO_REPORT, filesNew: 3, recordsInserted: 5 });
    const dry = await client.ingest(data, { dryRun: true });
    assert.deepEqual(dry, preview);
    assert.deepEqual(stateSnapshot(client, ['record']), before);
    assert.equal(client.ingestStatus(), null, 'a dry run records no status');

    const real = await client.ingest(data);
    assert.deepEqual(real, preview, 'the real run does what the preview said');
    const status = client.ingestStatus();
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a1', n: 10 }, { id: 'a2', n: 2 }, { id: 'a3' }]);
    const after = stateSnapshot(client, ['record']);
    const previewUpdate = await client.previewIngest(data);
    assert.deepEqual(counts(previewUpdate), {
      ...ZERO_REPORT,
      filesUpdated: 1,
      filesUnchanged: 2,
      recordsInserted: 1,
      recordsUpdated: 1,
      recordsUnchanged: 1,
    });
    assert.deepEqual(stateSnapshot(client, ['record']), after);
    assert.deepEqual(client.ingestStatus(), status);
    // And nothing reached the file either: another connection sees the same.
    const other = new SyncClient({ path: dbPath });
    t.after(() => other.close());
    assert.deepEqual(ids(other), TREE_IDS);
    assert.deepEqual(other.get('record', 'a1'), { id: 'a1', n: 1 });
  });

  test('the status of the last run is persisted across a restart, and so is the manifest', async (t) => {
    const { data, client, dbPath } = setup(t);
    writeTree(data);
    assert.equal(client.ingestStatus(), null);
    const report = await client.ingest(data);
    const status = client.ingestStatus();
    assert.equal(status.status, 'completed');
    assert.equal(status.dir, fs.realpathSync(data));
    assert.equal(status.error, null);
    assert.deepEqual(status.report, report);
    assert.ok(Number.isSafeInteger(status.startedAt) && status.finishedAt >= status.startedAt);
    client.close();

    const reopened = openClient(t, { path: dbPath });
    assert.deepEqual(reopened.ingestStatus(), status);
    const again = await reopened.ingest(data);
    assert.deepEqual(counts(again), { ...ZERO_REPORT, filesUnchanged: 3 });
    assert.deepEqual(reopened.ingestStatus().report, again);
    assert.equal(snapshot(reopened).stats.pending, 5, 'the ingested records are still queued');
  });

  test('a run interrupted by close() is "failed" as interrupted after a reopen; the next run finishes the job', async (t) => {
    const { data, client, dbPath } = setup(t);
    const total = 20000;
    writeJsonl(path.join(data, 'big.jsonl'), Array.from({ length: total }, (_, i) => ({ id: `r${i}` })));
    client.once('ingest-progress', () => client.close());
    // The worker waits after its first progress report until close() has run: the run is
    // always interrupted mid-file (the close() during a worker's run that once crashed).
    process.env.DELTASYNC_TEST_HOOKS = 'ingest-pause-after-first-progress';
    let running;
    try {
      running = client.ingest(data);
    } finally {
      delete process.env.DELTASYNC_TEST_HOOKS;
    }
    await assert.rejects(running, (error) => error.code === 'CLOSED');
    client.close();
    const reopened = openClient(t, { path: dbPath });
    const status = reopened.ingestStatus();
    assert.equal(status.status, 'failed');
    assert.match(status.error, /^interrupted: /);
    assert.equal(status.finishedAt, null);
    assert.equal(status.report, null);
    const kept = reopened.list('record').length;
    assert.ok(kept >= 1000 && kept < total, `whole chunks were kept: ${kept}`);
    const report = await reopened.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 1, recordsInserted: total - kept, recordsUnchanged: kept });
    assert.equal(reopened.list('record').length, total);
    assert.equal(reopened.ingestStatus().status, 'completed');
  });

  test('resetIngest forgets the manifest and the status: the next run reads every file', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(data);
    const before = stateSnapshot(client, ['record']);
    client.resetIngest();
    assert.equal(client.ingestStatus(), null);
    assert.deepEqual(stateSnapshot(client, ['record']), before, 'the records and the queue stay');
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 3, recordsUnchanged: 5 });
    assert.deepEqual(stateSnapshot(client, ['record']), before);
    client.resetIngest();
    client.resetIngest(); // idempotent
  });

  test('a relative directory and one given with a trailing slash are the same tree', async (t) => {
    const { data, client } = setup(t);
    writeTree(data);
    await client.ingest(`${data}${path.sep}`);
    const relative = path.relative(process.cwd(), data);
    const report = await client.ingest(relative);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesUnchanged: 3 });
  });
});

describe('ingest: known bugs (see the report; fix in src/core/ingest.cc)', () => {
  test('an empty file enters the manifest: it is new once, then unchanged', async (t) => {
    const { data, client } = setup(t);
    fs.writeFileSync(path.join(data, 'empty.jsonl'), '');
    const first = await client.ingest(data);
    assert.equal(first.filesNew, 1);
    const second = await client.ingest(data);
    assert.deepEqual(counts(second), { ...ZERO_REPORT, filesUnchanged: 1 });
  });

  test('the last ingest-progress event counts every file, also when the last ones are unchanged or skipped', async (t) => {
    const { data, client } = setup(t);
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a' }]);
    writeJsonl(path.join(data, 'b.jsonl'), [{ id: 'b' }]);
    await client.ingest(data);
    writeJsonl(path.join(data, 'a.jsonl'), [{ id: 'a', v: 2 }]);
    const events = collect(client, 'ingest-progress');
    await client.ingest(data);
    assert.equal(events.at(-1).filesDone, 2);
    writeJsonl(path.join(data, 'c.jsonl'), [{ id: 'c' }]);
    writeJsonl(path.join(data, 'd.jsonl'), [{ id: 'd' }]);
    events.length = 0;
    await client.ingest(data, { maxFiles: 1 });
    assert.equal(events.at(-1).filesDone, events.at(-1).filesTotal);
  });

  test('a record equal in value to the stored document (key order, number spelling) is unchanged', async (t) => {
    const { data, client } = setup(t);
    client.put('record', 'x', { id: 'x', b: 1 });
    client.put('record', 'y', { id: 'y', n: 1 });
    fs.writeFileSync(path.join(data, 'a.jsonl'), '{"b":1,"id":"x"}\n{"id":"y","n":1.0}\n');
    const report = await client.ingest(data);
    assert.deepEqual(counts(report), { ...ZERO_REPORT, filesNew: 1, recordsUnchanged: 2 });
  });

  test('a truncated object is reported as malformed JSON, not as "not an object"', async (t) => {
    const { data, client } = setup(t);
    fs.writeFileSync(path.join(data, 'a.jsonl'), '{"id":"a",\n');
    const report = await client.ingest(data);
    assert.match(report.errors[0].message, /Malformed JSON/);
  });
});
