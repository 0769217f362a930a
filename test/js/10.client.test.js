'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');

const deltasync = require('../..');
const {
  SyncClient,
  SyncError,
  UUID_V4,
  tempDir,
  openClient,
  memoryClient,
  assertSyncError,
  created,
  sideFilesGone,
} = require('./helpers');

// Every argument error has one shape.
const SHAPE = /^Expected .+ for options(\.[A-Za-z]+)* but received .+$/;

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('package exports', () => {
  test('exports SyncClient and SyncError', () => {
    assert.equal(typeof deltasync.SyncClient, 'function');
    assert.equal(typeof deltasync.SyncError, 'function');
    const error = new deltasync.SyncError('boom', 'STORAGE');
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'SyncError');
    assert.equal(error.code, 'STORAGE');
    assert.equal(error.message, 'boom');
  });
});

describe('SyncClient options', () => {
  test('the options argument must be a plain object', () => {
    assertSyncError(() => new SyncClient(), 'INVALID_ARGUMENT', /^Expected an object for options but received undefined$/);
    assertSyncError(() => new SyncClient(null), 'INVALID_ARGUMENT', /^Expected an object for options but received null$/);
    assertSyncError(
      () => new SyncClient(':memory:'),
      'INVALID_ARGUMENT',
      /^Expected an object for options but received ":memory:" of type string$/,
    );
    assertSyncError(() => new SyncClient([]), 'INVALID_ARGUMENT', /^Expected an object for options but received/);
    // Inherited options are not read: only a plain object is accepted.
    assertSyncError(() => new SyncClient(Object.create({ path: ':memory:' })), 'INVALID_ARGUMENT', /for options but/);
  });

  test('an unknown option key is INVALID_ARGUMENT and names the key', () => {
    const error = assertSyncError(() => new SyncClient({ path: ':memory:', devceId: 'x' }), 'INVALID_ARGUMENT');
    assert.match(error.message, /"devceId"/);
    assert.match(error.message, /deviceId/); // lists what is known
    const nested = assertSyncError(
      () => new SyncClient({ path: ':memory:', limits: { maxDeep: 3 } }),
      'INVALID_ARGUMENT',
    );
    assert.match(nested.message, /"maxDeep"/);
    assert.match(nested.message, /options\.limits/);
  });

  const invalidCases = [
    ['path', undefined, 'undefined'],
    ['path', '', '"" of type string'],
    ['path', 42, '42 of type number'],
    ['path', Buffer.from('x.db'), 'an object of type Buffer'],
    ['deviceId', '', '"" of type string'],
    ['deviceId', 7, '7 of type number'],
    ['deviceId', null, 'null'],
    ['deviceId', 'd'.repeat(257), null],
    ['userId', '', '"" of type string'],
    ['userId', false, 'false of type boolean'],
    ['userId', 'u'.repeat(257), null],
    ['tenantId', {}, 'an object of type Object'],
    ['tenantId', 't'.repeat(257), null],
    ['coalesce', 'yes', '"yes" of type string'],
    ['coalesce', 1, '1 of type number'],
    ['coalesce', null, 'null'],
    ['durability', 'FULL', '"FULL" of type string'],
    ['durability', 'off', '"off" of type string'],
    ['durability', true, 'true of type boolean'],
    ['busyTimeoutMs', -1, '-1 of type number'],
    ['busyTimeoutMs', 1.5, '1.5 of type number'],
    ['busyTimeoutMs', '100', '"100" of type string'],
    ['busyTimeoutMs', Number.NaN, 'NaN of type number'],
    ['busyTimeoutMs', Number.POSITIVE_INFINITY, 'Infinity of type number'],
    ['busyTimeoutMs', 2 ** 31, '2147483648 of type number'],
    ['limits', 5, '5 of type number'],
    ['limits', null, 'null'],
    ['limits.maxDepth', 0, '0 of type number'],
    ['limits.maxDepth', 1001, '1001 of type number'],
    ['limits.maxDepth', 2.5, '2.5 of type number'],
    ['limits.maxDepth', '8', '"8" of type string'],
    ['limits.maxDocumentBytes', 0, '0 of type number'],
    ['limits.maxDocumentBytes', -1, '-1 of type number'],
    ['limits.maxDocumentBytes', 10.5, '10.5 of type number'],
  ];
  for (const [name, value, received] of invalidCases) {
    const shown = typeof value === 'string' && value.length > 20 ? `a string of ${value.length} characters` : String(value);
    test(`options.${name} = ${shown} is INVALID_ARGUMENT`, () => {
      const options = { path: ':memory:' };
      if (name.startsWith('limits.')) {
        options.limits = { [name.slice('limits.'.length)]: value };
      } else {
        options[name] = value;
      }
      const error = assertSyncError(() => new SyncClient(options), 'INVALID_ARGUMENT', SHAPE);
      assert.ok(error.message.includes(` for options.${name} but received `), error.message);
      if (received !== null) assert.ok(error.message.endsWith(` but received ${received}`), error.message);
    });
  }

  test('every option accepts its valid values (boundaries included)', (t) => {
    const valid = [
      { path: ':memory:' },
      { path: ':memory:', deviceId: 'd'.repeat(256), userId: 'u'.repeat(256), tenantId: 't'.repeat(256) },
      { path: ':memory:', deviceId: undefined, userId: undefined, tenantId: undefined, limits: undefined },
      { path: ':memory:', coalesce: false },
      { path: ':memory:', coalesce: true },
      { path: ':memory:', durability: 'normal' },
      { path: ':memory:', durability: 'full' },
      { path: ':memory:', busyTimeoutMs: 0 },
      { path: ':memory:', busyTimeoutMs: 2 ** 31 - 1 },
      { path: ':memory:', limits: {} },
      { path: ':memory:', limits: { maxDepth: 1, maxDocumentBytes: 1 } },
      { path: ':memory:', limits: { maxDepth: 1000, maxDocumentBytes: 2 ** 40 } },
      Object.assign(Object.create(null), { path: ':memory:' }),
    ];
    for (const options of valid) {
      const client = openClient(t, options);
      assert.equal(client.isOpen, true);
    }
  });

  test('userId and tenantId are stamped on changes that carry none, and exported', (t) => {
    const client = memoryClient(t, { userId: 'user-1', tenantId: 'tenant-1' });
    client.queue.enqueue(created('a'));
    client.queue.enqueue(created('b', { x: 1 }, { userId: 'user-2', tenantId: 'tenant-2' }));
    const [a, b] = client.queue.pending();
    assert.equal(a.userId, 'user-1');
    assert.equal(a.tenantId, 'tenant-1');
    assert.equal(b.userId, 'user-2');
    assert.equal(b.tenantId, 'tenant-2');
    const exported = client.queue.export();
    assert.equal(exported.userId, 'user-1');
    assert.equal(exported.tenantId, 'tenant-1');
  });
});

