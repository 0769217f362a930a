'use strict';

// The HTTP surface both inspectors share (the server's, deltasync/inspector, and a device's,
// `deltasync inspect --web`): who may come in, the page and its assets, the JSON API's routing,
// CSRF protection and the headers that keep the page inert to hostile data. A handler
// (req, res, next) that runs under Express (app.use(path, handler)) and under node:http alike.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { SyncError } = require('../errors');
const { readBody, sendError, sendJsonText } = require('../http');
const { sameSecret } = require('./token-auth');

const PAGE_DIR = path.join(__dirname, '..', 'inspector-page');
const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/assets/inspector.js': { file: 'inspector.js', type: 'text/javascript; charset=utf-8' },
  '/assets/inspector.css': { file: 'inspector.css', type: 'text/css; charset=utf-8' },
};
// Nothing from the page's data is ever markup, and this policy would stop it if it were: only
// the page's own script and style run, nothing is fetched from elsewhere, no frame embeds it.
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
const CSRF_HEADER = 'x-deltasync-csrf';
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The bundled page, read once; a clear error when this copy of the package was not built. */
function loadPage() {
  const files = {};
  for (const name of new Set(Object.values(ASSETS).map((asset) => asset.file))) {
    try {
      files[name] = fs.readFileSync(path.join(PAGE_DIR, name));
    } catch (error) {
      throw new SyncError(
        `The inspector page is not built (${path.join(PAGE_DIR, name)}: ${error.code ?? error.message}); ` +
          'in a clone of deltasync run `npm run build:inspector`',
        'UNAVAILABLE',
      );
    }
  }
  return files;
}

/**
 * A route: { method, path: '/api/users/:userId', run: async ({ params, query, body, identity }) => value }.
 * Values are sent as JSON; a thrown SyncError becomes its error response.
 */
function compileRoutes(routes) {
  return routes.map((route) => {
    const names = [];
    const pattern = route.path.replace(/:([A-Za-z]+)/g, (_, name) => {
      names.push(name);
      return '([^/]+)';
    });
    return { ...route, regex: new RegExp(`^${pattern}$`), names };
  });
}

function matchRoute(routes, method, pathname) {
  let pathMatched = false;
  for (const route of routes) {
    const match = route.regex.exec(pathname);
    if (!match) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    const params = {};
    route.names.forEach((name, index) => {
      try {
        params[name] = decodeURIComponent(match[index + 1]);
      } catch {
        throw new SyncError(`The path segment "${match[index + 1]}" is not valid percent-encoding`, 'INVALID_ARGUMENT');
      }
    });
    return { route, params };
  }
  if (pathMatched) throw new SyncError(`${method} is not allowed on ${pathname}`, 'INVALID_ARGUMENT');
  return null;
}

/** A positive integer id from a path segment, or INVALID_ARGUMENT naming it. */
function positiveId(text, name) {
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new SyncError(`Expected a positive integer for ${name} but received "${String(text).slice(0, 40)}"`, 'INVALID_ARGUMENT');
  return Number(text);
}

/** The name the page shows for an admin identity. */
function identityName(identity) {
  if (typeof identity === 'string') return identity;
  if (identity && typeof identity === 'object') {
    for (const key of ['name', 'email', 'id', 'userId']) {
      if (typeof identity[key] === 'string' || typeof identity[key] === 'number') return String(identity[key]);
    }
  }
  return 'admin';
}

/**
 * A cross-site request is refused whatever it carries: the browser names the requesting site
 * (Sec-Fetch-Site; from browsers without it, Origin against the host the request was sent to,
 * as a proxy forwards it), and a state-changing call must also echo the admin's CSRF token,
 * which only a page of this origin can read (from /api/session).
 */
function checkSameOrigin(req) {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) {
    if (site === 'same-origin' || site === 'none') return;
    throw new SyncError(`Cross-site requests are refused (Sec-Fetch-Site: ${site})`, 'FORBIDDEN');
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host;
  try {
    host = new URL(origin).host;
  } catch {
    throw new SyncError('Cross-site requests are refused (a malformed Origin)', 'FORBIDDEN');
  }
  const forwarded = String(req.headers['x-forwarded-host'] ?? '').split(',')[0].trim();
  if (host !== req.headers.host && host !== forwarded) throw new SyncError(`Cross-site requests are refused (Origin ${origin})`, 'FORBIDDEN');
}

