'use strict';

// Ingesting a tree of JSONL session logs: deltasync
// `await client.ingest(dir, { entityType: 'event', idField: 'uuid' })` vs the JS peer
// below (an fs.readdir walk, fs.stat against a manifest, a read stream through
// readline with every chunk fed to a SHA-256, JSON.parse of each line, then
// better-sqlite3 transactions of 1,000 records: read the stored document, skip it when
// equal, else upsert it and queue its change; the manifest row in the file's last
// transaction), on deltasync's tables and pragmas (common.openPeer, INGEST_SCHEMA).
//
// The tree: `files` files of about `fileBytes` bytes each, 10 per project directory
// (proj-NN/sessions/session-NNN.jsonl), written before the clock starts into the
// trial's scratch directory under os.tmpdir() and deleted at the end. Each line is a
// record like a chat-session log: {uuid, sessionId, type, timestamp, message: {role,
// content}, cwd}, content 100-1,800 characters with quotes and newlines to escape.
// Three timed runs on the same database:
//   full       every file new: records/s and MB/s
//   unchanged  nothing changed (the manifest's size and mtime match every file)
//   changed    every 10th file rewritten: 1 in 20 of its records edited, 10% more appended
// Params: { impl: 'deltasync' | 'better-sqlite3', files, fileBytes, dir }

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const readline = require('node:readline');
const crypto = require('node:crypto');
const assert = require('node:assert/strict');
const c = require('./common');

const { impl, files: fileCount, fileBytes, dir } = c.params();
if (impl !== 'deltasync' && impl !== 'better-sqlite3') throw new Error(`unknown impl ${impl}`);
const ENTITY_TYPE = 'event';
const ID_FIELD = 'uuid';
const CHANGED_EVERY = 10; // every 10th file changes in the third run
const EDIT_EVERY = 20;    // 1 in 20 of its records edited
const APPEND_FRACTION = 0.1;

// ---- The tree (deterministic: both implementations ingest the same bytes).

const WORDS = (
  'the a function returns value of state when sync client server queue change record file line error ' +
  'test build run fix update create delete merge version cursor page apply push pull conflict store ' +
  'document index field json parse write read commit transaction native worker thread event loop'
).split(' ');

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (n, width) => n.toString(16).padStart(width, '0');

function filePath(f) {
  return path.join(`proj-${String(Math.floor(f / 10)).padStart(2, '0')}`, 'sessions', `session-${String(f).padStart(3, '0')}.jsonl`);
}

/** Record `l` of file `f`; `edited` changes its content (same uuid). */
function makeRecord(f, l, edited) {
  const random = prng(f * 1000003 + l);
  const type = l % 2 === 0 ? 'user' : 'assistant';
  const length = 100 + Math.floor(random() * 1700);
  let content = '';
  while (content.length < length) {
    const r = random();
    const word = WORDS[Math.floor(r * WORDS.length)];
    if (r < 0.03) content += '\n';
    else if (r < 0.05) content += ` "${word}"`;
    else content += ` ${word}`;
  }
  if (edited) content += ' (edited)';
  return {
    uuid: `${hex(f, 8)}-${hex(Math.floor(random() * 0x10000), 4)}-4${hex(Math.floor(random() * 0x1000), 3)}-8${hex(
      Math.floor(random() * 0x1000),
      3,
    )}-${hex(l, 12)}`,
    sessionId: `${hex(f, 8)}-0000-4000-8000-${hex(f * 7919, 12)}`,
    type,
    timestamp: new Date(Date.UTC(2025, 0, 1) + f * 86400000 + l * 1000).toISOString(),
    message: { role: type, content },
    cwd: `/home/dev/proj-${String(Math.floor(f / 10)).padStart(2, '0')}`,
  };
}