describe('device id', () => {
  test('is generated once (a UUID v4) and persisted across reopen', (t) => {
    const file = path.join(tempDir(t), 'device.db');
    const first = new SyncClient({ path: file });
    const generated = first.deviceId;
    assert.match(generated, UUID_V4);
    assert.equal(first.deviceId, generated, 'stable while open');
    first.close();

    const second = openClient(t, { path: file });
    assert.equal(second.deviceId, generated);
    assert.equal(second.queue.export().deviceId, generated);
  });

  test('two files get different generated ids', (t) => {
    const dir = tempDir(t);
    const a = openClient(t, { path: path.join(dir, 'a.db') });
    const b = openClient(t, { path: path.join(dir, 'b.db') });
    assert.notEqual(a.deviceId, b.deviceId);
  });

  test('an explicit deviceId is used and persisted', (t) => {
    const file = path.join(tempDir(t), 'explicit.db');
    const first = new SyncClient({ path: file, deviceId: 'laptop-1' });
    assert.equal(first.deviceId, 'laptop-1');
    first.close();

    const reopened = new SyncClient({ path: file });
    assert.equal(reopened.deviceId, 'laptop-1');
    reopened.close();

    // A later explicit id replaces the stored one, and is persisted in turn.
    const renamed = new SyncClient({ path: file, deviceId: 'laptop-2' });
    assert.equal(renamed.deviceId, 'laptop-2');
    renamed.close();
    const last = openClient(t, { path: file });
    assert.equal(last.deviceId, 'laptop-2');
  });

  test("':memory:' works, and each in-memory client is its own database", (t) => {
    const a = memoryClient(t);
    const b = memoryClient(t);
    assert.match(a.deviceId, UUID_V4);
    assert.notEqual(a.deviceId, b.deviceId);
    a.queue.enqueue(created('1'));
    assert.equal(a.queue.pending().length, 1);
    assert.equal(b.queue.pending().length, 0);
    assert.equal(a.path, ':memory:');
  });
});

