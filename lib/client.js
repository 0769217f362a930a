'use strict';

const { EventEmitter } = require('node:events');
const native = require('./native');
const { ChangeQueue } = require('./queue');
const { SyncError } = require('./errors');
const is = require('./is');

const args = require('./store-args');
const { SyncEngine } = require('./engine');
const { probeServer } = require('./transport');
const resolver = require('./resolver');

const CLIENT_OPTIONS = [
  'path',
  'deviceId',
  'userId',
  'tenantId',
  'coalesce',
  'durability',
  'busyTimeoutMs',
  'limits',
  'conflicts',
  'tombstoneRetentionMs',
  'applyChunkSize',
  'transport',
  'triggers',
  'retry',
  'batch',
  'keepAlive',
  'mustExist',
  'observer',
  'healthCheck',
  'resolverTimeoutMs',
  'live',
];
const LIVE_OPTIONS = ['pokeDebounceMs', 'fallbackAfter'];
const TRIGGER_OPTIONS = ['periodicMs', 'minIntervalMs', 'localChangeDelayMs'];
const RETRY_OPTIONS = ['maxRetries', 'baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'];
const BATCH_OPTIONS = ['push', 'pull'];
const HEALTH_OPTIONS = ['url', 'intervalMs', 'timeoutMs', 'unreachableAfter'];
const NOTIFY_EVENTS = ['online', 'offline', 'focus', 'blur', 'visible', 'hidden'];
// Rounds of the app's resolvers per settle: a verdict goes stale when the entity changes while
// the resolver decides; what is still stale after these waits for the next pull.
const MAX_RESOLVER_ROUNDS = 3;
const RESOLVE_USES = ['local', 'remote', 'merged'];
const LIST_OPTIONS = ['where', 'orderBy', 'limit', 'offset'];
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const DAY_MS = 24 * 60 * 60 * 1000;
const LIMIT_OPTIONS = ['maxDepth', 'maxDocumentBytes'];
const MAX_ID_LENGTH = 256;
const MAX_BATCH_OPS = 10000;
const BATCH_OPS = { put: 'doc', patch: 'fields', delete: null };

function optionalId(name, value) {
  if (
    value !== undefined &&
    !(is.isNonEmptyString(value) && is.fitsUtf8Bytes(value, MAX_ID_LENGTH) && !value.includes('\0') && is.isWellFormedString(value))
  ) {
    throw is.invalid(name, `a non-empty string of at most ${MAX_ID_LENGTH} bytes`, value);
  }
}

/**
 * The page as the worker may read it while it applies: bytes read in place must not be freed
 * under it, so a view of a resizable ArrayBuffer (which can shrink) is copied first.
 */
function readableInPlace(page) {
  const buffer = page instanceof ArrayBuffer ? page : ArrayBuffer.isView(page) ? page.buffer : undefined;
  if (buffer === undefined || buffer.resizable !== true) return page;
  const view = page instanceof ArrayBuffer ? new Uint8Array(page) : new Uint8Array(page.buffer, page.byteOffset, page.byteLength);
  return view.slice();
}

/**
 * An offline-first sync client on one local SQLite file: a document store whose
 * every write queues its change in the same transaction, the durable change
 * queue (`client.queue`), and native application of pulled changes.
 *
 * Events: 'change' ({ source: 'local', changes } once per transaction,
 * { source: 'remote', applied, skipped, latestServerVersion } once per applied
 * page, { source: 'resolution', conflictId, entityType, entityId } once per resolved conflict,
 * or { source: 'ingest', entityType, inserted, updated } once per ingest() that wrote records), 'conflict' (one per pulled change that met local changes), 'progress'
 * ({ applied, total, bytesParsed } while a page is applied, at most every 16 ms).
 */
