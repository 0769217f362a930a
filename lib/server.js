'use strict';

const native = require('./native');
const { SyncError } = require('./errors');
const is = require('./is');
const resolver = require('./resolver');
const { isEntityType, ENTITY_TYPE_RULE } = require('./store-args');

const SERVER_OPTIONS = [
  'path', 'postgres', 'conflicts', 'toleranceMs', 'maxClockSkewMs', 'perType', 'limits', 'durability', 'busyTimeoutMs', 'idFields',
  'resolverTimeoutMs',
];
const LIMIT_OPTIONS = ['maxChangesPerPush', 'maxPullLimit', 'defaultPullLimit', 'maxResponseBytes', 'maxDepth', 'maxDocumentBytes', 'maxBodyBytes'];
const MAX_ID_BYTES = 256;
// A request whose custom conflicts keep changing under the resolver is asked at most this many
// times; what is still undecided then becomes a manual conflict.
const MAX_RESOLVER_ROUNDS = 4;
const RESOLVER_REQUEST = '{"resolverContexts":';
// The resolver's sides are the client's and the server's; the core names them so.
const SERVER_USE = { local: 'client', remote: 'server', merged: 'merged' };

/** Whether a native answer (JSON text, or its bytes for a route) asks for resolvers' verdicts. */
function asksForVerdicts(answer) {
  const head = typeof answer === 'string' ? answer : answer.subarray(0, RESOLVER_REQUEST.length).toString('latin1');
  return head.startsWith(RESOLVER_REQUEST);
}

// Control characters are never part of a user id an identity provider issues.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const USER_ID_RULE = `a string of 1-${MAX_ID_BYTES} bytes of well-formed text without control characters`;

/** The one rule for user ids, here and in the router: two ill-formed ids could otherwise
 *  collapse into one user on their way to UTF-8. */
function isUserId(userId) {
  return typeof userId === 'string' && userId.length > 0 && is.fitsUtf8Bytes(userId, MAX_ID_BYTES) &&
    !CONTROL_CHARACTER.test(userId) && is.isWellFormedString(userId);
}

function userIdArg(userId) {
  if (!isUserId(userId)) throw is.invalid('userId', USER_ID_RULE, userId);
  return userId;
}

function deviceIdArg(deviceId) {
  if (
    typeof deviceId !== 'string' ||
    deviceId.length === 0 ||
    !is.fitsUtf8Bytes(deviceId, MAX_ID_BYTES) ||
    deviceId.includes('\0') ||
    !is.isWellFormedString(deviceId)
  ) {
    throw is.invalid('deviceId', `a non-empty string of at most ${MAX_ID_BYTES} bytes`, deviceId);
  }
  return deviceId;
}

/** A request body as bytes: Buffers and strings pass through, objects are serialized. */
function bodyArg(name, value) {
  if (typeof value === 'string') return is.wellFormed(name, value);
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (!is.isPlainObject(value)) throw is.invalid(name, 'an object, a JSON string or a Buffer', value);
  return is.toJson(name, value);
}

function idFieldsArg(name, idFields) {
  if (idFields === undefined) return undefined;
  if (!is.isPlainObject(idFields)) throw is.invalid(name, 'an object of entity types to field names', idFields);
  for (const [type, field] of Object.entries(idFields)) {
    if (!isEntityType(type)) throw is.invalid(`keys of ${name}`, ENTITY_TYPE_RULE, type);
    if (!is.isNonEmptyString(field)) throw is.invalid(`${name}.${type}`, 'a non-empty string', field);
  }
  return idFields;
}

const POSTGRES_OPTIONS = ['connectionString', 'host', 'port', 'user', 'password', 'database', 'ssl', 'schema', 'poolSize', 'libpq'];
const PG_CONNECTION_FIELDS = { host: 'host', port: 'port', user: 'user', password: 'password', database: 'dbname' };

/** A libpq key=value pair; values are quoted so that spaces, quotes and backslashes survive. */
function conninfoPair(key, value) {
  return `${key}='${String(value).replace(/[\\']/g, (ch) => `\\${ch}`)}'`;
}

/**
 * options.postgres as the native store's options: a connection string, or the fields a `pg`
 * user writes ({host, port, user, password, database, ssl}), or a `pg.Pool` (whose options are
 * read; its connections are not shared).
 */
