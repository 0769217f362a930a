'use strict';

// Hostile input, table-driven, at the JS API (SyncClient store, queue and applyRemote;
// SyncServer sync/push/importSnapshot/resolveConflict) and over HTTP (every route of
// deltasync/express). Each row must be refused with a coded SyncError (JS) or a 4xx
// JSON { error: { code, message } } (HTTP), and leave the database byte-for-byte as it
// was: a sha256 over the schema and every row of every table, read with better-sqlite3
// on a separate read-only connection to the file, before and after the row.
// Rows "another user's ids" are accepted into the sender's own account: there the
// victim's slice of the database and the victim's pull must be unchanged.
// A row that the code accepts although it must refuse it is a bug: it is marked todo
// with what happens, and reported.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { SyncClient, SyncError, tempDir } = require('./helpers');
const { SyncServer, startApp, assertHttpError } = require('./fixtures/server-http');
const { recordFigures } = require('./fixtures/figures');
const { storeOptions } = require('./postgres-harness');
const {
  MB,
  dbHash,
  serverHash,
  nestedObjects,
  nestedArrays,
  zeros,
  deepObject,
  postDeclaredBody,
  postStreamedBody,
} = require('./fixtures/hostile-helpers');

const ALICE = 'alice';
const BOB = 'bob';
const SECRET = 'alice-secret-7f3a'; // in alice's data: no answer to bob may contain it
const T0 = 1_700_000_000_000;
const DEEP = 100_000;
const MILLION = 1_000_000;
const BIG_INT = '9007199254740993'; // 2^53 + 1: a double rounds it
const LONG_ID = 'x'.repeat(257);

// ---- JSON text builders (values are raw JSON text; undefined drops a field)