class SyncClient extends EventEmitter {
  /**
   * @param {import('../types').SyncClientOptions} options
   */
  constructor(options) {
    super();
    if (!is.isPlainObject(options)) throw is.invalid('options', 'an object', options);
    is.optionsObject('options', options, CLIENT_OPTIONS);
    const { path, deviceId, userId, tenantId, coalesce = true, durability = 'normal', busyTimeoutMs = 10000 } = options;
    if (!is.isNonEmptyString(path)) throw is.invalid('options.path', 'a non-empty string (a file path or ":memory:")', path);
    optionalId('options.deviceId', deviceId);
    optionalId('options.userId', userId);
    optionalId('options.tenantId', tenantId);
    if (!is.isBoolean(coalesce)) throw is.invalid('options.coalesce', 'a boolean', coalesce);
    if (durability !== 'normal' && durability !== 'full') {
      throw is.invalid('options.durability', '"normal" or "full"', durability);
    }
    if (!is.isNonNegativeInteger(busyTimeoutMs) || busyTimeoutMs > 2 ** 31 - 1) {
      throw is.invalid('options.busyTimeoutMs', 'a non-negative integer of milliseconds', busyTimeoutMs);
    }
    const { conflicts = 'newest_wins', tombstoneRetentionMs = 30 * DAY_MS, applyChunkSize = 1000 } = options;
    const parsedConflicts = resolver.conflictsOption('options.conflicts', conflicts, { allowMap: true });
    const resolverTimeoutMs = resolver.timeoutOption('options.resolverTimeoutMs', options.resolverTimeoutMs);
    if (!is.isNonNegativeInteger(tombstoneRetentionMs)) {
      throw is.invalid('options.tombstoneRetentionMs', 'a non-negative integer of milliseconds', tombstoneRetentionMs);
    }
    if (!is.isPositiveInteger(applyChunkSize) || applyChunkSize > 1000000) {
      throw is.invalid('options.applyChunkSize', 'an integer from 1 to 1000000', applyChunkSize);
    }
    const limits = is.optionsObject('options.limits', options.limits, LIMIT_OPTIONS);
    if (limits.maxDepth !== undefined && !(is.isPositiveInteger(limits.maxDepth) && limits.maxDepth <= 1000)) {
      throw is.invalid('options.limits.maxDepth', 'an integer from 1 to 1000', limits.maxDepth);
    }
    if (limits.maxDocumentBytes !== undefined && !is.isPositiveInteger(limits.maxDocumentBytes)) {
      throw is.invalid('options.limits.maxDocumentBytes', 'a positive integer', limits.maxDocumentBytes);
    }

    const { mustExist = false, observer = false } = options;
    if (!is.isBoolean(mustExist)) throw is.invalid('options.mustExist', 'a boolean', mustExist);
    if (!is.isBoolean(observer)) throw is.invalid('options.observer', 'a boolean', observer);
    if (observer && options.transport !== undefined) throw is.invalid('options.observer', 'no transport with it (an observer never syncs)', observer);
    const engine = engineOptions(options);

    /** @private */
    this._handle = new native.NativeClient({
      path,
      deviceId,
      userId,
      tenantId,
      coalesce,
      durability,
      busyTimeoutMs,
      maxDepth: limits.maxDepth,
      maxDocumentBytes: limits.maxDocumentBytes,
      conflicts: parsedConflicts.strategy,
      conflictsPerType: parsedConflicts.perType,
      tombstoneRetentionMs,
      applyChunkSize,
      mustExist,
      observer,
    });
    /** @private strategies, and the app's resolvers by entity type */
    this._conflicts = parsedConflicts;
    /** @private */
    this._resolverTimeoutMs = resolverTimeoutMs;
    /** @private the settle in progress (single flight), or null */
    this._settling = null;
    /** @private events of the open transaction(s), emitted once at the outermost commit */
    this._pendingEvents = [];
    /** @private event counts at the start of each open transaction, innermost last */
    this._transactionMarks = [];
    /** @private settles when the last applyRemote has finished */
    this._applying = Promise.resolve();
    /** @private the sync loop, when a transport is configured */
    this._engine = null;
    if (engine) this._engine = new SyncEngine(this, engine);
    /** The file this client opened. */
    this.path = path;
    /** The durable change queue. */
    this.queue = new ChangeQueue(this);
  }

  /** The device id: as given, or generated on first open and persisted in the database. */
  get deviceId() {
    return this._native().deviceId();
  }

  /** True until close() is called. */
  get isOpen() {
    return this._handle.isOpen();
  }

