'use strict';

// `deltasync serve`: the sync routes of deltasync/express on an embedded SQLite
// file, one log line per request, a clean stop on SIGINT / SIGTERM.

const crypto = require('node:crypto');
const fs = require('node:fs');
const { SyncServer } = require('../server');
const { CliError, UsageError } = require('./args');

const SHUTDOWN_GRACE_MS = 5000;

function loadExpress() {
  try {
    return require('express');
  } catch {
    throw new CliError('deltasync serve needs the "express" package: npm install express');
  }
}

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

function bearerToken(req) {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

/** Reads a tokens file: a JSON object { "<bearer token>": "<user id>" }. Kept as hashes in memory. */
function readTokensFile(file) {
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CliError(`cannot read --tokens ${file}: ${error.message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError(`--tokens ${file} must hold a JSON object mapping each bearer token to its user id`);
  }
  const users = new Map();
  for (const [token, user] of Object.entries(parsed)) {
    if (token.length < 16 || /\s/.test(token)) throw new CliError(`--tokens ${file}: every token must be at least 16 characters without spaces`);
    if (typeof user !== 'string' || user.length === 0) throw new CliError(`--tokens ${file}: the user of a token must be a non-empty string`);
    users.set(sha256(token), user);
  }
  if (users.size === 0) throw new CliError(`--tokens ${file} has no tokens`);
  return users;
}

/**
 * authenticate(req) for createSyncRouter, from the serve options. One of:
 *  - tokens: a tokens file, each bearer token mapped to its user;
 *  - jwt: a JWT in the bearer, verified (HS256 with a secret, RS256 with a public key), the
 *    user from a claim (default "sub");
 *  - token: one shared bearer token; every request is user "default";
 *  - none: every request is user "default".
 * With insecureDevUsers the x-user-id header picks the user (development only: anyone with
 * access can act as any user).
 */
function authenticator(auth) {
  const devUser = (req, fallback) => {
    const user = req.headers['x-user-id'];
    if (user === undefined) return fallback;
    if (!auth.insecureDevUsers) {
      // Refused, not ignored: a deployment that relied on it must not quietly merge every
      // user into one.
      throw new Error('the x-user-id header is honoured only with --insecure-dev-users; the user comes from the credentials');
    }
    return typeof user === 'string' && user.length > 0 ? user : fallback;
  };
  if (auth.kind === 'tokens') {
    return (req) => {
      const token = bearerToken(req);
      const user = token === undefined ? undefined : auth.users.get(sha256(token));
      return user === undefined ? undefined : devUser(req, user);
    };
  }
  if (auth.kind === 'jwt') {
    const { jwtVerify } = require('jose');
    return async (req) => {
      const token = bearerToken(req);
      if (token === undefined) return undefined;
      const { payload } = await jwtVerify(token, auth.key, {
        algorithms: [auth.algorithm],
        ...(auth.issuer ? { issuer: auth.issuer } : {}),
        ...(auth.audience ? { audience: auth.audience } : {}),
      });
      if (typeof payload.exp !== 'number') throw new Error('the token has no expiry (exp)');
      const user = payload[auth.claim];
      return typeof user === 'string' && user.length > 0 ? devUser(req, user) : undefined;
    };
  }
  if (auth.kind === 'token') {
    const expected = Buffer.from(sha256(`Bearer ${auth.token}`), 'hex');
    return (req) => {
      const given = Buffer.from(sha256(req.headers.authorization ?? ''), 'hex');
      if (!crypto.timingSafeEqual(given, expected)) return undefined; // 401
      return devUser(req, 'default');
    };
  }
  return (req) => devUser(req, 'default');
}

/** The authentication the serve options ask for (see authenticator). */
async function authFromOptions(options) {
  const chosen = ['tokens', 'jwtSecret', 'jwtPublicKey', 'token'].filter((key) => options[key] !== undefined);
  if (chosen.length > 1) {
    throw new CliError(`choose one way to authenticate; got ${chosen.map((key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(' and ')}`);
  }
  const insecureDevUsers = options.insecureDevUsers === true;
  if (options.tokens !== undefined) return { kind: 'tokens', users: readTokensFile(options.tokens), insecureDevUsers };
  if (options.jwtSecret !== undefined || options.jwtPublicKey !== undefined) {
    const jose = require('jose');
    let key;
    let algorithm;
    if (options.jwtSecret !== undefined) {
      if (Buffer.byteLength(options.jwtSecret) < 32) throw new CliError('--jwt-secret must be at least 32 bytes (HS256)');
      key = new TextEncoder().encode(options.jwtSecret);
      algorithm = 'HS256';
    } else {
      try {
        key = await jose.importSPKI(fs.readFileSync(options.jwtPublicKey, 'utf8'), 'RS256');
      } catch (error) {
        throw new CliError(`cannot read --jwt-public-key ${options.jwtPublicKey} as a PEM public key: ${error.message}`);
      }
      algorithm = 'RS256';
    }
    return { kind: 'jwt', key, algorithm, claim: options.jwtClaim, issuer: options.jwtIssuer, audience: options.jwtAudience, insecureDevUsers };
  }
  if (options.token !== undefined) return { kind: 'token', token: options.token, insecureDevUsers };
  return { kind: 'none', insecureDevUsers };
}

/** Logs "METHOD /path STATUS 1.2ms" when each response is finished (or "aborted"). */
function requestLogger(io) {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.writableFinished ? res.statusCode : 'aborted';
      io.stdout.write(`${req.method} ${req.originalUrl.replace(/([?&]token=)[^&]*/g, '$1***')} ${status} ${ms.toFixed(1)}ms\n`);
    };
    res.once('finish', log);
    res.once('close', log);
    next();
  };
}

function urlOf(address, mount) {
  const host = address.family === 'IPv6' || address.family === 6 ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}${mount === '/' ? '/' : mount}`;
}

/** A connection string without its password, for printing. */
function redacted(connection) {
  return connection.replace(/(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/, '$1***');
}

/**
 * Mounts deltasync/inspector at --inspect-base behind an admin token of its own: the
 * DELTASYNC_ADMIN_TOKEN variable, else a fresh one that is printed (sync tokens never open it).
 */
function mountInspector(app, server, options) {
  const { createInspector } = require('../inspector');
  const { tokenAuthentication, newAdminToken, TOKEN_RULE } = require('../inspector/token-auth');
  const path = options['inspect-base'];
  if (!path.startsWith('/') || path.endsWith('/')) throw new CliError(`--inspect-base must start with "/" and not end with one, got ${JSON.stringify(path)}`);
  const fromEnv = process.env.DELTASYNC_ADMIN_TOKEN || undefined;
  if (fromEnv !== undefined && !TOKEN_RULE.test(fromEnv)) {
    throw new CliError('DELTASYNC_ADMIN_TOKEN must be 16-512 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"');
  }
  const token = fromEnv ?? newAdminToken();
  const { authenticate, login } = tokenAuthentication(token);
  const inspector = createInspector(server, { authenticate });
  app.get(`${path}/login`, (req, res) => login(req, res, new URL(req.url, 'http://serve.invalid')));
  app.use(path, inspector);
  return { path, printedToken: fromEnv === undefined ? token : undefined };
}

async function serve({ options }, io) {
  const express = loadExpress();
  const { createSyncRouter } = require('../express');
  const auth = await authFromOptions({
    tokens: options.tokens,
    jwtSecret: options['jwt-secret'],
    jwtPublicKey: options['jwt-public-key'],
    jwtClaim: options['jwt-claim'],
    jwtIssuer: options['jwt-issuer'],
    jwtAudience: options['jwt-audience'],
    token: options.token ?? (process.env.DELTASYNC_TOKEN || undefined),
    insecureDevUsers: options['insecure-dev-users'],
  });
  const mount = options.base;
  if (!mount.startsWith('/')) throw new CliError(`--base must start with "/", got ${JSON.stringify(mount)}`);

  if ((options.db === undefined) === (options.postgres === undefined)) {
    throw new UsageError('give the database: --db <server.db> or --postgres <URL>, one of them');
  }
  const database = options.postgres !== undefined ? `PostgreSQL ${redacted(options.postgres)}, schema ${options.schema}` : options.db;
  const store = options.postgres !== undefined
    ? { postgres: { connectionString: options.postgres, schema: options.schema } }
    : { path: options.db };
  let server;
  try {
    server = new SyncServer({ ...store, conflicts: options.conflicts });
  } catch (error) {
    throw new CliError(`cannot open ${database} as a deltasync server database: ${error.message}${error.code ? ` (${error.code})` : ''}`);
  }
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogger(io));
  app.use(mount, createSyncRouter(server, { authenticate: authenticator(auth) }));
  const inspector = options.inspect ? mountInspector(app, server, options) : null;
  app.use((req, res) => res.status(404).json({ error: { code: 'NOT_FOUND', message: `No route ${req.method} ${req.path}` } }));

  const http = app.listen(options.port, options.host);
  try {
    await new Promise((resolve, reject) => {
      http.once('listening', resolve);
      http.once('error', reject);
    });
  } catch (error) {
    server.close();
    throw new CliError(`cannot listen on ${options.host}:${options.port}: ${error.message}`);
  }
  io.stdout.write(`deltasync server listening on ${urlOf(http.address(), mount)} (database ${database})\n`);
  const described = {
    tokens: 'requests need "Authorization: Bearer <token>" from the tokens file; each token acts as the user the file maps it to',
    jwt: `requests need "Authorization: Bearer <JWT>" (${auth.algorithm}); the user is its "${auth.claim}" claim`,
    token: 'requests need "Authorization: Bearer <token>"; every request is user "default"',
    none: 'requests are not authenticated',
  };
  io.stdout.write(`${described[auth.kind]}\n`);
  if (inspector) {
    const { signInUrl } = require('../inspector/token-auth');
    const page = `${urlOf(http.address(), inspector.path)}/`;
    const signIn = inspector.printedToken ? signInUrl(page, inspector.printedToken) : `${page}login?token=<DELTASYNC_ADMIN_TOKEN>`;
    io.stdout.write(`inspector at ${page} (admins only); sign in at ${signIn}\n`);
  }
  if (auth.kind === 'none') {
    io.stderr.write('warning: no authentication: every request is served as user "default"' +
      `${auth.insecureDevUsers ? ' (or the x-user-id header)' : ''}\n`);
  }
  if (auth.insecureDevUsers) {
    io.stderr.write('warning: --insecure-dev-users: the x-user-id header picks the user, so anyone who can reach ' +
      'this server can read and write every user\'s data. For development only.\n');
  }

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal) => {
      if (stopping) {
        io.stderr.write(`${signal} again: exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      io.stdout.write(`${signal}: stopping\n`);
      const force = setTimeout(() => http.closeAllConnections(), SHUTDOWN_GRACE_MS);
      force.unref();
      http.close(() => {
        clearTimeout(force);
        server.close();
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
        io.stdout.write('stopped\n');
        resolve(0);
      });
      http.closeIdleConnections();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

module.exports = { serve, authenticator, authFromOptions };