function objectText(fields, raw) {
  const parts = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${JSON.stringify(key)}:${value}`);
  if (raw !== undefined) parts.push(raw);
  return `{${parts.join(',')}}`;
}

/** A v2 change record as text: a valid CREATED of note h-e1 unless `over` says otherwise. */
function changeText(over = {}, raw) {
  return objectText(
    {
      changeId: '"h-c1"',
      type: '"CREATED"',
      entityType: '"note"',
      entityId: '"h-e1"',
      data: '{"title":"hostile"}',
      timestamp: String(T0),
      ...over,
    },
    raw,
  );
}

/** A v2 request as text: { deviceId, lastKnownServerVersion, changes }, valid unless `over` says otherwise. */
function requestText({ changes = [changeText()], over = {}, raw } = {}) {
  return objectText(
    { deviceId: '"h-device"', lastKnownServerVersion: '0', changes: `[${changes.join(',')}]`, ...over },
    raw,
  );
}

/** A pulled change (the newChanges shape) as text. */
function remoteText(over = {}, raw) {
  return objectText(
    {
      version: '101',
      changeId: '"rh-1"',
      type: '"CREATED"',
      entityType: '"note"',
      entityId: '"rh-e1"',
      data: '{"v":1}',
      timestamp: String(T0),
      deviceId: '"other"',
      ...over,
    },
    raw,
  );
}

/** A pull page as text. */
function pageText({ changes = [remoteText()], over = {}, raw } = {}) {
  return objectText({ newChanges: `[${changes.join(',')}]`, latestServerVersion: '101', hasMore: 'false', ...over }, raw);
}

/** A legacy queue dump (importLegacy) as text: one wire-shaped record. */
function legacyText(over = {}, raw) {
  return `[${objectText(
    { changeId: '"legacy-1"', type: '"CREATED"', entityType: '"note"', entityId: '"lg-1"', data: '{"t":1}', ...over },
    raw,
  )}]`;
}

/** A compatible /push body as text: { deviceId, changes: { type: [records] } }. */
function compatText({ changes = '{"customers":[{"customer_id":"H1","name":"h","updated_at":"2025-01-15T11:00:00Z"}]}', over = {}, raw } = {}) {
  return objectText({ deviceId: '"h-device"', changes, ...over }, raw);
}

function wire(over = {}) {
  return { changeId: 'hj-1', type: 'CREATED', entityType: 'note', entityId: 'hj-e1', data: { t: 1 }, timestamp: T0, ...over };
}

function manyChanges(count, prefix) {
  return Array.from({ length: count }, (_, i) => ({
    changeId: `${prefix}${i}`,
    type: 'CREATED',
    entityType: 'n',
    entityId: `${prefix}${i}`,
    data: {},
  }));
}

/** A page of about `bytes` of valid changes, then one bad change: validated first, so nothing may apply. */
function hugePageWithBadTail(bytes) {
  const pad = 'p'.repeat(1000);
  const parts = [];
  let size = 0;
  let version = 1000;
  while (size < bytes) {
    version += 1;
    const text = remoteText({ version: String(version), changeId: `"big-${version}"`, entityId: `"big-${version}"`, data: `{"pad":"${pad}"}` });
    parts.push(text);
    size += text.length + 1;
  }
  parts.push(remoteText({ version: String(version + 1), changeId: '"big-bad"', type: '"MOVED"' }));
  return Buffer.from(pageText({ changes: parts, over: { latestServerVersion: String(version + 1) } }));
}

// ---- outcome capture

async function outcomeOf(run) {
  try {
    const value = await run();
    return { value };
  } catch (error) {
    return { error };
  }
}

function describeAccepted(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text === undefined ? 'undefined' : text.slice(0, 300);
}

function assertCodedError(outcome, code, message) {
  assert.ok(outcome.error !== undefined, `expected a SyncError ${code}, but it was accepted: ${describeAccepted(outcome.value)}`);
  const { error } = outcome;
  assert.ok(error instanceof SyncError, `expected a SyncError, got ${error && error.stack}`);
  assert.equal(error.code, code, `code of: ${error.message}`);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 0);
  if (message !== undefined) assert.match(error.message, message);
}

// ---- the worlds the rows run against

/**
 * A seeded client file and a seeded server file (alice with notes, a memo in manual
 * conflict and an imported snapshot; bob with one note) behind an Express app.
 */
async function setUpWorld(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `deltasync-hostile-${name}-`));
  const w = { dir, clientFile: path.join(dir, 'client.db'), serverFile: path.join(dir, 'server.db') };

  const client = new SyncClient({ path: w.clientFile, deviceId: 'hostile-device' });
  w.client = client;
  client.createIndex('note', 'title');
  client.put('note', 'n1', { title: 'one', tags: ['a', 'b'] });
  client.put('note', 'n2', { title: 'two' });
  client.put('memo', 'm1', { text: 'memo' });
  client.patch('note', 'n1', { title: 'one!' });
  client.delete('note', 'n2');
  w.queuedChangeId = 'known-change';
  client.queue.enqueue({ changeId: w.queuedChangeId, type: 'CREATED', entityType: 'task', entityId: 't1', data: { done: false } });
  await client.applyRemote(
    pageText({
      changes: [1, 2, 3].map((v) => remoteText({ version: String(v), changeId: `"seed-r${v}"`, entityId: `"r${v}"`, data: `{"v":${v}}` })),
      over: { latestServerVersion: '3' },
    }),
  );

  const store = process.env.DELTASYNC_TEST_STORE === 'postgres' ? storeOptions('hostile') : { path: w.serverFile };
  w.serverPostgres = store.postgres;
  const server = new SyncServer({ ...store, perType: { memo: 'manual' } });
  w.server = server;
  const aliceChanges = [
    wire({ changeId: 'a-c1', entityId: 'a-n1', data: { title: SECRET, n: 1 } }),
    wire({ changeId: 'a-c2', entityId: 'a-n2', data: { title: 'two' } }),
    wire({ changeId: 'a-c3', type: 'UPDATED', entityId: 'a-n1', data: { n: 2 }, timestamp: T0 + 1 }),
    wire({ changeId: 'a-c4', entityType: 'memo', entityId: 'a-m1', data: { text: SECRET } }),
  ];
  const first = await server.sync(ALICE, { deviceId: 'alice-phone', lastKnownServerVersion: 0, changes: aliceChanges });
  assert.equal(first.applied.length, 4);
  const conflicted = await server.sync(ALICE, {
    deviceId: 'alice-laptop',
    lastKnownServerVersion: 4,
    changes: [wire({ changeId: 'a-c5', type: 'UPDATED', entityType: 'memo', entityId: 'a-m1', data: { text: 'laptop' }, baseVersion: 0, timestamp: T0 + 5 })],
  });
  assert.equal(conflicted.conflicts.length, 1, JSON.stringify(conflicted));
  w.aliceConflictId = conflicted.conflicts[0].conflictId;
  assert.ok(Number.isInteger(w.aliceConflictId));
  await server.importSnapshot(ALICE, { customers: [{ customer_id: 'C1', name: SECRET }] });
  await server.sync(BOB, { deviceId: 'bob-phone', lastKnownServerVersion: 0, changes: [wire({ changeId: 'b-c1', entityId: 'b-n1', data: { title: 'bob' } })] });

  w.app = await startApp({ server });
  w.close = async () => {
    try {
      await w.app.close(); // closes the SyncServer too
      client.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  return w;
}

// Rows that must pass run in `world`. Rows marked todo (known bugs: accepted although
// they must be refused) run in `bugWorld`, so that what they wrongly apply cannot
// change what the other rows meet.
let world;
let bugWorld;
const worldOf = (row) => (row.todo ? bugWorld : world);

before(async () => {
  world = await setUpWorld('main');
  bugWorld = await setUpWorld('todo');
});

after(async () => {
  try {
    await world?.close();
  } finally {
    await bugWorld?.close();
  }
});

// ---- the rows

// JS API rows: { name, on: 'client' | 'server', code, message?, run(world), todo? }
const JS_ROWS = [
  // SyncClient.put / patch / delete: ids and entity types
  { name: 'put: entityType with a space and "!"', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('bad type!', 'x', { a: 1 }) },
  { name: 'put: entityType of 65 characters', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('t'.repeat(65), 'x', { a: 1 }) },
  { name: 'put: entityType a number', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put(5, 'x', { a: 1 }) },
  { name: 'put: entityId of 257 bytes', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', LONG_ID, { a: 1 }) },
  { name: 'put: entityId of 129 two-byte characters (258 bytes)', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'é'.repeat(129), { a: 1 }) },
  { name: 'put: entityId a number', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 42, { a: 1 }) },
  { name: 'put: entityId empty', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', '', { a: 1 }) },
  {
    name: 'put: entityId with a NUL character',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.put('note', 'a\u0000b', { a: 1 }),
  },
  {
    name: 'put: entityId with a lone surrogate',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.put('note', 'x\ud800', { a: 1 }),
  },
  // documents
  { name: 'put: a document 100,000 levels deep', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'deep', deepObject(DEEP)) },
  { name: 'put: a document 65 levels deep (the limit is 64)', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.put('note', 'deep', deepObject(65)) },
  {
    name: 'put: a 1,000,000-element array in a document',
    on: 'client',
    code: 'LIMIT_EXCEEDED',
    run: (w) => w.client.put('note', 'arr', { list: new Array(MILLION).fill(0) }),
  },
  { name: 'put: a 2 MB document', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.put('note', 'big', { text: 'x'.repeat(2 * MB) }) },
  { name: 'put: an own "__proto__" key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', JSON.parse('{"__proto__":{"polluted":true}}')) },
  { name: 'put: a nested "constructor" key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', { meta: { constructor: { prototype: 1 } } }) },
  { name: 'put: a NUL character in a string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', { text: 'a\u0000b' }) },
  { name: 'put: a NUL character in a key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', { 'a\u0000b': 1 }) },
  { name: 'put: a lone surrogate in a string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', { text: 'a\udc00' }) },
  { name: 'put: a lone surrogate in a key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', { '\ud800': 1 }) },
  {
    name: 'put: NaN in a document',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.put('note', 'nan', { n: NaN }),
  },
  {
    name: 'put: 1e400 (Infinity) in a document',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.put('note', 'inf', { n: 1e400 }),
  },
  { name: 'put: 2^53+1 as a BigInt', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'big', { n: 2n ** 53n + 1n }) },
  { name: 'put: an array as the document', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', [1, 2]) },
  { name: 'put: a class instance as the document', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.put('note', 'p', new Map([['a', 1]])) },
  {
    name: 'put: a circular document',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => {
      const doc = { a: 1 };
      doc.self = doc;
      return w.client.put('note', 'p', doc);
    },
  },
  {
    name: 'put: a getter that throws',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) =>
      w.client.put('note', 'p', {
        get a() {
          throw new Error('boom');
        },
      }),
  },
  { name: 'patch: a document that does not exist', on: 'client', code: 'NOT_FOUND', run: (w) => w.client.patch('note', 'missing', { a: 1 }) },
  { name: 'patch: a deleted document', on: 'client', code: 'NOT_FOUND', run: (w) => w.client.patch('note', 'n2', { a: 1 }) },
  { name: 'patch: an own "__proto__" key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.patch('note', 'n1', JSON.parse('{"__proto__":1}')) },
  { name: 'patch: null fields', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.patch('note', 'n1', null) },
  { name: 'patch: a 2 MB field', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.patch('note', 'n1', { text: 'x'.repeat(2 * MB) }) },
  { name: 'delete: entityId of 257 bytes', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.delete('note', LONG_ID) },
  { name: 'delete: entityType "../../etc"', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.delete('../../etc', 'x') },

  // queue.enqueue / enqueueMany
  { name: 'enqueue: missing type', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ entityType: 'note', entityId: 'e', data: {} }) },
  { name: 'enqueue: missing entityId', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', data: {} }) },
  { name: 'enqueue: missing entityType', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityId: 'e', data: {} }) },
  { name: 'enqueue: CREATED without data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e' }) },
  {
    name: 'enqueue: an extra field',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: {}, colour: 'red' }),
  },
  { name: 'enqueue: type "MOVED"', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'MOVED', entityType: 'note', entityId: 'e', data: {} }) },
  { name: 'enqueue: entityId a number', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 7, data: {} }) },
  { name: 'enqueue: entityId of 257 bytes', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: LONG_ID, data: {} }) },
  { name: 'enqueue: data an array', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: [1] }) },
  { name: 'enqueue: baseVersion -1', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'e', data: {}, baseVersion: -1 }) },
  { name: 'enqueue: baseVersion 1.5', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'e', data: {}, baseVersion: 1.5 }) },
  { name: 'enqueue: timestamp a date string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: {}, timestamp: '2025-01-01' }) },
  { name: 'enqueue: a changeId already queued', on: 'client', code: 'CONFLICT', run: (w) => w.client.queue.enqueue({ changeId: w.queuedChangeId, type: 'CREATED', entityType: 'note', entityId: 'other', data: { x: 1 } }) },
  { name: 'enqueue: a 100,000-deep data object', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: deepObject(DEEP) }) },
  { name: 'enqueue: "__proto__" key in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: JSON.parse('{"__proto__":{}}') }) },
  {
    name: 'enqueue: NaN in data',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'e', data: { n: NaN } }),
  },
  {
    name: 'enqueueMany: 100,000 valid changes then a bad one (all or none)',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    message: /changes\[100000\]/,
    run: (w) => w.client.queue.enqueueMany([...manyChanges(100_000, 'many-'), { type: 'CREATED', entityType: 'note', entityId: 'bad' }]),
  },
  { name: 'enqueueMany: an object instead of an array', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.enqueueMany({ 0: wire() }) },

  // queue.importLegacy (JSON text, as a localStorage dump holds it)
  { name: 'importLegacy: malformed JSON', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy('[{"changeId":"x",') },
  { name: 'importLegacy: nesting 100,000 deep', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.queue.importLegacy(legacyText({ data: nestedObjects(DEEP) })) },
  { name: 'importLegacy: duplicate key in a record', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({}, '"entityId":"lg-2"')) },
  { name: 'importLegacy: duplicate key nested in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: '{"a":{"b":1,"b":2}}' })) },
  { name: 'importLegacy: a raw NUL byte in a string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ entityId: '"lg\u0000"' })) },
  {
    name: 'importLegacy: \\u0000 in a changeId',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.queue.importLegacy(legacyText({ changeId: '"l\\u0000g"' })),
  },
  { name: 'importLegacy: \\u0000 in a data key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: '{"a\\u0000":1}' })) },
  { name: 'importLegacy: a lone surrogate escape', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: '{"t":"\\ud800"}' })) },
  { name: 'importLegacy: 2^53+1 in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: `{"n":${BIG_INT}}` })) },
  {
    name: 'importLegacy: baseVersion 2^53+1',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.queue.importLegacy(legacyText({ type: '"UPDATED"', baseVersion: BIG_INT })),
  },
  { name: 'importLegacy: 1e400 in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: '{"n":1e400}' })) },
  { name: 'importLegacy: "__proto__" key in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: '{"__proto__":{"x":1}}' })) },
  { name: 'importLegacy: "constructor" key in payload_json', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ data: undefined, payload_json: JSON.stringify('{"constructor":1}') })) },
  { name: 'importLegacy: a record without changeId or id', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ changeId: undefined })) },
  { name: 'importLegacy: an object instead of an array', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy('{"changeId":"x"}') },
  { name: 'importLegacy: a bad entityType', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.queue.importLegacy(legacyText({ entityType: '"no/slashes"' })) },

  // applyRemote (pulled pages cross as bytes)
  {
    name: 'applyRemote: a 100 MB page whose last change is bad (validated first: nothing applied)',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    message: /MOVED/,
    run: (w) => w.client.applyRemote(hugePageWithBadTail(100 * MB)),
  },
  {
    name: 'applyRemote: a 100 MB document',
    on: 'client',
    code: 'LIMIT_EXCEEDED',
    run: (w) => w.client.applyRemote(Buffer.from(pageText({ changes: [remoteText({ data: `{"pad":"${'x'.repeat(100 * MB)}"}` })] }))),
  },
  { name: 'applyRemote: nesting 100,000 deep', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: `{"d":${nestedArrays(DEEP)}}` })] })) },
  { name: 'applyRemote: a 1,000,000-element array in data', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: `{"list":${zeros(MILLION)}}` })] })) },
  { name: 'applyRemote: newChanges of 1,000,000 numbers', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [zeros(MILLION).slice(1, -1)] })) },
  {
    name: 'applyRemote: invalid UTF-8 bytes',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => {
      const [head, tail] = pageText({ changes: [remoteText({ data: '{"t":"@@"}' })] }).split('@@');
      return w.client.applyRemote(Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]));
    },
  },
  { name: 'applyRemote: a lone surrogate escape in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"t":"\\ud800"}' })] })) },
  { name: 'applyRemote: a raw NUL byte in a string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"t":"a\u0000b"}' })] })) },
  { name: 'applyRemote: \\u0000 in a data key', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"a\\u0000b":1}' })] })) },
  {
    name: 'applyRemote: \\u0000 in entityId',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ entityId: '"a\\u0000b"' })] })),
  },
  { name: 'applyRemote: duplicate key in a change', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({}, '"entityId":"rh-e2"')] })) },
  { name: 'applyRemote: duplicate key nested in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"a":{"k":1,"k":2}}' })] })) },
  {
    name: 'applyRemote: duplicate top-level "newChanges"',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.applyRemote(pageText({ raw: `"newChanges":[${remoteText({ version: '102', changeId: '"rh-2"', entityId: '"rh-e2"' })}]`, over: { latestServerVersion: '102' } })),
  },
  {
    name: 'applyRemote: duplicate top-level "latestServerVersion"',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.applyRemote(pageText({ raw: '"latestServerVersion":150' })),
  },
  { name: 'applyRemote: "__proto__" key in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"__proto__":{"polluted":1}}' })] })) },
  { name: 'applyRemote: "constructor" key nested in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"m":{"constructor":{}}}' })] })) },
  { name: 'applyRemote: 1e400 in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"n":1e400}' })] })) },
  { name: 'applyRemote: 1e-400 in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: '{"n":1e-400}' })] })) },
  { name: 'applyRemote: 2^53+1 in data', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ data: `{"n":${BIG_INT}}` })] })) },
  {
    name: 'applyRemote: version 2^53+1',
    on: 'client',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ version: BIG_INT })], over: { latestServerVersion: BIG_INT } })),
  },
  { name: 'applyRemote: versions not increasing', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ version: '110' }), remoteText({ version: '105', changeId: '"rh-2"' })] })) },
  { name: 'applyRemote: a change without version', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ version: undefined })] })) },
  { name: 'applyRemote: version a string', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ version: '"101"' })] })) },
  { name: 'applyRemote: a bad entityType', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ entityType: '"bad type"' })] })) },
  { name: 'applyRemote: entityId of 257 bytes', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ entityId: JSON.stringify(LONG_ID) })] })) },
  { name: 'applyRemote: entityId a number', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ entityId: '17' })] })) },
  { name: 'applyRemote: type "PATCHED"', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText({ changes: [remoteText({ type: '"PATCHED"' })] })) },
  { name: 'applyRemote: truncated JSON', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(pageText().slice(0, -5)) },
  { name: 'applyRemote: trailing content', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(`${pageText()} {}`) },
  { name: 'applyRemote: a parsed object instead of bytes', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.applyRemote(JSON.parse(pageText())) },

  // list (read-only, but it must refuse, not run, hostile queries)
  { name: 'list: $in with 1,000,000 values', on: 'client', code: 'LIMIT_EXCEEDED', run: (w) => w.client.list('note', { where: { title: { $in: new Array(MILLION).fill('x') } } }) },
  { name: 'list: an unknown operator $where', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { where: { title: { $where: '1=1' } } }) },
  { name: "list: a field path with SQL (\"a') OR 1=1 --\")", on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { where: { "a') OR 1=1 --": 1 } }) },
  { name: 'list: orderBy with SQL', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { orderBy: 'title; DROP TABLE documents' }) },
  { name: 'list: NaN in where', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { where: { n: NaN } }) },
  { name: 'list: limit -1', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { limit: -1 }) },
  { name: 'list: an unknown option', on: 'client', code: 'INVALID_ARGUMENT', run: (w) => w.client.list('note', { filter: {} }) },

  // SyncServer.sync (the request as text, as it arrives)
  { name: 'server.sync: userId of 257 bytes', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(LONG_ID, requestText()) },
  { name: 'server.sync: userId a number', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(7, requestText()) },
  { name: 'server.sync: a 100 MB document', on: 'server', code: 'LIMIT_EXCEEDED', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: `{"pad":"${'x'.repeat(100 * MB)}"}` })] })) },
  { name: 'server.sync: nesting 100,000 deep in data', on: 'server', code: 'LIMIT_EXCEEDED', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: `{"d":${nestedObjects(DEEP)}}` })] })) },
  { name: 'server.sync: nesting 100,000 deep in an unknown field', on: 'server', code: 'LIMIT_EXCEEDED', run: (w) => w.server.sync(ALICE, requestText({ over: { extra: nestedArrays(DEEP) } })) },
  { name: 'server.sync: 100,001 changes (the limit is 100,000)', on: 'server', code: 'LIMIT_EXCEEDED', message: /Too many changes/, run: (w) => w.server.sync(ALICE, JSON.stringify({ deviceId: 'h-device', changes: manyChanges(100_001, 'sx') })) },
  { name: 'server.sync: a 1,000,000-element array in data', on: 'server', code: 'LIMIT_EXCEEDED', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: `{"list":${zeros(MILLION)}}` })] })) },
  {
    name: 'server.sync: duplicate top-level "changes"',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, requestText({ raw: `"changes":[${changeText({ changeId: '"h-dup2"', entityId: '"h-dup2"' })}]` })),
  },
  { name: 'server.sync: duplicate key in a change', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({}, '"entityId":"h-e2"')] })) },
  { name: 'server.sync: duplicate key nested in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"a":{"k":1,"k":2}}' })] })) },
  {
    name: 'server.sync: invalid UTF-8 bytes',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => {
      const [head, tail] = requestText({ changes: [changeText({ data: '{"t":"@@"}' })] }).split('@@');
      return w.server.sync(ALICE, Buffer.concat([Buffer.from(head), Buffer.from([0xc3, 0x28]), Buffer.from(tail)]));
    },
  },
  { name: 'server.sync: a lone surrogate escape in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"t":"\\udfff"}' })] })) },
  {
    name: 'server.sync: a raw lone surrogate in a string body',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ entityId: '"\ud800"' })] })),
  },
  { name: 'server.sync: a raw NUL byte', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"t":"\u0000"}' })] })) },
  { name: 'server.sync: \\u0000 in a data string', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"t":"a\\u0000"}' })] })) },
  { name: 'server.sync: \\u0000 in a data key', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"\\u0000":1}' })] })) },
  {
    name: 'server.sync: \\u0000 in entityId',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ entityId: '"a\\u0000b"' })] })),
  },
  { name: 'server.sync: "__proto__" key in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"__proto__":{"isAdmin":true}}' })] })) },
  { name: 'server.sync: "constructor" key in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"constructor":{"prototype":{}}}' })] })) },
  { name: 'server.sync: 1e400 in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"n":1e400}' })] })) },
  { name: 'server.sync: 1e-400 (a non-zero number that reads as 0) in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: '{"n":1e-400}' })] })) },
  { name: 'server.sync: 2^53+1 in data', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ data: `{"n":${BIG_INT}}` })] })) },
  {
    name: 'server.sync: baseVersion 2^53+1',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ baseVersion: BIG_INT })] })),
  },
  {
    name: 'server.sync: lastKnownServerVersion 2^53+1',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, requestText({ changes: [], over: { lastKnownServerVersion: BIG_INT } })),
  },
  {
    name: 'server.sync: a changeId reused with different content',
    on: 'server',
    code: 'CONFLICT',
    run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ changeId: '"a-c1"', entityId: '"a-n1"', data: '{"title":"rewritten"}' })] })),
  },
  { name: 'server.sync: missing deviceId', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ over: { deviceId: undefined } })) },
  { name: 'server.sync: missing changeId', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, requestText({ changes: [changeText({ changeId: undefined })] })) },
  { name: 'server.sync: an object with a function', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.sync(ALICE, new (class Request {})()) },
  {
    name: 'server.sync: 100 MB of whitespace-padded bad JSON',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.sync(ALICE, Buffer.concat([Buffer.from('{"deviceId":"h",'), Buffer.alloc(100 * MB, 0x20), Buffer.from('"changes":[}')])),
  },

  // SyncServer.push
  { name: 'server.push: 100,001 changes (the limit is 100,000)', on: 'server', code: 'LIMIT_EXCEEDED', message: /Too many changes/, run: (w) => w.server.push(ALICE, 'h-device', manyChanges(100_001, 'px')) },
  { name: 'server.push: deviceId of 257 bytes', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.push(ALICE, LONG_ID, [wire()]) },
  { name: 'server.push: deviceId empty', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.push(ALICE, '', [wire()]) },
  { name: 'server.push: changes an object', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.push(ALICE, 'h-device', { 0: wire() }) },
  { name: 'server.push: the third change bad (nothing applied)', on: 'server', code: 'INVALID_ARGUMENT', message: /changes\[2\]/, run: (w) => w.server.push(ALICE, 'h-device', [wire({ changeId: 'p1', entityId: 'p1' }), wire({ changeId: 'p2', entityId: 'p2' }), wire({ changeId: 'p3', entityId: 5 })]) },
  { name: 'server.push: a 100,000-deep data object', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.push(ALICE, 'h-device', [wire({ data: deepObject(DEEP) })]) },
  {
    name: 'server.push: NaN in data',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.push(ALICE, 'h-device', [wire({ data: { n: NaN } })]),
  },

  // SyncServer.importSnapshot
  { name: 'importSnapshot: nesting 100,000 deep', on: 'server', code: 'LIMIT_EXCEEDED', run: (w) => w.server.importSnapshot(ALICE, `{"customers":[{"id":"1","x":${nestedArrays(DEEP)}}]}`) },
  { name: 'importSnapshot: an entity type "bad type"', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"bad type":[{"id":"1"}]}') },
  { name: 'importSnapshot: a record without an id', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"customers":[{"id":"1"},{"name":"no id"}]}') },
  { name: 'importSnapshot: records not an array', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"customers":{"id":"1"}}') },
  {
    name: 'importSnapshot: duplicate entity-type keys',
    on: 'server',
    code: 'INVALID_ARGUMENT',
    run: (w) => w.server.importSnapshot(ALICE, '{"customers":[{"id":"d1"}],"customers":[{"id":"d2"}]}'),
  },
  { name: 'importSnapshot: "__proto__" key in a record', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"customers":[{"id":"1","__proto__":{}}]}') },
  { name: 'importSnapshot: \\u0000 in a record', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"customers":[{"id":"a\\u0000"}]}') },
  { name: 'importSnapshot: 2^53+1 as an id', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, `{"customers":[{"id":${BIG_INT}}]}`) },
  { name: 'importSnapshot: malformed JSON', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '{"customers":[{"id":"1"}]') },
  { name: 'importSnapshot: an array instead of an object', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.importSnapshot(ALICE, '[{"id":"1"}]') },

  // another user's ids, where the answer is an error: nothing changes anywhere
  { name: "resolveConflict: bob settles alice's conflict", on: 'server', code: 'NOT_FOUND', run: (w) => w.server.resolveConflict(BOB, w.aliceConflictId, { use: 'client' }) },
  { name: "status: bob asks for alice's device", on: 'server', code: 'NOT_FOUND', run: (w) => w.server.status(BOB, 'alice-laptop') },
  { name: 'resolveConflict: use "both"', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.resolveConflict(ALICE, w.aliceConflictId, { use: 'both' }) },
  { name: 'resolveConflict: merged data with "__proto__"', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.resolveConflict(ALICE, w.aliceConflictId, { use: 'merged', data: JSON.parse('{"__proto__":{}}') }) },
  { name: 'resolveConflict: conflict id 0', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.resolveConflict(ALICE, 0, { use: 'client' }) },
  { name: 'pull: since -1', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.pull(ALICE, { since: -1 }) },
  { name: 'pull: limit 10,001', on: 'server', code: 'INVALID_ARGUMENT', run: (w) => w.server.pull(ALICE, { limit: 10_001 }) },
];

// Another user's ids through the JS API: accepted into bob's own account (or refused),
// but alice's slice of the database and alice's pull must not change, and nothing of
// alice's may reach bob. { name, run(world) -> response }
// Another user's ids through the JS API. Each row is accepted into bob's own account (these
// are not errors), so each states bob's exact outcome; alice's rows, pull and conflicts must
// not move. Counted apart from the coded-error rows.
const JS_ISOLATION_ROWS = [
  {
    name: "bob sends UPDATED of alice's entity with alice's changeId",
    run: (w) => w.server.sync(BOB, { deviceId: 'bob-phone', lastKnownServerVersion: 0, changes: [wire({ changeId: 'a-c3', type: 'UPDATED', entityId: 'a-n1', data: { n: 99 } })] }),
    expect: (value) => {
      assert.deepEqual(value.applied, []);
      assert.deepEqual(value.errors.map((e) => [e.changeId, e.code]), [['a-c3', 'NOT_FOUND']], 'bob has no a-n1');
    },
  },
  {
    name: "bob sends CREATED with alice's changeId and entityId",
    run: (w) => w.server.sync(BOB, { deviceId: 'bob-phone', lastKnownServerVersion: 0, changes: [wire({ changeId: 'a-c1', entityId: 'a-n1', data: { title: 'bob owns this' } })] }),
    expect: (value) => assert.deepEqual(value.applied.map((a) => a.changeId), ['a-c1'], "a new entity of bob's"),
  },
  {
    name: "bob sends DELETED of alice's entity",
    run: (w) => w.server.push(BOB, 'bob-phone', [wire({ changeId: 'bob-del', type: 'DELETED', entityId: 'a-n2', data: undefined })]),
    expect: (value) => assert.deepEqual(value.applied.map((a) => a.changeId), ['bob-del'], "a tombstone in bob's account"),
  },
  {
    name: 'bob sends a change naming alice as its userId and tenantId',
    run: (w) => w.server.push(BOB, 'alice-phone', [wire({ changeId: 'bob-as-alice', entityId: 'a-n1', data: { n: 7 }, userId: ALICE, tenantId: ALICE })]),
    expect: (value) => {
      assert.deepEqual(value.conflicts.map((c) => [c.changeId, c.winner]), [['bob-as-alice', 'server']]);
      assert.deepEqual(value.conflicts[0].serverData, { title: 'bob owns this' }, "judged against bob's a-n1, not alice's");
    },
  },
  {
    name: "bob pulls from version 0 with alice's deviceId",
    run: (w) => w.server.pull(BOB, { since: 0, deviceId: 'alice-phone' }),
    expect: (value) => assert.deepEqual(value.newChanges.map((c) => c.changeId), ['b-c1', 'a-c1', 'bob-del'], "bob's own log only"),
  },
  {
    name: "bob imports a snapshot with alice's customer id",
    run: (w) => w.server.importSnapshot(BOB, { customers: [{ customer_id: 'C1', name: 'bob' }] }),
    expect: (value) => assert.equal(value.imported, 1),
  },
];

// HTTP rows: { name, method?, path, body (text, Buffer, object or () => one), user?, status, code, message?, todo? }
const HTTP_ROWS = [
  // malformed JSON and wrong roots
  { name: '/v2 truncated JSON', path: '/v2', body: requestText().slice(0, 40), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 trailing garbage', path: '/v2', body: `${requestText()} garbage`, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 single-quoted strings', path: '/v2', body: "{'deviceId':'d1','changes':[]}", status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a NaN literal', path: '/v2', body: requestText({ changes: [changeText({ data: '{"n":NaN}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a trailing comma', path: '/v2', body: requestText({ changes: [`${changeText()},`] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 an empty body', path: '/v2', body: '', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a JSON array root', path: '/v2', body: `[${requestText()}]`, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a JSON null root', path: '/v2', body: 'null', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a JSON string root', path: '/v2', body: JSON.stringify(requestText()), status: 400, code: 'INVALID_ARGUMENT' },
  // size and depth
  { name: '/v2 nesting 100,000 deep in data', path: '/v2', body: () => requestText({ changes: [changeText({ data: `{"d":${nestedObjects(DEEP)}}` })] }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/v2 nesting 100,000 deep as the root', path: '/v2', body: () => nestedArrays(DEEP), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 nesting 100,000 deep in an unknown top-level field', path: '/v2', body: () => requestText({ over: { extra: nestedObjects(DEEP) } }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/v2 nesting 100,000 deep in an unknown change field', path: '/v2', body: () => requestText({ changes: [changeText({ extra: nestedArrays(DEEP) })] }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/v2 a 1,000,000-element array in data', path: '/v2', body: () => requestText({ changes: [changeText({ data: `{"list":${zeros(MILLION)}}` })] }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/v2 a 1,000,000-element array as "changes"', path: '/v2', body: () => requestText({ changes: [zeros(MILLION).slice(1, -1)] }), status: 413, code: 'LIMIT_EXCEEDED' },
  {
    name: '/v2 100,001 changes (over the count limit and the 10 MiB body limit)',
    path: '/v2',
    body: () => JSON.stringify({ deviceId: 'h-device', changes: manyChanges(100_001, 'hx') }),
    status: 413,
    code: 'LIMIT_EXCEEDED',
    message: /Too many changes|larger than the limit/,
  },
  { name: '/v2 a 2 MB document', path: '/v2', body: () => requestText({ changes: [changeText({ data: `{"text":"${'x'.repeat(2 * MB)}"}` })] }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/v2 a 12 MB body', path: '/v2', body: () => requestText({ over: { padding: JSON.stringify('x'.repeat(12 * MB)) } }), status: 413, code: 'LIMIT_EXCEEDED' },
  // duplicate keys
  {
    name: '/v2 duplicate top-level "changes"',
    path: '/v2',
    body: requestText({ raw: `"changes":[${changeText({ changeId: '"h-dup2"', entityId: '"h-dup2"' })}]` }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 duplicate top-level "deviceId"',
    path: '/v2',
    body: requestText({ raw: '"deviceId":"someone-else"' }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/v2 duplicate key in a change', path: '/v2', body: requestText({ changes: [changeText({}, '"type":"DELETED"')] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 duplicate key in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"t":1,"t":2}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 duplicate key nested in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"a":[{"k":1,"k":2}]}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  // bytes and escapes
  {
    name: '/v2 invalid UTF-8 (0xff 0xfe)',
    path: '/v2',
    body: () => {
      const [head, tail] = requestText({ changes: [changeText({ data: '{"t":"@@"}' })] }).split('@@');
      return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]);
    },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 overlong UTF-8 (0xc0 0xaf)',
    path: '/v2',
    body: () => {
      const [head, tail] = requestText({ changes: [changeText({ entityId: '"@@"' })] }).split('@@');
      return Buffer.concat([Buffer.from(head), Buffer.from([0xc0, 0xaf]), Buffer.from(tail)]);
    },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 a UTF-8-encoded surrogate (0xed 0xa0 0x80)',
    path: '/v2',
    body: () => {
      const [head, tail] = requestText({ changes: [changeText({ data: '{"@@":1}' })] }).split('@@');
      return Buffer.concat([Buffer.from(head), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(tail)]);
    },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 a truncated UTF-8 sequence at the end of a string',
    path: '/v2',
    body: () => {
      const [head, tail] = requestText({ changes: [changeText({ data: '{"t":"@@"}' })] }).split('@@');
      return Buffer.concat([Buffer.from(head), Buffer.from([0xe2, 0x82]), Buffer.from(tail)]);
    },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/v2 a lone high surrogate escape in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"t":"\\ud800"}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a lone low surrogate escape in a key', path: '/v2', body: requestText({ changes: [changeText({ data: '{"\\udc00":1}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a reversed surrogate pair', path: '/v2', body: requestText({ changes: [changeText({ data: '{"t":"\\udc00\\ud800"}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a lone surrogate escape in entityId', path: '/v2', body: requestText({ changes: [changeText({ entityId: '"\\ud83d"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a bad escape "\\x41"', path: '/v2', body: requestText({ changes: [changeText({ data: '{"t":"\\x41"}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a raw NUL byte in a string', path: '/v2', body: Buffer.from(requestText({ changes: [changeText({ data: '{"t":"a\u0000b"}' })] })), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a raw NUL byte between tokens', path: '/v2', body: Buffer.from(requestText({ raw: '\u0000"x":1' })), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a raw control character in a string', path: '/v2', body: Buffer.from(requestText({ changes: [changeText({ data: '{"t":"a\u0001b"}' })] })), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 \\u0000 in a data string', path: '/v2', body: requestText({ changes: [changeText({ data: '{"t":"\\u0000"}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 \\u0000 in a data key', path: '/v2', body: requestText({ changes: [changeText({ data: '{"k\\u0000":1}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 \\u0000 in an unknown field', path: '/v2', body: requestText({ over: { note: '"\\u0000"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/v2 \\u0000 in entityId',
    path: '/v2',
    body: requestText({ changes: [changeText({ entityId: '"a\\u0000b"' })] }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 \\u0000 in changeId',
    path: '/v2',
    body: requestText({ changes: [changeText({ changeId: '"c\\u0000"' })] }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 \\u0000 in deviceId',
    path: '/v2',
    body: requestText({ over: { deviceId: '"d\\u0000"' } }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // prototype keys
  { name: '/v2 "__proto__" key in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"__proto__":{"isAdmin":true}}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 "__proto__" key deep in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"a":[{"b":{"__proto__":1}}]}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 "__proto__" key escaped as \\u005f\\u005fproto\\u005f\\u005f', path: '/v2', body: requestText({ changes: [changeText({ data: '{"\\u005f\\u005fproto\\u005f\\u005f":{}}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 "constructor" key in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"constructor":{"prototype":{"x":1}}}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 "__proto__" key in an unknown field value', path: '/v2', body: requestText({ over: { meta: '{"__proto__":{}}' } }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/v2 entityType "__proto__"',
    path: '/v2',
    body: requestText({ changes: [changeText({ entityType: '"__proto__"' })] }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // numbers
  { name: '/v2 1e400 in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"n":1e400}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 -1e400 in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"n":-1e400}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 2^53+1 in data', path: '/v2', body: requestText({ changes: [changeText({ data: `{"n":${BIG_INT}}` })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 -(2^53+1) in data', path: '/v2', body: requestText({ changes: [changeText({ data: `{"n":-${BIG_INT}}` })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 2^64 in data', path: '/v2', body: requestText({ changes: [changeText({ data: '{"n":18446744073709551616}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/v2 baseVersion 2^53+1',
    path: '/v2',
    body: requestText({ changes: [changeText({ baseVersion: BIG_INT })] }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/v2 lastKnownServerVersion 2^53+1',
    path: '/v2',
    body: requestText({ changes: [], over: { lastKnownServerVersion: BIG_INT } }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/v2 timestamp 2^53+1', path: '/v2', body: requestText({ changes: [changeText({ timestamp: BIG_INT })] }), status: 400, code: 'INVALID_ARGUMENT' },
  // wrong content in each field
  { name: '/v2 deviceId missing', path: '/v2', body: requestText({ over: { deviceId: undefined } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 deviceId a number', path: '/v2', body: requestText({ over: { deviceId: '42' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 deviceId empty', path: '/v2', body: requestText({ over: { deviceId: '""' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 deviceId of 257 bytes', path: '/v2', body: requestText({ over: { deviceId: JSON.stringify(LONG_ID) } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 deviceId an object', path: '/v2', body: requestText({ over: { deviceId: '{"id":"d"}' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 lastKnownServerVersion -1', path: '/v2', body: requestText({ over: { lastKnownServerVersion: '-1' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 lastKnownServerVersion "0"', path: '/v2', body: requestText({ over: { lastKnownServerVersion: '"0"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 lastKnownServerVersion 1.5', path: '/v2', body: requestText({ over: { lastKnownServerVersion: '1.5' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 limit 0', path: '/v2', body: requestText({ over: { limit: '0' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 limit 10,001', path: '/v2', body: requestText({ over: { limit: '10001' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 limit "all"', path: '/v2', body: requestText({ over: { limit: '"all"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changes an object', path: '/v2', body: requestText({ over: { changes: `{"0":${changeText()}}` } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changes a string', path: '/v2', body: requestText({ over: { changes: '"[]"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a change that is a number', path: '/v2', body: requestText({ changes: [changeText({ changeId: '"ok-1"', entityId: '"ok-1"' }), '7'] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changeId missing', path: '/v2', body: requestText({ changes: [changeText({ changeId: undefined })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changeId a number', path: '/v2', body: requestText({ changes: [changeText({ changeId: '1' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changeId of 257 bytes', path: '/v2', body: requestText({ changes: [changeText({ changeId: JSON.stringify(LONG_ID) })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 changeId empty', path: '/v2', body: requestText({ changes: [changeText({ changeId: '""' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 type missing', path: '/v2', body: requestText({ changes: [changeText({ type: undefined })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 type "MOVED"', path: '/v2', body: requestText({ changes: [changeText({ type: '"MOVED"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 type 1', path: '/v2', body: requestText({ changes: [changeText({ type: '1' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType missing', path: '/v2', body: requestText({ changes: [changeText({ entityType: undefined })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType "../notes"', path: '/v2', body: requestText({ changes: [changeText({ entityType: '"../notes"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType with a space', path: '/v2', body: requestText({ changes: [changeText({ entityType: '"my notes"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType of 65 characters', path: '/v2', body: requestText({ changes: [changeText({ entityType: JSON.stringify('t'.repeat(65)) })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType empty', path: '/v2', body: requestText({ changes: [changeText({ entityType: '""' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType a number', path: '/v2', body: requestText({ changes: [changeText({ entityType: '3' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityType non-ASCII', path: '/v2', body: requestText({ changes: [changeText({ entityType: '"nöte"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId missing', path: '/v2', body: requestText({ changes: [changeText({ entityId: undefined })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId of 257 bytes', path: '/v2', body: requestText({ changes: [changeText({ entityId: JSON.stringify(LONG_ID) })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId of 86 three-byte characters (258 bytes)', path: '/v2', body: requestText({ changes: [changeText({ entityId: JSON.stringify('€'.repeat(86)) })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId a number', path: '/v2', body: requestText({ changes: [changeText({ entityId: '12' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId empty', path: '/v2', body: requestText({ changes: [changeText({ entityId: '""' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 entityId null', path: '/v2', body: requestText({ changes: [changeText({ entityId: 'null' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 data an array', path: '/v2', body: requestText({ changes: [changeText({ data: '[1,2]' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 data a string', path: '/v2', body: requestText({ changes: [changeText({ data: '"{}"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 CREATED without data', path: '/v2', body: requestText({ changes: [changeText({ data: undefined })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 UPDATED with data null', path: '/v2', body: requestText({ changes: [changeText({ type: '"UPDATED"', data: 'null' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 baseVersion -1', path: '/v2', body: requestText({ changes: [changeText({ baseVersion: '-1' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 baseVersion "3"', path: '/v2', body: requestText({ changes: [changeText({ baseVersion: '"3"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 baseVersion 1.5', path: '/v2', body: requestText({ changes: [changeText({ baseVersion: '1.5' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 timestamp -1', path: '/v2', body: requestText({ changes: [changeText({ timestamp: '-1' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 timestamp "yesterday"', path: '/v2', body: requestText({ changes: [changeText({ timestamp: '"yesterday"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 timestamp 1.5', path: '/v2', body: requestText({ changes: [changeText({ timestamp: '1.5' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 timestamp 1e20', path: '/v2', body: requestText({ changes: [changeText({ timestamp: '1e20' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 tenantId a number', path: '/v2', body: requestText({ changes: [changeText({ tenantId: '5' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 userId an object', path: '/v2', body: requestText({ changes: [changeText({ userId: '{"id":"alice"}' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2 a good change then a bad one (nothing applied)', path: '/v2', body: requestText({ changes: [changeText({ changeId: '"ok-2"', entityId: '"ok-2"' }), changeText({ changeId: '"bad-2"', type: '"NOPE"' })] }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/v2 a changeId reused with different content',
    path: '/v2',
    body: requestText({ changes: [changeText({ changeId: '"a-c2"', entityId: '"a-n2"', data: '{"title":"changed"}' })] }),
    user: ALICE,
    status: 409,
    code: 'CONFLICT',
  },
  {
    name: '/v2 a changeId reused within one request with different content',
    path: '/v2',
    body: requestText({ changes: [changeText({ changeId: '"twice"', entityId: '"tw"' }), changeText({ changeId: '"twice"', entityId: '"tw"', data: '{"title":"other"}' })] }),
    status: 409,
    code: 'CONFLICT',
  },

  // compatible POST /push
  { name: '/push changes an array', path: '/push', body: compatText({ changes: '[]' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push an empty record {} (opened twice, it once read past its end)', path: '/push', body: compatText({ changes: '{"customers":[{}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/v2/migrate an empty record {}', path: '/v2/migrate', body: '{"notes":[{"id":"n1"},{}]}', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push deviceId missing', path: '/push', body: compatText({ over: { deviceId: undefined } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push deviceId a number', path: '/push', body: compatText({ over: { deviceId: '9' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push records not an array', path: '/push', body: compatText({ changes: '{"customers":{"customer_id":"H1"}}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push a record that is a string', path: '/push', body: compatText({ changes: '{"customers":["H1"]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push a record without an id', path: '/push', body: compatText({ changes: '{"customers":[{"name":"no id"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push an id of 257 bytes', path: '/push', body: compatText({ changes: `{"customers":[{"customer_id":${JSON.stringify(LONG_ID)}}]}` }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push an id 2^53+1', path: '/push', body: compatText({ changes: `{"customers":[{"customer_id":${BIG_INT}}]}` }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push an entity type "bad type"', path: '/push', body: compatText({ changes: '{"bad type":[{"id":"1"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/push an entity type "__proto__"',
    path: '/push',
    body: compatText({ changes: '{"__proto__":[{"id":"1"}]}' }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/push duplicate entity-type keys',
    path: '/push',
    body: compatText({ changes: '{"customers":[{"customer_id":"D1"}],"customers":[{"customer_id":"D2"}]}' }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: '/push duplicate top-level "deviceId"',
    path: '/push',
    body: compatText({ raw: '"deviceId":"other-device"' }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/push duplicate key in a record', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H1","name":"a","name":"b"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push "__proto__" key in a record', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H1","__proto__":{"admin":true}}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push "constructor" key in a record', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H1","constructor":1}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push updated_at not a time', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H1","updated_at":"last tuesday"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push updated_at February 30th', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H1","updated_at":"2025-02-30T00:00:00Z"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/push updated_at 1e300',
    path: '/push',
    body: compatText({ changes: '{"customers":[{"customer_id":"H1","updated_at":1e300}]}' }),
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/push \\u0000 in a record', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"H\\u0000"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push \\u0000 in deviceId', path: '/push', body: compatText({ over: { deviceId: '"d\\u0000"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push nesting 100,000 deep in a record', path: '/push', body: () => compatText({ changes: `{"customers":[{"customer_id":"H1","x":${nestedObjects(DEEP)}}]}` }), status: 413, code: 'LIMIT_EXCEEDED' },
  {
    name: '/push 100,001 records (the limit is 100,000)',
    path: '/push',
    body: () => JSON.stringify({ deviceId: 'h-device', changes: { customers: Array.from({ length: 100_001 }, (_, i) => ({ customer_id: `K${i}` })) } }),
    status: 413,
    code: 'LIMIT_EXCEEDED',
  },
  { name: '/push a 1,000,000-element array in a record', path: '/push', body: () => compatText({ changes: `{"customers":[{"customer_id":"H1","list":${zeros(MILLION)}}]}` }), status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/push invalid UTF-8', path: '/push', body: Buffer.concat([Buffer.from('{"deviceId":"d","changes":{"customers":[{"customer_id":"'), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from('"}]}}')]), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push malformed JSON', path: '/push', body: '{"deviceId":"d","changes":{"customers":[{]}}', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/push a good type then a bad record (nothing applied)', path: '/push', body: compatText({ changes: '{"customers":[{"customer_id":"G1"}],"orders":[{"no":"id"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },

  // compatible POST /pull and /full
  { name: '/pull lastSyncTimestamp not a time', path: '/pull', body: '{"deviceId":"h-device","lastSyncTimestamp":"soon"}', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/pull lastSyncTimestamp an object', path: '/pull', body: '{"deviceId":"h-device","lastSyncTimestamp":{"$gt":0}}', status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/pull lastSyncTimestamp 1e300',
    path: '/pull',
    body: '{"deviceId":"h-device","lastSyncTimestamp":1e300}',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/pull deviceId missing', path: '/pull', body: '{"lastSyncTimestamp":null}', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/pull malformed JSON', path: '/pull', body: '{"deviceId":"h-device",', status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/pull nesting 100,000 deep in an unknown field', path: '/pull', body: () => `{"deviceId":"h-device","x":${nestedArrays(DEEP)}}`, status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/full a bad lastSyncTimestamp after valid changes (nothing applied)', path: '/full', body: compatText({ over: { lastSyncTimestamp: '"nope"' } }), status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/full a record without an id', path: '/full', body: compatText({ changes: '{"customers":[{"name":"x"}]}' }), status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/full 100,001 records (the limit is 100,000)',
    path: '/full',
    body: () => JSON.stringify({ deviceId: 'h-device', lastSyncTimestamp: null, changes: { customers: Array.from({ length: 100_001 }, (_, i) => ({ customer_id: `F${i}` })) } }),
    status: 413,
    code: 'LIMIT_EXCEEDED',
  },
  { name: '/full "__proto__" key in a record', path: '/full', body: compatText({ changes: '{"customers":[{"customer_id":"H1","__proto__":null}]}' }), status: 400, code: 'INVALID_ARGUMENT' },

  // POST /resolve-conflict
  { name: '/resolve-conflict conflictId missing', path: '/resolve-conflict', body: '{"resolution":"client"}', user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict conflictId 0', path: '/resolve-conflict', body: '{"conflictId":0,"resolution":"client"}', user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict conflictId a string', path: '/resolve-conflict', body: (w) => `{"conflictId":"${w.aliceConflictId}","resolution":"client"}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict conflictId 2^53+1', path: '/resolve-conflict', body: `{"conflictId":${BIG_INT},"resolution":"client"}`, user: ALICE, status: 404, code: 'NOT_FOUND' },
  { name: '/resolve-conflict an unknown conflictId', path: '/resolve-conflict', body: '{"conflictId":999999,"resolution":"client"}', user: ALICE, status: 404, code: 'NOT_FOUND' },
  { name: "/resolve-conflict bob settles alice's conflict", path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"client"}`, user: BOB, status: 404, code: 'NOT_FOUND' },
  { name: '/resolve-conflict resolution "both"', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"both"}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict resolution a number', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":1}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict an unknown field in the resolution object', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":{"use":"client","sudo":true}}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict merged without data', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"merged"}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict merged data an array', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":{"use":"merged","data":[1]}}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict merged data with "__proto__"', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"merged","data":{"__proto__":{}}}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  { name: '/resolve-conflict merged data 100,000 deep', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"merged","data":${nestedObjects(DEEP)}}`, user: ALICE, status: 413, code: 'LIMIT_EXCEEDED' },
  { name: '/resolve-conflict merged data with duplicate keys', path: '/resolve-conflict', body: (w) => `{"conflictId":${w.aliceConflictId},"resolution":"merged","data":{"a":1,"a":2}}`, user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },
  {
    name: '/resolve-conflict duplicate "conflictId" (the second names an unknown conflict)',
    path: '/resolve-conflict',
    body: (w) => `{"conflictId":999999,"conflictId":${w.aliceConflictId},"resolution":"server"}`,
    user: ALICE,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: '/resolve-conflict malformed JSON', path: '/resolve-conflict', body: '{"conflictId":1,', user: ALICE, status: 400, code: 'INVALID_ARGUMENT' },

  // GET /changes and /status/:deviceId
  { name: 'GET /changes since not a time', method: 'GET', path: '/changes?since=yesterday', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /changes since twice', method: 'GET', path: '/changes?since=2025-01-01T00:00:00Z&since=2025-01-02T00:00:00Z', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /changes since 2^53+1', method: 'GET', path: `/changes?since=${BIG_INT}`, status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /changes since with a NUL', method: 'GET', path: '/changes?since=2025-01-01%00', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /changes since with invalid UTF-8', method: 'GET', path: '/changes?since=%FF%FE', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /status of a 300-byte deviceId', method: 'GET', path: `/status/${'d'.repeat(300)}`, status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'GET /status of a deviceId with a NUL', method: 'GET', path: '/status/a%00b', status: 400, code: 'INVALID_ARGUMENT' },
  { name: "GET /status of alice's device as bob", method: 'GET', path: '/status/alice-laptop', user: BOB, status: 404, code: 'NOT_FOUND' },
  { name: 'GET /no-such-route', method: 'GET', path: '/no-such-route', status: 404, code: 'NOT_FOUND' },
  { name: 'PUT /v2', method: 'PUT', path: '/v2', body: requestText(), status: 404, code: 'NOT_FOUND' },
];

