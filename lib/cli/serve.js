'use strict';

// `deltasync serve`: the sync routes of deltasync/express on an embedded SQLite
// file, one log line per request, a clean stop on SIGINT / SIGTERM.

const crypto = require('node:crypto');
const { SyncServer } = require('../server');
const { CliError } = require('./args');

const SHUTDOWN_GRACE_MS = 5000;

function loadExpress() {
  try {
    return require('express');
  } catch {
    throw new CliError('deltasync serve needs the "express" package: npm install express');
  }
}

/** authenticate(req) for createSyncRouter: the Bearer token when one is set, the user from x-user-id. */
function authenticator(token) {
  if (token === undefined) return () => 'default';
  const expected = crypto.createHash('sha256').update(`Bearer ${token}`).digest();
  return (req) => {
    const given = crypto.createHash('sha256').update(req.headers.authorization ?? '').digest();
    if (!crypto.timingSafeEqual(given, expected)) return undefined; // 401
    const user = req.headers['x-user-id'];
    return typeof user === 'string' && user.length > 0 ? user : 'default';
  };
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
      io.stdout.write(`${req.method} ${req.originalUrl} ${status} ${ms.toFixed(1)}ms\n`);
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

async function serve({ options }, io) {
  const express = loadExpress();
  const { createSyncRouter } = require('../express');
  const token = options.token ?? (process.env.DELTASYNC_TOKEN || undefined);
  const mount = options.mount;
  if (!mount.startsWith('/')) throw new CliError(`--mount must start with "/", got ${JSON.stringify(mount)}`);

  let server;
  try {
    server = new SyncServer({ path: options.db, conflicts: options.conflicts });
  } catch (error) {
    throw new CliError(`cannot open ${options.db} as a deltasync server database: ${error.message}${error.code ? ` (${error.code})` : ''}`);
  }
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogger(io));
  app.use(mount, createSyncRouter(server, { authenticate: authenticator(token) }));
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
  io.stdout.write(`deltasync server listening on ${urlOf(http.address(), mount)} (database ${options.db})\n`);
  if (token === undefined) {
    io.stderr.write('warning: no --token: requests are not authenticated and every request is served as user "default"\n');
  } else {
    io.stdout.write('requests need "Authorization: Bearer <token>"; the user is the x-user-id header (default "default")\n');
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

module.exports = { serve, authenticator };