describe('close', () => {
  test('close() is idempotent and isOpen follows it', () => {
    const client = new SyncClient({ path: ':memory:' });
    assert.equal(client.isOpen, true);
    client.close();
    assert.equal(client.isOpen, false);
    client.close();
    client.close();
    assert.equal(client.isOpen, false);
  });

  test('every method after close() throws SyncError CLOSED', () => {
    const client = new SyncClient({ path: ':memory:' });
    client.queue.enqueue(created('1', { a: 1 }, { changeId: 'c-1' }));
    const queue = client.queue;
    client.close();
    const calls = {
      deviceId: () => client.deviceId,
      enqueue: () => queue.enqueue(created('2')),
      'enqueue (bad argument)': () => queue.enqueue(42),
      enqueueMany: () => queue.enqueueMany([created('3')]),
      pending: () => queue.pending(),
      'pending with options': () => queue.pending({ limit: 1 }),
      failed: () => queue.failed(),
      stats: () => queue.stats(),
      export: () => queue.export(),
      retryFailed: () => queue.retryFailed(),
      discard: () => queue.discard('c-1'),
      importLegacy: () => queue.importLegacy([]),
      'importLegacy text': () => queue.importLegacy('[]'),
      '_handle.deviceId': () => client._handle.deviceId(),
      '_handle.recoveredAtOpen': () => client._handle.recoveredAtOpen(),
      '_handle.takeBatch': () => client._handle.takeBatch(10),
      '_handle.markSynced': () => client._handle.markSynced('c-1', 1),
      '_handle.markFailed': () => client._handle.markFailed('c-1', 'x', 3),
      '_handle.releaseInFlight': () => client._handle.releaseInFlight(),
      '_handle.purgeSynced': () => client._handle.purgeSynced(0),
    };
    for (const [name, call] of Object.entries(calls)) {
      const error = assertSyncError(call, 'CLOSED');
      assert.ok(error instanceof SyncError, name);
    }
  });

  test('a closed client releases its file', (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'release.db');
    const client = new SyncClient({ path: file });
    const deviceId = client.deviceId;
    client.queue.enqueue(created('1', { v: 1 }, { changeId: 'kept' }));
    // Control: while open, the WAL side files exist, so the checks below can fail.
    assert.equal(sideFilesGone(file), false);
    client.close();
    // The last connection checkpointed and removed its -wal and -shm files.
    assert.equal(sideFilesGone(file), true);

    // A second client can write at once, without waiting for a lock.
    const second = new SyncClient({ path: file, busyTimeoutMs: 0 });
    assert.equal(second.deviceId, deviceId);
    second.queue.enqueue(created('2'));
    assert.deepEqual(
      second.queue.pending().map((c) => c.entityId),
      ['1', '2'],
    );
    second.close();

    // The file can be renamed and reopened under its new name...
    const moved = path.join(dir, 'moved.db');
    fs.renameSync(file, moved);
    const third = new SyncClient({ path: moved, busyTimeoutMs: 0 });
    assert.equal(third.deviceId, deviceId);
    assert.equal(third.queue.pending()[0].changeId, 'kept');
    third.close();

    // ...and deleted: opening the old name again makes a fresh database.
    fs.rmSync(moved);
    assert.equal(fs.readdirSync(dir).length, 0, `left behind: ${fs.readdirSync(dir)}`);
    const fresh = openClient(t, { path: moved });
    assert.notEqual(fresh.deviceId, deviceId);
    assert.equal(fresh.queue.pending().length, 0);
  });
});