// Another user's ids over HTTP: 200 into bob's own account with the outcome stated, alice untouched.
const HTTP_ISOLATION_ROWS = [
  {
    name: "bob POSTs /v2 with alice's changeId and an UPDATED of alice's entity",
    path: '/v2',
    body: JSON.stringify({ deviceId: 'bob-phone', lastKnownServerVersion: 0, changes: [wire({ changeId: 'a-c3', type: 'UPDATED', entityId: 'a-n1', data: { n: 100 } })] }),
    expect: (json) => assert.deepEqual(json.applied.map((a) => a.changeId), ['a-c3'], "bob's own a-n1 (created by a JS row) is updated"),
  },
  {
    name: "bob POSTs /v2 with alice's changeIds and entity ids, as CREATED",
    path: '/v2',
    body: JSON.stringify({ deviceId: 'alice-phone', lastKnownServerVersion: 0, changes: [wire({ changeId: 'a-c2', entityId: 'a-n2', data: { stolen: false } })] }),
    expect: (json) => assert.deepEqual(json.conflicts.map((c) => [c.changeId, c.reason]), [['a-c2', 'deleted on the server by another device']], "against bob's tombstone"),
  },
  {
    name: 'bob POSTs /v2 naming alice in userId, tenantId and an extra "user" field',
    path: '/v2',
    body: JSON.stringify({ deviceId: 'bob-phone', userId: ALICE, user: ALICE, lastKnownServerVersion: 0, changes: [wire({ changeId: 'bob-x', entityId: 'a-n1', data: { n: 1 }, userId: ALICE, tenantId: ALICE })] }),
    expect: (json) => assert.deepEqual(json.applied.map((a) => a.changeId), ['bob-x']),
  },
  {
    name: "bob POSTs /push with alice's customer id",
    path: '/push',
    body: JSON.stringify({ deviceId: 'alice-phone', changes: { customers: [{ customer_id: 'C1', name: 'bob' }] } }),
    // Against bob's own C1 (imported by a JS row): applied over it, or, within toleranceMs of
    // that import, a tie the server keeps. Either way only bob's C1 is involved.
    expect: (json) => {
      const settled = [...json.applied.map((a) => [a.entityId, 'applied']), ...json.conflicts.map((c) => [c.entityId, c.serverData.name])];
      assert.ok(settled.length === 1 && settled[0][0] === 'C1' && ['applied', 'bob'].includes(settled[0][1]), JSON.stringify(json));
    },
  },
  {
    name: "bob POSTs /pull with alice's deviceId from the epoch",
    path: '/pull',
    body: JSON.stringify({ deviceId: 'alice-phone', lastSyncTimestamp: null }),
    expect: (json) => assert.deepEqual(Object.keys(json.changes).sort(), ['customers', 'note']),
  },
  {
    name: 'bob GETs /changes from the epoch',
    method: 'GET',
    path: '/changes?since=1970-01-01T00:00:00Z',
    expect: (json) => assert.deepEqual(json.entities.note.map((n) => n.id).sort(), ['a-n1', 'a-n2', 'b-n1'], "bob's notes only"),
  },
];

