// A user's open conflicts (#/users/<u>/conflicts): base, server and client side by side, resolved
// by keeping one side or by an edited merge.

import { api, seg, url } from './api.js';
import { conflictView } from './compare.js';
import { add, badge, crumbs, date, fill, h, link, pager } from './dom.js';

export async function conflicts(root, [userId], query, session) {
  const notice = h('div', { 'aria-live': 'polite' });
  const list = h('div', { 'data-testid': 'conflicts' });
  const show = (items) => {
    if (!items.length && !list.children.length) add(list, [h('p', { className: 'card muted', 'data-testid': 'no-conflicts' }, 'No open conflicts.')]);
    add(list, items.map(item));
  };
  const page = pager('More', 'conflicts-more', async (after) => {
    const answer = await api(url(seg('users', userId, 'conflicts'), { after }));
    return { items: answer.conflicts, next: answer.next };
  }, show);
  const reload = async () => {
    page.reset();
    list.replaceChildren();
    await page.load();
  };

  function item(c) {
    const resolve = async (body) => {
      const answer = await api(seg('users', userId, 'conflicts', c.id, 'resolve'), body);
      const version = answer.version == null ? '' : `, now version ${answer.version}`;
      fill(notice, h('p', { className: 'ok', 'data-testid': 'resolved' },
        `Conflict #${c.id} on ${c.entityType} / ${c.entityId} resolved (${answer.resolution ?? body.use}${version}).`));
      await reload();
    };
    return conflictView({
      title: [link(['users', userId, 'entities', c.entityType, c.entityId], `${c.entityType} / ${c.entityId}`), ' ', badge(c.type)],
      meta: [`#${c.id}`, c.deviceId && `from device ${c.deviceId}`, c.baseVersion != null && `base v${c.baseVersion}`,
        c.serverVersion != null && `server v${c.serverVersion}`, `client time ${date(c.clientTimestamp)}`, `reported ${date(c.createdAt)}`],
      columns: [
        { key: 'base', label: 'Base', data: c.baseData },
        { key: 'server', label: 'Server', data: c.serverData },
        { key: 'client', label: 'Client', data: c.clientData, partial: c.type === 'UPDATED' },
      ],
      sides: [1, 2],
      choices: [
        { label: 'Keep server', testid: 'keep-server', body: { use: 'server' } },
        { label: 'Keep client', testid: 'keep-client', body: { use: 'client' } },
      ],
      merged: c.clientData ? { ...c.serverData, ...c.clientData } : c.serverData,
      resolve: session.readOnly ? null : resolve,
    });
  }

  fill(root,
    crumbs(link(['users', userId], userId), 'Conflicts'),
    h('h1', null, 'Open conflicts'),
    session.readOnly && h('p', { className: 'note', 'data-testid': 'read-only' }, 'read-only'),
    notice, list, page.more);
  await page.load();
}
