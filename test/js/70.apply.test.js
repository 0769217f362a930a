'use strict';

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const {
  SyncClient,
  SyncError,
  tempDir,
  openClient,
  memoryClient,
  assertRejectsSyncError,
  remote,
  collect,
  stateSnapshot,
} = require('./helpers');

/** `count` CREATED changes of distinct notes, versions first .. first+count-1. */
function createdChanges(count, first = 1) {
  return Array.from({ length: count }, (_, i) => remote(first + i, `n${first + i}`, { data: { i: first + i } }));
}

const pageText = (changes, extra = {}) => JSON.stringify({ newChanges: changes, latestServerVersion: changes.length ? changes[changes.length - 1].version : 0, hasMore: false, ...extra });

describe('applyRemote input', () => {
  const changes = [remote(1, 'a', { data: { title: 'ünï 🚀' } }), remote(2, 'b'), remote(3, 'c', { entityId: 'ïd-🚀' })];
  const text = pageText(changes);
  /** The same bytes inside a larger buffer, so that a view's offset and length matter. */
  const framed = () => {
    const bytes = Buffer.from(text);
    const whole = new ArrayBuffer(bytes.length + 16);
    const all = new Uint8Array(whole);
    all.fill(0x7b); // '{': garbage around the page makes a wrong offset or length fail
    all.set(bytes, 7);
    return { whole, offset: 7, length: bytes.length };
  };
  const inputs = {
    string: () => text,
    Buffer: () => Buffer.from(text),
    Uint8Array: () => {
      const { whole, offset, length } = framed();
      return new Uint8Array(whole, offset, length);
    },
    ArrayBuffer: () => {
      const bytes = Buffer.from(text);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    },
    DataView: () => {
      const { whole, offset, length } = framed();
      return new DataView(whole, offset, length);
    },
  };

  for (const [name, make] of Object.entries(inputs)) {
    test(`accepts a ${name}`, async (t) => {
      const client = memoryClient(t);
      const result = await client.applyRemote(make());
      assert.deepEqual(result, { applied: 3, skipped: 0, conflicts: [], latestServerVersion: 3, resynced: false });
      assert.deepEqual(client.get('note', 'a'), { title: 'ünï 🚀' });
      assert.deepEqual(client.get('note', 'ïd-🚀'), { v: 3 });
      assert.equal(client.list('note').length, 3);
      assert.equal(client.serverVersion, 3);
    });
  }

  test('anything else is INVALID_ARGUMENT, as a rejection, and changes nothing', async (t) => {
    const client = memoryClient(t);
    const before = stateSnapshot(client);
    const cases = [
      [{ newChanges: [] }, /^Expected .+ for page but received an object of type Object$/],
      [changes, /^Expected .+ for page but received an array of length 3$/],
      [undefined, /^Expected .+ for page but received undefined$/],
      [null, /^Expected .+ for page but received null$/],
      [42, /^Expected .+ for page but received 42 of type number$/],
    ];
    for (const [page, message] of cases) {
      await assertRejectsSyncError(client.applyRemote(page), 'INVALID_ARGUMENT', message);
    }
    assert.deepEqual(stateSnapshot(client), before);
  });

  test('a closed client rejects with CLOSED', async (t) => {
    const client = memoryClient(t);
    client.close();
    await assertRejectsSyncError(client.applyRemote('[]'), 'CLOSED');
  });

  test('a bare array and an object page apply the same', async (t) => {
    const bare = memoryClient(t);
    const object = memoryClient(t);
    const page = [remote(1, 'a'), remote(2, 'b', { type: 'UPDATED', data: { x: 1 } }), remote(3, 'a', { type: 'DELETED', data: null })];
    const fromBare = await bare.applyRemote(JSON.stringify(page));
    const fromObject = await object.applyRemote(JSON.stringify({ newChanges: page }));
    assert.deepEqual(fromBare, fromObject);
    assert.deepEqual(fromBare, { applied: 3, skipped: 0, conflicts: [], latestServerVersion: 3, resynced: false });
    assert.deepEqual(bare.list('note'), object.list('note'));
    assert.equal(bare.serverVersion, object.serverVersion);
  });

  test('other fields of a sync response and of a change are ignored', async (t) => {
    const client = memoryClient(t);
    const response = {
      applied: [{ changeId: 'x', version: 1 }],
      conflicts: [],
      errors: [],
      newChanges: [{ ...remote(1, 'a'), serverExtra: { nested: [1, 2] } }],
      latestServerVersion: 1,
      hasMore: false,
    };
    const result = await client.applyRemote(JSON.stringify(response));
    assert.equal(result.applied, 1);
    assert.deepEqual(client.get('note', 'a'), { v: 1 });
  });
});

