'use strict';

// The deltasync CLI commands that work on a client database file: inspect,
// export, ingest, retry, discard. Each opens the file with mustExist, so a
// mistyped path is never created, and closes it before returning.

const fs = require('node:fs');
const path = require('node:path');
const { SyncClient } = require('../client');
const { CliError, UsageError } = require('./args');
const out = require('./output');

/**
 * Opens an existing deltasync client database, or throws a CliError that says
 * what is wrong with the file. Neither creates nor modifies a file that is not one.
 * @param {string} file
 * @param {{ observer?: boolean }} [options] observer: leave an app's changes in flight alone
 */
function openClient(file, { observer = false } = {}) {
  let stat;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    if (error.code === 'ENOENT') throw new CliError(`no such file: ${file}`);
    throw new CliError(`cannot read ${file}: ${error.message}`);
  }
  if (stat.isDirectory()) throw new CliError(`${file} is a directory, not a database file`);
  // An empty file is a valid empty SQLite database, which the client would initialize.
  if (stat.size === 0) throw new CliError(`${file} is empty: not a deltasync client database`);
  try {
    return new SyncClient({ path: file, mustExist: true, observer });
  } catch (error) {
    if (error.code === 'NOT_FOUND') throw new CliError(`cannot open ${file}: ${error.message}`);
    if (error.code === 'NOT_A_DATABASE') throw new CliError(`${file} is not a deltasync client database: ${error.message}`);
    throw new CliError(`cannot open ${file} as a deltasync client database: ${error.message} (${error.code ?? 'ERROR'})`);
  }
}

