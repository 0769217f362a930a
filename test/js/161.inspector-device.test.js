'use strict';

// `deltasync inspect --web client.db`, as a real process driven by a real HTTP client: the
// sign-in, the device view's JSON, read-only by default, the writes --allow-writes adds, and an
// app that has the file open with a change in flight (the inspector never touches it). The page
// is driven in Chromium by 162.inspector-browser.test.js.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { SyncClient } = require('../..');
const { tempDir } = require('./helpers');
const { run, makeClientDb, startCommand, startServe } = require('./fixtures/cli-helpers');

/** Starts `deltasync inspect --web ...args` and resolves with its sign-in URL once it prints it. */
async function startInspector(t, args) {
  const started = await startCommand(t, ['inspect', '--web', ...args], /^open (http:\/\/\S+)$/m);
  return { ...started, signIn: started.url, origin: new URL(started.url).origin };
}

/** Signs in through the printed URL; resolves with the session cookie. */
async function signIn(inspector) {
  const response = await fetch(inspector.signIn, { redirect: 'manual' });
  assert.equal(response.status, 303);
  assert.equal(response.headers.get('location'), '/');
  const cookie = response.headers.get('set-cookie');
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  return cookie.split(';')[0];
}

async function call(inspector, cookie, method, route, { headers = {}, body } = {}) {
  const response = await fetch(`${inspector.origin}/${route}`, {
    method,
    headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** Resolves once `read()` matches `pattern` (a process's output arrives in pieces). */
async function printed(read, pattern) {
  for (let waited = 0; !pattern.test(read()); waited += 10) {
    if (waited > 10000) throw new Error(`never printed ${pattern}: ${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return pattern.exec(read());
}

async function fixture(t) {
  const dir = tempDir(t);
  const db = path.join(dir, 'client.db');
  const made = await makeClientDb(db, path.join(dir, 'data'));
  return { db, ...made };
}

test('the sign-in URL is the only way in; the Host must be the inspector\'s own', async (t) => {
  const { db } = await fixture(t);
  const inspector = await startInspector(t, [db]);
  assert.match(inspector.stdout(), /read-only; --allow-writes to change it/);
  const cookie = await signIn(inspector);
  const wrongToken = await fetch(inspector.signIn.replace(/token=.*/, 'token=guess'), { redirect: 'manual' });
  assert.equal(wrongToken.status, 403);
  assert.equal((await wrongToken.json()).error.code, 'FORBIDDEN');
  for (const route of ['', 'api/session', 'api/device']) {
    const anonymous = await fetch(`${inspector.origin}/${route}`);
    assert.equal(anonymous.status, 403, route);
  }
  // fetch() sends its own Host; node:http sends the one a rebinding page would.
  const rebound = await new Promise((resolve, reject) => {
    const request = http.get(`${inspector.origin}/api/device`, { headers: { cookie, host: 'attacker.example' } }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode, json: JSON.parse(text) }));
    });
    request.on('error', reject);
  });
  assert.equal(rebound.status, 403);
  assert.match(rebound.json.error.message, /Host/);
  const page = await fetch(`${inspector.origin}/`, { headers: { cookie } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /deltasync inspector/);
  inspector.child.kill('SIGTERM');
  assert.deepEqual(await inspector.exited, { code: 0, signal: null });
});

test('the device view: queue with errors, conflicts, cursor, last sync; writes refused when read-only', async (t) => {
  const { db, deviceId, failedId, pendingIds, conflicts } = await fixture(t);
  const inspector = await startInspector(t, [db]);
  const cookie = await signIn(inspector);
  const session = await call(inspector, cookie, 'GET', 'api/session');
  assert.equal(session.json.mode, 'device');
  assert.equal(session.json.readOnly, true);
  assert.equal(session.json.path, db);
  const { json: device } = await call(inspector, cookie, 'GET', 'api/device');
  assert.equal(device.deviceId, deviceId);
  assert.equal(device.serverVersion, 7);
  assert.deepEqual(device.pending.map((change) => change.changeId), pendingIds);
  assert.deepEqual(device.failed.map(({ changeId, lastError }) => ({ changeId, lastError })), [{ changeId: failedId, lastError: 'boom' }]);
  assert.deepEqual(device.inFlight, []);
  assert.deepEqual(device.conflicts.map((conflict) => conflict.id), conflicts.map((conflict) => conflict.id));
  assert.equal(device.stats.failed, 1);

  const { csrfToken } = session.json;
  for (const [route, body] of [['api/queue/retry-failed', {}], [`api/queue/${pendingIds[0]}/discard`, {}], [`api/conflicts/${conflicts[0].id}/resolve`, { use: 'local' }]]) {
    const refused = await call(inspector, cookie, 'POST', route, { body, headers: { 'x-deltasync-csrf': csrfToken } });
    assert.equal(refused.status, 403, route);
    assert.match(refused.json.error.message, /read-only/);
  }
  const after = (await call(inspector, cookie, 'GET', 'api/device')).json;
  assert.deepEqual([after.pending.length, after.failed.length, after.conflicts.length], [device.pending.length, 1, 1], 'nothing changed');
});

test('--allow-writes: retry, discard and resolve; a change in flight in a live app is never touched', async (t) => {
  const { db, failedId, pendingIds, conflicts } = await fixture(t);
  // The app: open, with one change taken for a push that has not answered yet.
  const app = new SyncClient({ path: db, mustExist: true });
  t.after(() => app.isOpen && app.close());
  const [inFlight] = JSON.parse(app._handle.takeBatch(1));
  assert.equal(inFlight.changeId, failedId === pendingIds[0] ? pendingIds[1] : pendingIds[0]);

  const inspector = await startInspector(t, [db, '--allow-writes']);
  assert.match(inspector.stdout(), /read-write/);
  const cookie = await signIn(inspector);
  const { csrfToken } = (await call(inspector, cookie, 'GET', 'api/session')).json;
  const write = (route, body = {}, headers = { 'x-deltasync-csrf': csrfToken }) => call(inspector, cookie, 'POST', route, { body, headers });

  const device = (await call(inspector, cookie, 'GET', 'api/device')).json;
  assert.deepEqual(device.inFlight.map((change) => change.changeId), [inFlight.changeId]);
  assert.equal(device.inFlight[0].status, 'syncing');

  const forged = await write('api/queue/retry-failed', {}, {});
  assert.equal(forged.status, 403, 'no CSRF token, no write');
  const notInFlight = await write(`api/queue/${inFlight.changeId}/discard`);
  assert.equal(notInFlight.status, 409, 'a change in flight is not discarded');
  assert.equal(notInFlight.json.error.code, 'CONFLICT');

  assert.deepEqual((await write('api/queue/retry-failed')).json, { retried: 1 });
  const discarded = pendingIds.find((id) => id !== inFlight.changeId);
  assert.deepEqual((await write(`api/queue/${discarded}/discard`)).json, { discarded });
  const resolved = await write(`api/conflicts/${conflicts[0].id}/resolve`, { use: 'local' });
  assert.equal(resolved.status, 200);
  assert.deepEqual(resolved.json.document, { title: 'second' });
  const bad = await write(`api/conflicts/${conflicts[0].id}/resolve`, { use: 'sideways' });
  assert.equal(bad.status, 400);

  // The app still has its change in flight and sees the inspector's writes.
  const rows = JSON.parse(app._handle.exportJson()).changes;
  assert.equal(rows.find((row) => row.changeId === inFlight.changeId).status, 'syncing');
  assert.equal(rows.some((row) => row.changeId === discarded), false);
  assert.deepEqual(app.conflicts(), []);
  assert.equal(app.queue.failed().length, 0);
});

test('--allow-writes and --port without --web are usage errors; a missing file fails before listening', async (t) => {
  const dir = tempDir(t);
  const result = await run(['inspect', path.join(dir, 'none.db'), '--web']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /no such file/);
  const usage = await run(['inspect', path.join(dir, 'none.db'), '--allow-writes']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--allow-writes needs --web/);
});

test('serve --inspect: the inspector behind its own admin token, which sync credentials never open', async (t) => {
  const dir = tempDir(t);
  const adminToken = 'admin-token-abcdefghijklmnop';
  const syncToken = 'sync-token-abcdefghijklmnopq';
  const served = await startServe(t, ['--db', path.join(dir, 'server.db'), '--port', '0', '--token', syncToken, '--inspect'], {
    DELTASYNC_ADMIN_TOKEN: adminToken,
  });
  const origin = new URL(served.url).origin;
  await printed(served.stdout, /inspector at http:\/\/127\.0\.0\.1:\d+\/inspect\/ \(admins only\)/);
  assert.doesNotMatch(served.stdout(), new RegExp(adminToken), 'a token from the environment is not printed');
  const users = (headers) => fetch(`${origin}/inspect/api/users`, { headers }).then((response) => response.status);
  assert.equal(await users({ authorization: `Bearer ${syncToken}` }), 403, 'a sync token is not an admin token');
  assert.equal(await users({}), 403);
  assert.equal(await users({ authorization: `Bearer ${adminToken}` }), 200);
  const login = await fetch(`${origin}/inspect/login?token=${adminToken}`, { redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.equal(login.headers.get('location'), '/inspect/');
  const cookie = login.headers.get('set-cookie').split(';')[0];
  assert.match(login.headers.get('set-cookie'), /Path=\/inspect$/);
  assert.equal(await users({ cookie }), 200);
  // The sync routes are unchanged beside it.
  const sync = await fetch(`${served.url}/v2`, {
    method: 'POST',
    headers: { authorization: `Bearer ${syncToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'd1', lastKnownServerVersion: 0, changes: [] }),
  });
  assert.equal(sync.status, 200);
  await printed(served.stdout, /GET \/inspect\/login\?token=\*\*\* 303/);
  assert.doesNotMatch(served.stdout(), new RegExp(adminToken));
});

test('serve --inspect without DELTASYNC_ADMIN_TOKEN prints a fresh token once, with the sign-in URL', async (t) => {
  const dir = tempDir(t);
  const served = await startServe(t, ['--db', path.join(dir, 'server.db'), '--port', '0', '--inspect', '--inspect-base', '/admin'], { DELTASYNC_ADMIN_TOKEN: '' });
  const found = await printed(served.stdout, /sign in at (http:\/\/\S+\/admin\/login\?token=(\S+))/);
  assert.ok(found[2].length >= 40);
  const login = await fetch(found[1], { redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.equal(login.headers.get('location'), '/admin/');
});