describe('applyRemote results', () => {
  test('the result has exactly applied, skipped, conflicts, latestServerVersion and resynced', async (t) => {
    const client = memoryClient(t);
    const result = await client.applyRemote(pageText(createdChanges(4)));
    assert.deepEqual(Object.keys(result).sort(), ['applied', 'conflicts', 'latestServerVersion', 'resynced', 'skipped']);
    assert.equal(result.resynced, false);
    assert.equal(result.applied, 4);
    assert.equal(result.skipped, 0);
    assert.deepEqual(result.conflicts, []);
    assert.equal(result.latestServerVersion, 4);
  });

  test('CREATED replaces, UPDATED merges its fields (a null removes one), DELETED hides the document', async (t) => {
    const client = memoryClient(t);
    await client.applyRemote(
      JSON.stringify([
        remote(1, 'a', { data: { title: 'a', body: 'b', tags: ['x'], gone: 1, kept: null } }),
        remote(2, 'b', { data: { title: 'b' } }),
        remote(3, 'a', { type: 'UPDATED', data: { title: 'A', tags: ['y'], gone: null, extra: null } }),
        remote(4, 'c', { type: 'UPDATED', data: { only: 1, never: null } }),
      ]),
    );
    // In a CREATED a null is a value; in an UPDATED it removes the field (RFC 7396 at the top level).
    assert.deepEqual(client.get('note', 'a'), { title: 'A', body: 'b', tags: ['y'], kept: null });
    assert.deepEqual(client.get('note', 'c'), { only: 1 }, 'an UPDATED of an unknown document creates it');
    await client.applyRemote(JSON.stringify([remote(5, 'b', { type: 'DELETED', data: null }), remote(6, 'a', { data: { fresh: true } })]));
    assert.equal(client.get('note', 'b'), undefined);
    assert.deepEqual(client.list('note'), [{ fresh: true }, { only: 1 }]);
    assert.deepEqual(client.list('note', { where: { title: 'b' } }), []);
    const { data, meta } = client.get('note', 'b', { meta: true });
    assert.equal(data, null);
    assert.equal(meta.deleted, true);
    assert.equal(meta.version, 5);
    assert.equal(meta.dirty, false);
    assert.equal(client.get('note', 'a', { meta: true }).meta.version, 6);
    // A DELETED without data, or of a document never seen, is fine.
    const { deviceId, data: ignored, ...bare } = remote(7, 'never', { type: 'DELETED' });
    await client.applyRemote(JSON.stringify([bare]));
    assert.equal(client.get('note', 'never'), undefined);
    assert.equal(client.get('note', 'never', { meta: true }).meta.deleted, true);
    assert.equal(client.serverVersion, 7);
  });

  test('pulled changes queue nothing', async (t) => {
    const client = memoryClient(t);
    await client.applyRemote(pageText(createdChanges(10)));
    assert.deepEqual(client.queue.pending(), []);
    assert.equal(client.queue.stats().pending, 0);
  });

  test('serverVersion: latestServerVersion at the end of the last page, else the last change; never backwards', async (t) => {
    const client = memoryClient(t);
    assert.equal(client.serverVersion, 0);
    let result = await client.applyRemote(JSON.stringify({ newChanges: createdChanges(3), latestServerVersion: 10, hasMore: true }));
    assert.equal(client.serverVersion, 3, 'with more to come, only up to the last change');
    assert.equal(result.latestServerVersion, 3);
    result = await client.applyRemote(JSON.stringify({ newChanges: createdChanges(2, 4), latestServerVersion: 10, hasMore: false }));
    assert.equal(client.serverVersion, 10);
    assert.equal(result.latestServerVersion, 10);
    result = await client.applyRemote(JSON.stringify({ newChanges: [], latestServerVersion: 12, hasMore: false }));
    assert.equal(client.serverVersion, 12, 'an empty last page still moves the cursor');
    assert.deepEqual(result, { applied: 0, skipped: 0, conflicts: [], latestServerVersion: 12, resynced: false });
    result = await client.applyRemote(JSON.stringify({ newChanges: [], latestServerVersion: 5, hasMore: false }));
    assert.equal(client.serverVersion, 12, 'never backwards');
    assert.equal(result.latestServerVersion, 12);
    result = await client.applyRemote(JSON.stringify([remote(13, 'x')]));
    assert.equal(client.serverVersion, 13, 'a bare array: its last version');
    result = await client.applyRemote('[]');
    assert.deepEqual(result, { applied: 0, skipped: 0, conflicts: [], latestServerVersion: 13, resynced: false });
  });

  test('the cursor survives reopen', async (t) => {
    const file = path.join(tempDir(t), 'cursor.db');
    const first = new SyncClient({ path: file });
    await first.applyRemote(JSON.stringify({ newChanges: createdChanges(5), latestServerVersion: 9, hasMore: false }));
    first.close();
    const second = openClient(t, { path: file });
    assert.equal(second.serverVersion, 9);
    assert.equal(second.list('note').length, 5);
  });

  test('re-applying the same page skips every change and changes nothing', async (t) => {
    const client = memoryClient(t);
    const changes = [...createdChanges(5), remote(6, 'n1', { type: 'UPDATED', data: { more: 1 } }), remote(7, 'n2', { type: 'DELETED', data: null })];
    const text = pageText(changes);
    const first = await client.applyRemote(text);
    assert.equal(first.applied, 7);
    const before = stateSnapshot(client, ['note'], [['note', 'n1'], ['note', 'n2']]);
    const again = await client.applyRemote(text);
    assert.deepEqual(again, { applied: 0, skipped: 7, conflicts: [], latestServerVersion: 7, resynced: false });
    assert.deepEqual(stateSnapshot(client, ['note'], [['note', 'n1'], ['note', 'n2']]), before);
  });

  test('a change older than the stored document is skipped', async (t) => {
    const client = memoryClient(t);
    await client.applyRemote(JSON.stringify([remote(10, 'a', { data: { at: 10 } })]));
    const result = await client.applyRemote(
      JSON.stringify([
        remote(4, 'a', { data: { at: 4 } }),
        remote(5, 'a', { type: 'UPDATED', data: { at: 5 } }),
        remote(6, 'a', { type: 'DELETED', data: null }),
        remote(11, 'b'),
      ]),
    );
    assert.equal(result.skipped, 3);
    assert.equal(result.applied, 1);
    assert.deepEqual(client.get('note', 'a'), { at: 10 });
    assert.equal(client.serverVersion, 11);
  });

  test("'change' fires once per page with source 'remote'; not for a rejected page", async (t) => {
    const client = memoryClient(t);
    const events = collect(client, 'change');
    await client.applyRemote(JSON.stringify({ newChanges: createdChanges(3), latestServerVersion: 5 }));
    assert.deepEqual(events, [{ source: 'remote', applied: 3, skipped: 0, latestServerVersion: 5 }]);
    await client.applyRemote(JSON.stringify({ newChanges: createdChanges(3), latestServerVersion: 5 }));
    assert.deepEqual(events[1], { source: 'remote', applied: 0, skipped: 3, latestServerVersion: 5 });
    await assertRejectsSyncError(client.applyRemote('[{'), 'INVALID_ARGUMENT');
    assert.equal(events.length, 2);
  });

  test("'conflict' fires once per conflict, as reported in the result", async (t) => {
    const client = memoryClient(t);
    await client.applyRemote(JSON.stringify([remote(1, 'a'), remote(2, 'b'), remote(3, 'c')]));
    client.patch('note', 'a', { local: 1 });
    client.patch('note', 'c', { local: 1 });
    const conflicts = collect(client, 'conflict');
    const changes = collect(client, 'change');
    const order = [];
    client.on('conflict', () => order.push('conflict'));
    client.on('change', () => order.push('change'));
    const result = await client.applyRemote(
      JSON.stringify([
        remote(4, 'a', { type: 'UPDATED', data: { x: 1 }, timestamp: 1 }),
        remote(5, 'b', { type: 'UPDATED', data: { x: 1 } }),
        remote(6, 'c', { type: 'UPDATED', data: { x: 1 }, timestamp: 1 }),
      ]),
    );
    assert.equal(result.conflicts.length, 2);
    assert.deepEqual(conflicts, result.conflicts);
    assert.deepEqual(
      conflicts.map((c) => [c.entityType, c.entityId, c.changeId, c.version, c.strategy]),
      [
        ['note', 'a', 'r4', 4, 'newest_wins'],
        ['note', 'c', 'r6', 6, 'newest_wins'],
      ],
    );
    assert.equal(changes.length, 1);
    assert.deepEqual(order, ['conflict', 'conflict', 'change']);
  });
});