  /**
   * Stores a full document and queues CREATED (new) or UPDATED (every field, and
   * null for each field the new document dropped), in one transaction.
   * @param {string} entityType
   * @param {string} entityId
   * @param {object} doc a plain JSON object
   * @returns {import('../types').WriteResult}
   */
  put(entityType, entityId, doc) {
    const native = this._native();
    const event = native.put(args.entityType(entityType), args.entityId(entityId), args.documentJson('doc', doc));
    this._emitLocal(event);
    return event;
  }

  /**
   * Sets the given fields on an existing document and queues UPDATED with only them.
   * @param {string} entityType
   * @param {string} entityId
   * @param {object} fields
   * @returns {import('../types').WriteResult}
   */
  patch(entityType, entityId, fields) {
    const native = this._native();
    const event = native.patch(args.entityType(entityType), args.entityId(entityId), args.documentJson('fields', fields));
    this._emitLocal(event);
    return event;
  }

  /**
   * Deletes a document (a tombstone until the delete is synced) and queues DELETED.
   * @param {string} entityType
   * @param {string} entityId
   * @returns {boolean} false when there was no document to delete
   */
  delete(entityType, entityId) {
    const native = this._native();
    const event = native.delete(args.entityType(entityType), args.entityId(entityId));
    if (event === null) return false;
    this._emitLocal(event);
    return true;
  }

  /**
   * The document, or undefined. With { meta: true }: { data, meta } (tombstones included, data null).
   * @param {string} entityType
   * @param {string} entityId
   * @param {{ meta?: boolean }} [options]
   */
  get(entityType, entityId, options) {
    const native = this._native();
    const { meta = false } = is.optionsObject('options', options, ['meta']);
    if (!is.isBoolean(meta)) throw is.invalid('options.meta', 'a boolean', meta);
    const found = native.get(args.entityType(entityType), args.entityId(entityId), meta);
    if (found === null) return undefined;
    if (!meta) return JSON.parse(found);
    const { data, ...rest } = found;
    return { data: data === null ? null : JSON.parse(data), meta: rest };
  }

  /**
   * Documents of one type matching `where`, ordered and paged.
   * @param {string} entityType
   * @param {import('../types').ListOptions} [options]
   * @returns {object[]}
   */
  list(entityType, options) {
    const native = this._native();
    return JSON.parse(native.list(args.entityType(entityType), listQuery(options)));
  }

  /**
   * Creates (once) an index on a document field of one entity type; list() uses it.
   * @param {string} entityType
   * @param {string} field a field path, e.g. "title" or "meta.author"
   */
  createIndex(entityType, field) {
    const native = this._native();
    if (typeof field !== 'string' || !FIELD_PATH.test(field) || field.length > 128) {
      throw is.invalid('field', 'a field path of identifiers joined by dots', field);
    }
    native.createIndex(args.entityType(entityType), field);
  }