function postgresArg(name, value) {
  if (value === undefined) return undefined;
  const source = value !== null && typeof value === 'object' && typeof value.query === 'function' && is.isPlainObject(value.options)
    ? { ...value.options, poolSize: value.options.max }
    : value;
  if (!is.isPlainObject(source)) throw is.invalid(name, 'an object with connectionString (or host, user, database...) or a pg.Pool', value);
  const given = Object.fromEntries(Object.entries(source).filter(([key, field]) => field !== undefined && POSTGRES_OPTIONS.includes(key)));
  if (source === value) is.optionsObject(name, value, POSTGRES_OPTIONS);
  const { connectionString, schema = 'deltasync', poolSize = 8, libpq, ssl } = given;
  const fields = Object.keys(PG_CONNECTION_FIELDS).filter((key) => given[key] !== undefined);
  if (connectionString !== undefined) {
    if (!is.isNonEmptyString(connectionString) || connectionString.includes('\0')) {
      throw is.invalid(`${name}.connectionString`, 'a non-empty libpq connection string or postgresql:// URL', connectionString);
    }
    if (fields.length > 0 || ssl !== undefined) {
      throw is.invalid(name, `either connectionString or ${Object.keys(PG_CONNECTION_FIELDS).join('/')}/ssl, not both`, fields.concat(ssl !== undefined ? ['ssl'] : []).join(', '));
    }
  }
  for (const key of fields) {
    const field = given[key];
    const ok = key === 'port' ? is.isPositiveInteger(field) && field < 65536 : typeof field === 'string' && !field.includes('\0');
    if (!ok) throw is.invalid(`${name}.${key}`, key === 'port' ? 'an integer from 1 to 65535' : 'a string', field);
  }
  if (ssl !== undefined && typeof ssl !== 'boolean' && !(is.isPlainObject(ssl) && ssl.rejectUnauthorized === false && Object.keys(ssl).length === 1)) {
    throw is.invalid(`${name}.ssl`, 'true, false or {rejectUnauthorized: false} (to verify certificates, put sslmode=verify-full and sslrootcert in connectionString)', ssl);
  }
  // The native store holds the rules on their values (a schema name, a pool's size); here only their types.
  if (typeof schema !== 'string' || schema.includes('\0')) throw is.invalid(`${name}.schema`, 'a string', schema);
  if (!Number.isInteger(poolSize) || Math.abs(poolSize) >= 2 ** 31) throw is.invalid(`${name}.poolSize`, 'a 32-bit integer', poolSize);
  if (libpq !== undefined && (!is.isNonEmptyString(libpq) || libpq.includes('\0'))) throw is.invalid(`${name}.libpq`, 'the path of a libpq shared library', libpq);
  const pairs = fields.map((key) => conninfoPair(PG_CONNECTION_FIELDS[key], given[key]));
  if (ssl !== undefined) pairs.push(conninfoPair('sslmode', ssl ? 'require' : 'disable'));
  return { connectionString: connectionString ?? pairs.join(' '), schema, poolSize, libpq };
}

/**
 * The server half: a change log with per-user gapless versions, idempotent pushes
 * and conflict resolution, on an embedded SQLite file (one process; operations run one at
 * a time) or on PostgreSQL (any number of processes; different users' operations run at
 * once). Every operation runs in C++ off the main thread.
 */
class SyncServer {
  /** @param {import('../types').SyncServerOptions} options */
  constructor(options) {
    if (!is.isPlainObject(options)) throw is.invalid('options', 'an object', options);
    is.optionsObject('options', options, SERVER_OPTIONS);
    const { path, conflicts = 'newest_wins', toleranceMs = 1000, perType = {}, durability = 'normal' } = options;
    const { busyTimeoutMs = 10000, maxClockSkewMs = 60000 } = options;
    const postgres = postgresArg('options.postgres', options.postgres);
    if (postgres && path !== undefined) throw is.invalid('options', 'either path (SQLite) or postgres, not both', 'both');
    if (!postgres && !is.isNonEmptyString(path)) throw is.invalid('options.path', 'a non-empty string (a file path or ":memory:")', path);
    /** @private strategies, and the app's resolvers by entity type */
    this._conflicts = resolver.conflictsOption('options.conflicts', conflicts, { perType });
    /** @private */
    this._resolverTimeoutMs = resolver.timeoutOption('options.resolverTimeoutMs', options.resolverTimeoutMs);
    if (!is.isNonNegativeInteger(toleranceMs)) throw is.invalid('options.toleranceMs', 'a non-negative integer', toleranceMs);
    if (durability !== 'normal' && durability !== 'full') throw is.invalid('options.durability', '"normal" or "full"', durability);
    if (!is.isNonNegativeInteger(busyTimeoutMs)) throw is.invalid('options.busyTimeoutMs', 'a non-negative integer', busyTimeoutMs);
    if (!is.isNonNegativeInteger(maxClockSkewMs)) throw is.invalid('options.maxClockSkewMs', 'a non-negative integer', maxClockSkewMs);
    const limits = is.optionsObject('options.limits', options.limits, LIMIT_OPTIONS);
    for (const [key, value] of Object.entries(limits)) {
      if (!is.isPositiveInteger(value)) throw is.invalid(`options.limits.${key}`, 'a positive integer', value);
    }
    /** @private */
    this._idFields = idFieldsArg('options.idFields', options.idFields) ?? {};
    /** Limits in force, with defaults. */
    this.limits = {
      maxChangesPerPush: 100000,
      maxPullLimit: 10000,
      defaultPullLimit: 1000,
      maxResponseBytes: 4 * 1024 * 1024,
      maxDepth: 64,
      maxDocumentBytes: 1024 * 1024,
      maxBodyBytes: 10 * 1024 * 1024,
      ...limits,
    };
    /** @private */
    this._handle = new native.NativeServer({
      path,
      postgres,
      conflicts: this._conflicts.strategy,
      perType: this._conflicts.perType,
      toleranceMs,
      maxClockSkewMs,
      durability,
      busyTimeoutMs,
      ...this.limits,
    });
    /** The SQLite file, or undefined on PostgreSQL. */
    this.path = path;
    /** Which store holds the data: 'sqlite' or 'postgres'. */
    this.store = postgres ? 'postgres' : 'sqlite';
    /** @private userId -> listeners of that user's head version (null: the server closed) */
    this._watchers = new Map();
  }

