'use strict';

/**
 * The error every deltasync operation throws or rejects with.
 * `code` is stable and meant for programs; `message` is for people and names
 * the offending argument and what was expected.
 *
 * Codes: INVALID_ARGUMENT, NOT_FOUND, CONFLICT, CLOSED, STORAGE, BUSY,
 * LIMIT_EXCEEDED, NOT_A_DATABASE, UNAVAILABLE (PostgreSQL unreachable or kept aborting: retry later), FORBIDDEN (Electron bridge), NATIVE_MODULE (no binary loads on this platform),
 * INTERNAL.
 */
class SyncError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   */
  constructor(message, code) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
  }
}

module.exports = { SyncError };
