'use strict';

// new SyncServer({ postgres }): the ways a `pg` user names a database, the schema's version
// check, and the errors when PostgreSQL or libpq is not there.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client, Pool } = require('pg');

const { SyncServer } = require('../../..');
const { assertSyncError } = require('../helpers');
const { startPostgres, stopPostgres, freshSchema } = require('../postgres-harness');

let pg;

const note = (changeId) => ({ changeId, type: 'CREATED', entityType: 'note', entityId: changeId, data: { changeId }, timestamp: 1 });

describe('SyncServer on PostgreSQL: options', { timeout: 60000 }, () => {
  before(async () => {
    pg = await startPostgres();
  });
  after(() => stopPostgres());

  test('bad options are INVALID_ARGUMENT before anything connects', () => {
    const cases = [
      [{ path: ':memory:', postgres: { connectionString: 'postgresql://h/db' } }, /either path \(SQLite\) or postgres/],
      [{ postgres: 'postgresql://h/db' }, /options\.postgres/],
      [{ postgres: { connectionString: '' } }, /connectionString/],
      [{ postgres: { connectionString: 'postgresql://h/db', host: 'h' } }, /either connectionString or/],
      [{ postgres: { host: 'h', port: '5432' } }, /options\.postgres\.port/],
      [{ postgres: { host: 'h', ssl: { ca: 'pem' } } }, /options\.postgres\.ssl/],
      [{ postgres: { connectionString: 'postgresql://h/db', schema: 'x; DROP TABLE y' } }, /options\.postgres\.schema/],
      [{ postgres: { connectionString: 'postgresql://h/db', schema: '1abc' } }, /options\.postgres\.schema/],
      [{ postgres: { connectionString: 'postgresql://h/db', schema: 'a'.repeat(64) } }, /options\.postgres\.schema/],
      [{ postgres: { connectionString: 'postgresql://h/db', schema: 7 } }, /options\.postgres\.schema/],
      [{ postgres: { connectionString: 'postgresql://h/db', poolSize: 0 } }, /options\.postgres\.poolSize/],
      [{ postgres: { connectionString: 'postgresql://h/db', poolSize: 1001 } }, /from 1 to 1000 for options\.postgres\.poolSize/],
      [{ postgres: { connectionString: 'postgresql://h/db', poolSize: 2 ** 32 + 1 } }, /options\.postgres\.poolSize/],
      [{ postgres: { connectionString: 'postgresql://h/db', poolSize: 2.5 } }, /options\.postgres\.poolSize/],
      [{ postgres: { connectionString: 'postgresql://h/db', sslmode: 'require' } }, /sslmode/],
    ];
    for (const [options, message] of cases) assertSyncError(() => new SyncServer(options), 'INVALID_ARGUMENT', message);
  });

  test('an unreachable database is UNAVAILABLE, with libpq\'s reason', () => {
    assertSyncError(
      () => new SyncServer({ postgres: { connectionString: 'postgresql://nobody@127.0.0.1:1/none?connect_timeout=2', libpq: pg.libpq } }),
      'UNAVAILABLE',
      /Could not connect to PostgreSQL: .*(refused|127\.0\.0\.1)/s,
    );
  });

  test('a libpq that cannot be loaded is UNAVAILABLE and says how to install it', () => {
    assertSyncError(
      () => new SyncServer({ postgres: { connectionString: pg.url, libpq: '/nonexistent/libpq.so.5' } }),
      'UNAVAILABLE',
      /apt install libpq5/,
    );
  });

  test('the fields of a pg config and a pg.Pool name the same database as its URL', async (t) => {
    const schema = freshSchema('fields');
    const byUrl = new SyncServer({ postgres: { connectionString: pg.url, schema, libpq: pg.libpq } });
    t.after(() => byUrl.close());
    await byUrl.sync('u', { deviceId: 'd', lastKnownServerVersion: 0, changes: [note('by-url')] });

    const byFields = new SyncServer({
      postgres: { host: '127.0.0.1', port: pg.port, user: 'postgres', password: 'postgres', database: 'postgres', ssl: false, schema, libpq: pg.libpq },
    });
    t.after(() => byFields.close());
    assert.equal(byFields.store, 'postgres');
    assert.equal(byFields.path, undefined);
    const seen = await byFields.sync('u', { deviceId: 'd2', lastKnownServerVersion: 0, changes: [note('by-fields')] });
    assert.deepEqual(seen.newChanges.map((c) => c.changeId), ['by-url', 'by-fields']);

    if (pg.libpq) return; // a pg.Pool names no libpq: this machine has none of its own
    const pool = new Pool({ connectionString: pg.url, max: 3 });
    t.after(() => pool.end());
    const byPool = new SyncServer({ postgres: pool });
    t.after(() => byPool.close());
    // A pg.Pool's own schema option does not exist: the default schema is used.
    const fresh = await byPool.pull('u', { since: 0 });
    assert.equal(fresh.latestServerVersion, 0, 'the default schema "deltasync" is another set of tables');
  });

  test('a schema written by a newer release is refused, and nothing in it is touched', async () => {
    const schema = freshSchema('newer');
    new SyncServer({ postgres: { connectionString: pg.url, schema, libpq: pg.libpq } }).close();
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    try {
      await admin.query(`UPDATE "${schema}".deltasync_schema SET version = 99`);
      assertSyncError(
        () => new SyncServer({ postgres: { connectionString: pg.url, schema, libpq: pg.libpq } }),
        'NOT_A_DATABASE',
        /version 99, newer than this release/,
      );
      const { rows } = await admin.query(`SELECT version FROM "${schema}".deltasync_schema`);
      assert.deepEqual(rows, [{ version: 99 }]);
    } finally {
      await admin.end();
    }
  });

  test('the tables live in the chosen schema, whose name keeps its case', async (t) => {
    const schema = freshSchema('Mixed_Case');
    const server = new SyncServer({ postgres: { connectionString: pg.url, schema, libpq: pg.libpq } });
    t.after(() => server.close());
    await server.sync('u', { deviceId: 'd', lastKnownServerVersion: 0, changes: [note('a')] });
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema]);
      assert.deepEqual(rows.map((row) => row.table_name),
        ['change_results', 'conflicts', 'deltasync_schema', 'devices', 'entities', 'entity_changes', 'user_versions']);
    } finally {
      await admin.end();
    }
  });
});
