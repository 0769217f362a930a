'use strict';

// Admin access by one secret token, for the inspectors the CLI starts (`deltasync serve
// --inspect`, `deltasync inspect --web`). Scripts send "Authorization: Bearer <token>". A browser
// signs in once at <mount>/login?token=<token>: that starts a session of its own (a random id
// in an HttpOnly, SameSite=Strict cookie named after this token, so two inspectors on one host
// never share or overwrite one) and sends it on to the page. The token itself is never stored
// in the browser. Secrets are compared as SHA-256 digests, in constant time.

const crypto = require('node:crypto');
const { SyncError } = require('../errors');
const { sendError } = require('../http');

const SESSION_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 1000;
/** What an admin token may hold: it travels in a URL and a header as it is. */
const TOKEN_RULE = /^[A-Za-z0-9._~-]{16,512}$/;

const digest = (text) => crypto.createHash('sha256').update(String(text)).digest();

/** Constant-time equality of two secrets of any length. */
function sameSecret(given, expected) {
  return given !== undefined && given !== null && crypto.timingSafeEqual(digest(given), digest(expected));
}

function cookieValue(req, name) {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

function bearer(req) {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(String(req.headers.authorization ?? ''));
  return match ? match[1] : undefined;
}

/** A new random admin token (32 bytes, base64url). */
function newAdminToken() {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * @param {string} token the admin token (TOKEN_RULE)
 * @param {string} [name] the identity an admin gets
 * @param {() => number} [now]
 * @returns {{ authenticate(req): string | null, login(req, res, url: URL): void }}
 */
function tokenAuthentication(token, name = 'admin', now = Date.now) {
  if (!TOKEN_RULE.test(token)) throw new SyncError('An admin token is 16-512 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"', 'INVALID_ARGUMENT');
  const cookie = `deltasync_inspector_${digest(token).toString('hex').slice(0, 12)}`;
  const sessions = new Map(); // session id -> expiry
  const sessionValid = (id) => {
    const expiry = id === undefined ? undefined : sessions.get(id);
    if (expiry === undefined) return false;
    if (expiry > now()) return true;
    sessions.delete(id);
    return false;
  };
  return {
    authenticate: (req) => (sameSecret(bearer(req), token) || sessionValid(cookieValue(req, cookie)) ? name : null),
    login(req, res, url) {
      if (!sameSecret(url.searchParams.get('token'), token)) {
        sendError(res, new SyncError('Wrong or missing admin token', 'FORBIDDEN'));
        return;
      }
      const page = (req.originalUrl ?? req.url).split('?')[0].replace(/login$/, '');
      const id = crypto.randomBytes(24).toString('base64url');
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value);
      sessions.set(id, now() + SESSION_MS);
      const secure = req.socket.encrypted || String(req.headers['x-forwarded-proto'] ?? '').startsWith('https') ? '; Secure' : '';
      res.statusCode = 303;
      res.setHeader('Set-Cookie', `${cookie}=${id}; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MS / 1000}; Path=${page.replace(/\/$/, '') || '/'}${secure}`);
      res.setHeader('Location', page);
      res.end();
    },
  };
}

/** The URL that signs a browser in. */
function signInUrl(pageUrl, token) {
  return `${pageUrl.replace(/\/?$/, '/')}login?token=${encodeURIComponent(token)}`;
}

module.exports = { tokenAuthentication, newAdminToken, sameSecret, signInUrl, TOKEN_RULE };