/** Writes file f: `lines` records (or as many as reach fileBytes), some edited and some appended when `changed`. */
function writeFile(root, f, lines, changed) {
  const parts = [];
  let bytes = 0;
  let l = 0;
  for (; lines === undefined ? bytes < fileBytes : l < lines; ++l) {
    const line = JSON.stringify(makeRecord(f, l, changed && l % EDIT_EVERY === 0));
    parts.push(line);
    bytes += line.length + 1;
  }
  const base = l;
  const appended = changed ? Math.ceil(base * APPEND_FRACTION) : 0;
  for (; l < base + appended; ++l) parts.push(JSON.stringify(makeRecord(f, l, false)));
  const file = path.join(root, filePath(f));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${parts.join('\n')}\n`);
  return { lines: base, edited: changed ? Math.ceil(base / EDIT_EVERY) : 0, appended };
}

// ---- The JS peer.

function createPeerIngester(file) {
  const db = c.openPeer(file);
  db.exec(c.INGEST_SCHEMA);
  const manifestGet = db.prepare('SELECT size, mtime_ms, sha256 FROM ingest_files WHERE root = ? AND path = ?');
  const manifestPut = db.prepare(
    'INSERT INTO ingest_files (root, path, size, mtime_ms, sha256, records, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
      'ON CONFLICT (root, path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, ' +
      'sha256 = excluded.sha256, records = excluded.records, ingested_at = excluded.ingested_at',
  );
  const load = db.prepare('SELECT data, deleted FROM documents WHERE entity_type = ? AND entity_id = ?');
  const upsert = db.prepare(
    'INSERT INTO documents (entity_type, entity_id, data, base, deleted, updated_at, deleted_at) ' +
      'VALUES (?, ?, ?, NULL, 0, ?, NULL) ON CONFLICT (entity_type, entity_id) DO UPDATE SET ' +
      'data = excluded.data, deleted = 0, updated_at = excluded.updated_at, deleted_at = NULL',
  );
  const insertChange = db.prepare(c.INSERT_CHANGE);

  /** Writes a batch of [id, json] records; the manifest row too when the file is done. */
  const writeBatch = db.transaction((report, entityType, ids, jsons, manifest) => {
    const now = Date.now();
    for (let i = 0; i < ids.length; ++i) {
      const existing = load.get(entityType, ids[i]);
      const live = existing !== undefined && !existing.deleted;
      if (live && existing.data === jsons[i]) {
        ++report.recordsUnchanged;
        continue;
      }
      upsert.run(entityType, ids[i], jsons[i], now);
      insertChange.run(c.newChangeId(), entityType, ids[i], live ? 'UPDATED' : 'CREATED', jsons[i], now, now, now);
      if (live) ++report.recordsUpdated;
      else ++report.recordsInserted;
    }
    if (manifest) manifestPut.run(...manifest, now);
  });

  async function walk(root, relative, out) {
    const entries = await fsp.readdir(path.join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(root, child, out);
      else if (entry.isFile() && entry.name.endsWith('.jsonl')) out.push(child);
    }
    return out;
  }

  async function ingest(dirPath, { entityType, idField }) {
    const root = fs.realpathSync(dirPath);
    const report = {
      filesNew: 0, filesUpdated: 0, filesUnchanged: 0, recordsInserted: 0, recordsUpdated: 0, recordsUnchanged: 0,
      bytesRead: 0, errors: [],
    };
    const files = (await walk(root, '', [])).sort();
    for (const relative of files) {
      const absolute = path.join(root, relative);
      const stat = await fsp.stat(absolute);
      const mtimeMs = Math.trunc(stat.mtimeMs);
      const known = manifestGet.get(root, relative);
      if (known && known.size === stat.size && known.mtime_ms === mtimeMs) {
        ++report.filesUnchanged;
        continue;
      }
      if (known) ++report.filesUpdated;
      else ++report.filesNew;
      const hash = crypto.createHash('sha256');
      const stream = fs.createReadStream(absolute);
      stream.on('data', (chunk) => hash.update(chunk));
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      let ids = [];
      let jsons = [];
      let lineNumber = 0;
      let records = 0;
      for await (const line of lines) {
        ++lineNumber;
        if (line.trim() === '') continue;
        let record;
        try {
          record = JSON.parse(line);
        } catch (error) {
          report.errors.push({ file: relative, line: lineNumber, code: 'INVALID_ARGUMENT', message: error.message });
          continue;
        }
        const id = record !== null && typeof record === 'object' && !Array.isArray(record) ? record[idField] : undefined;
        const entityId = typeof id === 'string' ? id : Number.isSafeInteger(id) ? String(id) : '';
        if (entityId === '' || Buffer.byteLength(entityId) > 256) {
          report.errors.push({ file: relative, line: lineNumber, code: 'INVALID_ARGUMENT', message: `no id in ${idField}` });
          continue;
        }
        ids.push(entityId);
        jsons.push(JSON.stringify(record));
        ++records;
        if (ids.length === 1000) {
          writeBatch(report, entityType, ids, jsons, null);
          ids = [];
          jsons = [];
        }
      }
      report.bytesRead += stat.size;
      writeBatch(report, entityType, ids, jsons, [root, relative, stat.size, mtimeMs, hash.digest('hex'), records]);
    }
    return report;
  }

  return {
    ingest,
    get(id) {
      const row = load.get(ENTITY_TYPE, id);
      return row && !row.deleted ? JSON.parse(row.data) : undefined;
    },
    queued: () => db.prepare("SELECT count(*) AS n FROM changes WHERE status = 'pending'").get().n,
    sqliteVersion: () => c.peerSqliteVersion(db),
    close: () => db.close(),
  };
}

function openIngester(file) {
  if (impl === 'better-sqlite3') return createPeerIngester(file);
  const client = c.openDeltasync(file);
  return {
    ingest: (root, options) => client.ingest(root, options),
    get: (id) => client.get(ENTITY_TYPE, id),
    queued: () => client.queue.stats().pending,
    sqliteVersion: () => '3.46.0 (bundled)',
    close: () => client.close(),
  };
}

// ---- Main.

async function timed(ingester, root) {
  if (global.gc) global.gc();
  await c.sleep(20);
  const cpuBefore = c.threadCpuMs();
  const started = c.seconds();
  const report = await ingester.ingest(root, { entityType: ENTITY_TYPE, idField: ID_FIELD });
  const seconds = c.seconds() - started;
  const cpu = c.threadCpuDelta(cpuBefore, c.threadCpuMs());
  if (report.errors.length > 0) throw new Error(`ingest errors: ${JSON.stringify(report.errors.slice(0, 3))}`);
  return { seconds, report, cpuMs: cpu };
}

function pick(report) {
  const { filesNew, filesUpdated, filesUnchanged, recordsInserted, recordsUpdated, recordsUnchanged, bytesRead } = report;
  return { filesNew, filesUpdated, filesUnchanged, recordsInserted, recordsUpdated, recordsUnchanged, bytesRead };
}

async function main() {
  const root = fs.mkdtempSync(path.join(dir, 'jsonl-'));
  const file = c.scratchDb(dir, `ingest-${impl}`);
  try {
    // The tree, before the clock starts.
    const generated = [];
    for (let f = 0; f < fileCount; ++f) generated.push(writeFile(root, f, undefined, false));
    const records = generated.reduce((n, g) => n + g.lines, 0);
    const treeBytes = generated.reduce((n, g, f) => n + fs.statSync(path.join(root, filePath(f))).size, 0);

    const ingester = openIngester(file);
    const full = await timed(ingester, root);
    assert.equal(full.report.filesNew, fileCount, 'files new in the first run');
    assert.equal(full.report.recordsInserted, records, 'records inserted in the first run');
    assert.equal(full.report.bytesRead, treeBytes, 'bytes read in the first run');
    const sample = makeRecord(fileCount - 1, generated[fileCount - 1].lines - 1, false);
    assert.deepEqual(ingester.get(sample.uuid), sample, 'a record after the first run');

    const unchanged = await timed(ingester, root);
    assert.equal(unchanged.report.filesUnchanged, fileCount, 'files unchanged in the second run');
    assert.equal(unchanged.report.recordsInserted + unchanged.report.recordsUpdated, 0, 'records written in the second run');

    // Every 10th file rewritten: some records edited, some appended.
    let edited = 0;
    let appended = 0;
    let changedFiles = 0;
    let changedBytes = 0;
    for (let f = 0; f < fileCount; f += CHANGED_EVERY) {
      const rewritten = writeFile(root, f, generated[f].lines, true);
      edited += rewritten.edited;
      appended += rewritten.appended;
      changedFiles += 1;
      changedBytes += fs.statSync(path.join(root, filePath(f))).size;
    }
    const changed = await timed(ingester, root);
    assert.equal(changed.report.filesUpdated, changedFiles, 'files updated in the third run');
    assert.equal(changed.report.recordsInserted, appended, 'records inserted in the third run');
    assert.equal(changed.report.recordsUpdated, edited, 'records updated in the third run');
    const editedSample = makeRecord(0, 0, true);
    assert.deepEqual(ingester.get(editedSample.uuid), editedSample, 'an edited record');
    const queued = ingester.queued();
    const sqliteVersion = ingester.sqliteVersion();
    ingester.close();
    assert.equal(c.countStoredDocuments(file), records + appended, 'documents after the three runs');
    const databaseBytes = c.dbBytes(file);

    c.report({
      files: fileCount,
      records,
      treeBytes,
      changesPerSec: records / full.seconds,
      mbPerSec: treeBytes / 2 ** 20 / full.seconds,
      fullSeconds: full.seconds,
      unchangedSeconds: unchanged.seconds,
      changedSeconds: changed.seconds,
      changedFiles,
      changedBytes,
      changedRecordsEdited: edited,
      changedRecordsAppended: appended,
      full: { ...pick(full.report), cpuMs: full.cpuMs },
      unchanged: { ...pick(unchanged.report), cpuMs: unchanged.cpuMs },
      changed: { ...pick(changed.report), cpuMs: changed.cpuMs },
      queued,
      dbBytes: databaseBytes,
      sqliteVersion,
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    c.removeDb(file);
  }
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