describe('opening files that are not deltasync databases', () => {
  function makeForeignDatabase(file) {
    const db = new Database(file);
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hello')");
    db.close();
  }

  test('an SQLite file of another application is NOT_A_DATABASE and still readable', (t) => {
    const file = path.join(tempDir(t), 'foreign.db');
    makeForeignDatabase(file);
    const error = assertSyncError(() => new SyncClient({ path: file }), 'NOT_A_DATABASE');
    assert.ok(error.message.includes(file), error.message);
    const db = new Database(file, { readonly: true });
    t.after(() => db.close());
    assert.deepEqual(db.prepare('SELECT body FROM notes').all(), [{ body: 'hello' }]);
    assert.deepEqual(
      db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all(),
      ['notes'],
    );
  });

  test(
    'an SQLite file of another application is left byte-for-byte unchanged',
    (t) => {
      const file = path.join(tempDir(t), 'foreign.db');
      makeForeignDatabase(file);
      const before = sha256(file);
      assertSyncError(() => new SyncClient({ path: file }), 'NOT_A_DATABASE');
      assert.equal(sha256(file), before);
      assert.equal(sideFilesGone(file), true);
    },
  );

  test('an empty SQLite file with another application_id is NOT_A_DATABASE', (t) => {
    const file = path.join(tempDir(t), 'other-app.db');
    const db = new Database(file);
    db.pragma('application_id = 42');
    db.close();
    assertSyncError(() => new SyncClient({ path: file }), 'NOT_A_DATABASE');
  });

  test('a file that is not SQLite at all is NOT_A_DATABASE and unchanged', (t) => {
    const file = path.join(tempDir(t), 'garbage.db');
    const content = Buffer.alloc(8192, 0x5a);
    fs.writeFileSync(file, content);
    assertSyncError(() => new SyncClient({ path: file }), 'NOT_A_DATABASE');
    assert.ok(fs.readFileSync(file).equals(content));
    assert.equal(sideFilesGone(file), true);
  });

  test('a deltasync file from a newer release is NOT_A_DATABASE and its queue is untouched', (t) => {
    const file = path.join(tempDir(t), 'newer.db');
    const client = new SyncClient({ path: file });
    client.queue.enqueue(created('1', { v: 1 }, { changeId: 'old' }));
    client.close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    const error = assertSyncError(() => new SyncClient({ path: file }), 'NOT_A_DATABASE');
    assert.match(error.message, /99/);
    const check = new Database(file, { readonly: true });
    t.after(() => check.close());
    assert.deepEqual(check.prepare('SELECT change_id FROM changes').pluck().all(), ['old']);
  });

  test('an empty file becomes a deltasync database', (t) => {
    const file = path.join(tempDir(t), 'empty.db');
    fs.writeFileSync(file, '');
    const client = openClient(t, { path: file });
    assert.match(client.deviceId, UUID_V4);
    client.queue.enqueue(created('1'));
    assert.equal(client.queue.stats().pending, 1);
  });

  test('a path in a missing directory is a STORAGE error', (t) => {
    const file = path.join(tempDir(t), 'missing', 'dir', 'x.db');
    assertSyncError(() => new SyncClient({ path: file }), 'STORAGE', /x\.db/);
  });
});

describe('observer', () => {
  test('an observer leaves changes in flight alone, holds no marker, and may not sync', (t) => {
    const file = path.join(tempDir(t), 'app.db');
    const app = new SyncClient({ path: file });
    app.queue.enqueue(created('1', { v: 1 }, { changeId: 'in-flight' }));
    assert.equal(JSON.parse(app._handle.takeBatch(1))[0].changeId, 'in-flight');
    app.close(); // as a crash would leave it: the change is still "syncing"

    const observer = new SyncClient({ path: file, mustExist: true, observer: true });
    assert.equal(observer.queue.stats().syncing, 1, 'an observer opening alone does not call it a leftover');
    // An app starting while the observer looks is alone: it recovers its own leftover.
    const restarted = new SyncClient({ path: file });
    assert.equal(restarted.queue.stats().syncing, 0);
    assert.equal(restarted.queue.stats().pending, 1);
    restarted.close();
    observer.close();

    assertSyncError(() => new SyncClient({ path: file, observer: 'yes' }), 'INVALID_ARGUMENT', /options\.observer/);
    assertSyncError(() => new SyncClient({ path: file, observer: true, transport: async () => Buffer.from('{}') }), 'INVALID_ARGUMENT', /an observer never syncs/);
  });
});