  /**
   * Runs `fn` in one transaction: every write in it (and its queued change) is
   * kept, or none is. Nested calls are allowed; `fn` must be synchronous.
   * @template T
   * @param {(client: SyncClient) => T} fn
   * @returns {T}
   */
  transaction(fn) {
    const native = this._native();
    if (typeof fn !== 'function') throw is.invalid('fn', 'a function', fn);
    native.begin();
    this._transactionMarks.push(this._pendingEvents.length);
    let result;
    try {
      result = fn(this);
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        throw new SyncError(
          'Expected a synchronous function for fn but it returned a promise: a transaction cannot span an await',
          'INVALID_ARGUMENT',
        );
      }
    } catch (error) {
      this._pendingEvents.length = this._transactionMarks.pop();
      if (this._handle.isOpen()) native.rollback();
      throw error;
    }
    try {
      native.commit();
    } catch (error) {
      this._pendingEvents.length = this._transactionMarks.pop();
      throw error;
    }
    this._transactionMarks.pop();
    if (this._transactionMarks.length === 0) this._flushEvents();
    return result;
  }

  /**
   * Runs several writes in one transaction, all or none, and returns their results in order
   * (a WriteResult, or for a delete whether there was a document). The data form of
   * transaction(): it can cross IPC, where a callback cannot.
   * @param {import('../types').BatchOp[]} ops
   * @returns {Array<import('../types').WriteResult | boolean>}
   */
  batch(ops) {
    this._native();
    if (!Array.isArray(ops) || ops.length > MAX_BATCH_OPS) {
      throw is.invalid('ops', `an array of at most ${MAX_BATCH_OPS} operations`, ops);
    }
    const checked = ops.map((op, index) => batchOp(op, index));
    return this.transaction(() =>
      checked.map(({ op, entityType, entityId, body }) => {
        if (op === 'put') return this.put(entityType, entityId, body);
        if (op === 'patch') return this.patch(entityType, entityId, body);
        return this.delete(entityType, entityId);
      }),
    );
  }

  /**
   * Applies a pulled page (the `newChanges` shape) given as bytes: parsed and
   * applied in C++ on a worker thread, in bounded chunks, the cursor advanced with each.
   * A Buffer or ArrayBuffer is read in place while it applies: do not modify, transfer or
   * detach it until this settles (a resizable ArrayBuffer is copied first).
   * @param {Buffer | Uint8Array | ArrayBuffer | DataView | string} page
   * @returns {Promise<import('../types').ApplyResult>}
   */
  async applyRemote(page) {
    const { applied, skipped, conflicts, latestServerVersion, resynced } = await this._applyResponse(page, undefined);
    return { applied, skipped, conflicts, latestServerVersion, resynced };
  }

  /** @private applies a page or a whole sync response (with verdicts on what was pushed) */
  async _applyResponse(page, maxRetries) {
    this._native();
    const isBytes = typeof page === 'string' || ArrayBuffer.isView(page) || page instanceof ArrayBuffer;
    if (!isBytes) {
      throw is.invalid('page', 'a Buffer, Uint8Array, ArrayBuffer or string of JSON (pages cross as bytes)', page);
    }
    is.wellFormed('page', page);
    if (this._transactionMarks.length > 0) {
      throw new SyncError('applyRemote cannot run inside client.transaction()', 'CONFLICT');
    }
    const bytes = readableInPlace(page); // now: the caller may resize it as soon as this returns
    const onProgress = this.listenerCount('progress') > 0 ? (report) => this.emit('progress', report) : undefined;
    // Pages apply one after another, so the cursor never passes a change another page has not applied.
    const previous = this._applying;
    let done;
    this._applying = new Promise((resolve) => {
      done = resolve;
    });
    let result;
    try {
      await previous;
      result = await this._native().applyRemote(bytes, onProgress, maxRetries);
    } finally {
      done();
    }
    if (!this._handle.isOpen()) return result; // closed meanwhile: no events after close
    for (const conflict of result.conflicts) {
      if (conflict.strategy !== resolver.CUSTOM) this.emit('conflict', conflict);
    }
    this.emit('change', {
      source: 'remote',
      applied: result.applied,
      skipped: result.skipped,
      latestServerVersion: result.latestServerVersion,
    });
    if (this._conflicts.resolvers) {
      let settled = new Map();
      try {
        settled = await this._settleConflicts();
      } catch (error) {
        // The page is applied; its conflicts stay awaiting and are settled with the next page.
        if (this._handle.isOpen() && this.listenerCount('error') > 0) this.emit('error', error);
      }
      for (const conflict of result.conflicts) {
        if (conflict.strategy !== resolver.CUSTOM) continue;
        conflict.winner = settled.get(conflict.conflictId) ?? conflict.winner;
        if (this._handle.isOpen()) this.emit('conflict', conflict);
      }
    }
    return result;
  }

  /**
   * @private Asks the app's resolvers about every conflict awaiting them (those of this page,
   * and any a crash left behind), then writes all verdicts in one transaction. A resolver that
   * throws, answers garbage or is late leaves its conflict open for review, with the error.
   * @returns {Promise<Map<number, string>>} the winner by conflict id: 'local', 'remote',
   *   'merged', 'manual' (left for review) or 'custom' (still awaiting: stale)
   */
  async _settleConflicts() {
    const settle = async () => {
      const winners = new Map();
      for (let round = 0; round < MAX_RESOLVER_ROUNDS && this._handle.isOpen(); round++) {
        const contexts = JSON.parse(this._native().awaitingResolver());
        if (contexts.length === 0) break;
        const verdicts = await Promise.all(contexts.map((context) => this._decide(context)));
        if (!this._handle.isOpen()) break;
        let stale = false;
        let queued = false;
        let outcomes;
        try {
          outcomes = await this._native().settleConflicts(verdicts);
        } catch (error) {
          if (!this._handle.isOpen()) break; // closed meanwhile: the conflicts wait for the next open
          throw error;
        }
        outcomes.forEach((outcome, index) => {
          // One outcome per verdict, in order.
          const settledAs = { resolved: verdicts[index].use, review: 'manual', stale: 'custom' }[outcome.outcome];
          winners.set(outcome.id, settledAs);
          stale ||= outcome.outcome === 'stale';
          if (outcome.outcome !== 'resolved') return;
          queued = true;
          const { id: conflictId, entityType, entityId } = outcome;
          this.emit('change', { source: 'resolution', conflictId, entityType, entityId });
        });
        if (queued) this._queued();
        if (!stale) break;
      }
      return winners;
    };
    // One settle at a time: a second waits for the first, then reads what is still awaiting.
    const run = (this._settling ?? Promise.resolve()).catch(() => {}).then(settle);
    this._settling = run;
    try {
      return await run;
    } finally {
      if (this._settling === run) this._settling = null;
    }
  }

  /** @private one verdict of the entity type's resolver, for settleConflicts */
  async _decide({ id, remoteVersion, localToken, entityType, entityId, local, remote, base, localChange, remoteChange }) {
    const decision = await resolver.decide(
      resolver.resolverFor(this._conflicts, entityType),
      { entityType, entityId, local, remote, base, localChange, remoteChange },
      this._resolverTimeoutMs,
    );
    return { id, remoteVersion, localToken, ...decision };
  }

  /** The server version this client has pulled up to (0 before the first pull). */
  get serverVersion() {
    return this._native().cursor();
  }

  /** Open conflicts kept by the 'manual' strategy, oldest first. @returns {import('../types').Conflict[]} */
  conflicts() {
    return JSON.parse(this._native().conflicts());
  }

  /**
   * Settles an open conflict: keep the local state, take the remote one, or store
   * merged data. Queues what the server must learn. Returns the document now visible
   * (undefined when the outcome is a deletion).
   * @param {number} conflictId
   * @param {{ use: 'local' | 'remote' | 'merged', data?: object }} resolution
   */
  resolveConflict(conflictId, resolution) {
    const native = this._native();
    if (!is.isPositiveInteger(conflictId)) throw is.invalid('conflictId', 'a positive integer', conflictId);
    if (!is.isPlainObject(resolution)) throw is.invalid('resolution', 'an object', resolution);
    const { use, data } = is.optionsObject('resolution', resolution, ['use', 'data']);
    if (!RESOLVE_USES.includes(use)) throw is.invalid('resolution.use', '"local", "remote" or "merged"', use);
    if (use === 'merged' && !is.isPlainObject(data)) throw is.invalid('resolution.data', 'a plain object', data);
    if (use !== 'merged' && data !== undefined) {
      throw is.invalid('resolution.data', `nothing with use "${use}"`, data);
    }
    const { entityType, entityId, document } = native.resolveConflict(
      conflictId,
      use,
      use === 'merged' ? is.toJson('resolution.data', data) : null,
    );
    this._queued();
    this.emit('change', { source: 'resolution', conflictId, entityType, entityId });
    return document === null ? undefined : JSON.parse(document);
  }

  /**
   * Deletes tombstones whose delete is synced and that are older than the retention.
   * @param {number} [retentionMs] defaults to the tombstoneRetentionMs option
   * @returns {number} how many were purged
   */
  purgeTombstones(retentionMs) {
    const native = this._native();
    if (retentionMs !== undefined && !is.isNonNegativeInteger(retentionMs)) {
      throw is.invalid('retentionMs', 'a non-negative integer of milliseconds', retentionMs);
    }
    return native.purgeTombstones(retentionMs);
  }

  /**
   * Ingests a tree of JSONL files incrementally: new and changed files (by a manifest of
   * size, mtime and SHA-256) are parsed in C++ on a worker thread and their records written
   * through the store (so they are queued for sync); unchanged records are skipped.
   * @param {string} dir
   * @param {import('../types').IngestOptions} [options]
   * @returns {Promise<import('../types').IngestReport>}
   */
  async ingest(dir, options) {
    return this._ingest(dir, options, false);
  }

  /** What ingest() would do, without writing anything. */
  async previewIngest(dir, options) {
    return this._ingest(dir, options, true);
  }

  /** The last ingest run, persisted: { status, dir, startedAt, finishedAt, report, error }, or null. */
  ingestStatus() {
    return JSON.parse(this._native().ingestStatus());
  }

  /** Forgets the manifest of ingested files: the next ingest reads every file again. */
  resetIngest() {
    this._native().resetIngest();
  }

  /** @private */
  async _ingest(dir, options, dryRun) {
    const native = this._native();
    if (!is.isNonEmptyString(dir)) throw is.invalid('dir', 'a directory path', dir);
    const known = ['pattern', 'entityType', 'idField', 'incremental', 'dryRun', 'maxFiles', 'skipExisting', 'forceFullSync'];
    const opts = is.optionsObject('options', options, known);
    const { pattern = '**/*.jsonl', entityType = 'record', idField = 'id', incremental = true, maxFiles } = opts;
    if (!is.isNonEmptyString(pattern)) throw is.invalid('options.pattern', 'a glob such as "**/*.jsonl"', pattern);
    args.entityType(entityType);
    if (!is.isNonEmptyString(idField)) throw is.invalid('options.idField', 'a field name', idField);
    for (const key of ['incremental', 'dryRun', 'skipExisting', 'forceFullSync']) {
      if (opts[key] !== undefined && !is.isBoolean(opts[key])) throw is.invalid(`options.${key}`, 'a boolean', opts[key]);
    }
    if (maxFiles !== undefined && !is.isPositiveInteger(maxFiles)) throw is.invalid('options.maxFiles', 'a positive integer', maxFiles);
    const onProgress = this.listenerCount('ingest-progress') > 0 ? (report) => this.emit('ingest-progress', report) : undefined;
    const json = await native.ingest(
      dir,
      { ...opts, pattern, entityType, idField, incremental, dryRun: dryRun || opts.dryRun === true },
      onProgress,
    );
    const report = JSON.parse(json);
    if (!dryRun && opts.dryRun !== true && report.recordsInserted + report.recordsUpdated > 0) {
      this._queued();
      if (this._handle.isOpen()) {
        this.emit('change', { source: 'ingest', entityType, inserted: report.recordsInserted, updated: report.recordsUpdated });
      }
    }
    return report;
  }

  /** Starts syncing by itself: triggers, periodic cycles, retries. Needs the transport option. */
  start() {
    this._requireEngine('start').start();
  }

  /** Stops automatic syncing; a cycle in flight is aborted (its changes stay queued). */
  stop() {
    this._requireEngine('stop').stop();
  }

  /**
   * Runs a sync cycle and resolves with its summary. `manual` (the default) runs it now,
   * bypassing the interval and the backoff, and retries failed changes.
   * @param {{ manual?: boolean }} [options]
   * @returns {Promise<import('../types').SyncSummary>}
   */
  async sync(options) {
    const engine = this._requireEngine('sync');
    const { manual = true } = is.optionsObject('options', options, ['manual']);
    if (!is.isBoolean(manual)) throw is.invalid('options.manual', 'a boolean', manual);
    if (manual) this._native().retryFailed();
    return engine.sync(manual);
  }

  /**
   * Tells the client what the app observed: 'online' | 'offline' | 'focus' | 'blur' | 'visible' | 'hidden'.
   * @param {string} event
   */
  notify(event) {
    const engine = this._requireEngine('notify');
    if (!NOTIFY_EVENTS.includes(event)) throw is.invalid('event', `one of ${NOTIFY_EVENTS.map((e) => `"${e}"`).join(', ')}`, event);
    engine.notify(event);
  }

  /** { state, pendingChanges, failedChanges, lastSyncTime, lastError, nextSyncAt, serverVersion, offlineReason } */
  get status() {
    this._native();
    if (this._engine) return this._engine.status();
    const stats = this.queue.stats();
    return {
      state: 'stopped',
      pendingChanges: stats.pending + stats.syncing,
      failedChanges: stats.failed,
      lastSyncTime: stats.lastSyncTime,
      lastError: null,
      nextSyncAt: null,
      serverVersion: this.serverVersion,
      offlineReason: null,
      live: false,
    };
  }

  /** @private a change was queued directly: the scheduler sends it after localChangeDelayMs */
  _queued() {
    if (this._engine) this._engine.localChange();
  }

  /** @private */
  _requireEngine(method) {
    this._native();
    if (!this._engine) {
      throw new SyncError(`${method}() needs a transport: pass options.transport (e.g. httpTransport({ url }))`, 'INVALID_ARGUMENT');
    }
    return this._engine;
  }

  /** @private */
  _emitLocal(event) {
    this._pendingEvents.push(event);
    if (this._transactionMarks.length === 0) this._flushEvents();
  }

  /** @private */
  _flushEvents() {
    if (this._pendingEvents.length === 0) return;
    const changes = this._pendingEvents;
    this._pendingEvents = [];
    if (this._engine) this._engine.localChange();
    this.emit('change', { source: 'local', changes });
  }

  /** Closes the database file. Idempotent; any later call throws a SyncError with code CLOSED. */
  close() {
    if (this._engine) this._engine.close();
    this._handle.close();
  }

  /** @private the native handle, or CLOSED */
  _native() {
    if (!this._handle.isOpen()) throw new SyncError('The client is closed', 'CLOSED');
    return this._handle;
  }
}

