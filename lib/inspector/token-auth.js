'use strict';

// Admin access by one secret token, for the inspectors the CLI starts (`deltasync serve
// --inspect`, `deltasync inspect --web`). A browser signs in once at <mount>/login?token=T,
// which sets an HttpOnly, SameSite=Strict cookie and sends it on to the page; scripts send
// "Authorization: Bearer T". Tokens are compared as SHA-256 digests, in constant time.

const crypto = require('node:crypto');

const COOKIE = 'deltasync_inspector';
const digest = (text) => crypto.createHash('sha256').update(String(text)).digest();

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
 * @param {string} token the admin token
 * @param {string} name the identity an admin gets
 * @returns {{ authenticate(req): string | null, login(req, res, url: URL): void }}
 */
function tokenAuthentication(token, name = 'admin') {
  const expected = digest(token);
  const matches = (given) => given !== undefined && crypto.timingSafeEqual(digest(given), expected);
  return {
    authenticate: (req) => (matches(bearer(req)) || matches(cookieValue(req, COOKIE)) ? name : null),
    login(req, res, url) {
      const page = (req.originalUrl ?? req.url).split('?')[0].replace(/login$/, '');
      if (!matches(url.searchParams.get('token') ?? undefined)) {
        res.statusCode = 403;
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: { code: 'FORBIDDEN', message: 'Wrong or missing admin token' } }));
        return;
      }
      res.statusCode = 303;
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=${page.replace(/\/$/, '') || '/'}`);
      res.setHeader('Location', page);
      res.end();
    },
  };
}

module.exports = { tokenAuthentication, newAdminToken };
