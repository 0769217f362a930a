'use strict';

// The inspector's page in real headless Chromium (Debian's, driven by playwright-core): the
// server's views over data made by three real devices (fixtures/inspector-world.js), hostile
// document content rendered inert, a cross-site page refused, conflicts resolved by clicking
// (then the losing device syncs and rolls back), a non-admin refused; and a device's database
// through `deltasync inspect --web`. Every wait is on a condition.
// DELTASYNC_SCREENSHOTS=docs saves the README's screenshots into docs/; otherwise they go to a
// temporary directory (they are taken either way, so the views are rendered either way).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const CHROMIUM = '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  test('the inspector in headless Chromium', (t) => t.skip(`${CHROMIUM} does not exist`));
  return;
}

const { startWorld } = require('./fixtures/inspector-world');
const { makeClientDb, startCommand } = require('./fixtures/cli-helpers');

const SHOTS = process.env.DELTASYNC_SCREENSHOTS === 'docs'
  ? path.join(__dirname, '..', '..', 'docs')
  : fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-shots-'));
const WAIT = { timeout: 15000 };

let world;
let browser;
let admin; // a browser context whose every request carries the admin's bearer token
const problems = []; // console errors, page errors, CSP violations and dialogs, from every page

before(async () => {
  world = await startWorld();
  browser = await require('playwright-core').chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  admin = await browser.newContext({ extraHTTPHeaders: world.adminHeaders, viewport: { width: 1280, height: 900 } });
});
after(async () => {
  await browser?.close();
  await world?.close();
});

async function open(context, url) {
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await page.goto(url);
  return page;
}

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name), fullPage: false });
const api = async (route) => (await fetch(`${world.inspectorUrl}${route}`, { headers: world.adminHeaders })).json();

test('hostile document content renders as text: no script runs, no markup is made', async () => {
  const page = await open(admin, `${world.inspectorUrl}#/users/bob/entities/note/hostile`);
  const current = byTestId(page, 'entity-current');
  await current.waitFor(WAIT);
  const text = await current.innerText();
  for (const value of Object.values(world.HOSTILE)) assert.ok(text.includes(JSON.stringify(value).slice(1, -1)) || text.includes(value), `shown as text: ${value}`);
  assert.ok(text.includes('<b onmouseover=alert(1)>key</b>'), 'a hostile key is text too');
  await page.goto(`${world.inspectorUrl}#/users/bob/changes`);
  await byTestId(page, 'change-row').first().waitFor(WAIT);
  await page.mouse.move(400, 300);
  const made = await page.evaluate(() => ({
    pwned: window.__pwned,
    images: document.querySelectorAll('img').length,
    inlineScripts: [...document.scripts].filter((script) => !script.src).length,
    handlers: [...document.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
    links: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')).filter((href) => !href.startsWith('#')),
  }));
  assert.deepEqual(made, { pwned: undefined, images: 0, inlineScripts: 0, handlers: 0, links: [] });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the overview: activity charts and the users, with open conflicts marked', async () => {
  const page = await open(admin, world.inspectorUrl);
  await byTestId(page, 'user-row').nth(1).waitFor(WAIT);
  assert.equal(await byTestId(page, 'user-row').count(), 2);
  assert.match(await byTestId(page, 'admin').innerText(), /support@example\.com/);
  const alice = byTestId(page, 'user-row').filter({ hasText: 'alice' });
  assert.equal(await alice.locator('[data-testid="open-conflicts"]').innerText(), '1');
  assert.match(await alice.locator('[data-testid="open-conflicts"]').getAttribute('class'), /hot/);
  for (const chart of ['chart-changes', 'chart-conflicts', 'chart-lag']) {
    await byTestId(page, chart).locator('canvas').first().waitFor(WAIT);
  }
  await shot(page, 'inspector-overview.png');

  await alice.locator('[data-testid="user-link"]').click();
  await byTestId(page, 'device-row').nth(1).waitFor(WAIT);
  const laptop = byTestId(page, 'device-row').filter({ hasText: 'laptop' });
  assert.equal(await laptop.locator('[data-testid="device-lag"]').innerText(), '1', 'the phone wrote after the laptop pulled');
  assert.match(await laptop.locator('[data-testid="device-lag"]').getAttribute('class'), /hot/);
  assert.equal(await byTestId(page, 'device-row').filter({ hasText: 'phone' }).locator('[data-testid="device-lag"]').innerText(), '0');
  assert.deepEqual(problems, []);
  await page.close();
});

test('the change log filters by device; an entity shows each version diffed against the one before', async () => {
  const page = await open(admin, `${world.inspectorUrl}#/users/alice/changes`);
  await byTestId(page, 'change-row').nth(4).waitFor(WAIT);
  assert.equal(await byTestId(page, 'change-row').count(), 5);
  await byTestId(page, 'filter-deviceId').fill('phone');
  await byTestId(page, 'filter-apply').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="change-row"]').length === 1, null, WAIT);
  assert.match(await byTestId(page, 'change-row').innerText(), /t3/);
  await byTestId(page, 'filter-clear').click();
  await byTestId(page, 'change-row').nth(4).waitFor(WAIT);

  await byTestId(page, 'entity-link').filter({ hasText: 't1' }).first().click();
  await byTestId(page, 'version').nth(1).waitFor(WAIT);
  const newest = byTestId(page, 'version').first();
  const changed = newest.locator('[data-testid="diff-changed"]');
  assert.equal(await changed.count(), 1, 'version 4 changed one field');
  assert.match(await changed.innerText(), /title/);
  assert.match(await changed.innerText(), /Write the report/);
  assert.match(await changed.innerText(), /Write the final report/);
  assert.equal(await newest.locator('[data-testid="diff-added"], [data-testid="diff-removed"]').count(), 0);
  await shot(page, 'inspector-history.png');
  assert.deepEqual(problems, []);
  await page.close();
});