/** The sync loop's options, checked with or without a transport; null without one. */
function engineOptions(options) {
  const { transport, keepAlive = false } = options;
  if (transport !== undefined && typeof transport !== 'function') {
    throw is.invalid('options.transport', 'a function (request, { signal }) => Promise<bytes>, e.g. httpTransport({ url })', transport);
  }
  if (!is.isBoolean(keepAlive)) throw is.invalid('options.keepAlive', 'a boolean', keepAlive);
  const triggers = { periodicMs: 30000, minIntervalMs: 5000, localChangeDelayMs: 1000, ...is.optionsObject('options.triggers', options.triggers, TRIGGER_OPTIONS) };
  const retry = { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 300000, maxRetryAfterMs: 3600000, ...is.optionsObject('options.retry', options.retry, RETRY_OPTIONS) };
  const batch = { push: 100, pull: 1000, ...is.optionsObject('options.batch', options.batch, BATCH_OPTIONS) };
  for (const [key, value] of Object.entries(triggers)) {
    if (!is.isNonNegativeInteger(value)) throw is.invalid(`options.triggers.${key}`, 'a non-negative integer of milliseconds', value);
  }
  for (const [key, value] of Object.entries(retry)) {
    if (!is.isNonNegativeInteger(value)) throw is.invalid(`options.retry.${key}`, 'a non-negative integer', value);
  }
  if (retry.maxRetries < 1) throw is.invalid('options.retry.maxRetries', 'a positive integer', retry.maxRetries);
  if (!(is.isPositiveInteger(batch.push) && batch.push <= 1000)) throw is.invalid('options.batch.push', 'an integer from 1 to 1000', batch.push);
  if (!(is.isPositiveInteger(batch.pull) && batch.pull <= 10000)) throw is.invalid('options.batch.pull', 'an integer from 1 to 10000', batch.pull);
  if (transport === undefined) {
    for (const key of ['healthCheck', 'live']) {
      if (options[key] !== undefined && options[key] !== false) throw is.invalid(`options.${key}`, 'false or absent without options.transport', options[key]);
    }
    return null;
  }
  return {
    transport,
    triggers,
    retry,
    batch,
    keepAlive,
    healthCheck: healthCheckOptions(options.healthCheck, transport),
    live: liveOptions(options.live, transport),
  };
}

