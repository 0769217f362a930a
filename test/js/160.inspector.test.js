'use strict';

// deltasync/inspector's HTTP API, through a real HTTP client against an Express app whose data
// was made by three real devices (fixtures/inspector-world.js): what each view says, who is
// refused, CSRF protection, and bad input answered with a 4xx and a JSON body. The page itself
// is driven in Chromium by 162.inspector-browser.test.js.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startWorld } = require('./fixtures/inspector-world');
const { SyncServer } = require('deltasync');
const { createInspector } = require('deltasync/inspector');

let world;
before(async () => {
  world = await startWorld();
});
after(() => world.close());

async function get(path, headers = world.adminHeaders) {
  const response = await fetch(`${world.inspectorUrl}${path}`, { headers, redirect: 'manual' });
  const text = await response.text();
  const json = /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : undefined;
  return { status: response.status, headers: response.headers, text, json };
}

async function post(path, body, headers = {}) {
  const response = await fetch(`${world.inspectorUrl}${path}`, {
    method: 'POST',
    headers: { ...world.adminHeaders, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function csrf() {
  return (await get('api/session')).json.csrfToken;
}

// ---- who may come in

test('everything, the page included, is refused to a non-admin with 403 and a JSON body', async () => {
  for (const path of ['', 'index.html', 'assets/inspector.js', 'api/session', 'api/users', 'api/users/alice/conflicts', 'api/activity', 'api/nothing']) {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }]) {
      const response = await get(path, headers);
      assert.equal(response.status, 403, path);
      assert.equal(response.json.error.code, 'FORBIDDEN', path);
    }
  }
  const refused = await fetch(`${world.inspectorUrl}api/users/alice/conflicts/1/resolve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ use: 'server' }),
  });
  assert.equal(refused.status, 403);
  const open = await get('api/users/alice/conflicts');
  assert.equal(open.json.conflicts.length, 1, 'a refused resolve changes nothing');
});

test('a path that reads as another host is refused before anything else, never redirected', async () => {
  const { port } = new URL(world.inspectorUrl);
  for (const target of ['//evil.example/', '//evil.example/login?token=x', '//x/api/users']) {
    const answer = await new Promise((resolve, reject) => {
      // A raw request line: fetch() would normalize the path.
      const request = http.request({ host: '127.0.0.1', port, path: `/inspect${target}`, headers: world.adminHeaders }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode, location: response.headers.location, text }));
      });
      request.on('error', reject);
      request.end();
    });
    assert.equal(answer.location, undefined, target);
    assert.ok(answer.status === 400 || answer.status === 404, `${target}: ${answer.status}`);
  }
  const handler = createInspector(new SyncServer({ path: ':memory:' }), { authenticate: () => 'ops' });
  const direct = http.createServer(handler);
  await new Promise((resolve) => direct.listen(0, '127.0.0.1', resolve));
  try {
    const answer = await new Promise((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port: direct.address().port, path: '//evil.example/' }, (response) => {
        response.resume();
        resolve({ status: response.statusCode, location: response.headers.location });
      });
      request.on('error', reject);
      request.end();
    });
    assert.deepEqual(answer, { status: 400, location: undefined });
  } finally {
    direct.close();
  }
});

test('authenticate may answer with a promise; a throw or a rejection refuses', async () => {
  const server = new SyncServer({ path: ':memory:' });
  let seen = 0;
  const answers = {
    promise: async () => ({ email: 'ops@example.com', seen: seen++ }),
    throws: () => {
      throw new Error('directory down');
    },
    rejects: async () => Promise.reject(new Error('directory down')),
  };
  try {
    for (const [kind, authenticate] of Object.entries(answers)) {
      const handler = createInspector(server, { authenticate });
      const httpServer = http.createServer(handler);
      await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
      const response = await fetch(`http://127.0.0.1:${httpServer.address().port}/api/session`);
      const body = await response.json();
      if (kind === 'promise') {
        assert.equal(response.status, 200);
        assert.equal(body.admin, 'ops@example.com', 'the identity is named by its email');
        assert.equal(body.mode, 'server');
        const again = await (await fetch(`http://127.0.0.1:${httpServer.address().port}/api/session`)).json();
        assert.equal(again.csrfToken, body.csrfToken, 'an identity whose other fields change keeps its CSRF token');
      } else {
        assert.equal(response.status, 403, kind);
        assert.match(body.error.message, /directory down/);
      }
      await new Promise((resolve) => httpServer.close(resolve));
    }
  } finally {
    server.close();
  }
});

