// The server inspector's overview (#/) and a user's page (#/users/<u>): activity charts, the
// users, a user's devices and their lag.

import { api, seg, url } from './api.js';
import { activityCharts } from './charts.js';
import { card, count, crumbs, date, fill, h, link, num, pager, rows, table, tr } from './dom.js';

const DAYS = 30;

export async function overview(root) {
  const charts = activityCharts((row) => `${row.userId} / ${row.deviceId}`);
  const users = table('users-table', ['User', 'Head version', 'Devices', 'Last activity', 'Open conflicts']);
  const list = pager('More', 'users-more', async (after) => {
    const page = await api(url('api/users', { after, limit: 50 }));
    return { items: page.users, next: page.next };
  }, (items) => rows(users, items.map((u) => tr('user-row', [
    link(['users', u.userId], u.userId, { 'data-testid': 'user-link' }),
    num(u.headVersion),
    num(u.deviceCount),
    date(u.lastActivityAt),
    count(u.openConflicts, 'open-conflicts'),
  ])), 'No users yet.'));
  fill(root, h('h1', null, 'Overview'), charts.nodes, card('Users', h('div', { className: 'scroll' }, users), list.more));
  const [activity] = await Promise.all([api(url('api/activity', { days: DAYS })), list.load()]);
  charts.draw(activity);
}

export async function user(root, [userId]) {
  const charts = activityCharts((row) => row.deviceId);
  const devices = table('devices-table', ['Device', 'Last push', 'Last pull', 'Last seen version', 'Lag', 'Changes pushed', 'Conflicts reported', 'Open conflicts']);
  const summary = h('p', { className: 'summary', 'data-testid': 'user-summary' }, 'Loading…');
  const list = pager('More', 'devices-more', async (after) => {
    const page = await api(url(seg('users', userId, 'devices'), { after, limit: 50 }));
    fill(summary,
      'Head version ', h('strong', { 'data-testid': 'user-head' }, String(page.headVersion)), ' · ',
      h('strong', { className: page.openConflicts > 0 ? 'hot' : null, 'data-testid': 'user-open-conflicts' }, String(page.openConflicts)),
      page.openConflicts === 1 ? ' open conflict' : ' open conflicts');
    return { items: page.devices, next: page.next };
  }, (items) => rows(devices, items.map((d) => tr('device-row', [
    h('code', null, d.deviceId),
    date(d.lastPushAt),
    date(d.lastPullAt),
    num(d.lastSeenVersion),
    count(d.lag, 'device-lag'),
    num(d.changesPushed),
    num(d.conflictsReported),
    count(d.openConflicts),
  ])), 'No devices.'));
  fill(root,
    crumbs(userId),
    h('h1', null, 'User ', h('code', { 'data-testid': 'user-id' }, userId)),
    h('div', { className: 'links' },
      link(['users', userId, 'changes'], 'Change log', { 'data-testid': 'link-changes' }),
      link(['users', userId, 'conflicts'], 'Conflicts', { 'data-testid': 'link-conflicts' })),
    summary,
    charts.nodes,
    card('Devices', h('div', { className: 'scroll' }, devices), list.more));
  const [activity] = await Promise.all([api(url('api/activity', { days: DAYS, userId })), list.load()]);
  charts.draw(activity);
}