test('a page of another site cannot make the inspector resolve, even with the admin\'s credentials', async () => {
  // localhost is another site than 127.0.0.1; the context adds the admin's token to every
  // request it makes, as a browser would send an admin's cookie.
  const evil = http.createServer((req, res) => res.end('<!doctype html><title>evil</title>'));
  await new Promise((resolve) => evil.listen(0, resolve)); // every address: "localhost" may resolve to ::1
  try {
    // Not open(): the refusals this page meets are its own console's errors, not the inspector's.
    const page = await admin.newPage();
    await page.goto(`http://localhost:${evil.address().port}/`);
    const target = `${world.inspectorUrl}api/users/alice/conflicts/1/resolve`;
    await page.evaluate(async (url) => {
      await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"use":"client"}' }).catch(() => {});
      await fetch(url, { method: 'POST', mode: 'cors', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"use":"client"}' }).catch(() => {});
    }, target);
    await page.close();
  } finally {
    await new Promise((resolve) => evil.close(resolve));
  }
  assert.equal((await api('api/users/alice/conflicts')).conflicts.length, 1, 'still open');
});

test('a conflict side by side, resolved by clicking "Keep client"; the losing device rolls back at its next sync', async () => {
  const page = await open(admin, `${world.inspectorUrl}#/users/alice/conflicts`);
  const conflict = byTestId(page, 'conflict').first();
  await conflict.waitFor(WAIT);
  for (const column of ['column-base', 'column-server', 'column-client']) assert.equal(await conflict.locator(`[data-testid="${column}"]`).count(), 1);
  const differs = await conflict.locator('[data-testid="differs"]').allInnerTexts();
  assert.ok(differs.some((row) => /title/.test(row)) && differs.some((row) => /done/.test(row)), `the differing fields are marked: ${differs}`);
  assert.ok(!differs.some((row) => /owner/.test(row)), 'an unchanged field is not');
  await shot(page, 'inspector-conflict.png');

  await conflict.locator('[data-testid="keep-client"]').click();
  await byTestId(page, 'resolved').waitFor(WAIT);
  await byTestId(page, 'no-conflicts').waitFor(WAIT);
  const phoneSide = { title: 'Write the report today', done: true, owner: 'alice' };
  const t1 = await api('api/users/alice/entities/task/t1');
  assert.deepEqual(t1.current.data, phoneSide, 'the server took the client\'s side');
  assert.equal(t1.versions[0].resolution, 'manual:client');

  const { laptop } = world.devices.alice;
  assert.equal(laptop.get('task', 't1').title, 'Write the final report', 'before its sync, the laptop still shows its own edit');
  await laptop.sync();
  assert.deepEqual(laptop.get('task', 't1'), phoneSide, 'the laptop rolled back to the resolution');
  assert.equal(laptop.queue.stats().pending, 0);
  assert.deepEqual(problems, []);
  await page.close();
});