/** Runs fn(client) on the open database and closes it, whatever happens. */
async function withClient(file, fn) {
  const client = openClient(file);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function writeJson(io, value) {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function changeLine(change) {
  const retries = change.retryCount > 0 ? `  ${out.plural(change.retryCount, 'retry', 'retries')}` : '';
  const error = change.lastError ? `  last error: ${change.lastError}` : '';
  return `  ${change.changeId}  ${change.type.padEnd(7)}  ${change.entityType}/${change.entityId}  queued ${out.time(change.createdAt)}${retries}${error}`;
}

function reportSummary(report) {
  const lines = [
    `  files    ${report.filesNew} new, ${report.filesUpdated} updated, ${report.filesUnchanged} unchanged, ${report.filesSkipped} skipped`,
    `  records  ${report.recordsInserted} inserted, ${report.recordsUpdated} updated, ${report.recordsUnchanged} unchanged`,
    `  read     ${out.bytes(report.bytesRead)}`,
  ];
  if (report.errors.length > 0) lines.push(`  errors   ${report.errors.length} (lines skipped, the rest was ingested)`);
  return lines;
}

// ---- inspect

async function inspect({ positionals, options }, io) {
  if (options.web) return require('./inspect-web').inspectWeb({ positionals, options }, io, openClient);
  if (options['allow-writes']) throw new UsageError('--allow-writes needs --web');
  return withClient(positionals['client.db'], (client) => {
    const limit = options.limit;
    const stats = client.queue.stats();
    const failed = client.queue.failed();
    const state = {
      path: positionals['client.db'],
      deviceId: client.deviceId,
      serverVersion: client.serverVersion,
      stats,
      pending: client.queue.pending({ limit }),
      failed: failed.slice(0, limit),
      conflicts: client.conflicts(),
      ingest: client.ingestStatus(),
    };
    if (options.json) {
      writeJson(io, state);
      return 0;
    }
    const lines = [
      `deltasync client database ${state.path}`,
      `  device id        ${state.deviceId}`,
      `  server version   ${state.serverVersion}`,
      `  queue            ${stats.pending} pending, ${stats.syncing} syncing, ${stats.failed} failed, ${stats.synced} synced`,
      `  oldest pending   ${out.time(stats.oldestPendingAt)}`,
      `  last sync        ${out.time(stats.lastSyncTime)}`,
    ];
    for (const [type, counts] of Object.entries(stats.byEntityType)) {
      lines.push(`    ${type}: ${counts.pending} pending, ${counts.syncing} syncing, ${counts.failed} failed`);
    }
    lines.push('', `pending changes: ${stats.pending}${stats.pending > state.pending.length ? ` (first ${state.pending.length} shown; --limit N)` : ''}`);
    for (const change of state.pending) lines.push(changeLine(change));
    lines.push('', `failed changes: ${failed.length}${failed.length > state.failed.length ? ` (first ${state.failed.length} shown; --limit N)` : ''}`);
    for (const change of state.failed) lines.push(changeLine(change));
    lines.push('', `open conflicts: ${state.conflicts.length}`);
    for (const conflict of state.conflicts) {
      lines.push(`  #${conflict.id}  ${conflict.entityType}/${conflict.entityId}  remote version ${conflict.remoteVersion}  since ${out.time(conflict.createdAt)}`);
    }
    lines.push('');
    const ingest = state.ingest;
    if (!ingest) {
      lines.push('last ingest: none');
    } else {
      lines.push(`last ingest: ${ingest.status} (${ingest.dir}), started ${out.time(ingest.startedAt)}, finished ${out.time(ingest.finishedAt)}`);
      if (ingest.report) lines.push(...reportSummary(ingest.report));
      if (ingest.error) lines.push(`  error    ${ingest.error}`);
    }
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  });
}

// ---- export

async function exportQueue({ positionals, options }, io) {
  const file = positionals['client.db'];
  if (options.out !== undefined && path.resolve(options.out) === path.resolve(file)) {
    throw new UsageError('--out must not be the database file itself');
  }
  return withClient(file, (client) => {
    const text = `${JSON.stringify(client.queue.export(), null, 2)}\n`;
    if (options.out === undefined) {
      io.stdout.write(text);
      return 0;
    }
    try {
      fs.writeFileSync(options.out, text);
    } catch (error) {
      throw new CliError(`cannot write ${options.out}: ${error.message}`);
    }
    io.stderr.write(`exported the queue of ${file} to ${options.out}\n`);
    return 0;
  });
}

// ---- ingest

async function ingest({ positionals, options }, io) {
  const dir = positionals.dir;
  let stat;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = null;
  }
  if (!stat || !stat.isDirectory()) throw new CliError(`not a directory: ${dir}`);
  return withClient(positionals['client.db'], async (client) => {
    const ingestOptions = {
      pattern: options.pattern,
      entityType: options['entity-type'],
      idField: options['id-field'],
      maxFiles: options['max-files'],
      forceFullSync: options.force === true,
      skipExisting: options['skip-existing'] === true,
    };
    for (const key of Object.keys(ingestOptions)) if (ingestOptions[key] === undefined) delete ingestOptions[key];
    const bar = !options.json && io.stdout.isTTY ? new out.ProgressBar(io.stdout) : null;
    if (bar) client.on('ingest-progress', (report) => bar.update(report));
    const dryRun = options['dry-run'] === true;
    let report;
    try {
      report = dryRun ? await client.previewIngest(dir, ingestOptions) : await client.ingest(dir, ingestOptions);
    } catch (error) {
      throw new CliError(`ingest failed: ${error.message}${error.code ? ` (${error.code})` : ''}`);
    } finally {
      if (bar) bar.done();
    }
    if (options.json) {
      writeJson(io, { dryRun, ...report });
      return 0;
    }
    const lines = [dryRun ? `dry run of ${dir} (nothing was written)` : `ingested ${dir} into ${positionals['client.db']}`];
    lines.push(...reportSummary(report));
    const shown = report.errors.slice(0, 20);
    for (const error of shown) lines.push(`    ${error.file}:${error.line}  ${error.code}  ${error.message}`);
    if (report.errors.length > shown.length) lines.push(`    ... and ${report.errors.length - shown.length} more (--json lists them all)`);
    if (report.filesSkipped > 0) lines.push(`  ${out.plural(report.filesSkipped, 'file')} left for the next run (--max-files)`);
    if (!dryRun) lines.push(`  queue    ${client.queue.stats().pending} changes pending sync`);
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  });
}

// ---- retry, discard

async function retry({ positionals, options }, io) {
  return withClient(positionals['client.db'], (client) => {
    const retried = client.queue.retryFailed();
    if (options.json) writeJson(io, { retried });
    else io.stdout.write(`${out.plural(retried, 'failed change')} pending again\n`);
    return 0;
  });
}

async function discard({ positionals, options }, io) {
  const changeId = positionals.changeId;
  return withClient(positionals['client.db'], (client) => {
    try {
      client.queue.discard(changeId);
    } catch (error) {
      throw new CliError(`${error.message}${error.code ? ` (${error.code})` : ''}`);
    }
    if (options.json) writeJson(io, { discarded: changeId });
    else io.stdout.write(`discarded change ${changeId}\n`);
    return 0;
  });
}

module.exports = { openClient, inspect, exportQueue, ingest, retry, discard };