describe('malformed pages change nothing', () => {
  /** A client with some state: pulled documents, a local write, a cursor. */
  async function seeded(t, options = {}) {
    const client = memoryClient(t, options);
    await client.applyRemote(JSON.stringify({ newChanges: createdChanges(3), latestServerVersion: 3 }));
    client.put('note', 'local', { mine: true });
    client.patch('note', 'n1', { edited: true });
    return client;
  }

  const good = (version, extra) => JSON.stringify(remote(version, `m${version}`, extra));
  const cases = [
    ['invalid JSON inside a change', `[${good(4)}, {"version": 5, "changeId": "r5" "type": "CREATED"}]`, /newChanges\[1\]/],
    ['an invalid literal in data', `[${good(4)}, ${good(5).replace('{"v":5}', '{"v":tru}')}]`, /newChanges\[1\]\.data/],
    ['a truncated page', `[${good(4)}, ${good(5)}`, /^Malformed JSON/],
    ['trailing content', `[${good(4)}] x`, /Malformed JSON|Trailing/],
    ['invalid UTF-8 bytes', Buffer.from([0x5b, 0xff, 0x5d]), /UTF-8/],
    ['invalid UTF-8 inside a change', Buffer.concat([Buffer.from(`[${good(4)}, ${good(5).slice(0, -2)}`), Buffer.from([0xc3, 0x28]), Buffer.from('"}]')]), /UTF-8/],
    ['an empty page', '', /Malformed JSON/],
    ['a number', '42', /Expected a pull page/],
    ['a change that is not an object', `[${good(4)}, 5]`, /^Expected a change object for newChanges\[1\] but received 5 of type number$/],
    ['a string version', `[${good(4)}, ${good(5, { version: '5' })}]`, /^Expected a positive integer for newChanges\[1\]\.version but received "5" of type string/],
    ['a fractional version', `[${good(4)}, ${good(5, { version: 5.5 })}]`, /for newChanges\[1\]\.version but received 5\.5 of type number/],
    ['a zero version', `[${good(4)}, ${good(5, { version: 0 })}]`, /for newChanges\[1\]\.version but received 0 of type number/],
    ['decreasing versions', `[${good(6)}, ${good(5)}]`, /newChanges\[1\]\.version.*5 follows 6/],
    ['a repeated version', `[${good(5)}, ${good(5)}]`, /newChanges\[1\]\.version/],
    ['an unknown change type', `[${good(4)}, ${good(5, { type: 'MOVED' })}]`, /^Expected one of "CREATED", "UPDATED", "DELETED" for newChanges\[1\]\.type but received "MOVED" of type string/],
    ['a lower-case type', `[${good(4)}, ${good(5, { type: 'created' })}]`, /for newChanges\[1\]\.type/],
    ['a missing changeId', `[${good(4)}, ${good(5, { changeId: undefined })}]`, /for newChanges\[1\]\.changeId but received undefined/],
    ['an empty changeId', `[${good(4)}, ${good(5, { changeId: '' })}]`, /for newChanges\[1\]\.changeId/],
    ['a missing entityId', `[${good(4)}, ${good(5, { entityId: undefined })}]`, /for newChanges\[1\]\.entityId but received undefined/],
    ['a numeric entityId', `[${good(4)}, ${good(5, { entityId: 5 })}]`, /for newChanges\[1\]\.entityId but received 5 of type number/],
    ['an entityId over 256 bytes', `[${good(4)}, ${good(5, { entityId: 'é'.repeat(129) })}]`, /for newChanges\[1\]\.entityId/],
    ['a missing entityType', `[${good(4)}, ${good(5, { entityType: undefined })}]`, /for newChanges\[1\]\.entityType but received undefined/],
    ['a bad entityType', `[${good(4)}, ${good(5, { entityType: 'no spaces' })}]`, /for newChanges\[1\]\.entityType but received "no spaces"/],
    ['a missing type', `[${good(4)}, ${good(5, { type: undefined })}]`, /for newChanges\[1\]\.type but received undefined/],
    ['a missing version', `[${good(4)}, ${good(5, { version: undefined })}]`, /for newChanges\[1\]\.version but received undefined/],
    ['CREATED without data', `[${good(4)}, ${good(5, { data: undefined })}]`, /for newChanges\[1\]\.data/],
    ['UPDATED with null data', `[${good(4)}, ${good(5, { type: 'UPDATED', data: null })}]`, /for newChanges\[1\]\.data/],
    ['array data', `[${good(4)}, ${good(5, { data: [1] })}]`, /^Expected an object or null for newChanges\[1\]\.data but received/],
    ['a string timestamp', `[${good(4)}, ${good(5, { timestamp: 'now' })}]`, /for newChanges\[1\]\.timestamp but received "now"/],
    ['a negative timestamp', `[${good(4)}, ${good(5, { timestamp: -1 })}]`, /for newChanges\[1\]\.timestamp/],
    ['a numeric deviceId', `[${good(4)}, ${good(5, { deviceId: 7 })}]`, /for newChanges\[1\]\.deviceId/],
    ['a duplicate key in data', `[${good(4)}, ${good(5).replace('{"v":5}', '{"v":5,"v":6}')}]`, /Duplicate key "v".*newChanges\[1\]\.data/],
    ['a lone surrogate in data', `[${good(4)}, ${good(5).replace('{"v":5}', '{"v":"\\ud800"}')}]`, /newChanges\[1\]\.data\.v/],
    ['a number JavaScript cannot hold', `[${good(4)}, ${good(5).replace('{"v":5}', '{"v":1e400}')}]`, /newChanges\[1\]\.data\.v/],
    ['an unsafe integer', `[${good(4)}, ${good(5).replace('{"v":5}', '{"v":9007199254740993}')}]`, /newChanges\[1\]\.data\.v/],
    ['data nested deeper than the limit', `[${good(4)}, ${good(5, { data: { a: JSON.parse('['.repeat(70) + ']'.repeat(70)) } })}]`, /nested deeper than the limit of 64 at newChanges\[1\]\.data/],
    ['an unknown change field nested deeper than the limit', `[${good(4)}, ${good(5, { extra: JSON.parse('['.repeat(70) + ']'.repeat(70)) })}]`, /limit of 64 at newChanges\[1\]\.extra/],
    ['newChanges that is not an array', JSON.stringify({ newChanges: { a: 1 } }), /^Expected an array of changes for page\.newChanges but received/],
    ['no newChanges', JSON.stringify({ latestServerVersion: 9 }), /^Expected an array of changes for page\.newChanges but received undefined$/],
    ['a negative latestServerVersion', JSON.stringify({ newChanges: [remote(4, 'x')], latestServerVersion: -1 }), /for page\.latestServerVersion but received -1/],
    ['a string hasMore', JSON.stringify({ newChanges: [remote(4, 'x')], hasMore: 'no' }), /for page\.hasMore but received "no"/],
  ];

  for (const [name, page, message] of cases) {
    test(`${name}: SyncError naming the offending part, nothing applied`, async (t) => {
      const client = await seeded(t);
      const ids = [['note', 'n1'], ['note', 'm4'], ['note', 'm5'], ['note', 'm6'], ['note', 'x']];
      const before = stateSnapshot(client, ['note'], ids);
      const events = collect(client, 'change');
      const error = await assertRejectsSyncError(client.applyRemote(page), /limit/.test(message.source) ? 'LIMIT_EXCEEDED' : 'INVALID_ARGUMENT', message);
      assert.ok(error instanceof SyncError);
      assert.deepEqual(stateSnapshot(client, ['note'], ids), before);
      assert.equal(events.length, 0);
    });
  }

  test('the change named is the offending one, with its changeId when it has one', async (t) => {
    const client = await seeded(t);
    const page = [...createdChanges(7, 4)];
    page[5] = { ...page[5], type: 'RENAMED' };
    await assertRejectsSyncError(client.applyRemote(JSON.stringify(page)), 'INVALID_ARGUMENT', /newChanges\[5\]\.type.*\(changeId r9\)/);
  });

  test('the depth limit follows options.limits.maxDepth', async (t) => {
    const client = await seeded(t, { limits: { maxDepth: 3 } });
    const before = stateSnapshot(client);
    await client.applyRemote(JSON.stringify([remote(4, 'ok', { data: { a: { b: [1] } } })]));
    assert.deepEqual(client.get('note', 'ok'), { a: { b: [1] } });
    const deeper = stateSnapshot(client);
    assert.notDeepEqual(deeper, before);
    await assertRejectsSyncError(
      client.applyRemote(JSON.stringify([remote(5, 'fine'), remote(6, 'deep', { data: { a: { b: [[1]] } } })])),
      'LIMIT_EXCEEDED',
      /limit of 3 at newChanges\[1\]\.data/,
    );
    assert.deepEqual(stateSnapshot(client), deeper);
  });

  test('a bad change at the end of a 5,000-change page applied in chunks of 100 applies nothing', async (t) => {
    const client = await seeded(t, { applyChunkSize: 100 });
    const ids = [['note', 'n4'], ['note', 'n5003'], ['note', 'n1']];
    const before = stateSnapshot(client, ['note'], ids);
    const events = collect(client, 'change');
    const progress = collect(client, 'progress');
    const changes = createdChanges(5000, 4);
    changes[4999] = { ...changes[4999], entityType: 'bad type' };
    await assertRejectsSyncError(
      client.applyRemote(pageText(changes)),
      'INVALID_ARGUMENT',
      /newChanges\[4999\]\.entityType.*\(changeId r5003\)/,
    );
    assert.deepEqual(stateSnapshot(client, ['note'], ids), before);
    assert.equal(client.serverVersion, 3);
    assert.equal(events.length, 0);
    assert.equal(progress.length, 0, 'nothing was applied, so nothing progressed');
    // The same page without the bad change applies in full.
    changes[4999] = remote(5003, 'n5003', { data: { i: 5003 } });
    const result = await client.applyRemote(pageText(changes));
    assert.equal(result.applied, 5000);
    assert.equal(client.serverVersion, 5003);
    assert.equal(client.list('note').length, 5004);
  });

  test('a change with a repeated key is rejected, whichever key it is', async (t) => {
    const client = await seeded(t);
    const ids = [['note', 'm4'], ['note', 'm5']];
    const before = stateSnapshot(client, ['note'], ids);
    const repeated = [
      ['version', good(4).replace('"version":4,', '"version":4,"version":99,')],
      ['type', good(4).replace('"type":"CREATED"', '"type":"CREATED","type":"DELETED"')],
      ['entityId', good(4).replace('"entityId":"m4"', '"entityId":"m4","entityId":"other"')],
      ['data', good(4).replace('"data":{"v":4}', '"data":{"v":4},"data":{"v":5}')],
      ['serverExtra', good(4).replace('{"version"', '{"serverExtra":1,"serverExtra":2,"version"')],
    ];
    for (const [key, change] of repeated) {
      assert.notEqual(change, good(4), `the ${key} case repeats a key`);
      await assertRejectsSyncError(
        client.applyRemote(`[${good(2)}, ${change}]`),
        'INVALID_ARGUMENT',
        new RegExp(`Duplicate key "${key}".*newChanges\\[1\\]`),
      );
    }
    assert.deepEqual(stateSnapshot(client, ['note'], ids), before);
  });
});