test('an edited merge, typed into the page, becomes the server\'s state and both devices converge on it', async () => {
  const { laptop, phone } = world.devices.alice;
  await phone.sync();
  laptop.patch('task', 't2', { title: 'Book room 4' });
  await laptop.sync();
  phone.patch('task', 't2', { title: 'Book room 5' });
  await phone.sync();
  const page = await open(admin, `${world.inspectorUrl}#/users/alice/conflicts`);
  const conflict = byTestId(page, 'conflict').first();
  await conflict.waitFor(WAIT);
  await conflict.locator('[data-testid="edit-merge"]').click();
  const editor = conflict.locator('[data-testid="merge-text"]');
  await editor.fill('{ "title": "not json"');
  await conflict.locator('[data-testid="save-merge"]').click();
  await byTestId(page, 'error').waitFor({ state: 'visible', ...WAIT });
  assert.equal((await api('api/users/alice/conflicts')).conflicts.length, 1, 'malformed JSON is not sent');
  const merged = { title: 'Book rooms 4 and 5', done: true };
  await editor.fill(JSON.stringify(merged));
  await conflict.locator('[data-testid="save-merge"]').click();
  await byTestId(page, 'resolved').waitFor(WAIT);
  assert.deepEqual((await api('api/users/alice/entities/task/t2')).current.data, merged);
  await laptop.sync();
  await phone.sync();
  assert.deepEqual(laptop.get('task', 't2'), merged);
  assert.deepEqual(phone.get('task', 't2'), merged);
  await page.close();
});

test('a non-admin gets a 403 and no data, the page included', async () => {
  const stranger = await browser.newContext();
  try {
    const page = await stranger.newPage();
    const response = await page.goto(world.inspectorUrl);
    assert.equal(response.status(), 403);
    assert.equal((await response.json()).error.code, 'FORBIDDEN');
    const apiAnswer = await page.evaluate(async () => (await fetch('api/users')).status);
    assert.equal(apiAnswer, 403);
  } finally {
    await stranger.close();
  }
});

// ---- a device's database, through the command line

async function startDeviceInspector(t, args) {
  return (await startCommand(t, ['inspect', '--web', ...args], /^open (http:\/\/\S+)$/m)).url;
}

test('a device: its queue with errors, conflicts and cursor; read-only by default, retry, discard and resolve with --allow-writes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-device-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'app.db');
  const { failedId, pendingIds } = await makeClientDb(db, path.join(dir, 'data'));

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.after(() => context.close());
  const readOnly = await open(context, await startDeviceInspector(t, [db]));
  await byTestId(readOnly, 'device-summary').waitFor(WAIT);
  await byTestId(readOnly, 'read-only').first().waitFor(WAIT);
  assert.equal(await byTestId(readOnly, 'discard').count(), 0, 'no write buttons when read-only');
  assert.equal(await byTestId(readOnly, 'retry-failed').count(), 0);
  assert.equal(await byTestId(readOnly, 'keep-local').count(), 0);
  await readOnly.close();

  const page = await open(context, await startDeviceInspector(t, [db, '--allow-writes']));
  await byTestId(page, 'device-summary').waitFor(WAIT);
  assert.match(await byTestId(page, 'device-cursor').innerText(), /7/);
  const failed = byTestId(page, 'queue-failed');
  const row = (table, changeId) => byTestId(page, table).locator('[data-testid="queue-row"]').filter({ has: page.locator(`[title="${changeId}"]`) });
  assert.equal(await row('queue-failed', failedId).count(), 1, 'ids are shortened, the whole id is their title');
  assert.match(await failed.locator('[data-testid="queue-error"]').innerText(), /boom/);
  assert.equal(await byTestId(page, 'queue-pending').locator('[data-testid="queue-row"]').count(), pendingIds.length);
  await byTestId(page, 'conflict').first().waitFor(WAIT);
  await shot(page, 'inspector-device.png');

  await byTestId(page, 'retry-failed').click();
  await byTestId(page, 'done').waitFor(WAIT);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="queue-pending"] [data-testid="queue-row"]').length === n, pendingIds.length + 1, WAIT);
  await row('queue-pending', pendingIds[1]).locator('[data-testid="discard"]').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="queue-pending"] [data-testid="queue-row"]').length === n, pendingIds.length, WAIT);
  await byTestId(page, 'conflict').first().locator('[data-testid="keep-remote"]').click();
  await byTestId(page, 'no-conflicts').waitFor(WAIT);
  assert.deepEqual(problems, []);
  await page.close();

  const { SyncClient } = require('deltasync');
  const client = new SyncClient({ path: db, mustExist: true });
  try {
    assert.equal(client.queue.failed().length, 0);
    assert.deepEqual(client.queue.pending().map((change) => change.changeId).includes(pendingIds[1]), false);
    assert.deepEqual(client.conflicts(), []);
    assert.deepEqual(client.get('note', 'n2'), { title: 'theirs' });
  } finally {
    client.close();
  }
});
