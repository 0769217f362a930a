'use strict';

// The JavaScript peer of deltasync's SyncClient sync cycle, for the sync trials: what a
// careful app would write without deltasync, on the same tables, statements and pragmas
// (common.openPeer). put() stores a document and queues its change in one transaction;
// sync() runs requests until nothing is left to push or pull:
//   1. one transaction takes up to `pushBatch` pending changes and marks them syncing;
//   2. fetch POSTs {deviceId, lastKnownServerVersion, changes, limit} to {url}/v2, the
//      stored change data spliced into the body as text;
//   3. JSON.parse of the response, then one transaction marks the applied changes
//      synced, applies newChanges (common.makePeerChangeApplier: upserts, UPDATED merged
//      in JS) and moves the cursor (to the last version of the page while hasMore);
//      whatever the response did not settle goes back to pending.
// There is no conflict handling for entities with local changes, no retry and no
// backoff: the trials never need them, and deltasync pays for having them.

const c = require('./common');

const UPSERT_LOCAL =
  'INSERT INTO documents (entity_type, entity_id, data, base, deleted, updated_at, deleted_at) ' +
  'VALUES (?, ?, ?, NULL, 0, ?, NULL) ON CONFLICT (entity_type, entity_id) DO UPDATE SET ' +
  'data = excluded.data, deleted = 0, updated_at = excluded.updated_at, deleted_at = NULL';

/**
 * @param {{ file: string, url: string, headers?: object, deviceId: string, pushBatch?: number, pullLimit?: number,
 *           fetch?: typeof fetch }} options
 */
function createPeerClient(options) {
  const { file, url, headers = {}, deviceId, pushBatch = 100, pullLimit = 1000 } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const db = c.openPeer(file);
  const endpoint = `${url.replace(/\/+$/, '')}/v2`;
  const requestHeaders = { 'content-type': 'application/json', ...headers };

  const load = db.prepare('SELECT data, deleted, version FROM documents WHERE entity_type = ? AND entity_id = ?');
  const upsertLocal = db.prepare(UPSERT_LOCAL);
  const insertChange = db.prepare(c.INSERT_CHANGE);
  const pendingRows = db
    .prepare(
      'SELECT id, change_id, type, entity_type, entity_id, data, base_version, timestamp FROM changes ' +
        "WHERE status = 'pending' ORDER BY id LIMIT ?",
    )
    .raw(true);
  const markSyncing = db.prepare("UPDATE changes SET status = 'syncing', attempts = attempts + 1 WHERE id = ?");
  const markSynced = db.prepare(
    "UPDATE changes SET status = 'synced', synced_at = ?, updated_at = ?, server_version = ? " +
      "WHERE change_id = ? AND status = 'syncing'",
  );
  const releaseInFlight = db.prepare("UPDATE changes SET status = 'pending' WHERE status = 'syncing'");
  const cursorRow = db.prepare("SELECT value FROM meta WHERE key = 'server_version'").pluck();
  const applyChanges = c.makePeerChangeApplier(db);

  const put = db.transaction((entityType, entityId, doc) => {
    const now = Date.now();
    const existing = load.get(entityType, entityId);
    const json = JSON.stringify(doc);
    upsertLocal.run(entityType, entityId, json, now);
    const type = existing && !existing.deleted ? 'UPDATED' : 'CREATED';
    insertChange.run(c.newChangeId(), entityType, entityId, type, json, now, now, now);
  });

  /** Queues changes ({ type, entityType, entityId, data }) without documents, like queue.enqueueMany. */
  const enqueueMany = db.transaction((changes) => {
    const now = Date.now();
    for (const change of changes) {
      insertChange.run(c.newChangeId(), change.entityType, change.entityId, change.type, JSON.stringify(change.data), now, now, now);
    }
  });

  const take = db.transaction((limit) => {
    const rows = pendingRows.all(limit);
    for (const row of rows) markSyncing.run(row[0]);
    return rows;
  });

  const settle = db.transaction((response, cursor) => {
    const now = Date.now();
    for (const applied of response.applied) markSynced.run(now, now, applied.version, applied.changeId);
    const result = applyChanges(response.newChanges, cursor);
    releaseInFlight.run();
    return result;
  });

  const cursor = () => Number(cursorRow.get() ?? 0);

  /** A change row as a wire change, its stored data spliced in as text. */
  function wire(row) {
    const [, changeId, type, entityType, entityId, data, baseVersion, timestamp] = row;
    return (
      `{"changeId":${JSON.stringify(changeId)},"type":"${type}","entityType":${JSON.stringify(entityType)},` +
      `"entityId":${JSON.stringify(entityId)},"timestamp":${timestamp}` +
      `${data === null ? '' : `,"data":${data}`}${baseVersion === null ? '' : `,"baseVersion":${baseVersion}`}}`
    );
  }

  /** One cycle: push what is pending and pull until the server has nothing more. */
  async function sync() {
    const summary = { pushed: 0, pulled: 0, requests: 0, responseBytes: 0 };
    for (;;) {
      const rows = take(pushBatch);
      const body =
        `{"deviceId":${JSON.stringify(deviceId)},"lastKnownServerVersion":${cursor()},` +
        `"changes":[${rows.map(wire).join(',')}],"limit":${pullLimit}}`;
      let text;
      try {
        const response = await fetchImpl(endpoint, { method: 'POST', headers: requestHeaders, body });
        text = await response.text();
        if (!response.ok) throw new Error(`${endpoint} answered ${response.status}: ${text.slice(0, 300)}`);
      } catch (error) {
        releaseInFlight.run();
        throw error;
      }
      const response = JSON.parse(text);
      const changes = response.newChanges;
      const last = changes.length > 0 ? changes[changes.length - 1].version : 0;
      const next = response.hasMore ? last : Math.max(last, response.latestServerVersion);
      const result = settle(response, next);
      summary.requests += 1;
      summary.responseBytes += text.length;
      summary.pushed += response.applied.length;
      summary.pulled += result.applied;
      if (!response.hasMore && rows.length < pushBatch) break;
    }
    return summary;
  }

  return {
    put,
    enqueueMany,
    sync,
    cursor,
    get(entityType, entityId) {
      const row = load.get(entityType, entityId);
      return row && !row.deleted ? JSON.parse(row.data) : undefined;
    },
    pending: () => db.prepare("SELECT count(*) AS n FROM changes WHERE status != 'synced'").get().n,
    documents: () => db.prepare('SELECT count(*) AS n FROM documents').get().n,
    sqliteVersion: () => c.peerSqliteVersion(db),
    close: () => db.close(),
  };
}

module.exports = { createPeerClient };
