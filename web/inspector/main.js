// The deltasync inspector's page: reads the session, draws the header, and routes the hash
// (#/users/<u>/changes?entityType=task) to a view. Views live in their own modules; each one
// fills the root it is given, and a view that throws shows its error in the banner.

import { api, setCsrfToken } from './api.js';
import { banner, clearError, fill, h, link, showError } from './dom.js';
import { device } from './device.js';
import { changes, entity } from './server-log.js';
import { conflicts } from './server-conflicts.js';
import { overview, user } from './server-users.js';

// '*' matches one segment, which the view receives in order.
const ROUTES = {
  server: [
    [[], overview],
    [['users', '*'], user],
    [['users', '*', 'changes'], changes],
    [['users', '*', 'entities', '*', '*'], entity],
    [['users', '*', 'conflicts'], conflicts],
  ],
  device: [[[], device]],
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const segments = path ? path.replace(/\/$/, '').split('/').map(decodeURIComponent) : [];
  return { segments, query: Object.fromEntries(new URLSearchParams(at < 0 ? '' : raw.slice(at + 1))) };
}

function match(routes, segments) {
  for (const [pattern, view] of routes) {
    if (pattern.length !== segments.length) continue;
    if (pattern.every((part, i) => part === '*' || part === segments[i])) return { view, params: segments.filter((_, i) => pattern[i] === '*') };
  }
  return null;
}

async function boot() {
  const app = document.getElementById('app');
  let session;
  try {
    session = await api('api/session');
  } catch (error) {
    fill(app, banner);
    showError(error, error.status === 403 ? 'Not an admin: this inspector is only for its admins.' : null);
    return;
  }
  setCsrfToken(session.csrfToken);
  const routes = ROUTES[session.mode] || ROUTES.server;
  const main = h('main', { 'data-testid': 'view' });
  fill(app,
    h('header', { className: 'bar', 'data-testid': 'header' },
      link([], 'deltasync inspector', { className: 'brand' }),
      h('span', { className: 'badge mode', 'data-testid': 'mode' }, session.mode),
      session.mode === 'device' && session.path && h('code', { className: 'path', title: session.path }, session.path),
      session.readOnly && h('span', { className: 'badge', 'data-testid': 'header-read-only' }, 'read-only'),
      h('span', { className: 'admin', 'data-testid': 'admin' }, session.admin)),
    banner,
    main);

  let generation = 0;
  const render = async () => {
    const current = ++generation;
    clearError();
    const root = h('div', { className: 'view' });
    fill(main, root);
    let found;
    let query;
    try {
      const parsed = parseHash();
      query = parsed.query;
      found = match(routes, parsed.segments);
    } catch {}
    if (!found) return showError({ code: 'NOT_FOUND', message: `There is no page at ${location.hash}` });
    try {
      await found.view(root, found.params, query, session);
    } catch (error) {
      if (current === generation) showError(error);
    }
  };
  addEventListener('hashchange', () => {
    scrollTo(0, 0);
    render();
  });
  render();
}

boot();
