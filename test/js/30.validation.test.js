'use strict';

// Every record field is validated; a rejected change leaves the queue exactly as it was.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');

const { memoryClient, assertSyncError, snapshot, created } = require('./helpers');

const base = () => ({ changeId: 'probe', type: 'CREATED', entityType: 'note', entityId: 'e1', data: { a: 1 } });
const without = (key) => {
  const change = base();
  delete change[key];
  return change;
};
const withField = (key, value) => ({ ...base(), [key]: value });

/** An object nested `levels` deep, counting itself: nested(1) is {}. */
function nested(levels) {
  let value = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

function circular() {
  const value = { a: 1, child: {} };
  value.child.parent = value;
  return value;
}

/**
 * A queue with a few rows (pending, in flight, coalesced) so that "unchanged"
 * means something, and a check that the probe changeId stayed free.
 */
function seeded(t, options) {
  const client = memoryClient(t, options);
  client.queue.enqueue(created('seed-1', { v: 1 }, { changeId: 'seed-1' }));
  client.queue.enqueue(created('seed-2', { v: 2 }, { changeId: 'seed-2' }));
  client._handle.takeBatch(1);
  client.queue.enqueue({ type: 'UPDATED', entityType: 'note', entityId: 'seed-2', data: { w: 3 } });
  return client;
}

function expectRejected(client, call, code, message) {
  const before = snapshot(client);
  const error = assertSyncError(call, code, message);
  assert.deepEqual(snapshot(client), before, `the queue changed after: ${error.message}`);
  return error;
}

// [title, change, code, message pattern]
const enqueueCases = [
  // the record itself
  ['null', null, 'INVALID_ARGUMENT', /^Expected an object for change but received null$/],
  ['an array', [base()], 'INVALID_ARGUMENT', /^Expected an object for change but received an array/],
  ['a string', JSON.stringify(base()), 'INVALID_ARGUMENT', /^Expected an object for change but received .* of type string$/],
  ['a number', 42, 'INVALID_ARGUMENT', /^Expected an object for change but received 42 of type number$/],
  ['a Map', new Map([['type', 'CREATED']]), 'INVALID_ARGUMENT', /^Expected an object for change but received an object of type Map$/],
  ['an unknown field', withField('entity', 'x'), 'INVALID_ARGUMENT', /Unknown field "entity" in change/],
  // type
  ['type missing', without('type'), 'INVALID_ARGUMENT', /^Expected one of "CREATED", "UPDATED", "DELETED" for change\.type but received undefined$/],
  ['type lower case', withField('type', 'created'), 'INVALID_ARGUMENT', /for change\.type but received "created" of type string$/],
  ['type unknown', withField('type', 'MOVED'), 'INVALID_ARGUMENT', /for change\.type/],
  ['type a number', withField('type', 1), 'INVALID_ARGUMENT', /for change\.type but received 1 of type number$/],
  ['type null', withField('type', null), 'INVALID_ARGUMENT', /for change\.type but received null$/],
  // entityType
  ['entityType missing', without('entityType'), 'INVALID_ARGUMENT', /^Expected a string matching \[A-Za-z0-9_.-\]\{1,64\} for change\.entityType but received undefined$/],
  ['entityType empty', withField('entityType', ''), 'INVALID_ARGUMENT', /for change\.entityType but received "" of type string$/],
  ['entityType with a space', withField('entityType', 'log entry'), 'INVALID_ARGUMENT', /for change\.entityType/],
  ['entityType with a slash', withField('entityType', 'a/b'), 'INVALID_ARGUMENT', /for change\.entityType/],
  ['entityType non-ASCII', withField('entityType', 'notë'), 'INVALID_ARGUMENT', /for change\.entityType/],
  ['entityType 65 characters', withField('entityType', 'x'.repeat(65)), 'INVALID_ARGUMENT', /for change\.entityType/],
  ['entityType a number', withField('entityType', 5), 'INVALID_ARGUMENT', /for change\.entityType but received 5 of type number$/],
  // entityId
  ['entityId missing', without('entityId'), 'INVALID_ARGUMENT', /^Expected a non-empty string of at most 256 bytes for change\.entityId but received undefined$/],
  ['entityId empty', withField('entityId', ''), 'INVALID_ARGUMENT', /for change\.entityId but received "" of type string$/],
  ['entityId 257 bytes', withField('entityId', 'x'.repeat(257)), 'INVALID_ARGUMENT', /at most 256 bytes for change\.entityId/],
  ['entityId 86 characters but 258 bytes', withField('entityId', '€'.repeat(86)), 'INVALID_ARGUMENT', /for change\.entityId/],
  ['entityId a number', withField('entityId', 7), 'INVALID_ARGUMENT', /for change\.entityId but received 7 of type number$/],
  ['entityId null', withField('entityId', null), 'INVALID_ARGUMENT', /for change\.entityId but received null$/],
  ['entityId a lone surrogate', withField('entityId', '\uD800'), 'INVALID_ARGUMENT', /for change\.entityId/],
  // data
  ['data missing on CREATED', without('data'), 'INVALID_ARGUMENT', /^Expected an object for change\.data but received nothing/],
  ['data missing on UPDATED', { ...without('data'), type: 'UPDATED' }, 'INVALID_ARGUMENT', /for change\.data/],
  ['data null on CREATED', withField('data', null), 'INVALID_ARGUMENT', /for change\.data/],
  ['data an array', withField('data', [1, 2]), 'INVALID_ARGUMENT', /^Expected an object or null for change\.data but received an array$/],
  ['data a string', withField('data', '{"a":1}'), 'INVALID_ARGUMENT', /for change\.data but received .* of type string$/],
  ['data a number', withField('data', 3), 'INVALID_ARGUMENT', /for change\.data but received 3 of type number$/],
  ['data a boolean', withField('data', true), 'INVALID_ARGUMENT', /for change\.data but received true of type boolean$/],
  ['data with a BigInt', withField('data', { n: 10n }), 'INVALID_ARGUMENT', /JSON-serializable.*for change.*BigInt/],
  ['data with a nested BigInt', withField('data', { list: [{ n: 1n }] }), 'INVALID_ARGUMENT', /BigInt/],
  ['circular data', withField('data', circular()), 'INVALID_ARGUMENT', /JSON-serializable.*circular/],
  ['data with a lone surrogate', withField('data', { s: 'ok \uDC00 no' }), 'INVALID_ARGUMENT', /change\.data\.s/],
  ['data 65 levels deep (default limit 64)', withField('data', nested(65)), 'LIMIT_EXCEEDED', /deeper than the limit of 64 at change\.data(\.a)+$/],
  ['data 65 levels deep through arrays', withField('data', { a: JSON.parse(`${'['.repeat(64)}${']'.repeat(64)}`) }), 'LIMIT_EXCEEDED', /limit of 64/],
  // changeId
  ['changeId empty', withField('changeId', ''), 'INVALID_ARGUMENT', /for change\.changeId but received "" of type string$/],
  ['changeId a number', withField('changeId', 12), 'INVALID_ARGUMENT', /for change\.changeId but received 12 of type number$/],
  ['changeId 257 bytes', withField('changeId', 'c'.repeat(257)), 'INVALID_ARGUMENT', /for change\.changeId/],
  // baseVersion
  ['baseVersion negative', withField('baseVersion', -1), 'INVALID_ARGUMENT', /^Expected a non-negative integer or null for change\.baseVersion but received -1 of type number$/],
  ['baseVersion fractional', withField('baseVersion', 1.5), 'INVALID_ARGUMENT', /for change\.baseVersion/],
  ['baseVersion a string', withField('baseVersion', '3'), 'INVALID_ARGUMENT', /for change\.baseVersion but received "3" of type string$/],
  // timestamp
  ['timestamp negative', withField('timestamp', -1), 'INVALID_ARGUMENT', /for change\.timestamp but received -1 of type number$/],
  ['timestamp fractional', withField('timestamp', 1.5), 'INVALID_ARGUMENT', /for change\.timestamp/],
  ['timestamp an ISO string', withField('timestamp', '2024-01-01T00:00:00Z'), 'INVALID_ARGUMENT', /for change\.timestamp/],
  ['timestamp past year 275760', withField('timestamp', 8.64e15 + 1), 'INVALID_ARGUMENT', /for change\.timestamp/],
  // tenantId, userId
  ['tenantId empty', withField('tenantId', ''), 'INVALID_ARGUMENT', /for change\.tenantId but received "" of type string$/],
  ['tenantId a number', withField('tenantId', 1), 'INVALID_ARGUMENT', /for change\.tenantId/],
  ['userId a boolean', withField('userId', false), 'INVALID_ARGUMENT', /for change\.userId but received false of type boolean$/],
  ['userId 257 bytes', withField('userId', 'u'.repeat(257)), 'INVALID_ARGUMENT', /for change\.userId/],
];

describe('enqueue rejects invalid records and leaves the queue unchanged', () => {
  for (const [title, change, code, message] of enqueueCases) {
    test(title, (t) => {
      const client = seeded(t);
      expectRejected(client, () => client.queue.enqueue(change), code, message);
      // The rejected changeId was not remembered anywhere.
      assert.equal(client.queue.enqueue(base()).outcome, 'queued');
    });
  }

  test('enqueueMany rejects the same records, naming their index', (t) => {
    const client = seeded(t);
    for (const [title, change, code] of enqueueCases) {
      if (change === null || typeof change !== 'object' || Array.isArray(change) || change instanceof Map) continue;
      const batch = [created('m0'), created('m1'), created('m2'), change];
      const error = expectRejected(client, () => client.queue.enqueueMany(batch), code);
      if (!/JSON-serializable/.test(error.message)) assert.match(error.message, /changes\[3\]/, title);
    }
  });

  test('the boundaries themselves are accepted', (t) => {
    const client = memoryClient(t);
    const accepted = [
      withField('entityType', 'Az09_.-'),
      withField('entityType', 'x'.repeat(64)),
      withField('entityId', 'x'.repeat(256)),
      withField('entityId', '€'.repeat(85)), // 255 bytes
      withField('changeId', 'c'.repeat(256)),
      withField('data', nested(64)),
      withField('baseVersion', 0),
      withField('baseVersion', null),
      withField('timestamp', 0),
      withField('timestamp', 8.64e15),
      withField('tenantId', null),
      withField('userId', 'u'.repeat(256)),
      withField('data', { big: Number.MAX_SAFE_INTEGER, small: -Number.MAX_SAFE_INTEGER, f: 0.1, e: 1e300 }),
      { ...without('data'), type: 'DELETED' },
    ];
    for (const [i, change] of accepted.entries()) {
      const result = client.queue.enqueue({ ...change, changeId: `ok-${i}`, entityId: change.entityId === 'e1' ? `e${i}` : change.entityId });
      assert.equal(result.outcome, 'queued', JSON.stringify(change).slice(0, 80));
    }
    assert.equal(client.queue.stats().pending, accepted.length);
  });
});

describe('configured limits', () => {
  test('maxDepth lowers the depth limit', (t) => {
    const client = seeded(t, { limits: { maxDepth: 3 } });
    expectRejected(client, () => client.queue.enqueue(withField('data', nested(4))), 'LIMIT_EXCEEDED', /limit of 3/);
    assert.equal(client.queue.enqueue(withField('data', nested(3))).outcome, 'queued');
  });

  test('maxDepth raises the depth limit', (t) => {
    const client = memoryClient(t, { limits: { maxDepth: 100 } });
    assert.equal(client.queue.enqueue(withField('data', nested(100))).outcome, 'queued');
    assertSyncError(() => client.queue.enqueue({ ...withField('data', nested(101)), changeId: 'x' }), 'LIMIT_EXCEEDED');
  });

  test('maxDocumentBytes bounds the data document', (t) => {
    const client = seeded(t, { limits: { maxDocumentBytes: 100 } });
    expectRejected(
      client,
      () => client.queue.enqueue(withField('data', { text: 'x'.repeat(200) })),
      'LIMIT_EXCEEDED',
      /larger than the limit of 100 bytes/,
    );
    expectRejected(
      client,
      () => client.queue.importLegacy([{ ...withField('data', { list: Array(60).fill(1) }) }]),
      'LIMIT_EXCEEDED',
      /records\[0\]/,
    );
    assert.equal(client.queue.enqueue(withField('data', { text: 'x'.repeat(50) })).outcome, 'queued');
  });

  test('the default document limit is 1 MB', (t) => {
    const client = seeded(t);
    expectRejected(
      client,
      () => client.queue.enqueue(withField('data', { text: 'x'.repeat(1024 * 1024) })),
      'LIMIT_EXCEEDED',
    );
    assert.equal(client.queue.enqueue(withField('data', { text: 'x'.repeat(1000 * 1000) })).outcome, 'queued');
  });
});

describe('JSON text given to importLegacy', () => {
  const record = (data) => `[{"changeId":"probe","type":"CREATED","entityType":"note","entityId":"e1","data":${data}}]`;

  const cases = [
    ['2^53 + 1', record('{"n":9007199254740993}'), /9007199254740993 cannot be held exactly by a JavaScript number at records\[0\]\.data\.n/],
    ['-(2^53 + 1)', record('{"n":-9007199254740993}'), /cannot be held exactly/],
    ['2^64', record('{"n":18446744073709551616}'), /records\[0\]\.data/],
    ['1e400', record('{"n":1e400}'), /records\[0\]\.data/],
    ['a duplicate key', record('{"a":1,"a":2}'), /Duplicate key "a" in object at records\[0\]\.data$/],
    ['a nested duplicate key', record('{"a":{"b":1,"c":2,"b":3}}'), /Duplicate key "b" in object at records\[0\]\.data\.a$/],
    ['a duplicate key spelled with an escape', record('{"a":1,"\\u0061":2}'), /Duplicate key "a"/],
    ['a lone surrogate escape', record('{"s":"\\ud800"}'), /records\[0\]\.data\.s/],
    ['truncated JSON', '[{"changeId":', /records/],
    ['not JSON', 'not json', /records/],
    ['the empty string', '', /records/],
    ['an object instead of an array', '{"changes":[]}', /^Expected an array of change records for records/],
    ['trailing content', '[] []', /records/],
    ['an element that is not an object', '[1]', /for records\[0\] but received 1 of type number$/],
    ['an unterminated string in data', record('{"s":"abc}'), /records/],
    ['data as a string', record('"{}"'), /for records\[0\]\.data/],
  ];
  for (const [title, text, message] of cases) {
    test(`${title} is INVALID_ARGUMENT and imports nothing`, (t) => {
      const client = seeded(t);
      expectRejected(client, () => client.queue.importLegacy(text), 'INVALID_ARGUMENT', message);
      // The same record with clean data still imports: the rejection was about the data.
      assert.deepEqual(client.queue.importLegacy(record('{"a":1}')), { imported: 1, skipped: 0 });
    });
  }

  test('2^53 itself is accepted and kept exactly', (t) => {
    const client = memoryClient(t);
    client.queue.importLegacy(record('{"n":9007199254740992,"m":-9007199254740992,"f":1.5e-7}'));
    assert.deepEqual(client.queue.pending()[0].data, { n: 2 ** 53, m: -(2 ** 53), f: 1.5e-7 });
  });

  test(
    'a duplicate key at the record level is INVALID_ARGUMENT',
    (t) => {
      const client = seeded(t);
      const text = '[{"changeId":"probe","type":"CREATED","entityType":"note","entityId":"e1","entityId":"e2","data":{}}]';
      expectRejected(client, () => client.queue.importLegacy(text), 'INVALID_ARGUMENT', /Duplicate|entityId/);
    },
  );

  test('a bad record after good ones imports nothing', (t) => {
    const client = seeded(t);
    const text = `[${[0, 1, 2]
      .map((i) => `{"changeId":"g${i}","type":"CREATED","entityType":"note","entityId":"g${i}","data":{}}`)
      .join(',')},{"changeId":"bad","type":"CREATED","entityType":"note","entityId":"b","data":{"n":9007199254740993}}]`;
    expectRejected(client, () => client.queue.importLegacy(text), 'INVALID_ARGUMENT', /records\[3\]/);
    assert.deepEqual(client.queue.importLegacy(text.replace('9007199254740993', '1')), { imported: 4, skipped: 0 });
  });

  test('legacy field errors name the record', (t) => {
    const client = seeded(t);
    const cases = [
      [[{ id: 'x', entity_type: 'bad type', action: 'create', entity_id: '1', payload_json: '{}' }], /records\[0\]\.entity_type/],
      [[{ id: 'x', entity_type: 'note', action: 'archive', entity_id: '1', payload_json: '{}' }], /records\[0\]\.action/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1', payload_json: 'not json' }], /records\[0\]\.payload_json/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1', payload_json: '[1]' }], /records\[0\]\.payload_json/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1', payload_json: '{"a":1,"a":2}' }], /Duplicate key/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1', payload_json: '{}', created_at: 'yesterday' }], /records\[0\]\.created_at/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1', payload_json: '{}', retry_count: -1 }], /records\[0\]\.retry_count/],
      [[{ id: 'x', entity_type: 'note', action: 'create', entity_id: '1' }], /records\[0\]\.data/],
    ];
    for (const [records, message] of cases) {
      expectRejected(client, () => client.queue.importLegacy(records), 'INVALID_ARGUMENT', message);
    }
  });
});