  /**
   * The unified v2 exchange: apply the pushed changes, then return what the device has not seen.
   * @param {string} userId from your authentication, never from the request
   * @param {object | string | Buffer} request { deviceId, lastKnownServerVersion, changes, limit? }
   * @returns {Promise<import('../types').SyncResponse>}
   */
  async sync(userId, request) {
    const native = this._native();
    userIdArg(userId);
    const body = bodyArg('request', request);
    const bytes = await this._exchange((exchange) => native.sync(userId, body, null, exchange));
    return JSON.parse(bytes.toString());
  }

  /**
   * Applies changes pushed by a device.
   * @returns {Promise<import('../types').PushResponse>}
   */
  async push(userId, deviceId, changes) {
    const native = this._native();
    userIdArg(userId);
    deviceIdArg(deviceId);
    if (!Array.isArray(changes)) throw is.invalid('changes', 'an array of change records', changes);
    const body = is.toJson('changes', { deviceId, changes });
    return JSON.parse(await this._exchange((exchange) => native.push(userId, body, null, exchange)));
  }

  /**
   * Changes of a user after version `since`, oldest first, paged.
   * @param {string} userId
   * @param {{ since?: number, limit?: number, deviceId?: string }} [options]
   * @returns {Promise<import('../types').PullResponse>}
   */
  async pull(userId, options) {
    const native = this._native();
    userIdArg(userId);
    const { since = 0, limit, deviceId } = is.optionsObject('options', options, ['since', 'limit', 'deviceId']);
    if (!is.isNonNegativeInteger(since)) throw is.invalid('options.since', 'a non-negative integer', since);
    if (limit !== undefined && !(is.isPositiveInteger(limit) && limit <= this.limits.maxPullLimit)) {
      throw is.invalid('options.limit', `an integer from 1 to ${this.limits.maxPullLimit}`, limit);
    }
    if (deviceId !== undefined) deviceIdArg(deviceId);
    return JSON.parse(await native.pull(userId, deviceId ?? null, since, limit ?? null));
  }

  /**
   * A device's sync status: last push and pull, changes pushed, conflicts, latest version.
   * @returns {Promise<import('../types').DeviceStatus>}
   */
  async status(userId, deviceId) {
    const native = this._native();
    return JSON.parse(await native.status(userIdArg(userId), deviceIdArg(deviceId)));
  }

  /**
   * Open conflicts kept by the 'manual' strategy, oldest first. The list stops at
   * limits.maxResponseBytes (one conflict always comes): ask again with `after` set to the
   * last id received until the list is empty.
   * @param {string} userId
   * @param {{ after?: number }} [options]
   * @returns {Promise<import('../types').ServerConflict[]>}
   */
  async conflicts(userId, options) {
    const native = this._native();
    userIdArg(userId);
    const { after = 0 } = is.optionsObject('options', options, ['after']);
    if (!is.isNonNegativeInteger(after)) throw is.invalid('options.after', 'a non-negative integer', after);
    return JSON.parse(await native.conflicts(userId, after));
  }

