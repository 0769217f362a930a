'use strict';

// Conflict resolvers an app writes itself, shared by the client and the server: how the
// `conflicts` option names them, and how one verdict is asked for. A resolver is
// (context) => resolution | Promise<resolution>, where a resolution is { use: 'local' },
// { use: 'remote' }, { use: 'merged', data } or { needsManualReview: true }.

const is = require('./is');
const { isEntityType, ENTITY_TYPE_RULE } = require('./store-args');

const STRATEGIES = ['newest_wins', 'server_wins', 'client_wins', 'merge', 'manual'];
const CUSTOM = 'custom';
const DEFAULT_KEY = '*';
const DEFAULT_TIMEOUT_MS = 1000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const strategyList = STRATEGIES.map((name) => `"${name}"`).join(', ');
const EXPECTED = `one of ${strategyList}, or a resolver function`;

function strategyOrResolver(name, value) {
  if (typeof value === 'function') return { strategy: CUSTOM, resolver: value };
  if (STRATEGIES.includes(value)) return { strategy: value, resolver: null };
  throw is.invalid(name, EXPECTED, value);
}

/**
 * Reads a strategy option: a name, a resolver function, or (with `allowMap`) an object of
 * entity types to names or functions, with '*' for the others.
 * @returns {{ strategy: string, perType: Record<string, string>, resolvers: Map<string, Function> | null, fallback: Function | null }}
 *   what the native side is told (functions become 'custom'), and the functions by entity type.
 */
function conflictsOption(name, value, { perType = {}, perTypeName = 'options.perType', allowMap = false } = {}) {
  let entries = [];
  let main = value;
  const isMap = allowMap && is.isPlainObject(value);
  if (isMap) {
    main = Object.hasOwn(value, DEFAULT_KEY) ? value[DEFAULT_KEY] : 'newest_wins';
    entries = Object.entries(value)
      .filter(([type]) => type !== DEFAULT_KEY)
      .map(([type, entry]) => [type, entry, `${name}.${type}`, `keys of ${name}`]);
  }
  if (!is.isPlainObject(perType)) throw is.invalid(perTypeName, 'an object of entity types to strategies or resolvers', perType);
  entries = entries.concat(
    Object.entries(perType).map(([type, entry]) => [type, entry, `${perTypeName}.${type}`, `keys of ${perTypeName}`]),
  );
  const base = strategyOrResolver(isMap ? `${name}["*"]` : name, main);
  const nativePerType = {};
  const resolvers = new Map();
  for (const [type, entry, entryName, keysName] of entries) {
    if (!isEntityType(type)) throw is.invalid(keysName, ENTITY_TYPE_RULE, type);
    const parsed = strategyOrResolver(entryName, entry);
    nativePerType[type] = parsed.strategy;
    if (parsed.resolver) resolvers.set(type, parsed.resolver);
  }
  const custom = base.resolver !== null || resolvers.size > 0;
  return {
    strategy: base.strategy,
    perType: nativePerType,
    resolvers: custom ? resolvers : null,
    fallback: base.resolver,
  };
}

function timeoutOption(name, value) {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (!is.isPositiveInteger(value) || value > MAX_TIMEOUT_MS) throw is.invalid(name, 'a positive integer of milliseconds', value);
  return value;
}

/** The resolver configured for an entity type (by conflictsOption), or null. */
function resolverFor(parsed, entityType) {
  return parsed.resolvers?.get(entityType) ?? parsed.fallback;
}

/** Why a resolution is not one a resolver may return, or null when it is. */
function refusal(resolution) {
  if (!is.isPlainObject(resolution)) return `returned ${is.describe(resolution)} instead of a resolution object`;
  if (resolution.needsManualReview === true) return null;
  if (resolution.use === 'local' || resolution.use === 'remote') return null;
  if (resolution.use === 'merged') {
    return is.isPlainObject(resolution.data) ? null : `returned use "merged" with data that is ${is.describe(resolution.data)}`;
  }
  return `returned use ${is.describe(resolution.use)} (expected "local", "remote" or "merged", or needsManualReview: true)`;
}

/**
 * Asks a resolver for one verdict, within `timeoutMs`. Never throws: a resolver that throws,
 * rejects, returns something else than a resolution, or is late gives { use: null, error }.
 * @returns {Promise<{ use: 'local' | 'remote' | 'merged' | null, data?: string, error?: string }>}
 *   merged data comes back as JSON text.
 */
async function decide(resolver, context, timeoutMs) {
  let timer;
  // Kept referenced: a caller awaiting the verdict is owed an answer within timeoutMs.
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ late: true }), timeoutMs);
  });
  let answer;
  let refused;
  try {
    const pending = Promise.resolve().then(() => resolver(context));
    const settled = await Promise.race([pending.then((value) => ({ value })), late]);
    if (settled.late) return { use: null, error: `The resolver did not answer within ${timeoutMs} ms` };
    answer = read(settled.value);
    refused = refusal(answer); // inside: describing a hostile value may throw too
  } catch (error) {
    return { use: null, error: `The resolver threw: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    clearTimeout(timer);
  }
  if (refused) return { use: null, error: `The resolver ${refused}` };
  if (answer.needsManualReview === true) return { use: null };
  if (answer.use !== 'merged') return { use: answer.use };
  try {
    return { use: 'merged', data: is.toJson('data', answer.data) };
  } catch (error) {
    return { use: null, error: `The resolver's merged data was refused: ${error.message}` };
  }
}

/**
 * The resolution's fields, read once (a getter or a Proxy could answer differently each time),
 * as a plain object; anything else as it is, for refusal() to name.
 */
function read(resolution) {
  if (!is.isPlainObject(resolution)) return resolution;
  const { use, data, needsManualReview } = resolution;
  return { use, data, needsManualReview };
}

module.exports = { STRATEGIES, CUSTOM, conflictsOption, timeoutOption, resolverFor, decide };
