// A device's inspector (`deltasync inspect --web`, mode 'device'): its cursor and last sync, the
// queue (pending, in flight, failed), and its conflicts side by side. Writes (retry, discard,
// resolve) only when the inspector was started with --allow-writes.

import { api, seg } from './api.js';
import { conflictView } from './compare.js';
import { badge, card, clearError, date, fill, h, json, num, pre, rows, short, showError, table, tr } from './dom.js';

const READ_ONLY = 'read-only (start with --allow-writes to change)';

export async function device(root, params, query, session) {
  const writable = !session.readOnly;
  const notice = h('div', { 'aria-live': 'polite' });
  const body = h('div', null, h('p', { className: 'muted' }, 'Loading…'));
  const refresh = () => (clearError(), load().catch(showError));
  fill(root,
    h('div', { className: 'head' }, h('h1', null, 'Device'), h('button', { type: 'button', 'data-testid': 'refresh', onclick: refresh }, 'Refresh')),
    writable ? null : h('p', { className: 'note', 'data-testid': 'read-only' }, READ_ONLY), notice, body);

  const done = (text, testid) => fill(notice, h('p', { className: 'ok', 'data-testid': testid }, text));
  // A queue action: POST, say what it did, read the device again; errors go to the banner.
  const action = (label, testid, path, message) => {
    const button = h('button', { type: 'button', 'data-testid': testid }, label);
    button.addEventListener('click', async () => {
      clearError();
      button.disabled = true;
      try {
        done(message(await api(path, {})), 'done');
        await load();
      } catch (error) {
        showError(error);
        button.disabled = false;
      }
    });
    return button;
  };

  function queue(title, testid, changes, { discard, error, extra }) {
    const t = table(testid, ['Change', 'Type', 'Entity', 'Data', 'Base', 'Queued', 'Retries', error && 'Error', discard && writable && ''].filter((x) => x != null && x !== false));
    rows(t, changes.map((c) => tr('queue-row', [
      short(c.changeId),
      badge(c.type),
      h('code', null, `${c.entityType} / ${c.entityId}`),
      h('code', { className: 'data' }, json(c.data)),
      num(c.baseVersion),
      date(c.createdAt),
      num(c.retryCount),
      error && h('td', { className: 'removed wrap', 'data-testid': 'queue-error' }, c.lastError ?? ''),
      discard && writable && action('Discard', 'discard', seg('queue', c.changeId, 'discard'), (a) => `Discarded change ${a.discarded}.`),
    ].filter((x) => x != null && x !== false))), 'Empty.');
    return card(`${title} (${changes.length})`, h('div', { className: 'scroll' }, t), extra);
  }

  const conflict = (c) => conflictView({
    title: [h('code', null, `${c.entityType} / ${c.entityId}`)],
    meta: [`#${c.id}`, c.remoteVersion != null && `remote v${c.remoteVersion}`, c.remoteTimestamp != null && `remote time ${date(c.remoteTimestamp)}`,
      `reported ${date(c.createdAt)}`, c.awaitingResolver && 'awaiting the resolver', c.resolverError && `resolver error: ${c.resolverError}`],
    columns: [
      { key: 'base', label: 'Base', data: c.base },
      { key: 'local', label: 'Local', data: c.local },
      { key: 'remote', label: 'Remote', data: c.remote },
    ],
    sides: [1, 2],
    choices: [
      { label: 'Keep local', testid: 'keep-local', body: { use: 'local' } },
      { label: 'Keep remote', testid: 'keep-remote', body: { use: 'remote' } },
    ],
    merged: { ...c.remote, ...c.local },
    resolve: writable ? async (payload) => {
      await api(seg('conflicts', c.id, 'resolve'), payload);
      done(`Conflict #${c.id} on ${c.entityType} / ${c.entityId} resolved (${payload.use}).`, 'resolved');
      await load();
    } : null,
  });

  async function load() {
    const d = await api('api/device');
    const s = d.stats || {};
    const fact = (label, value, testid, hot) => h('div', { className: 'fact' }, h('span', null, label), h('strong', { 'data-testid': testid, className: hot ? 'hot' : null }, String(value ?? '—')));
    fill(body,
      card('Summary', h('div', { className: 'facts', 'data-testid': 'device-summary' },
        fact('Device', d.deviceId, 'device-id'),
        fact('Cursor (server version)', d.serverVersion, 'device-cursor'),
        fact('Last sync', date(s.lastSyncTime), 'device-last-sync'),
        fact('Pending', s.pending, 'count-pending'),
        fact('Syncing', s.syncing, 'count-syncing'),
        fact('Failed', s.failed, 'count-failed', s.failed > 0),
        fact('Synced', s.synced, 'count-synced'),
        fact('Oldest pending', date(s.oldestPendingAt), 'device-oldest-pending'),
        fact('Conflicts', d.conflicts.length, 'count-conflicts', d.conflicts.length > 0)),
        h('p', { className: 'meta' }, 'Database ', h('code', { 'data-testid': 'device-path' }, d.path ?? session.path ?? '')),
        s.byEntityType && h('details', null, h('summary', null, 'By entity type'), pre(s.byEntityType))),
      queue('Pending', 'queue-pending', d.pending, { discard: true }),
      queue('In flight', 'queue-inflight', d.inFlight, {}),
      queue('Failed', 'queue-failed', d.failed, {
        discard: true,
        error: true,
        extra: writable && h('div', { className: 'actions' }, action('Retry failed', 'retry-failed', 'api/queue/retry-failed', (a) => `${a.retried} failed change${a.retried === 1 ? '' : 's'} queued again.`)),
      }),
      h('h2', { className: 'section' }, `Conflicts (${d.conflicts.length})`),
      d.conflicts.length ? d.conflicts.map(conflict) : h('p', { className: 'card muted', 'data-testid': 'no-conflicts' }, 'No conflicts.'),
      d.ingest && card('Ingest', pre(d.ingest, 'ingest')));
  }
  await load();
}