/** Live updates' options; null when off, or when the transport has no live stream. */
function liveOptions(value, transport) {
  if (value === false) return null;
  const options = is.optionsObject('options.live', value === undefined || value === true ? {} : value, LIVE_OPTIONS);
  const { pokeDebounceMs = 20, fallbackAfter = 5 } = options;
  if (!is.isNonNegativeInteger(pokeDebounceMs)) throw is.invalid('options.live.pokeDebounceMs', 'a non-negative integer of milliseconds', pokeDebounceMs);
  if (!is.isPositiveInteger(fallbackAfter)) throw is.invalid('options.live.fallbackAfter', 'a positive integer', fallbackAfter);
  if (typeof transport.events !== 'function') {
    if (value === true || is.isPlainObject(value)) {
      throw is.invalid('options.live', 'false with this transport (live updates need httpTransport without a custom fetch, or a transport with .events)', value);
    }
    return null;
  }
  return { pokeDebounceMs, fallbackAfter, events: transport.events };
}

/** The health check's options, with the probe it runs; null when off. */
function healthCheckOptions(value, transport) {
  if (value === undefined || value === false) return null;
  const options = is.optionsObject('options.healthCheck', value === true ? {} : value, HEALTH_OPTIONS);
  const { url, intervalMs = 5000, timeoutMs = 5000, unreachableAfter = 3 } = options;
  for (const [key, number] of Object.entries({ intervalMs, timeoutMs, unreachableAfter })) {
    if (!is.isPositiveInteger(number)) throw is.invalid(`options.healthCheck.${key}`, 'a positive integer', number);
  }
  if (url !== undefined) {
    let valid = false;
    try {
      valid = typeof url === 'string' && /^https?:$/.test(new URL(url).protocol);
    } catch {
      valid = false;
    }
    if (!valid) throw is.invalid('options.healthCheck.url', 'an absolute http(s) URL', url);
  }
  let probe;
  if (typeof transport.probe === 'function') probe = (args) => transport.probe(url === undefined ? args : { ...args, probeUrl: url });
  else if (url !== undefined) probe = (args) => probeServer({ ...args, url });
  else throw is.invalid('options.healthCheck.url', 'the URL to probe (required with a transport other than httpTransport)', url);
  return { intervalMs, timeoutMs, unreachableAfter, probe };
}

