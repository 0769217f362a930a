'use strict';

// The compatible routes of deltasync/express, with requests shaped exactly like
// the documented examples of the older designs (shared/seeds): seed 004's
// POST /push, /pull, /full, /resolve-conflict and GET /status/:deviceId, seed 001's
// GET /changes?since=ISO8601, and their conflict example.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { SyncServer, startApp, withApp, assertHttpError, logOf, stateOf } = require('./fixtures/server-http');
const { storeOptions } = require('./postgres-harness');

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** POSTs and asserts 200 JSON; resolves with the parsed body. */
async function ok(app, path, body, options) {
  const response = await app.post(path, body, options);
  assert.equal(response.status, 200, `${path}: ${response.text}`);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  return response.json;
}

/** GETs and asserts 200 JSON. */
async function okGet(app, path, options) {
  const response = await app.get(path, options);
  assert.equal(response.status, 200, `${path}: ${response.text}`);
  return response.json;
}

/** A record without the updated_at the server stamps on pulled records. */
const withoutTime = ({ updated_at: _, ...rest }) => rest;

describe("seed 004: the documented examples, exactly", () => {
  let app;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  test('POST /push {deviceId:"device_123", changes:{customers:[...]}} applies a CREATE', async () => {
    const response = await ok(app, '/push', {
      deviceId: 'device_123',
      changes: {
        customers: [
          {
            customer_id: 'CUST_001',
            name: 'ABC Company',
            updated_at: '2025-01-15T11:00:00Z',
            sync_status: 'UNSYNCED',
          },
        ],
      },
    });
    assert.equal(response.success, true);
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.errors, []);
    assert.equal(response.applied.length, 1);
    const [applied] = response.applied;
    assert.deepEqual(
      { entityType: applied.entityType, entityId: applied.entityId, action: applied.action, uniqueId: applied.uniqueId },
      { entityType: 'customers', entityId: 'CUST_001', action: 'CREATE', uniqueId: 'CUST_001' },
    );
    assert.equal(applied.version, 1);
  });

  test('POST /pull {deviceId, lastSyncTimestamp:"2025-01-01T00:00:00Z"} returns the customer, its bookkeeping fields dropped', async () => {
    const response = await ok(app, '/pull', { deviceId: 'device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.equal(response.success, true);
    assert.equal(response.deviceId, 'device_123');
    assert.deepEqual(response.conflicts, []);
    assert.match(response.timestamp, ISO_MS);
    assert.deepEqual(Object.keys(response.changes), ['customers']);
    assert.equal(response.changes.customers.length, 1);
    assert.deepEqual(response.changes.customers, [
      { customer_id: 'CUST_001', name: 'ABC Company', updated_at: '2025-01-15T11:00:00Z' },
    ]);
    assert.equal(response.hasMore, false);
  });

  test("the 'Test Push Endpoint' example (more fields) answers applied [{entityType, entityId, action:'CREATE', uniqueId}]", async () => {
    const record = {
      customer_id: 'CUST_TEST_001',
      name: 'Test Customer',
      phone: '555-9999',
      email: 'test@example.com',
      customer_type: 'regular',
      balance: 0,
      updated_at: '2025-10-18T12:00:00Z',
    };
    const response = await ok(app, '/push', { deviceId: 'test_device_123', changes: { customers: [record] } });
    assert.deepEqual(
      response.applied.map(({ version, ...rest }) => rest),
      [{ entityType: 'customers', entityId: 'CUST_TEST_001', action: 'CREATE', uniqueId: 'CUST_TEST_001' }],
    );
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.errors, []);
    const { changes } = await ok(app, '/pull', { deviceId: 'test_device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    const pulled = changes.customers.find((r) => r.customer_id === 'CUST_TEST_001');
    assert.deepEqual(withoutTime(pulled), withoutTime(record));
  });

  test("the 'Test Pull Endpoint' example for a device with nothing new", async (t) => {
    const empty = await withApp(t);
    const response = await ok(empty, '/pull', { deviceId: 'test_device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(Object.keys(response).sort(), ['changes', 'conflicts', 'deviceId', 'hasMore', 'success', 'timestamp']);
    assert.equal(response.success, true);
    assert.deepEqual(response.changes, {});
    assert.deepEqual(response.conflicts, []);
    assert.equal(response.deviceId, 'test_device_123');
    assert.equal(typeof response.timestamp, 'string');
  });

  test('an account with nothing yet lists each type named in idFields, empty: the seed client loops over each', async (t) => {
    const idFields = { customers: 'customer_id', orders: 'order_id', payments: 'payment_id', projects: 'project_id' };
    const empty = await withApp(t, { router: { idFields } });
    const pulled = await ok(empty, '/pull', { deviceId: 'test_device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(pulled.changes, { customers: [], orders: [], payments: [], projects: [] });
    const changes = await empty.get('/changes?since=2025-01-01T00:00:00Z');
    assert.equal(changes.status, 200, changes.text);
    assert.deepEqual(changes.json.entities, { customers: [], orders: [], payments: [], projects: [] });
    await ok(empty, '/push', { deviceId: 'd', changes: { notes: [{ id: 'n1', text: 'x', updated_at: '2025-01-02T00:00:00Z' }] } });
    const { changes: after } = await ok(empty, '/pull', { deviceId: 'other', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(Object.keys(after).sort(), ['customers', 'notes', 'orders', 'payments', 'projects']);
    assert.deepEqual(after.notes.map((record) => record.id), ['n1']);
  });

  test('POST /full {deviceId, lastSyncTimestamp, changes} pushes then pulls, in one response', async () => {
    const response = await ok(app, '/full', {
      deviceId: 'test_device_123',
      lastSyncTimestamp: '2025-01-01T00:00:00Z',
      changes: {
        customers: [{ customer_id: 'CUST_FULL', name: 'Full Sync', updated_at: '2025-10-18T12:30:00Z' }],
      },
    });
    assert.equal(response.success, true);
    assert.deepEqual(
      response.applied.map((a) => [a.entityType, a.entityId, a.action, a.uniqueId]),
      [['customers', 'CUST_FULL', 'CREATE', 'CUST_FULL']],
    );
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.errors, []);
    assert.equal(response.deviceId, 'test_device_123');
    assert.match(response.timestamp, ISO_MS);
    assert.deepEqual(
      response.changes.customers.map((r) => r.customer_id).sort(),
      ['CUST_001', 'CUST_FULL', 'CUST_TEST_001'],
      'the pull half includes what was just pushed',
    );
  });

  test('GET /status/:deviceId reports the device', async () => {
    const status = await okGet(app, '/status/device_123');
    assert.equal(status.success, true);
    assert.equal(status.deviceId, 'device_123');
    assert.equal(status.changesPushed, 1);
    assert.equal(status.conflictsReported, 0);
    assert.equal(typeof status.lastPushAt, 'number');
    assert.equal(status.latestServerVersion, 3);
    assertHttpError(await app.get('/status/never_seen'), 404, 'NOT_FOUND');
  });

  test(
    'GET /status/:deviceId records pulls made through POST /pull',
    async () => {
      await ok(app, '/pull', { deviceId: 'device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
      const status = await okGet(app, '/status/device_123');
      assert.equal(typeof status.lastPullAt, 'number');
    },
  );
});

describe("seed 004's conflict example: the same customer edited on the device and on the server", () => {
  const original = { customer_id: 'CUST_001', name: 'ABC Company', phone: '555-0000', updated_at: '2025-01-15T10:00:00Z' };
  const serverEdit = { customer_id: 'CUST_001', name: 'ABC Corporation', phone: '555-5678', updated_at: '2025-01-15T11:30:00Z' };
  const deviceEdit = { customer_id: 'CUST_001', name: 'ABC Company', phone: '555-1234', updated_at: '2025-01-15T11:00:00Z' };

  /** The device creates the customer; another device (the web app) edits it at 11:30. */
  async function edited(t, serverOptions) {
    const app = await withApp(t, { serverOptions });
    await ok(app, '/push', { deviceId: 'device_123', changes: { customers: [original] } });
    const web = await ok(app, '/push', { deviceId: 'web_app', changes: { customers: [serverEdit] } });
    assert.deepEqual(
      web.applied.map((a) => [a.entityId, a.action]),
      [['CUST_001', 'UPDATE']],
      'a full record of an existing customer is an UPDATE',
    );
    return app;
  }

  test('newest_wins (the default): the device edit is older, the server version wins and the conflict is logged', async (t) => {
    const app = await edited(t);
    const response = await ok(app, '/push', { deviceId: 'device_123', changes: { customers: [deviceEdit] } });
    assert.equal(response.success, true);
    assert.deepEqual(response.applied, []);
    assert.deepEqual(response.errors, []);
    assert.equal(response.conflicts.length, 1);
    const [conflict] = response.conflicts;
    assert.equal(conflict.entityType, 'customers');
    assert.equal(conflict.entityId, 'CUST_001');
    assert.equal(conflict.resolution, 'newest_wins');
    assert.equal(conflict.winner, 'server');
    assert.equal(typeof conflict.reason, 'string');
    assert.deepEqual(conflict.serverData, serverEdit);
    const pulled = await ok(app, '/pull', { deviceId: 'device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(pulled.changes.customers.map(withoutTime), [withoutTime(serverEdit)]);
    const status = await okGet(app, '/status/device_123');
    assert.equal(status.conflictsReported, 1);
  });

  test('a device edit newer than the server copy is applied (no conflict)', async (t) => {
    const app = await edited(t);
    const newer = { ...deviceEdit, updated_at: '2025-01-15T12:00:00Z' };
    const response = await ok(app, '/push', { deviceId: 'device_123', changes: { customers: [newer] } });
    assert.deepEqual(response.conflicts, []);
    assert.deepEqual(response.applied.map((a) => a.action), ['UPDATE']);
    assert.deepEqual((await stateOf(app.server, 'alice'))['customers/CUST_001'], newer);
  });

  test('within the 1-second tolerance the server wins', async (t) => {
    const app = await edited(t);
    const tie = { ...deviceEdit, updated_at: '2025-01-15T11:30:01Z' };
    const response = await ok(app, '/push', { deviceId: 'device_123', changes: { customers: [tie] } });
    assert.equal(response.conflicts[0].winner, 'server');
  });

  test('server_wins and client_wins', async (t) => {
    const serverWins = await edited(t, { conflicts: 'server_wins' });
    const newer = { ...deviceEdit, updated_at: '2025-01-15T11:30:00.500Z' };
    let response = await ok(serverWins, '/push', { deviceId: 'device_123', changes: { customers: [newer] } });
    assert.deepEqual([response.conflicts[0].resolution, response.conflicts[0].winner], ['server_wins', 'server']);
    assert.deepEqual((await stateOf(serverWins.server, 'alice'))['customers/CUST_001'], serverEdit);

    const clientWins = await edited(t, { conflicts: 'client_wins' });
    response = await ok(clientWins, '/push', { deviceId: 'device_123', changes: { customers: [deviceEdit] } });
    assert.deepEqual([response.conflicts[0].resolution, response.conflicts[0].winner], ['client_wins', 'client']);
    assert.deepEqual(response.applied.map((a) => [a.entityId, a.action]), [['CUST_001', 'UPDATE']]);
    assert.deepEqual((await stateOf(clientWins.server, 'alice'))['customers/CUST_001'], deviceEdit);
  });

  test('manual: POST /resolve-conflict {conflictId, resolution} settles it', async (t) => {
    const app = await edited(t, { conflicts: 'manual' });
    const response = await ok(app, '/push', { deviceId: 'device_123', changes: { customers: [deviceEdit] } });
    const [conflict] = response.conflicts;
    assert.equal(conflict.winner, 'manual');
    assert.ok(Number.isInteger(conflict.conflictId));
    assertHttpError(
      await app.post('/resolve-conflict', `${JSON.stringify({ conflictId: conflict.conflictId, resolution: 'client' })}{}`),
      400,
      'INVALID_ARGUMENT',
      /Trailing content/,
    );
    const resolved = await ok(app, '/resolve-conflict', { conflictId: conflict.conflictId, resolution: 'client' });
    assert.equal(resolved.success, true);
    assert.equal(resolved.resolution, 'client');
    assert.deepEqual(resolved.serverData, deviceEdit);
    assert.deepEqual((await stateOf(app.server, 'alice'))['customers/CUST_001'], deviceEdit);
    assertHttpError(
      await app.post('/resolve-conflict', { conflictId: conflict.conflictId, resolution: 'server' }),
      404,
      'NOT_FOUND',
    );
  });
});

describe('POST /push', () => {
  test('a retried identical push is idempotent: the same applied versions, no new versions', async (t) => {
    const app = await withApp(t);
    const body = {
      deviceId: 'device_123',
      changes: {
        customers: [
          { customer_id: 'C1', name: 'One', updated_at: '2025-01-15T11:00:00Z' },
          { customer_id: 'C2', name: 'Two', updated_at: '2025-01-15T11:00:00Z' },
        ],
        orders: [{ order_id: 'O1', total: 10, updated_at: '2025-01-15T11:00:00Z' }],
      },
    };
    const first = await ok(app, '/push', body);
    const second = await ok(app, '/push', body);
    assert.deepEqual(second, first);
    assert.deepEqual(first.applied.map((a) => a.version), [1, 2, 3]);
    // Concurrent retries too.
    const many = await Promise.all(Array.from({ length: 5 }, () => ok(app, '/push', body)));
    for (const response of many) assert.deepEqual(response, first);
    assert.equal((await logOf(app.server, 'alice')).latestServerVersion, 3);
  });

  test('the record id: idFields[type], else id, else <singular>_id (customers -> customer_id, categories -> category_id)', async (t) => {
    const app = await withApp(t, { router: { idFields: { orders: 'order_no' } } });
    const response = await ok(app, '/push', {
      deviceId: 'd',
      changes: {
        customers: [
          { customer_id: 'by-singular', updated_at: '2025-01-15T11:00:00Z' },
          { id: 'by-id', customer_id: 'ignored', updated_at: '2025-01-15T11:00:00Z' },
          { id: 42, updated_at: '2025-01-15T11:00:00Z' },
        ],
        categories: [{ category_id: 'cat-1', updated_at: '2025-01-15T11:00:00Z' }],
        orders: [{ order_no: 'O-1', id: 'not-this', updated_at: '2025-01-15T11:00:00Z' }],
      },
    });
    assert.deepEqual(
      response.applied.map((a) => [a.entityType, a.entityId, a.uniqueId]),
      [
        ['customers', 'by-singular', 'by-singular'],
        ['customers', 'by-id', 'by-id'],
        ['customers', '42', '42'],
        ['categories', 'cat-1', 'cat-1'],
        ['orders', 'O-1', 'O-1'],
      ],
    );
    // The pulled records keep their own id fields.
    const pulled = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(pulled.changes.orders.map(withoutTime), [{ order_no: 'O-1', id: 'not-this' }]);
    assert.deepEqual(
      pulled.changes.customers.slice(0, 2).map(withoutTime),
      [{ customer_id: 'by-singular' }, { id: 'by-id', customer_id: 'ignored' }],
    );
  });

  test('a record without an id, or with one too long, is refused naming which, and nothing is applied', async (t) => {
    const app = await withApp(t);
    const push = (record) => app.post('/push', { deviceId: 'd', changes: { customers: [{ customer_id: 'fine' }, record] } });
    assertHttpError(await push({ name: 'no id' }), 400, 'INVALID_ARGUMENT', /changes\.customers\[1\] but received a record without one/);
    assertHttpError(await push({ id: 'x'.repeat(257) }), 400, 'INVALID_ARGUMENT', /1 to 256 bytes .* but received a record whose id is neither/);
    assert.deepEqual(await stateOf(app.server, 'alice'), {});
  });

  test(
    'a numeric id is pulled back as the number it was pushed as',
    async (t) => {
      const app = await withApp(t);
      await ok(app, '/push', { deviceId: 'd', changes: { customers: [{ id: 42, name: 'n', updated_at: '2025-01-15T11:00:00Z' }] } });
      const pulled = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
      assert.deepEqual(pulled.changes.customers, [{ id: 42, name: 'n', updated_at: '2025-01-15T11:00:00Z' }]);
    },
  );

  test('idFields given to the SyncServer apply to the routes', async (t) => {
    const server = new SyncServer({ ...storeOptions('compat'), idFields: { projects: 'code' } });
    const app = await withApp(t, { server });
    const response = await ok(app, '/push', { deviceId: 'd', changes: { projects: [{ code: 'P-7', updated_at: 1736938800000 }] } });
    assert.deepEqual(response.applied.map((a) => a.entityId), ['P-7']);
  });

  test('bookkeeping fields are dropped; updatedAt and millisecond times are read; a truthy deleted flag is a DELETE', async (t) => {
    const app = await withApp(t);
    await ok(app, '/push', {
      deviceId: 'd',
      changes: {
        customers: [
          {
            customer_id: 'C1',
            name: 'kept',
            sync_status: 'UNSYNCED',
            syncStatus: 'dirty',
            isDirty: true,
            is_dirty: 1,
            lastSyncedAt: 5,
            last_synced_at: '2025-01-01T00:00:00Z',
            updatedAt: '2025-01-15T11:00:00Z',
          },
          { customer_id: 'C2', name: 'numeric time', updated_at: 1736938800000 },
          { customer_id: 'C3', name: 'not deleted', deleted: false, updated_at: '2025-01-15T11:00:00Z' },
        ],
      },
    });
    const { changes } = await logOf(app.server, 'alice');
    assert.deepEqual(changes[0].data, { customer_id: 'C1', name: 'kept', updatedAt: '2025-01-15T11:00:00Z' });
    assert.equal(changes[0].timestamp, Date.parse('2025-01-15T11:00:00Z'));
    assert.equal(changes[1].timestamp, 1736938800000);
    assert.equal(changes[2].type, 'CREATED');
    for (const [i, flag] of ['deleted', 'is_deleted', 'isDeleted', '_deleted'].entries()) {
      const id = ['C1', 'C2', 'C3', 'C4'][i];
      if (id === 'C4') {
        await ok(app, '/push', { deviceId: 'd', changes: { customers: [{ customer_id: 'C4', updated_at: '2025-01-15T11:00:00Z' }] } });
      }
      const response = await ok(app, '/push', {
        deviceId: 'd',
        changes: { customers: [{ customer_id: id, [flag]: true, updated_at: '2025-01-15T12:00:00Z' }] },
      });
      assert.deepEqual(response.applied.map((a) => [a.entityId, a.action]), [[id, 'DELETE']], flag);
    }
    assert.deepEqual(await stateOf(app.server, 'alice'), {});
  });

  test('compatible pushes and v2 share one change log', async (t) => {
    const app = await withApp(t);
    await ok(app, '/push', { deviceId: 'old', changes: { customers: [{ customer_id: 'C1', name: 'n', updated_at: '2025-01-15T11:00:00Z' }] } });
    const v2 = await app.sync({
      deviceId: 'new',
      lastKnownServerVersion: 0,
      changes: [{ changeId: 'x1', type: 'CREATED', entityType: 'notes', entityId: 'N1', data: { title: 't' }, timestamp: 1 }],
    });
    assert.deepEqual(
      v2.newChanges.map((c) => [c.version, c.type, c.entityType, c.entityId, c.deviceId]),
      [
        [1, 'CREATED', 'customers', 'C1', 'old'],
        [2, 'CREATED', 'notes', 'N1', 'new'],
      ],
    );
    assert.deepEqual(v2.newChanges[0].data, { customer_id: 'C1', name: 'n', updated_at: '2025-01-15T11:00:00Z' });
    const pulled = await ok(app, '/pull', { deviceId: 'old', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    // A v2 entity without an id field gets `id` (notes -> note_id is absent too).
    assert.deepEqual(pulled.changes.notes.map(withoutTime), [{ id: 'N1', title: 't' }]);
  });

  describe('bad input: 4xx JSON and nothing applied', () => {
    let app;
    before(async () => {
      app = await startApp({ router: { limits: { maxBodyBytes: 3 * 1024 * 1024 } }, serverOptions: { limits: { maxChangesPerPush: 1000 } } });
      await ok(app, '/push', { deviceId: 'seed', changes: { customers: [{ customer_id: 'S1', updated_at: '2025-01-15T11:00:00Z' }] } });
    });
    after(() => app.close());

    const good = { customer_id: 'GOOD', name: 'would apply', updated_at: '2025-01-15T11:00:00Z' };
    const withBad = (bad, type = 'orders') => ({ deviceId: 'bad-device', changes: { customers: [good], [type]: [bad] } });
    const cases = [
      ['malformed JSON', '{"deviceId":"bad-device","changes":{"customers":[{', 400, 'INVALID_ARGUMENT'],
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 400, 'INVALID_ARGUMENT'],
      ['missing deviceId', { changes: { customers: [good] } }, 400, 'INVALID_ARGUMENT'],
      ['deviceId a number', { deviceId: 5, changes: { customers: [good] } }, 400, 'INVALID_ARGUMENT'],
      ['changes an array', { deviceId: 'bad-device', changes: [good] }, 400, 'INVALID_ARGUMENT'],
      ['records not an array', { deviceId: 'bad-device', changes: { customers: good } }, 400, 'INVALID_ARGUMENT'],
      ['a record that is a string', withBad('CUST'), 400, 'INVALID_ARGUMENT'],
      ['a record without an id', withBad({ name: 'no id', customer_id: 'wrong type', updated_at: '2025-01-15T11:00:00Z' }), 400, 'INVALID_ARGUMENT'],
      ['an id of 257 bytes', withBad({ order_id: 'c'.repeat(257), updated_at: '2025-01-15T11:00:00Z' }), 400, 'INVALID_ARGUMENT'],
      ['entity type "bad type"', withBad({ id: 'x', updated_at: '2025-01-15T11:00:00Z' }, 'bad type'), 400, 'INVALID_ARGUMENT'],
      ['updated_at not a time', withBad({ order_id: 'T', updated_at: 'yesterday' }), 400, 'INVALID_ARGUMENT'],
      ['nesting deeper than 64', withBad({ order_id: 'D', deep: JSON.parse(`${'{"a":'.repeat(70)}1${'}'.repeat(70)}`) }), 413, 'LIMIT_EXCEEDED'],
      ['a record over 1 MiB', withBad({ order_id: 'B', blob: 'x'.repeat(1024 * 1024) }), 413, 'LIMIT_EXCEEDED'],
      [
        '1,001 records (over maxChangesPerPush 1000)',
        { deviceId: 'bad-device', changes: { customers: Array.from({ length: 1001 }, (_, i) => ({ customer_id: `M${i}`, updated_at: 1 })) } },
        413,
        'LIMIT_EXCEEDED',
      ],
    ];
    for (const [name, body, status, code] of cases) {
      test(`${name}: ${status} ${code}`, async () => {
        const before = await logOf(app.server, 'alice');
        assertHttpError(await app.post('/push', body), status, code);
        assertHttpError(await app.post('/full', typeof body === 'object' && !Buffer.isBuffer(body) ? { ...body, lastSyncTimestamp: null } : body), status, code);
        assert.deepEqual(await logOf(app.server, 'alice'), before, 'nothing applied');
        assertHttpError(await app.get('/status/bad-device'), 404, 'NOT_FOUND');
      });
    }

    test('a bad lastSyncTimestamp is 400 on /pull and /full', async () => {
      for (const lastSyncTimestamp of ['not a time', true, -5, { at: 1 }]) {
        assertHttpError(await app.post('/pull', { deviceId: 'd', lastSyncTimestamp }), 400, 'INVALID_ARGUMENT');
        assertHttpError(await app.post('/full', { deviceId: 'd', lastSyncTimestamp, changes: { customers: [good] } }), 400, 'INVALID_ARGUMENT');
      }
      assertHttpError(await app.post('/pull', { lastSyncTimestamp: null }), 400, 'INVALID_ARGUMENT');
    });
  });
});

describe('POST /pull and GET /changes', () => {
  test('GET /changes?since=ISO (seed 001) -> {since, updatedAt, entities: {type: [records]}}', async (t) => {
    const app = await withApp(t);
    await ok(app, '/push', {
      deviceId: 'd',
      changes: {
        accounts: [{ id: 'A1', name: 'Acme', updated_at: '2025-01-15T11:00:00Z' }],
        contacts: [{ id: 'P1', name: 'Pat', updated_at: '2025-01-15T11:00:00Z' }],
      },
    });
    const response = await okGet(app, '/changes?since=2025-01-01T00:00:00Z');
    assert.deepEqual(Object.keys(response).sort(), ['entities', 'hasMore', 'since', 'updatedAt']);
    assert.equal(response.since, '2025-01-01T00:00:00Z');
    assert.match(response.updatedAt, ISO_MS);
    assert.deepEqual(response.entities.accounts.map(withoutTime), [{ id: 'A1', name: 'Acme' }]);
    assert.deepEqual(response.entities.contacts.map(withoutTime), [{ id: 'P1', name: 'Pat' }]);

    // Incremental: since = the previous updatedAt returns only what changed after it.
    const nothing = await okGet(app, `/changes?since=${encodeURIComponent(response.updatedAt)}`);
    assert.deepEqual(nothing.entities, { accounts: [], contacts: [] });
    await ok(app, '/push', { deviceId: 'd', changes: { contacts: [{ id: 'P1', name: 'Pat B.', updated_at: '2025-01-15T12:00:00Z' }] } });
    const next = await okGet(app, `/changes?since=${encodeURIComponent(response.updatedAt)}`);
    assert.deepEqual(next.entities.accounts, []);
    assert.deepEqual(next.entities.contacts.map(withoutTime), [{ id: 'P1', name: 'Pat B.' }]);
    assert.ok(next.updatedAt > response.updatedAt);

    // Without since: everything, and since is null.
    const all = await okGet(app, '/changes');
    assert.equal(all.since, null);
    assert.equal(all.entities.contacts.length + all.entities.accounts.length, 2);
  });

  test('GET /changes with a bad since is 400', async (t) => {
    const app = await withApp(t);
    assertHttpError(await app.get('/changes?since=yesterday'), 400, 'INVALID_ARGUMENT', /since/);
    assertHttpError(await app.get('/changes?since=a&since=b'), 400, 'INVALID_ARGUMENT', /since/);
  });

  test('pull pages of 1,000: hasMore, then the next page from the returned timestamp, each record once', async (t) => {
    const app = await withApp(t);
    const records = Array.from({ length: 1500 }, (_, i) => ({ customer_id: `C${i}`, i, updated_at: '2025-01-15T11:00:00Z' }));
    await ok(app, '/push', { deviceId: 'w', changes: { customers: records.slice(0, 1000) } });
    await ok(app, '/push', { deviceId: 'w', changes: { customers: records.slice(1000) } });
    const seen = [];
    let since = '2025-01-01T00:00:00Z';
    let pages = 0;
    for (;;) {
      const page = await ok(app, '/pull', { deviceId: 'r', lastSyncTimestamp: since });
      pages += 1;
      seen.push(...page.changes.customers.map((r) => r.customer_id));
      since = page.timestamp;
      if (!page.hasMore) break;
      assert.ok(pages < 10);
    }
    assert.equal(pages, 2);
    assert.equal(seen.length, 1500);
    assert.deepEqual(new Set(seen), new Set(records.map((r) => r.customer_id)));
    const last = await ok(app, '/pull', { deviceId: 'r', lastSyncTimestamp: since });
    assert.deepEqual(last.changes, { customers: [] });
  });

  test('lastSyncTimestamp may be null (everything) or milliseconds', async (t) => {
    const app = await withApp(t);
    await ok(app, '/push', { deviceId: 'd', changes: { customers: [{ customer_id: 'C1', updated_at: '2025-01-15T11:00:00Z' }] } });
    const all = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: null });
    assert.equal(all.changes.customers.length, 1);
    const none = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: Date.parse(all.timestamp) });
    assert.deepEqual(none.changes.customers, []);
    const missing = await ok(app, '/pull', { deviceId: 'd' });
    assert.equal(missing.changes.customers.length, 1);
  });

  test(
    'a deleted record is pulled with the id field it was pushed with and deleted: true',
    async (t) => {
      const app = await withApp(t);
      await ok(app, '/push', { deviceId: 'd', changes: { customers: [{ customer_id: 'C9', name: 'x', updated_at: '2025-01-15T11:00:00Z' }] } });
      await ok(app, '/push', { deviceId: 'd', changes: { customers: [{ customer_id: 'C9', deleted: true, updated_at: '2025-01-15T12:00:00Z' }] } });
      const pulled = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
      assert.equal(pulled.changes.customers.length, 1);
      const [record] = pulled.changes.customers;
      assert.equal(record.deleted, true);
      assert.equal(record.customer_id, 'C9');
    },
  );

  test('a deleted record is pulled with its id and deleted: true', async (t) => {
    const app = await withApp(t);
    await ok(app, '/push', { deviceId: 'd', changes: { accounts: [{ id: 'A9', name: 'x', updated_at: '2025-01-15T11:00:00Z' }] } });
    await ok(app, '/push', { deviceId: 'd', changes: { accounts: [{ id: 'A9', deleted: true, updated_at: '2025-01-15T12:00:00Z' }] } });
    const pulled = await ok(app, '/pull', { deviceId: 'd', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(pulled.changes.accounts.map(withoutTime), [{ id: 'A9', deleted: true }]);
  });

  test(
    "pulled records keep the updated_at they were pushed with (seed 004's resolution example shows the server copy with its own 11:30)",
    async (t) => {
      const app = await withApp(t);
      const record = { customer_id: 'CUST_001', name: 'ABC Corporation', phone: '555-5678', updated_at: '2025-01-15T11:30:00Z' };
      await ok(app, '/push', { deviceId: 'web', changes: { customers: [record] } });
      const pulled = await ok(app, '/pull', { deviceId: 'device_123', lastSyncTimestamp: '2025-01-01T00:00:00Z' });
      assert.deepEqual(pulled.changes.customers, [record]);
    },
  );
});