// ---- the suites

describe('hostile input through the JS API', () => {
  test('control: the templates are valid, so each row fails only for its hostile part', async (t) => {
    const dir = tempDir(t);
    const server = new SyncServer({ path: path.join(dir, 'control-server.db') });
    const client = new SyncClient({ path: path.join(dir, 'control-client.db') });
    t.after(() => {
      server.close();
      client.close();
    });
    assert.equal((await server.sync(ALICE, requestText())).applied.length, 1);
    assert.equal((await server.push(ALICE, 'h-device', [wire()])).applied.length, 1);
    assert.equal((await server.importSnapshot(ALICE, '{"customers":[{"id":"1"}]}')).imported, 1);
    assert.equal((await client.applyRemote(pageText())).applied, 1);
    assert.deepEqual(client.queue.importLegacy(legacyText()), { imported: 1, skipped: 0 });
    assert.equal(client.queue.enqueueMany(manyChanges(3, 'ok-')).queued, 3);
  });

  for (const row of JS_ROWS) {
    test(`${row.on}: ${row.name}`, row.todo ? { todo: row.todo } : {}, async () => {
      const w = worldOf(row);
      const hash = () => (row.on === 'client' ? dbHash(w.clientFile) : serverHash(w));
      const before = await hash();
      const outcome = await outcomeOf(() => row.run(w));
      assertCodedError(outcome, row.code, row.message);
      assert.equal(await hash(), before, 'the database is unchanged');
    });
  }

  for (const row of JS_ISOLATION_ROWS) {
    test(`another user's ids: ${row.name}`, async () => {
      const aliceBefore = await serverHash(world, { userId: ALICE });
      const pullBefore = await world.server.pull(ALICE);
      const conflictsBefore = await world.server.conflicts(ALICE);
      const outcome = await outcomeOf(() => row.run(world));
      assert.equal(outcome.error, undefined, 'accepted into bob\'s own account');
      assert.ok(!JSON.stringify(outcome.value).includes(SECRET), `bob's answer holds alice's data: ${describeAccepted(outcome.value)}`);
      row.expect(outcome.value);
      assert.equal(await serverHash(world, { userId: ALICE }), aliceBefore, "alice's rows are unchanged");
      assert.deepEqual(await world.server.pull(ALICE), pullBefore, "alice's pull is unchanged");
      assert.deepEqual(await world.server.conflicts(ALICE), conflictsBefore, "alice's conflicts are unchanged");
    });
  }
});

