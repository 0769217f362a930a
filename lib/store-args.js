'use strict';

// Argument checks shared by the document store methods of SyncClient.

const is = require('./is');

const ENTITY_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;
const RESERVED_TYPES = new Set(['__proto__', 'constructor']);
const MAX_ENTITY_ID_BYTES = 256;

function entityType(value) {
  if (typeof value !== 'string' || !ENTITY_TYPE.test(value) || RESERVED_TYPES.has(value)) {
    throw is.invalid('entityType', 'a string matching [A-Za-z0-9_.-]{1,64} (not "__proto__" or "constructor")', value);
  }
  return value;
}

function entityId(value) {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value) > MAX_ENTITY_ID_BYTES ||
    value.includes('\0') ||
    !is.isWellFormedString(value)
  ) {
    throw is.invalid('entityId', `a non-empty string of at most ${MAX_ENTITY_ID_BYTES} bytes, without NUL or lone surrogates`, value);
  }
  return value;
}

function documentJson(name, value) {
  if (!is.isPlainObject(value)) throw is.invalid(name, 'a plain object', value);
  return is.toJson(name, value);
}

module.exports = { entityType, entityId, documentJson, RESERVED_TYPES };
