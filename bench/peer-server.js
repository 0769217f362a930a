'use strict';

// The JavaScript peer of deltasync's sync server, for the benchmarks: the same v2
// exchange (DESIGN.md section 4) written the way a careful Node developer would,
// with Express + express.json + better-sqlite3.
//
//   POST {base}/v2  { deviceId, lastKnownServerVersion, changes, limit? }
//     -> { applied, conflicts, errors, newChanges, latestServerVersion, hasMore }
//
// Semantics kept from deltasync: per-user gapless versions; a changeId is applied once
// per user and a replay returns the recorded outcome (a changeId reused for another
// change is 409 and nothing is applied); conflict = the entity was last written by
// another device after the change's baseVersion (no baseVersion: its timestamp is
// within toleranceMs of the change's or newer); newest_wins (a tie goes to the
// server); UPDATED merges the fields (null removes one), UPDATED of an unknown entity
// is an errors[] NOT_FOUND; the pull after the push returns the versions after
// lastKnownServerVersion, `limit` of them, with hasMore. A malformed request is a 400
// and nothing is applied; too many changes 413.
//
// Choices a fast JS server makes, which deltasync's does not have to: prepared
// statements, one transaction per request, the user's version read once per request,
// rows fetched with .raw(), stored JSON spliced into responses as text (never
// re-parsed), and only the indexes the v2 exchange needs.
//
//   const peer = createPeerServer({ path: 'peer.db' });
//   app.use('/api/sync', peer.router({ authenticate: (req) => req.get('x-user-id') }));

const crypto = require('node:crypto');

// crypto.hash (Node >= 20.12) is the one-shot form; older Nodes build a Hash.
const sha1 = crypto.hash
  ? (text) => crypto.hash('sha1', text, 'base64')
  : (text) => crypto.createHash('sha1').update(text).digest('base64');