test('createInspector refuses what is not a server or has no authenticate', () => {
  const server = new SyncServer({ path: ':memory:' });
  try {
    assert.throws(() => createInspector({}, { authenticate: () => 'a' }), { code: 'INVALID_ARGUMENT', message: /SyncServer/ });
    assert.throws(() => createInspector(server, {}), { code: 'INVALID_ARGUMENT', message: /authenticate/ });
    assert.throws(() => createInspector(server, { authenticate: () => 'a', extra: 1 }), { code: 'INVALID_ARGUMENT' });
  } finally {
    server.close();
  }
});

// ---- the page

test('the page is served with a strict CSP and no asset from elsewhere', async () => {
  const redirect = await fetch(world.inspectorUrl.replace(/\/$/, ''), { headers: world.adminHeaders, redirect: 'manual' });
  assert.equal(redirect.status, 308, 'the mount point without its slash is sent to the page');
  assert.equal(redirect.headers.get('location'), '/inspect/');
  const page = await get('');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.doesNotMatch(page.text, /https?:\/\//, 'the page names no other site');
  const script = await get('assets/inspector.js');
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  assert.doesNotMatch(script.text, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, 'the bundle never parses markup');
});

// ---- the views

test('users: head version, devices, last activity and open conflicts of each', async () => {
  const { json } = await get('api/users');
  assert.deepEqual(json.users.map((user) => user.userId), ['alice', 'bob']);
  const [alice, bob] = json.users;
  assert.equal(alice.headVersion, 5);
  assert.equal(alice.deviceCount, 2);
  assert.equal(alice.openConflicts, 1);
  assert.equal(typeof alice.lastActivityAt, 'number');
  assert.equal(bob.headVersion, 2);
  assert.equal(bob.openConflicts, 0);
  assert.equal(json.next, null);
  const first = await get('api/users?limit=1');
  assert.deepEqual(first.json.users.map((user) => user.userId), ['alice']);
  assert.equal(first.json.next, 'alice');
  const second = await get(`api/users?limit=1&after=${first.json.next}`);
  assert.deepEqual(second.json.users.map((user) => user.userId), ['bob']);
  assert.equal(second.json.next, null);
});

test('devices: pushes, pulls and lag against the head', async () => {
  const { json } = await get('api/users/alice/devices');
  assert.equal(json.headVersion, 5);
  const byId = Object.fromEntries(json.devices.map((device) => [device.deviceId, device]));
  assert.deepEqual(Object.keys(byId), ['laptop', 'phone']);
  assert.equal(byId.laptop.lag, 1, 'the phone wrote after the laptop last pulled');
  assert.equal(byId.laptop.lastSeenVersion, 4);
  assert.equal(byId.phone.lag, 0);
  assert.equal(byId.phone.conflictsReported, 1);
  assert.equal(byId.phone.openConflicts, 1);
  const none = await get('api/users/nobody/devices');
  assert.deepEqual(none.json, { userId: 'nobody', headVersion: 0, openConflicts: 0, devices: [], next: null });
});

test('the change log: newest first, paged, filtered', async () => {
  const all = await get('api/users/alice/changes');
  assert.deepEqual(all.json.changes.map((change) => change.version), [5, 4, 3, 2, 1]);
  const page = await get('api/users/alice/changes?limit=2');
  assert.deepEqual(page.json.changes.map((change) => change.version), [5, 4]);
  assert.equal(page.json.next, 4);
  const older = await get(`api/users/alice/changes?limit=2&before=${page.json.next}`);
  assert.deepEqual(older.json.changes.map((change) => change.version), [3, 2]);
  const last = await get('api/users/alice/changes?limit=2&before=2');
  assert.deepEqual(last.json.changes.map((change) => change.version), [1]);
  assert.equal(last.json.next, null);

  const byEntity = await get('api/users/alice/changes?entityType=task&entityId=t1');
  assert.deepEqual(byEntity.json.changes.map((change) => change.version), [4, 1]);
  const byDevice = await get('api/users/alice/changes?deviceId=phone');
  assert.deepEqual(byDevice.json.changes.map((change) => change.entityId), ['t3']);
  const created = await get('api/users/alice/changes?changeType=CREATED');
  assert.deepEqual(created.json.changes.map((change) => change.entityId), ['t3', 't2', 't1']);
  const update = (await get('api/users/alice/changes?changeType=UPDATED&entityId=t2')).json.changes[0];
  assert.deepEqual(update.data, { done: true }, 'an update shows the fields it set');
  assert.equal(update.deviceId, 'laptop');
  assert.equal(update.baseVersion, 2);
});

test('an entity: every version with the whole document after it', async () => {
  const { json } = await get('api/users/alice/entities/task/t1');
  assert.deepEqual(json.current, { version: 4, deleted: false, data: { title: 'Write the final report', done: false, owner: 'alice' } });
  assert.deepEqual(json.versions.map((version) => [version.version, version.type]), [[4, 'UPDATED'], [1, 'CREATED']]);
  assert.deepEqual(json.versions[0].data, { title: 'Write the final report' });
  assert.deepEqual(json.versions[0].state, { title: 'Write the final report', done: false, owner: 'alice' });
  assert.deepEqual(json.versions[1].state, { title: 'Write the report', done: false, owner: 'alice' });
  assert.equal(json.olderOmitted, 0);
  const newest = await get('api/users/alice/entities/task/t1?limit=1');
  assert.deepEqual(newest.json.versions.map((version) => version.version), [4]);
  assert.equal(newest.json.olderOmitted, 1);
  const odd = await get(`api/users/alice/entities/${encodeURIComponent('a/b type')}/${encodeURIComponent('id with/slash')}`);
  assert.equal(odd.status, 200, 'encoded path segments are decoded');
  assert.deepEqual([odd.json.entityType, odd.json.entityId, odd.json.current], ['a/b type', 'id with/slash', null]);
});

test('open conflicts carry the base the device started from', async () => {
  const { json } = await get('api/users/alice/conflicts');
  assert.equal(json.conflicts.length, 1);
  const [conflict] = json.conflicts;
  assert.equal(conflict.deviceId, 'phone');
  assert.deepEqual(conflict.baseData, { title: 'Write the report', done: false, owner: 'alice' });
  assert.deepEqual(conflict.serverData, { title: 'Write the final report', done: false, owner: 'alice' });
  assert.deepEqual(conflict.clientData, { title: 'Write the report today', done: true });
  assert.equal(conflict.serverVersion, 4);
  assert.equal(json.next, null);
});

test('activity: changes and conflicts per UTC day, devices by lag', async () => {
  const everyone = (await get('api/activity?days=7')).json;
  assert.equal(everyone.days, 7);
  const today = Math.floor(Date.now() / 86400000) * 86400000;
  assert.equal(everyone.since, today - 6 * 86400000);
  assert.deepEqual(everyone.changesPerDay, [{ day: today, count: 7 }]);
  assert.deepEqual(everyone.conflictsPerDay, [{ day: today, count: 1 }]);
  assert.deepEqual(everyone.deviceLag[0], { userId: 'alice', deviceId: 'laptop', lag: 1 });
  const bob = (await get('api/activity?userId=bob')).json;
  assert.deepEqual(bob.changesPerDay, [{ day: today, count: 2 }]);
  assert.deepEqual(bob.conflictsPerDay, []);
  assert.deepEqual(bob.deviceLag, [{ userId: 'bob', deviceId: 'tablet', lag: 0 }]);
});

test('hostile document content comes back as JSON data, never as markup', async () => {
  const { json, headers } = await get('api/users/bob/entities/note/hostile');
  assert.match(headers.get('content-type'), /^application\/json/);
  assert.deepEqual(json.current.data, world.HOSTILE);
});

// ---- bad input

test('bad query values, routes and bodies are a 4xx with a JSON error', async () => {
  const cases = [
    ['api/users?limit=0', 400, 'INVALID_ARGUMENT', /limit/],
    ['api/users?limit=501', 400, 'INVALID_ARGUMENT', /1 to 500/],
    ['api/users?limit=abc', 400, 'INVALID_ARGUMENT', /integer for limit/],
    ['api/users?limit=-1', 400, 'INVALID_ARGUMENT', /integer for limit/],
    ['api/users?limit=99999999999999999999', 400, 'INVALID_ARGUMENT', /integer for limit/],
    ['api/users?sort=name', 400, 'INVALID_ARGUMENT', /Unknown query parameter "sort"/],
    ['api/users?__proto__=x', 400, 'INVALID_ARGUMENT', /Unknown query parameter "__proto__"/],
    ['api/users?constructor=x', 400, 'INVALID_ARGUMENT', /Unknown query parameter "constructor"/],
    ['api/users/alice/changes?changeType=PATCHED', 400, 'INVALID_ARGUMENT', /CREATED, UPDATED or DELETED/],
    ['api/users/alice/changes?before=1.5', 400, 'INVALID_ARGUMENT', /before/],
    ['api/activity?days=0', 400, 'INVALID_ARGUMENT', /days/],
    ['api/activity?days=367', 400, 'INVALID_ARGUMENT', /1 to 366/],
    ['api/users/%E0%A4%A/devices', 400, 'INVALID_ARGUMENT', /percent-encoding/],
    ['api/users/alice/nothing', 404, 'NOT_FOUND', /No inspector route/],
    ['api/users/alice/conflicts/1/resolve', 400, 'INVALID_ARGUMENT', /GET is not allowed/],
  ];
  for (const [path, status, code, message] of cases) {
    const response = await get(path);
    assert.equal(response.status, status, path);
    assert.equal(response.json.error.code, code, path);
    assert.match(response.json.error.message, message, path);
  }
  const token = await csrf();
  const resolve = 'api/users/alice/conflicts/1/resolve';
  const bodies = [
    ['{"use":', 400, /Malformed JSON/],
    [{ use: 'everything' }, 400, /use/],
    [{ use: 'merged' }, 400, /data/],
    [{ use: 'merged', data: { ['__proto__']: 1 } }, 400, /__proto__/],
  ];
  for (const [body, status, message] of bodies) {
    const response = await post(resolve, body, { 'x-deltasync-csrf': token });
    assert.equal(response.status, status, JSON.stringify(body));
    assert.match(response.json.error.message, message);
  }
  const notOpen = await post('api/users/alice/conflicts/99/resolve', { use: 'server' }, { 'x-deltasync-csrf': token });
  assert.equal(notOpen.status, 404);
  const badId = await post('api/users/alice/conflicts/0x1/resolve', { use: 'server' }, { 'x-deltasync-csrf': token });
  assert.equal(badId.status, 400);
  assert.equal((await get('api/users/alice/conflicts')).json.conflicts.length, 1, 'nothing was resolved');
});

// ---- CSRF, then the resolution

test('a state-changing call needs the CSRF token, JSON and the same origin', async () => {
  const token = await csrf();
  const resolve = 'api/users/alice/conflicts/1/resolve';
  const refused = [
    [{}, 403, /x-deltasync-csrf/],
    [{ 'x-deltasync-csrf': 'forged' }, 403, /x-deltasync-csrf/],
    [{ 'x-deltasync-csrf': token, origin: 'http://evil.example' }, 403, /Cross-site/],
    [{ 'x-deltasync-csrf': token, 'sec-fetch-site': 'cross-site' }, 403, /Cross-site/],
    [{ 'x-deltasync-csrf': token, 'content-type': 'text/plain' }, 400, /application\/json/],
  ];
  for (const [headers, status, message] of refused) {
    const response = await post(resolve, { use: 'server' }, headers);
    assert.equal(response.status, status, JSON.stringify(headers));
    assert.match(response.json.error.message, message);
  }
  assert.equal((await get('api/users/alice/conflicts')).json.conflicts.length, 1, 'nothing was resolved');

  // Behind a proxy that rewrites Host: the browser's Sec-Fetch-Site, or the forwarded host, decides.
  const behindProxy = [
    { origin: 'https://admin.example.com', 'sec-fetch-site': 'same-origin' },
    { origin: 'https://admin.example.com', 'x-forwarded-host': 'admin.example.com' },
  ];
  for (const headers of behindProxy) {
    const wrongUse = await post(resolve, { use: 'nothing' }, { 'x-deltasync-csrf': token, ...headers });
    assert.equal(wrongUse.status, 400, `past the origin check: ${JSON.stringify(headers)}`);
  }

  const origin = new URL(world.inspectorUrl).origin;
  const resolved = await post(resolve, { use: 'merged', data: { title: 'Write the final report today', done: true, owner: 'alice' } }, {
    'x-deltasync-csrf': token,
    origin,
    'sec-fetch-site': 'same-origin',
  });
  assert.equal(resolved.status, 200);
  assert.equal(resolved.json.resolution, 'merged');
  assert.deepEqual(resolved.json.serverData, { title: 'Write the final report today', done: true, owner: 'alice' });
  assert.deepEqual((await get('api/users/alice/conflicts')).json.conflicts, []);
  const again = await post(resolve, { use: 'server' }, { 'x-deltasync-csrf': token });
  assert.equal(again.status, 404, 'a resolved conflict is not resolved twice');
  const history = (await get('api/users/alice/entities/task/t1')).json;
  assert.equal(history.versions[0].resolution, 'manual:merged', 'the log says how the new version came');
});
