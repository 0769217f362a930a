'use strict';

// Shared helpers for the node --test suite. Not a test file: it only exports functions.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { SyncClient, SyncError } = require('../..');

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Generated changeIds are time-ordered UUID v7 (device ids stay v4).
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A fresh temporary directory, removed when the test `t` ends. */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A client that is closed when the test `t` ends (close() is idempotent). */
function openClient(t, options) {
  const client = new SyncClient(options);
  t.after(() => client.close());
  return client;
}

/** An in-memory client for the test `t`. */
function memoryClient(t, options = {}) {
  return openClient(t, { path: ':memory:', ...options });
}

/** Asserts that fn throws a SyncError with `code` and a message matching `message` (when given). */
function assertSyncError(fn, code, message) {
  let thrown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown !== undefined, `expected a SyncError with code ${code}, but nothing was thrown`);
  assert.ok(thrown instanceof SyncError, `expected a SyncError, got ${thrown && thrown.stack}`);
  assert.equal(thrown.name, 'SyncError');
  assert.equal(thrown.code, code, `code of: ${thrown.message}`);
  if (message !== undefined) assert.match(thrown.message, message);
  return thrown;
}

/** Everything observable about a queue except the export time, for before/after comparisons. */
function snapshot(client) {
  const { exportedAt, ...rest } = client.queue.export();
  assert.equal(typeof exportedAt, 'number');
  return rest;
}

/** A valid CREATED change for entity `id` of type `entityType`. */
function created(id, data = { title: `title ${id}` }, extra = {}) {
  return { type: 'CREATED', entityType: 'note', entityId: String(id), data, ...extra };
}

/** Parses the JSON text that the native takeBatch returns. */
function takeBatch(client, limit) {
  return JSON.parse(client._handle.takeBatch(limit));
}

/** True when the SQLite side files of `file` (-wal, -shm) are gone: the last connection closed cleanly. */
function sideFilesGone(file) {
  return !fs.existsSync(`${file}-wal`) && !fs.existsSync(`${file}-shm`);
}

/** Resolves with the worker's exit code; rejects on an 'error' event. */
function waitForExit(worker) {
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
}

/** Asserts that `promise` rejects with a SyncError with `code` and a message matching `message` (when given). */
async function assertRejectsSyncError(promise, code, message) {
  assert.ok(promise instanceof Promise, 'expected a promise (an async API rejects, it does not throw)');
  let thrown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown !== undefined, `expected a rejection with code ${code}, but the promise resolved`);
  assert.ok(thrown instanceof SyncError, `expected a SyncError, got ${thrown && thrown.stack}`);
  assert.equal(thrown.code, code, `code of: ${thrown.message}`);
  if (message !== undefined) assert.match(thrown.message, message);
  return thrown;
}

/**
 * A pulled change in the wire shape (DESIGN.md section 4): version `version`,
 * changeId `r<version>`, a CREATED of note `entityId` unless `extra` says otherwise.
 */
function remote(version, entityId, extra = {}) {
  return {
    version,
    changeId: `r${version}`,
    type: 'CREATED',
    entityType: 'note',
    entityId: String(entityId),
    data: { v: version },
    timestamp: 1000 + version,
    deviceId: 'other-device',
    ...extra,
  };
}

/** Collects every emission of `event` on `emitter`, in order. */
function collect(emitter, event) {
  const seen = [];
  emitter.on(event, (payload) => seen.push(payload));
  return seen;
}

/**
 * Everything observable about a client's local state, for "nothing changed"
 * comparisons: the documents of `entityTypes` (and the meta of `ids` when given),
 * the queue, the server cursor and the open conflicts.
 */
function stateSnapshot(client, entityTypes = ['note'], ids = []) {
  const documents = {};
  for (const type of entityTypes) documents[type] = client.list(type);
  const metas = {};
  for (const [type, id] of ids) metas[`${type}/${id}`] = client.get(type, id, { meta: true });
  return {
    documents,
    metas,
    queue: snapshot(client),
    serverVersion: client.serverVersion,
    conflicts: client.conflicts(),
  };
}

/**
 * `document` with the top-level fields of an UPDATED delta applied (RFC 7396 at the
 * top level): a null removes the field, anything else replaces it. Returns a new object.
 */
function applyDelta(document, fields) {
  const out = { ...document };
  for (const [key, value] of Object.entries(fields)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

/**
 * Replays queued changes (oldest first) from nothing: the state the server would
 * reach from them alone. Returns a Map from "entityType/entityId" to the document,
 * or undefined when deleted. A CREATED is the whole document (its nulls are values);
 * an UPDATED is a delta whose nulls remove fields.
 */
function replayChanges(changes) {
  const states = new Map();
  for (const change of changes) {
    const key = `${change.entityType}/${change.entityId}`;
    if (change.type === 'CREATED') states.set(key, { ...change.data });
    else if (change.type === 'UPDATED') states.set(key, applyDelta(states.get(key) ?? {}, change.data));
    else states.set(key, undefined);
  }
  return states;
}

module.exports = {
  SyncClient,
  SyncError,
  UUID_V4,
  UUID_V7,
  tempDir,
  openClient,
  memoryClient,
  assertSyncError,
  snapshot,
  created,
  takeBatch,
  sideFilesGone,
  waitForExit,
  assertRejectsSyncError,
  remote,
  collect,
  stateSnapshot,
  applyDelta,
  replayChanges,
};