  /**
   * Settles an open conflict: { use: 'client' | 'server' | 'merged', data? }.
   * @returns {Promise<import('../types').ResolveResult>}
   */
  async resolveConflict(userId, conflictId, resolution) {
    const native = this._native();
    userIdArg(userId);
    if (!is.isPositiveInteger(conflictId)) throw is.invalid('conflictId', 'a positive integer', conflictId);
    if (!is.isPlainObject(resolution)) throw is.invalid('resolution', 'an object { use, data? }', resolution);
    return JSON.parse(await native.resolveConflict(userId, conflictId, is.toJson('resolution', resolution)));
  }

  /**
   * Turns a legacy full-state blob { entityType: [records] } into change-log entries,
   * once: importing the same records again skips them.
   * @param {string} userId
   * @param {object | string | Buffer} state
   * @param {{ idFields?: Record<string, string> }} [options]
   * @returns {Promise<{ imported: number, skipped: number, latestServerVersion: number }>}
   */
  async importSnapshot(userId, state, options) {
    const native = this._native();
    userIdArg(userId);
    const { idFields } = is.optionsObject('options', options, ['idFields']);
    const fields = { ...this._idFields, ...idFieldsArg('options.idFields', idFields) };
    return JSON.parse(await native.importSnapshot(userId, bodyArg('state', state), fields));
  }

  /** True until close(). */
  get isOpen() {
    return this._handle.isOpen();
  }

  /** Closes the database (operations in flight finish first). Later calls reject with CLOSED. */
  close() {
    this._handle.close();
    const watchers = [...this._watchers.values()].flatMap((listeners) => [...listeners]);
    this._watchers.clear();
    for (const listener of watchers) listener(null);
  }

  /**
   * @private Calls `listener(headVersion)` whenever a commit advances `userId`'s log, from any
   * request, and `listener(null)` when the server closes. Returns the unsubscribe function.
   */
  _watch(userId, listener) {
    const native = this._native();
    if (this._watchers.size === 0) native.onCommit((user, version) => this._advanced(user, version));
    let listeners = this._watchers.get(userId);
    if (!listeners) this._watchers.set(userId, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      if (!listeners.delete(listener) || listeners.size > 0) return;
      this._watchers.delete(userId);
      if (this._watchers.size === 0 && this._handle.isOpen()) this._handle.onCommit(null);
    };
  }

  /** @private */
  _advanced(userId, version) {
    for (const listener of this._watchers.get(userId) ?? []) {
      try {
        listener(version);
      } catch {
        // one stream's failure is not another's
      }
    }
  }

  /** @private the user's newest version */
  async _headVersion(userId) {
    return JSON.parse(await this._native().pull(userId, null, 0, 1)).headVersion;
  }

  /**
   * @private Runs a request that may push changes. When custom conflicts need the app's
   * resolvers, the core applies nothing and lists them; the resolvers decide (on this thread,
   * for those conflicts only) and the request runs again with their verdicts.
   * @param {(exchange: object | null) => Promise<string | Buffer>} run
   * @returns {Promise<string | Buffer>} the response's JSON text, or its bytes when `run` answers so
   */
  async _exchange(run) {
    if (!this._conflicts.resolvers) return run(null);
    const verdicts = new Map();
    for (let round = 1; ; round++) {
      const answer = await run({ finalRound: round >= MAX_RESOLVER_ROUNDS, verdicts: [...verdicts.values()] });
      if (!asksForVerdicts(answer)) return answer;
      const { resolverContexts } = JSON.parse(answer.toString());
      const decided = await Promise.all(resolverContexts.map((context) => this._decide(context)));
      for (const verdict of decided) verdicts.set(verdict.changeId, verdict);
    }
  }

  /** @private one verdict of the entity type's resolver, in the core's terms */
  async _decide({ changeId, serverVersion, entityType, entityId, server, client, base, clientChange }) {
    const decision = await resolver.decide(
      resolver.resolverFor(this._conflicts, entityType),
      { entityType, entityId, server, client, base, clientChange, serverVersion },
      this._resolverTimeoutMs,
    );
    const verdict = { changeId, serverVersion, use: decision.use ? SERVER_USE[decision.use] : 'manual' };
    if (decision.data !== undefined) verdict.data = decision.data;
    if (decision.error) verdict.note = decision.error;
    return verdict;
  }

  /** @private the native handle, or CLOSED */
  _native() {
    if (!this._handle.isOpen()) throw new SyncError('The server is closed', 'CLOSED');
    return this._handle;
  }
}

module.exports = { SyncServer, idFieldsArg, isUserId, USER_ID_RULE };