/**
 * @param {object} options
 * @param {(req) => unknown} options.authenticate truthy admin identity (or a promise of one), else falsy
 * @param {object[]} options.routes the JSON API (see compileRoutes)
 * @param {object} options.session extra fields of GET /api/session ({mode, readOnly, ...})
 * @param {string[]} [options.allowedHosts] Host headers accepted (a local server refuses DNS rebinding)
 * @param {(req, res, url: URL) => void} [options.login] answers GET /login (token-auth.js)
 */
function createSurface({ authenticate, routes, session, allowedHosts, login }) {
  const page = loadPage();
  const secret = crypto.randomBytes(32);
  // Keyed on the identity's name, so an identity object with changing fields keeps its token.
  const csrfToken = (identity) => crypto.createHmac('sha256', secret).update(identityName(identity)).digest('base64url');
  const table = compileRoutes([
    { method: 'GET', path: '/api/session', run: ({ identity }) => ({ admin: identityName(identity), csrfToken: csrfToken(identity), ...session }) },
    ...routes,
  ]);

  async function handle(req, res) {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    if (allowedHosts && !allowedHosts.includes(req.headers.host)) {
      throw new SyncError(`The Host "${req.headers.host}" is not this inspector's`, 'FORBIDDEN');
    }
    // A path is "/..." and nothing else: "//host/..." would read as another host.
    if (typeof req.url !== 'string' || !req.url.startsWith('/') || req.url.startsWith('//')) {
      throw new SyncError('A request path starts with exactly one "/"', 'INVALID_ARGUMENT');
    }
    const url = new URL(`http://inspector.invalid${req.url}`);
    if (login && req.method === 'GET' && url.pathname === '/login') {
      login(req, res, url);
      return;
    }
    let identity;
    try {
      identity = await authenticate(req);
    } catch (error) {
      throw new SyncError(`Admin authentication failed: ${error && error.message ? error.message : error}`, 'FORBIDDEN');
    }
    if (!identity) throw new SyncError('The inspector is for admins only', 'FORBIDDEN');
    const mountedAt = (req.originalUrl ?? req.url).split('?')[0];
    if (url.pathname === '/' && !mountedAt.endsWith('/')) {
      // The page's URLs are relative to the mount point: /inspect must become /inspect/.
      res.statusCode = 308;
      res.setHeader('Location', `${mountedAt}/${url.search}`);
      res.end();
      return;
    }
    const asset = req.method === 'GET' || req.method === 'HEAD' ? ASSETS[url.pathname] : undefined;
    if (asset) {
      res.statusCode = 200;
      res.setHeader('Content-Type', asset.type);
      res.setHeader('Cache-Control', 'no-cache');
      res.end(req.method === 'HEAD' ? undefined : page[asset.file]);
      return;
    }
    const found = matchRoute(table, req.method, url.pathname);
    if (!found) throw new SyncError(`No inspector route ${req.method} ${url.pathname}`, 'NOT_FOUND');
    let body;
    if (req.method !== 'GET') {
      checkSameOrigin(req);
      if (!sameSecret(req.headers[CSRF_HEADER], csrfToken(identity))) {
        throw new SyncError(`A state-changing call needs the ${CSRF_HEADER} header from /api/session`, 'FORBIDDEN');
      }
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        throw new SyncError('The request body must be application/json', 'INVALID_ARGUMENT');
      }
      const raw = await readBody(req, MAX_BODY_BYTES);
      try {
        body = JSON.parse(raw.length === 0 ? '{}' : raw.toString('utf8'));
      } catch (error) {
        throw new SyncError(`Malformed JSON in the request body (${error.message})`, 'INVALID_ARGUMENT');
      }
    }
    const query = Object.fromEntries(url.searchParams);
    const value = await found.route.run({ params: found.params, query, body, identity, req });
    sendJsonText(res, 200, JSON.stringify(value));
  }

  return function inspector(req, res) {
    handle(req, res).catch((error) => {
      if (!(error instanceof SyncError)) error = new SyncError(error && error.message ? error.message : String(error), 'INTERNAL');
      sendError(res, error);
    });
  };
}

module.exports = { createSurface, positiveId, CSRF_HEADER };
