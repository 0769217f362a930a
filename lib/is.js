'use strict';

// Tiny predicates and one error helper, so that every argument error has one shape:
// "Expected a non-empty string for entityId but received 42 of type number".

const { SyncError } = require('./errors');

const isPlainObject = (value) => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};
const isNonEmptyString = (value) => typeof value === 'string' && value.length > 0;
const isInteger = (value) => Number.isSafeInteger(value);
const isPositiveInteger = (value) => isInteger(value) && value > 0;
const isNonNegativeInteger = (value) => isInteger(value) && value >= 0;
const isBoolean = (value) => typeof value === 'boolean';
const isDefined = (value) => value !== undefined;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** True when the string has no lone surrogate (String#isWellFormed, which Node 18 lacks). */
const isWellFormedString = typeof String.prototype.isWellFormed === 'function'
  ? (text) => text.isWellFormed()
  : (text) => !LONE_SURROGATE.test(text);

/** True when `text` takes at most `maxBytes` bytes of UTF-8 (a UTF-16 code unit takes at most 3). */
function fitsUtf8Bytes(text, maxBytes) {
  return text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes;
}

/** Renders a received value for an error message. */
function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
      return `${JSON.stringify(shown)} of type string`;
    }
    case 'object':
      return `an object of type ${value.constructor ? value.constructor.name : 'Object'}`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return `${String(value)} of type ${typeof value}`;
  }
}

/** A SyncError with code INVALID_ARGUMENT in the one message shape. */
function invalid(name, expected, received) {
  return new SyncError(`Expected ${expected} for ${name} but received ${describe(received)}`, 'INVALID_ARGUMENT');
}

/**
 * Checks that `options` is undefined or a plain object holding only `known` keys.
 * @returns {object} the options, or an empty object
 */
function optionsObject(name, options, known) {
  if (options === undefined) return {};
  if (!isPlainObject(options)) throw invalid(name, 'an object', options);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new SyncError(
        `Unknown option ${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)} in ${name} (expected one of: ${known.join(', ')})`,
        'INVALID_ARGUMENT',
      );
    }
  }
  return options;
}

/** The first NaN or Infinity inside `value`, as `{ path, value }`, or undefined. */
function findNonFinite(value, path) {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value };
  if (value === null || typeof value !== 'object') return undefined;
  if (typeof value.toJSON === 'function') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = findNonFinite(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * JSON.stringify that reports what could not be serialized as an argument error. NaN and
 * Infinity, which JSON.stringify would silently turn into null, are refused.
 */
function toJson(name, value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new SyncError(`Expected JSON-serializable data for ${name}: ${error.message}`, 'INVALID_ARGUMENT');
  }
  // Only a text with a null can hide a NaN: the walk is skipped for everything else.
  if (text !== undefined && text.includes('null')) {
    const found = findNonFinite(value, name);
    if (found !== undefined) throw invalid(found.path, 'a finite number (NaN and Infinity are not JSON)', found.value);
  }
  return text;
}

/** A string body or id with a lone surrogate would be changed on its way to UTF-8: refuse it. */
function wellFormed(name, text) {
  if (typeof text === 'string' && !isWellFormedString(text)) {
    throw new SyncError(`Expected well-formed UTF-16 for ${name} but received a string with a lone surrogate`, 'INVALID_ARGUMENT');
  }
  return text;
}

module.exports = {
  fitsUtf8Bytes,
  isPlainObject,
  isNonEmptyString,
  isInteger,
  isPositiveInteger,
  isNonNegativeInteger,
  isBoolean,
  isDefined,
  isWellFormedString,
  describe,
  invalid,
  optionsObject,
  toJson,
  wellFormed,
};