describe('applyRemote runs off the main thread', () => {
  test("'progress' reports a large page: non-decreasing, ending at the total and the page's byte length", async (t) => {
    const client = memoryClient(t, { applyChunkSize: 500 });
    const changes = createdChanges(50000);
    const bytes = Buffer.from(pageText(changes));
    const reports = collect(client, 'progress');
    const result = await client.applyRemote(bytes);
    assert.equal(result.applied, 50000);
    assert.ok(reports.length >= 1, 'at least the final report');
    for (const report of reports) {
      assert.deepEqual(Object.keys(report).sort(), ['applied', 'bytesParsed', 'total']);
      assert.equal(report.total, 50000);
      assert.equal(report.bytesParsed, bytes.length);
      assert.ok(report.applied >= 1 && report.applied <= 50000);
      assert.equal(report.applied % 500, 0, 'reported at chunk boundaries');
    }
    for (let i = 1; i < reports.length; i++) assert.ok(reports[i].applied >= reports[i - 1].applied, 'non-decreasing');
    assert.equal(reports[reports.length - 1].applied, 50000);
    assert.equal(client.list('note', { limit: 1, orderBy: '-i' })[0].i, 50000);
  });

  test("'progress' counts skipped changes too, and a string page's bytes are its UTF-8 length", async (t) => {
    const client = memoryClient(t, { applyChunkSize: 10 });
    const changes = createdChanges(30).map((change) => ({ ...change, data: { text: 'é🚀' } }));
    const text = pageText(changes);
    await client.applyRemote(text);
    const reports = collect(client, 'progress');
    const again = await client.applyRemote(text);
    assert.equal(again.skipped, 30);
    assert.deepEqual(reports[reports.length - 1], { applied: 30, total: 30, bytesParsed: Buffer.byteLength(text) });
  });

  test('a put() issued while a page is being applied completes, and both end up stored', async (t) => {
    const client = openClient(t, { path: path.join(tempDir(t), 'concurrent.db'), applyChunkSize: 200 });
    const applying = client.applyRemote(pageText(createdChanges(20000)));
    const written = client.put('note', 'local', { mine: true });
    client.patch('note', 'local', { more: 1 });
    const result = await applying;
    assert.equal(result.applied, 20000);
    assert.equal(written.type, 'CREATED');
    assert.deepEqual(client.get('note', 'local'), { mine: true, more: 1 });
    assert.equal(client.list('note').length, 20001);
    assert.deepEqual(
      client.queue.pending().map((c) => [c.type, c.entityId, c.data]),
      [['CREATED', 'local', { mine: true, more: 1 }]],
    );
  });

  test('a put() issued mid-apply gets in between two chunks, not after the rest of the page', async (t) => {
    const total = 60000;
    const client = openClient(t, { path: path.join(tempDir(t), 'between.db'), applyChunkSize: 500 });
    const puts = [];
    client.on('progress', (report) => {
      if (report.applied > total / 2) return;
      // Each report comes between two chunks. Every call that takes the client's lock counts
      // as waiting, and the worker lets waiting calls in before its next chunk, so the put
      // returns while most of the page is still to come.
      client.put('note', `local-${puts.length}`, { mine: true });
      puts.push(client.get('note', `n${total}`) === undefined ? 'before the end' : 'after the whole page');
    });
    const result = await client.applyRemote(pageText(createdChanges(total)));
    assert.equal(result.applied, total);
    assert.ok(puts.length >= 1, 'a progress report came in the first half of the page');
    assert.deepEqual(puts, puts.map(() => 'before the end'));
    assert.equal(client.list('note').length, total + puts.length);
  });

  test('calls on one client run one after another: a small page waits for a large one started before it', async (t) => {
    const client = memoryClient(t, { applyChunkSize: 100 });
    const settled = [];
    const track = (name, promise) => promise.then((result) => (settled.push(name), result));
    const large = track('large', client.applyRemote(pageText(createdChanges(3000, 1))));
    // The next version updates the first document of the large page: applied before it, it would
    // make a document that the large page's older CREATED then skips, and move the cursor past
    // changes not yet applied.
    const small = track('small', client.applyRemote(JSON.stringify([remote(3001, 'n1', { type: 'UPDATED', data: { later: true } })])));
    const [first, second] = await Promise.all([large, small]);
    assert.deepEqual(settled, ['large', 'small']);
    assert.deepEqual([first.applied, first.skipped, first.latestServerVersion], [3000, 0, 3000]);
    assert.deepEqual([second.applied, second.skipped, second.latestServerVersion], [1, 0, 3001]);
    assert.deepEqual(client.get('note', 'n1'), { i: 1, later: true });
    assert.equal(client.list('note').length, 3000);
    assert.equal(client.serverVersion, 3001);
  });

  test('a rejected page in the middle does not hold up the pages after it', async (t) => {
    const client = memoryClient(t, { applyChunkSize: 100 });
    const settled = [];
    const track = (name, promise) =>
      promise.then(
        (result) => (settled.push(name), result),
        (error) => (settled.push(name), Promise.reject(error)),
      );
    const first = track('first', client.applyRemote(pageText(createdChanges(2000, 1))));
    const bad = track('bad', client.applyRemote('[{"version": 2001'));
    const last = track('last', client.applyRemote(pageText(createdChanges(10, 2001))));
    await assertRejectsSyncError(bad, 'INVALID_ARGUMENT');
    assert.equal((await first).applied, 2000);
    assert.equal((await last).applied, 10);
    assert.deepEqual(settled, ['first', 'bad', 'last']);
    assert.equal(client.list('note').length, 2010);
    assert.equal(client.serverVersion, 2010);
  });

  test('two pages applied at once both land, and the cursor ends at the higher', async (t) => {
    const client = memoryClient(t, { applyChunkSize: 100 });
    const [first, second] = await Promise.all([
      client.applyRemote(pageText(createdChanges(3000, 1))),
      client.applyRemote(pageText(createdChanges(3000, 3001))),
    ]);
    assert.equal(first.applied + second.applied, 6000);
    assert.equal(client.list('note').length, 6000);
    assert.equal(client.serverVersion, 6000);
  });

  test('applyRemote inside transaction() rejects, and the transaction still commits', async (t) => {
    const client = memoryClient(t);
    let pending;
    client.transaction(() => {
      client.put('note', 'tx', { n: 1 });
      pending = client.applyRemote(JSON.stringify([remote(1, 'r')]));
    });
    await assertRejectsSyncError(pending, 'CONFLICT', /transaction/);
    assert.deepEqual(client.get('note', 'tx'), { n: 1 });
    assert.equal(client.get('note', 'r'), undefined);
    assert.equal(client.serverVersion, 0);
  });

  /** Closes the client at a point of the apply chosen by `when`, then checks the reopened file. */
  async function closeWhileApplying(t, when) {
    const file = path.join(tempDir(t), `close-${when}.db`);
    const client = new SyncClient({ path: file, applyChunkSize: 100 });
    t.after(() => client.close());
    const total = 30000;
    if (when === 'progress') client.once('progress', () => client.close());
    const applying = client.applyRemote(pageText(createdChanges(total)));
    if (when === 'at once') client.close();
    if (when === 'next tick') setImmediate(() => client.close());
    let outcome;
    try {
      outcome = await applying;
    } catch (error) {
      outcome = error;
    }
    if (outcome instanceof Error) {
      assert.ok(outcome instanceof SyncError, outcome.stack);
      assert.equal(outcome.code, 'CLOSED');
    } else {
      assert.equal(outcome.applied, total);
    }
    assert.equal(client.isOpen, false);

    const reopened = openClient(t, { path: file });
    const cursor = reopened.serverVersion;
    assert.ok(cursor >= 0 && cursor <= total);
    if (!(outcome instanceof Error)) assert.equal(cursor, total);
    // Every change up to the cursor is applied, none above.
    const stored = reopened.list('note', { orderBy: 'i' }).map((doc) => doc.i);
    assert.equal(stored.length, cursor);
    assert.deepEqual(stored, Array.from({ length: cursor }, (_, i) => i + 1));
    // The rest applies cleanly afterwards.
    const rest = await reopened.applyRemote(pageText(createdChanges(total)));
    assert.equal(rest.applied, total - cursor);
    assert.equal(rest.skipped, cursor);
    assert.equal(reopened.serverVersion, total);
    return { outcome, cursor };
  }

  test('close() right after applyRemote(): CLOSED or done, and the file is consistent', async (t) => {
    await closeWhileApplying(t, 'at once');
  });

  test('close() on the next turn of the event loop: CLOSED or done, and the file is consistent', async (t) => {
    await closeWhileApplying(t, 'next tick');
  });

  test('a Buffer overwritten mid-page: INVALID_ARGUMENT or done, and only whole valid changes are stored', async (t) => {
    const client = memoryClient(t, { applyChunkSize: 100 });
    const count = 20000;
    const bytes = Buffer.from(pageText(createdChanges(count)));
    let overwrittenAt;
    client.once('progress', (report) => {
      overwrittenAt = report.applied;
      bytes.fill(0x20); // the rest of the page becomes blanks under the apply
    });
    const outcome = await client.applyRemote(bytes).then(
      (result) => result,
      (error) => error,
    );
    if (outcome instanceof Error) {
      assert.ok(outcome instanceof SyncError, String(outcome));
      assert.equal(outcome.code, 'INVALID_ARGUMENT');
      assert.match(outcome.message, /changed after it was validated/);
      assert.ok(overwrittenAt < count, 'rejected only when overwritten mid-page');
    } else {
      assert.equal(outcome.applied, count);
    }
    // Every stored document is a whole change of the page, and the cursor is at the last of them.
    const stored = client.list('note');
    assert.ok(stored.length >= overwrittenAt, `${stored.length} stored, ${overwrittenAt} applied when overwritten`);
    assert.equal(client.serverVersion, stored.length);
    for (const doc of stored) assert.deepEqual(Object.keys(doc), ['i']);
    assert.equal(new Set(stored.map((doc) => doc.i)).size, stored.length);
    assert.equal(Math.max(...stored.map((doc) => doc.i)), stored.length);
    // The client goes on: the page again, intact, applies the rest.
    const again = await client.applyRemote(Buffer.from(pageText(createdChanges(count))));
    assert.equal(again.applied, count - stored.length);
    assert.equal(client.serverVersion, count);
  });

  test('a resizable ArrayBuffer shrunk right after applyRemote(): the page still applies whole', async (t) => {
    const client = memoryClient(t, { applyChunkSize: 100 });
    const bytes = Buffer.from(pageText(createdChanges(5000)));
    const resizable = new ArrayBuffer(bytes.length, { maxByteLength: bytes.length * 2 });
    new Uint8Array(resizable).set(bytes);
    const applying = client.applyRemote(new Uint8Array(resizable));
    resizable.resize(0);
    const result = await applying;
    assert.equal(result.applied, 5000);
    assert.equal(client.list('note').length, 5000);
  });

  test("close() from a 'progress' listener, mid-page: the cursor is the last applied change", async (t) => {
    const { outcome, cursor } = await closeWhileApplying(t, 'progress');
    if (outcome instanceof Error) assert.match(outcome.message, new RegExp(`up to version ${cursor}\\b`));
  });
});
