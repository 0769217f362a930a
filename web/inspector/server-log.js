// A user's change log (#/users/<u>/changes?entityType=...) and an entity's history with the field
// diff of each version (#/users/<u>/entities/<type>/<id>).

import { api, seg, url } from './api.js';
import { diffTable, diffFields } from './compare.js';
import { badge, card, crumbs, date, fill, h, json, link, num, pager, pre, route, rows, short, table, tr } from './dom.js';

const FILTERS = [
  ['entityType', 'Entity type'],
  ['entityId', 'Entity id'],
  ['deviceId', 'Device'],
];
const TYPES = ['CREATED', 'UPDATED', 'DELETED'];

const userCrumbs = (userId, ...rest) => crumbs(link(['users', userId], userId), ...rest);

function filterForm(userId, query) {
  const inputs = FILTERS.map(([name, label]) => h('input', { name, value: query[name] || '', placeholder: label, 'data-testid': `filter-${name}`, 'aria-label': label }));
  const type = h('select', { name: 'changeType', 'data-testid': 'filter-changeType', 'aria-label': 'Change type' },
    h('option', { value: '' }, 'Any change'), TYPES.map((t) => h('option', { value: t }, t)));
  type.value = TYPES.includes(query.changeType) ? query.changeType : '';
  const values = () => Object.fromEntries([...inputs, type].map((el) => [el.name, el.value.trim()]));
  const go = (filters) => {
    const next = route(['users', userId, 'changes'], filters);
    if (location.hash === next) dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = next;
  };
  return h('form', { className: 'filters', 'data-testid': 'changes-filter', onsubmit: (event) => (event.preventDefault(), go(values())) },
    inputs, type,
    h('button', { type: 'submit', className: 'primary', 'data-testid': 'filter-apply' }, 'Filter'),
    h('button', { type: 'button', 'data-testid': 'filter-clear', onclick: () => go({}) }, 'Clear'));
}

export async function changes(root, [userId], query) {
  const filters = Object.fromEntries(['entityType', 'entityId', 'deviceId', 'changeType'].map((k) => [k, query[k] || '']));
  const log = table('changes-table', ['Version', 'Server time', 'Device', 'Type', 'Entity', 'Data', 'Base', 'Resolution']);
  const list = pager('Older', 'changes-older', async (before) => {
    const page = await api(url(seg('users', userId, 'changes'), { ...filters, before, limit: 50 }));
    return { items: page.changes, next: page.next };
  }, (items) => rows(log, items.map((c) => tr('change-row', [
    num(c.version),
    date(c.serverTimestamp),
    h('code', null, c.deviceId ?? '—'),
    badge(c.type),
    link(['users', userId, 'entities', c.entityType, c.entityId], `${c.entityType} / ${c.entityId}`, { 'data-testid': 'entity-link' }),
    h('code', { className: 'data', 'data-testid': 'change-data' }, json(c.data)),
    num(c.baseVersion),
    c.resolution ?? '',
  ])), 'No changes match.'));
  fill(root, userCrumbs(userId, 'Changes'), h('h1', null, 'Change log'), filterForm(userId, filters),
    card(null, h('div', { className: 'scroll' }, log), list.more));
  await list.load();
}

function versionView(v, previous, omitted) {
  const facts = [v.type, v.deviceId && `device ${v.deviceId}`, date(v.serverTimestamp), v.baseVersion != null && `base v${v.baseVersion}`, v.resolution && `resolution: ${v.resolution}`];
  return h('section', { className: 'version', 'data-testid': 'version' },
    h('h3', null, `Version ${v.version}`, h('span', { className: 'meta' }, ` · ${facts.filter(Boolean).join(' · ')}`), ' ', short(v.changeId)),
    omitted
      ? [h('p', { className: 'muted', 'data-testid': 'older-omitted' }, `${omitted} older version${omitted === 1 ? ' is' : 's are'} not shown; the document after this one:`), pre(v.state)]
      : diffTable(diffFields(previous, v.state)),
    v.state === null && h('p', { className: 'muted' }, 'The entity is deleted after this version.'));
}

export async function entity(root, [userId, entityType, entityId]) {
  fill(root, userCrumbs(userId, link(['users', userId, 'changes'], 'Changes'), `${entityType} / ${entityId}`), h('p', { className: 'muted' }, 'Loading…'));
  const e = await api(url(seg('users', userId, 'entities', entityType, entityId), { limit: 200 }));
  const current = e.current;
  const versions = e.versions;
  fill(root,
    userCrumbs(userId, link(['users', userId, 'changes'], 'Changes'), `${entityType} / ${entityId}`),
    h('h1', null, 'Entity ', h('code', { 'data-testid': 'entity-name' }, `${entityType} / ${entityId}`)),
    h('div', { className: 'links' }, link(['users', userId, 'changes'], 'Changes of this entity', { 'data-testid': 'link-entity-changes' }, { entityType, entityId })),
    card('Current document',
      h('div', { 'data-testid': 'entity-current' },
        !current ? h('p', { className: 'muted' }, 'No document.')
          : current.deleted ? h('p', { className: 'removed' }, `Deleted at version ${current.version}.`)
          : [h('p', { className: 'meta' }, `Version ${current.version}`), pre(current.data, 'entity-data')])),
    card(`History (${versions.length} version${versions.length === 1 ? '' : 's'})`,
      versions.map((v, i) => versionView(v, versions[i + 1]?.state ?? null, i === versions.length - 1 ? e.olderOmitted : 0))));
}
