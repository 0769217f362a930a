'use strict';

const is = require('./is');

/**
 * @typedef {import('../types').QueuedChange} QueuedChange
 * @typedef {import('../types').ChangeInput} ChangeInput
 */

/**
 * The durable change queue of a SyncClient (`client.queue`). Every method is
 * synchronous and each write is one SQLite transaction.
 */
class ChangeQueue {
  /** @param {import('./client').SyncClient} client */
  constructor(client) {
    this._client = client;
  }

  /**
   * Queues one change. A pending change of the same entity coalesces with it
   * (unless the client has `coalesce: false`).
   * @param {ChangeInput} change
   * @returns {{ changeId: string, outcome: 'queued' | 'coalesced' | 'cancelled', into?: string }}
   */
  enqueue(change) {
    const native = this._client._native();
    if (!is.isPlainObject(change)) throw is.invalid('change', 'an object', change);
    const result = native.enqueue(is.toJson('change', change));
    this._client._queued();
    return result;
  }

  /**
   * Queues several changes in one transaction: all or none.
   * @param {ChangeInput[]} changes
   * @returns {{ queued: number, coalesced: number, cancelled: number, changeIds: string[] }}
   */
  enqueueMany(changes) {
    const native = this._client._native();
    if (!Array.isArray(changes)) throw is.invalid('changes', 'an array of change objects', changes);
    const result = native.enqueueMany(is.toJson('changes', changes));
    this._client._queued();
    return result;
  }

  /**
   * Pending changes, oldest first.
   * @param {{ limit?: number, entityType?: string }} [options]
   * @returns {QueuedChange[]}
   */
  pending(options) {
    const native = this._client._native();
    const { limit, entityType } = is.optionsObject('options', options, ['limit', 'entityType']);
    if (limit !== undefined && !is.isPositiveInteger(limit)) throw is.invalid('options.limit', 'a positive integer', limit);
    if (entityType !== undefined && !is.isNonEmptyString(entityType)) {
      throw is.invalid('options.entityType', 'a non-empty string', entityType);
    }
    return JSON.parse(native.pending(limit ?? 0, entityType ?? null));
  }

  /** @returns {QueuedChange[]} changes that used up their retries, oldest first */
  failed() {
    return JSON.parse(this._client._native().failed());
  }

  /** @returns {import('../types').QueueStats} */
  stats() {
    return JSON.parse(this._client._native().stats());
  }

  /**
   * Everything queued, as one JSON-serializable document, for debugging and support.
   * @returns {import('../types').QueueExport}
   */
  export() {
    return JSON.parse(this._client._native().exportJson());
  }

  /** Failed changes become pending again, with their retry count reset. @returns {number} how many */
  retryFailed() {
    return this._client._native().retryFailed();
  }

  /**
   * Removes a change that is not in flight.
   * @param {string} changeId
   */
  discard(changeId) {
    const native = this._client._native();
    if (!is.isNonEmptyString(changeId)) throw is.invalid('changeId', 'a non-empty string', changeId);
    native.discard(changeId);
  }

  /**
   * Imports the pending changes an older client kept elsewhere (a localStorage
   * dump, an outbox table): an array of records, or its JSON text. Idempotent by
   * changeId: importing the same dump twice imports it once.
   * @param {string | object[]} records
   * @returns {{ imported: number, skipped: number }}
   */
  importLegacy(records) {
    const native = this._client._native();
    if (typeof records === 'string') return native.importLegacy(is.wellFormed('records', records));
    if (!Array.isArray(records)) throw is.invalid('records', 'an array of change records or its JSON text', records);
    return native.importLegacy(is.toJson('records', records));
  }
}

module.exports = { ChangeQueue };