describe('hostile input over HTTP', () => {
  test('control: the templates are valid over HTTP', async (t) => {
    const app = await startApp();
    t.after(() => app.close());
    assert.equal((await app.post('/v2', requestText())).status, 200);
    assert.equal((await app.post('/push', compatText())).status, 200);
    assert.equal((await app.post('/pull', '{"deviceId":"h-device","lastSyncTimestamp":null}')).status, 200);
  });

  for (const row of HTTP_ROWS) {
    const method = row.method ?? 'POST';
    test(`${method} ${row.name}`, row.todo ? { todo: row.todo } : {}, async () => {
      const w = worldOf(row);
      const before = await serverHash(w);
      const body = typeof row.body === 'function' ? row.body(w) : row.body;
      const user = row.user ?? ALICE;
      let response;
      if (method === 'POST') response = await w.app.post(row.path, body, { user });
      else response = await w.app.request(method, row.path, body, user, body === undefined ? {} : { 'content-type': 'application/json' });
      assertHttpError(response, row.status, row.code, row.message);
      assert.equal(await serverHash(w), before, 'the database is unchanged');
    });
  }

  test('POST /v2 declaring a 100 MB body: 413 after 64 KB, without reading the rest', async () => {
    const before = await serverHash(world);
    const response = await postDeclaredBody(`${world.app.base}/v2`, { declared: 100 * MB, sendFirst: 64 * 1024, headers: { 'x-user': ALICE } });
    assert.equal(response.status, 413, response.text);
    assert.equal(response.json.error.code, 'LIMIT_EXCEEDED');
    assert.ok(response.sentBytes <= 64 * 1024, `only the first 64 KB were sent (${response.sentBytes})`);
    assert.equal(await serverHash(world), before, 'the database is unchanged');
  });

  test('POST /v2 streaming 100 MB without a Content-Length: 413 long before the end', async (t) => {
    const before = await serverHash(world);
    const response = await postStreamedBody(`${world.app.base}/v2`, { total: 100 * MB, headers: { 'x-user': ALICE } });
    t.diagnostic(`answered after ${(response.sentBytes / MB).toFixed(1)} MB of the 100 MB were sent`);
    assert.equal(response.status, 413, response.text);
    assert.equal(response.json.error.code, 'LIMIT_EXCEEDED');
    assert.ok(response.sentBytes < 100 * MB, `the answer came before the whole body was sent (${response.sentBytes} bytes sent)`);
    assert.equal(await serverHash(world), before, 'the database is unchanged');
  });

  for (const row of HTTP_ISOLATION_ROWS) {
    const method = row.method ?? 'POST';
    test(`another user's ids: ${row.name}`, async () => {
      const aliceBefore = await serverHash(world, { userId: ALICE });
      const pullBefore = await world.server.pull(ALICE);
      const response =
        method === 'POST' ? await world.app.post(row.path, row.body, { user: BOB }) : await world.app.get(row.path, { user: BOB });
      assert.equal(response.status, 200, response.text);
      row.expect(response.json);
      assert.ok(!response.text.includes(SECRET), `bob's answer holds alice's data: ${response.text.slice(0, 300)}`);
      assert.equal(await serverHash(world, { userId: ALICE }), aliceBefore, "alice's rows are unchanged");
      assert.deepEqual(await world.server.pull(ALICE), pullBefore, "alice's pull is unchanged");
    });
  }

  test('after every row: alice still has exactly her seeded state and her open conflict', async (t) => {
    const pulled = await world.server.pull(ALICE);
    assert.deepEqual(
      pulled.newChanges.map((c) => c.changeId).filter((id) => !id.startsWith('snapshot-')),
      ['a-c1', 'a-c2', 'a-c3', 'a-c4'],
    );
    const conflicts = await world.server.conflicts(ALICE);
    assert.deepEqual(conflicts.map((c) => c.id), [world.aliceConflictId]);
    const todo = [...JS_ROWS, ...HTTP_ROWS].filter((row) => row.todo).length;
    const coded = JS_ROWS.length + HTTP_ROWS.length + 2; // + the two streamed-body cases
    const isolation = JS_ISOLATION_ROWS.length + HTTP_ISOLATION_ROWS.length;
    t.diagnostic(`hostile cases: ${coded} coded errors with the whole database unchanged (JS API ${JS_ROWS.length}, ` +
      `HTTP ${HTTP_ROWS.length + 2}); ${isolation} isolation cases with their outcome stated and the other user unchanged; ` +
      `${todo} todo; plus 2 controls`);
    recordFigures('hostile', { coded, isolation, todo });
  });
});
