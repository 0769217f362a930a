'use strict';

const { EventEmitter } = require('node:events');
const native = require('./native');
const { ChangeQueue } = require('./queue');
const { SyncError } = require('./errors');
const is = require('./is');

const CLIENT_OPTIONS = ['path', 'deviceId', 'userId', 'tenantId', 'coalesce', 'durability', 'busyTimeoutMs', 'limits'];
const LIMIT_OPTIONS = ['maxDepth', 'maxDocumentBytes'];
const MAX_ID_LENGTH = 256;

function optionalId(name, value) {
  if (value !== undefined && !(is.isNonEmptyString(value) && value.length <= MAX_ID_LENGTH)) {
    throw is.invalid(name, `a non-empty string of at most ${MAX_ID_LENGTH} characters`, value);
  }
}

/**
 * An offline-first sync client on one local SQLite file: the durable change
 * queue (`client.queue`) and, in later releases, the document store and sync.
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
    const limits = is.optionsObject('options.limits', options.limits, LIMIT_OPTIONS);
    if (limits.maxDepth !== undefined && !(is.isPositiveInteger(limits.maxDepth) && limits.maxDepth <= 1000)) {
      throw is.invalid('options.limits.maxDepth', 'an integer from 1 to 1000', limits.maxDepth);
    }
    if (limits.maxDocumentBytes !== undefined && !is.isPositiveInteger(limits.maxDocumentBytes)) {
      throw is.invalid('options.limits.maxDocumentBytes', 'a positive integer', limits.maxDocumentBytes);
    }

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
    });
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

  /** Closes the database file. Idempotent; any later call throws a SyncError with code CLOSED. */
  close() {
    this._handle.close();
  }

  /** @private the native handle, or CLOSED */
  _native() {
    if (!this._handle.isOpen()) throw new SyncError('The client is closed', 'CLOSED');
    return this._handle;
  }
}

module.exports = { SyncClient };