// deltasync's server store (src/core/sqlite.h kServerCacheKib sets the cache).
const PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'foreign_keys = ON', 'temp_store = MEMORY', 'cache_size = -16000'];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS user_versions (
  user_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entity_changes (
  user_id          TEXT NOT NULL,
  version          INTEGER NOT NULL,
  change_id        TEXT NOT NULL,
  device_id        TEXT,
  change_type      TEXT NOT NULL,
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  change_data      TEXT,
  base_version     INTEGER,
  client_timestamp INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  PRIMARY KEY (user_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
  user_id          TEXT NOT NULL,
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  data             TEXT,
  deleted          INTEGER NOT NULL DEFAULT 0,
  version          INTEGER NOT NULL,
  device_id        TEXT,
  client_timestamp INTEGER NOT NULL,
  PRIMARY KEY (user_id, entity_type, entity_id)
);
CREATE TABLE IF NOT EXISTS change_results (
  user_id     TEXT NOT NULL,
  change_id   TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  outcome     TEXT NOT NULL,
  version     INTEGER,
  reason      TEXT,
  winner      TEXT,
  error_code  TEXT,
  error_message TEXT,
  entity_type TEXT NOT NULL,
  entity_id   TEXT NOT NULL,
  PRIMARY KEY (user_id, change_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
  user_id           TEXT NOT NULL,
  device_id         TEXT NOT NULL,
  last_push_at      INTEGER,
  last_pull_at      INTEGER,
  changes_pushed    INTEGER NOT NULL DEFAULT 0,
  last_seen_version INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
`;

const TYPES = new Set(['CREATED', 'UPDATED', 'DELETED']);
const ENTITY_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;
const CHANGE_KEYS = new Set(['changeId', 'type', 'entityType', 'entityId', 'data', 'baseVersion', 'timestamp']);

/** An error with an HTTP status and a stable code, answered as { error: { code, message } }. */
class RequestError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const invalid = (message) => new RequestError(400, 'INVALID_ARGUMENT', message);

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isId(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= 256;
}

/** Checks one change; returns it with data as JSON text and the fingerprint of its content. */
function checkChange(change, index, now) {
  const name = `changes[${index}]`;
  if (!isPlainObject(change)) throw invalid(`Expected an object for ${name}`);
  for (const key in change) {
    if (!CHANGE_KEYS.has(key)) throw invalid(`Unknown key "${key}" in ${name}`);
  }
  const { changeId, type, entityType, entityId, data, baseVersion, timestamp } = change;
  if (!isId(changeId)) throw invalid(`Expected a non-empty string of at most 256 characters for ${name}.changeId`);
  if (!TYPES.has(type)) throw invalid(`Expected "CREATED", "UPDATED" or "DELETED" for ${name}.type`);
  if (typeof entityType !== 'string' || !ENTITY_TYPE.test(entityType)) {
    throw invalid(`Expected a string matching [A-Za-z0-9_.-]{1,64} for ${name}.entityType`);
  }
  if (!isId(entityId)) throw invalid(`Expected a non-empty string of at most 256 characters for ${name}.entityId`);
  let json = null;
  if (type === 'DELETED') {
    if (data !== undefined && data !== null) throw invalid(`Expected no data for ${name}.data of a DELETED change`);
  } else {
    if (!isPlainObject(data)) throw invalid(`Expected an object for ${name}.data`);
    json = JSON.stringify(data);
  }
  if (baseVersion !== undefined && baseVersion !== null && !(Number.isSafeInteger(baseVersion) && baseVersion >= 0)) {
    throw invalid(`Expected a non-negative integer for ${name}.baseVersion`);
  }
  if (timestamp !== undefined && !(Number.isFinite(timestamp) && timestamp >= 0)) {
    throw invalid(`Expected milliseconds since the epoch for ${name}.timestamp`);
  }
  const base = baseVersion ?? null;
  const fingerprint = sha1(`${type}\u0000${entityType}\u0000${entityId}\u0000${base ?? '-'}\u0000${json ?? '-'}`);
  return { changeId, type, entityType, entityId, data, json, baseVersion: base, timestamp: timestamp ?? now, fingerprint };
}

/**
 * A peer sync server on one SQLite file.
 * @param {{ path: string, durability?: 'normal' | 'full', toleranceMs?: number, limits?: { maxChangesPerPush?: number, maxPullLimit?: number,
 *           defaultPullLimit?: number, maxBodyBytes?: number } }} options
 */
function createPeerServer(options) {
  const Database = require('better-sqlite3');
  const { path, toleranceMs = 1000 } = options;
  const limits = {
    maxChangesPerPush: 1000,
    maxPullLimit: 10000,
    defaultPullLimit: 1000,
    maxBodyBytes: 10 * 1024 * 1024,
    ...(options.limits || {}),
  };
  const db = new Database(path);
  for (const pragma of PRAGMAS) db.pragma(pragma);
  if (options.durability === 'full') db.pragma('synchronous = FULL');
  db.exec(SCHEMA);

  const userVersion = db.prepare('SELECT version FROM user_versions WHERE user_id = ?').pluck();
  const setUserVersion = db.prepare(
    'INSERT INTO user_versions (user_id, version) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET version = excluded.version',
  );
  const findResult = db.prepare(
    'SELECT fingerprint, outcome, version, reason, winner, error_code, error_message FROM change_results ' +
      'WHERE user_id = ? AND change_id = ?',
  );
  const insertResult = db.prepare(
    'INSERT INTO change_results (user_id, change_id, fingerprint, outcome, version, reason, winner, error_code, ' +
      'error_message, entity_type, entity_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const loadEntity = db.prepare(
    'SELECT data, deleted, version, device_id, client_timestamp FROM entities ' +
      'WHERE user_id = ? AND entity_type = ? AND entity_id = ?',
  );
  const insertChange = db.prepare(
    'INSERT INTO entity_changes (user_id, version, change_id, device_id, change_type, entity_type, entity_id, ' +
      'change_data, base_version, client_timestamp, server_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertEntity = db.prepare(
    'INSERT INTO entities (user_id, entity_type, entity_id, data, deleted, version, device_id, client_timestamp) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, entity_type, entity_id) DO UPDATE SET ' +
      'data = excluded.data, deleted = excluded.deleted, version = excluded.version, device_id = excluded.device_id, ' +
      'client_timestamp = excluded.client_timestamp',
  );
  const touchPush = db.prepare(
    'INSERT INTO devices (user_id, device_id, last_push_at, changes_pushed) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT (user_id, device_id) DO UPDATE SET last_push_at = excluded.last_push_at, ' +
      'changes_pushed = changes_pushed + excluded.changes_pushed',
  );
  const touchPull = db.prepare(
    'INSERT INTO devices (user_id, device_id, last_pull_at, last_seen_version) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT (user_id, device_id) DO UPDATE SET last_pull_at = excluded.last_pull_at, ' +
      'last_seen_version = max(last_seen_version, excluded.last_seen_version)',
  );
  const pullRows = db
    .prepare(
      'SELECT version, change_id, change_type, entity_type, entity_id, change_data, client_timestamp, device_id ' +
        'FROM entity_changes WHERE user_id = ? AND version > ? ORDER BY version LIMIT ?',
    )
    .raw(true);

  /** The entity's state for a conflict entry: serverVersion and serverData as JSON text. */
  function currentState(userId, entityType, entityId) {
    const entity = loadEntity.get(userId, entityType, entityId);
    if (!entity) return ',"serverVersion":null,"serverData":null';
    return `,"serverVersion":${entity.version},"serverData":${entity.deleted || entity.data === null ? 'null' : entity.data}`;
  }

  /** Applies the checked changes of one request; returns the outcomes. REQUIRES: in a transaction. */
  function push(userId, deviceId, changes, now) {
    let version = userVersion.get(userId) ?? 0;
    const startVersion = version;
    const outcomes = new Array(changes.length);
    let applied = 0;
    for (let i = 0; i < changes.length; ++i) {
      const change = changes[i];
      const recorded = findResult.get(userId, change.changeId);
      if (recorded) {
        if (recorded.fingerprint !== change.fingerprint) {
          throw new RequestError(
            409,
            'CONFLICT',
            `The changeId "${change.changeId}" of changes[${i}].changeId was used before for a different change`,
          );
        }
        outcomes[i] = { change, kind: recorded.outcome, version: recorded.version, reason: recorded.reason,
          winner: recorded.winner, errorCode: recorded.error_code, errorMessage: recorded.error_message };
        continue;
      }
      const entity = loadEntity.get(userId, change.entityType, change.entityId);
      const outcome = { change, kind: 'applied', version: null, reason: null, winner: null, errorCode: null, errorMessage: null };
      outcomes[i] = outcome;
      if (change.type === 'UPDATED' && !entity) {
        outcome.kind = 'error';
        outcome.errorCode = 'NOT_FOUND';
        outcome.errorMessage = `UPDATED of ${change.entityType}/${change.entityId}, which the server does not have (send CREATED first)`;
      } else {
        let apply = true;
        if (entity && entity.device_id !== deviceId) {
          let conflict = false;
          if (change.baseVersion !== null) {
            conflict = entity.version > change.baseVersion;
            outcome.reason = `changed on the server after baseVersion ${change.baseVersion} by another device`;
          } else {
            conflict = entity.client_timestamp + toleranceMs >= change.timestamp;
            outcome.reason = "the server's copy is as new as or newer than the change (no baseVersion to compare)";
          }
          if (conflict) {
            if (entity.deleted && change.type !== 'DELETED') outcome.reason = 'deleted on the server by another device';
            outcome.kind = 'conflict';
            apply = change.timestamp > entity.client_timestamp + toleranceMs;  // newest_wins; a tie goes to the server
            outcome.winner = apply ? 'client' : 'server';
          } else {
            outcome.reason = null;
          }
        }
        if (apply) {
          let data = change.json;
          let deleted = 0;
          if (change.type === 'UPDATED') {
            const doc = entity.data === null ? {} : JSON.parse(entity.data);
            for (const key of Object.keys(change.data)) {
              const value = change.data[key];
              if (value === null) delete doc[key];
              else doc[key] = value;
            }
            data = JSON.stringify(doc);
          } else if (change.type === 'DELETED') {
            data = entity ? entity.data : null;  // the last live state
            deleted = 1;
          }
          version += 1;
          insertChange.run(userId, version, change.changeId, deviceId, change.type, change.entityType, change.entityId,
            change.json, change.baseVersion, change.timestamp, now);
          upsertEntity.run(userId, change.entityType, change.entityId, data, deleted, version, deviceId, change.timestamp);
          outcome.version = version;
          ++applied;
        }
      }
      insertResult.run(userId, change.changeId, change.fingerprint, outcome.kind, outcome.version, outcome.reason,
        outcome.winner, outcome.errorCode, outcome.errorMessage, change.entityType, change.entityId);
    }
    if (version !== startVersion) setUserVersion.run(userId, version);
    touchPush.run(userId, deviceId, now, applied);
    return outcomes;
  }

  /** "newChanges":[...],"latestServerVersion":n,"hasMore":b as text. REQUIRES: in a transaction. */
  function pullText(userId, deviceId, since, limit, now) {
    const rows = pullRows.all(userId, since, limit + 1);
    const hasMore = rows.length > limit;
    const count = hasMore ? limit : rows.length;
    const parts = new Array(count);
    for (let i = 0; i < count; ++i) {
      const r = rows[i];
      parts[i] =
        `{"version":${r[0]},"changeId":${JSON.stringify(r[1])},"type":"${r[2]}","entityType":${JSON.stringify(r[3])},` +
        `"entityId":${JSON.stringify(r[4])},"data":${r[5] === null ? 'null' : r[5]},"timestamp":${r[6]},` +
        `"deviceId":${r[7] === null ? 'null' : JSON.stringify(r[7])}}`;
    }
    const latest = userVersion.get(userId) ?? 0;
    if (deviceId !== null) touchPull.run(userId, deviceId, now, hasMore ? rows[count - 1][0] : latest);
    return `"newChanges":[${parts.join(',')}],"latestServerVersion":${latest},"hasMore":${hasMore}`;
  }

  function outcomesText(userId, outcomes) {
    const applied = [];
    const conflicts = [];
    const errors = [];
    for (const o of outcomes) {
      const id = JSON.stringify(o.change.changeId);
      if (o.version !== null) applied.push(`{"changeId":${id},"version":${o.version}}`);
      if (o.kind === 'conflict') {
        conflicts.push(
          `{"changeId":${id},"entityType":${JSON.stringify(o.change.entityType)},"entityId":${JSON.stringify(o.change.entityId)},` +
            `"reason":${JSON.stringify(o.reason)},"resolution":"newest_wins","winner":"${o.winner}"` +
            `${currentState(userId, o.change.entityType, o.change.entityId)}}`,
        );
      } else if (o.kind === 'error') {
        errors.push(`{"changeId":${id},"code":${JSON.stringify(o.errorCode)},"message":${JSON.stringify(o.errorMessage)}}`);
      }
    }
    return `"applied":[${applied.join(',')}],"conflicts":[${conflicts.join(',')}],"errors":[${errors.join(',')}]`;
  }

  const syncTransaction = db.transaction((userId, deviceId, changes, since, limit, now) => {
    const outcomes = push(userId, deviceId, changes, now);
    return `{${outcomesText(userId, outcomes)},${pullText(userId, deviceId, since, limit, now)}}`;
  });
  const pullTransaction = db.transaction((userId, deviceId, since, limit, now) => `{${pullText(userId, deviceId, since, limit, now)}}`);

  /** The v2 exchange on a parsed request body; returns the response as JSON text. */
  function sync(userId, request) {
    if (!isPlainObject(request)) throw invalid('Expected a JSON object for the request body');
    const { deviceId, lastKnownServerVersion = 0, changes = [], limit } = request;
    if (!isId(deviceId)) throw invalid('Expected a non-empty string of at most 256 characters for deviceId');
    const since = lastKnownServerVersion ?? 0;
    if (!(Number.isSafeInteger(since) && since >= 0)) throw invalid('Expected a non-negative integer for lastKnownServerVersion');
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1 && limit <= limits.maxPullLimit)) {
      throw invalid(`Expected an integer from 1 to ${limits.maxPullLimit} for limit`);
    }
    if (!Array.isArray(changes)) throw invalid('Expected an array of changes for changes');
    if (changes.length > limits.maxChangesPerPush) {
      throw new RequestError(413, 'LIMIT_EXCEEDED',
        `Too many changes in one request: ${changes.length} (the limit is ${limits.maxChangesPerPush})`);
    }
    const now = Date.now();
    const checked = new Array(changes.length);
    for (let i = 0; i < changes.length; ++i) checked[i] = checkChange(changes[i], i, now);
    return syncTransaction(userId, deviceId, checked, since, limit ?? limits.defaultPullLimit, now);
  }

  /** Versions after `since` as a pull response, JSON text. */
  function pull(userId, { since = 0, limit = limits.defaultPullLimit, deviceId = null } = {}) {
    if (!(Number.isSafeInteger(since) && since >= 0)) throw invalid('Expected a non-negative integer for since');
    if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= limits.maxPullLimit)) {
      throw invalid(`Expected an integer from 1 to ${limits.maxPullLimit} for limit`);
    }
    return pullTransaction(userId, deviceId, since, limit, Date.now());
  }

  /** An Express router with POST /v2. authenticate(req) returns the user id. */
  function router({ authenticate }) {
    const express = require('express');
    const routes = express.Router();
    const sendError = (res, error) => {
      if (error instanceof RequestError) {
        res.status(error.status).json({ error: { code: error.code, message: error.message } });
      } else if (error && error.type === 'entity.too.large') {
        res.status(413).json({ error: { code: 'LIMIT_EXCEEDED', message: error.message } });
      } else if (error && error.type === 'entity.parse.failed') {
        res.status(400).json({ error: { code: 'INVALID_ARGUMENT', message: error.message } });
      } else {
        res.status(500).json({ error: { code: 'INTERNAL', message: 'Internal server error' } });
      }
    };
    routes.use((req, res, next) => {
      const userId = authenticate(req);
      if (!isId(userId)) {
        sendError(res, new RequestError(401, 'UNAUTHENTICATED', 'Authentication required'));
        return;
      }
      req.userId = userId;
      next();
    });
    routes.post('/v2', express.json({ limit: limits.maxBodyBytes }), (req, res) => {
      try {
        res.type('application/json').send(sync(req.userId, req.body));
      } catch (error) {
        sendError(res, error);
      }
    });
    routes.use((error, req, res, next) => {  // body-parser errors
      if (res.headersSent) return next(error);
      sendError(res, error);
    });
    return routes;
  }

  return { sync, pull, router, limits, close: () => db.close() };
}

module.exports = { createPeerServer };