/** One batch() operation checked for its shape; the store methods check its values. */
function batchOp(op, index) {
  const name = `ops[${index}]`;
  if (!is.isPlainObject(op) || typeof op.op !== 'string' || !Object.hasOwn(BATCH_OPS, op.op)) {
    throw is.invalid(name, 'an object with op "put", "patch" or "delete"', op);
  }
  const bodyKey = BATCH_OPS[op.op];
  is.optionsObject(name, op, bodyKey ? ['op', 'entityType', 'entityId', bodyKey] : ['op', 'entityType', 'entityId']);
  return { op: op.op, entityType: op.entityType, entityId: op.entityId, body: bodyKey ? op[bodyKey] : undefined };
}

/** JSON.stringify turns NaN and Infinity into null, which would match missing fields: refuse them. */
function checkFiniteNumbers(name, value) {
  if (typeof value === 'number' && !Number.isFinite(value)) throw is.invalid(name, 'a finite number', value);
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) checkFiniteNumbers(`${name}.${key}`, item);
  }
}

/** Checks list() options and hands them to the core as JSON; the core checks fields and operators. */
function listQuery(options) {
  const { where, orderBy, limit, offset } = is.optionsObject('options', options, LIST_OPTIONS);
  if (where !== undefined && !is.isPlainObject(where)) throw is.invalid('options.where', 'an object of field conditions', where);
  if (where !== undefined) checkFiniteNumbers('options.where', where);
  if (orderBy !== undefined && typeof orderBy !== 'string' && !Array.isArray(orderBy)) {
    throw is.invalid('options.orderBy', 'a field name, "-field", or an array of them', orderBy);
  }
  if (limit !== undefined && !is.isPositiveInteger(limit)) throw is.invalid('options.limit', 'a positive integer', limit);
  if (offset !== undefined && !is.isNonNegativeInteger(offset)) {
    throw is.invalid('options.offset', 'a non-negative integer', offset);
  }
  return is.toJson('options', { where, orderBy, limit, offset });
}

module.exports = { SyncClient };
