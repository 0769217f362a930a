'use strict';

// Argument checks shared by the document store methods of SyncClient.

const is = require('./is');

const ENTITY_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;
const RESERVED_TYPES = new Set(['__proto__', 'constructor']);
const MAX_ENTITY_ID_BYTES = 256;

const ENTITY_TYPE_RULE = 'a string matching [A-Za-z0-9_.-]{1,64} (not "__proto__" or "constructor")';

/** The one rule for entity types, wherever they are named (arguments, option keys). */
function isEntityType(value) {
  return typeof value === 'string' && ENTITY_TYPE.test(value) && !RESERVED_TYPES.has(value);
}

function entityType(value, name = 'entityType') {
  if (!isEntityType(value)) throw is.invalid(name, ENTITY_TYPE_RULE, value);
  return value;
}

function entityId(value) {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    !is.fitsUtf8Bytes(value, MAX_ENTITY_ID_BYTES) ||
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

module.exports = { entityType, isEntityType, ENTITY_TYPE_RULE, entityId, documentJson, RESERVED_TYPES };
