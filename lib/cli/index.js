'use strict';

// The deltasync command line: `deltasync <command> [arguments]`.
// Exit codes: 0 done, 1 failed (a clear message on stderr), 2 bad arguments.

const { parseArgs, UsageError, CliError } = require('./args');
const clientCommands = require('./client-commands');
const { serve } = require('./serve');

const STRATEGIES = ['newest_wins', 'server_wins', 'client_wins', 'merge', 'manual'];
const json = { type: 'boolean', help: 'print JSON instead of text' };

const COMMANDS = {
  serve: {
    summary: 'run a sync server (Express) on an embedded SQLite file or on PostgreSQL',
    usage: 'deltasync serve (--db <server.db> | --postgres <URL> [--schema S]) [--port 8080] [--host 127.0.0.1] [--base /api/sync] ' +
      '[--tokens FILE | --jwt-secret S | --jwt-public-key FILE | --token T] [--insecure-dev-users] [--conflicts S] [--inspect [--inspect-base /inspect]]',
    description: [
      'Serves the sync routes of deltasync/express (POST /v2, GET /v2/status, POST /v2/migrate,',
      '/push, /pull, /full, /resolve-conflict, GET /status/:deviceId, /changes) at --base on the',
      'database file, which is created when missing, or on PostgreSQL (--postgres, a libpq URL or',
      'connection string; the tables are created in --schema). Any number of serve processes may',
      'share one PostgreSQL database. Prints the URL when listening and one line per request',
      '(method path status time). Stops cleanly on SIGINT or SIGTERM.',
      '',
      'Who is the user of a request:',
      '  --tokens FILE          a JSON object { "<bearer token>": "<user id>", ... }',
      '  --jwt-secret S         "Authorization: Bearer <JWT>" signed HS256 with S (32+ bytes);',
      '  --jwt-public-key FILE  ... or RS256, verified with the PEM public key in FILE;',
      '                         the user is the --jwt-claim (default "sub"); --jwt-issuer and',
      '                         --jwt-audience are checked when given',
      '  --token T              one shared token (or DELTASYNC_TOKEN): every request is "default"',
      '  (none)                 no authentication: every request is "default" (a warning says so)',
      '--insecure-dev-users lets the x-user-id header pick the user, for development only.',
      '',
      '--inspect also serves the inspector (users, devices, change log, entity history,',
      'conflicts) at --inspect-base, behind an admin token of its own: DELTASYNC_ADMIN_TOKEN,',
      'else a fresh one printed with the sign-in URL. Sync credentials never open it.',
    ],
    positionals: [],
    options: {
      db: { type: 'string', help: 'the server database file (SQLite)' },
      postgres: { type: 'string', help: 'a PostgreSQL URL (postgresql://user:pass@host/db) instead of --db' },
      schema: { type: 'string', default: 'deltasync', help: 'the PostgreSQL schema of the tables (default deltasync)' },
      port: { type: 'integer', min: 0, max: 65535, default: 8080, help: 'port to listen on; 0 picks a free one (default 8080)' },
      host: { type: 'string', default: '127.0.0.1', help: 'address to listen on (default 127.0.0.1)' },
      base: { type: 'string', default: '/api/sync', help: 'the path the routes are mounted at (default /api/sync)' },
      tokens: { type: 'string', help: 'a JSON file mapping each bearer token to its user id' },
      'jwt-secret': { type: 'string', help: 'verify HS256 JWTs with this secret' },
      'jwt-public-key': { type: 'string', help: 'verify RS256 JWTs with the PEM public key in this file' },
      'jwt-claim': { type: 'string', default: 'sub', help: 'the JWT claim holding the user id (default sub)' },
      'jwt-issuer': { type: 'string', help: 'the required JWT issuer (iss)' },
      'jwt-audience': { type: 'string', help: 'the required JWT audience (aud)' },
      token: { type: 'string', help: 'one shared bearer token; every request is user "default"' },
      'insecure-dev-users': { type: 'boolean', help: 'take the user from the x-user-id header (development only)' },
      conflicts: { type: 'string', choices: STRATEGIES, default: 'newest_wins', help: `conflict strategy: ${STRATEGIES.join(', ')}` },
      inspect: { type: 'boolean', help: 'also serve the inspector page (admins only, see DELTASYNC_ADMIN_TOKEN)' },
      'inspect-base': { type: 'string', default: '/inspect', help: 'with --inspect: where the inspector is mounted (default /inspect)' },
    },
    run: serve,
  },
  inspect: {
    summary: 'show a client database: device, queue, changes, conflicts, cursor, last ingest',
    usage: 'deltasync inspect <client.db> [--limit N] [--json] | --web [--port N] [--allow-writes]',
    description: [
      'Prints the device id, queue stats, the first pending and failed changes,',
      'open conflicts, the server version pulled up to and the last ingest run.',
      'With --web, serves the inspector page for the file on 127.0.0.1 instead and prints',
      'its sign-in URL (a fresh token each run): the queue with its errors, conflicts side by',
      'side, the cursor and the last sync. Read-only unless --allow-writes, which adds retry,',
      'discard (never a change in flight) and conflict resolution. An app may have the file open.',
    ],
    positionals: ['client.db'],
    options: {
      limit: { type: 'integer', min: 1, default: 20, help: 'how many pending and failed changes to list (default 20)' },
      json,
      web: { type: 'boolean', help: 'serve the inspector page on 127.0.0.1 instead of printing' },
      port: { type: 'integer', min: 0, max: 65535, default: 0, help: 'with --web: the port (default 0, a free one)' },
      'allow-writes': { type: 'boolean', help: 'with --web: allow retry, discard and resolving conflicts' },
    },
    run: clientCommands.inspect,
  },
  export: {
    summary: 'export the change queue as JSON (for debugging and support)',
    usage: 'deltasync export <client.db> [--out <file>]',
    description: ['Writes client.queue.export() as JSON to stdout, or to --out.'],
    positionals: ['client.db'],
    options: { out: { type: 'string', help: 'write to this file instead of stdout' } },
    run: clientCommands.exportQueue,
  },
  ingest: {
    summary: 'ingest a directory of JSONL files into a client database',
    usage: 'deltasync ingest <client.db> <dir> [--dry-run] [--max-files N] [--force] [--pattern G] [--entity-type T] [--id-field F] [--skip-existing] [--json]',
    description: [
      'Reads new and changed files (unchanged ones are known by size, time and SHA-256)',
      'and stores one record per line, queued for sync; records equal to the stored',
      'document are skipped. A bad line is reported with its file and line number and',
      'the rest is ingested. Shows a progress bar on a terminal.',
    ],
    positionals: ['client.db', 'dir'],
    options: {
      'dry-run': { type: 'boolean', help: 'report what would be ingested, write nothing' },
      'max-files': { type: 'integer', min: 1, help: 'at most N new or changed files this run; the rest wait' },
      force: { type: 'boolean', help: 'ignore the manifest: read every matching file again' },
      pattern: { type: 'string', help: 'glob relative to <dir>: ** spans directories (default **/*.jsonl)' },
      'entity-type': { type: 'string', help: 'the entity type of the records (default record)' },
      'id-field': { type: 'string', help: 'the record field holding the id (default id)' },
      'skip-existing': { type: 'boolean', help: 'only add new records, never overwrite stored ones' },
      json,
    },
    run: clientCommands.ingest,
  },
  retry: {
    summary: 'make failed changes pending again',
    usage: 'deltasync retry <client.db> [--json]',
    description: ['Failed changes (out of retries) become pending again with their retry count reset.'],
    positionals: ['client.db'],
    options: { json },
    run: clientCommands.retry,
  },
  discard: {
    summary: 'remove one queued change that is not in flight',
    usage: 'deltasync discard <client.db> <changeId> [--json]',
    description: ['Removes the change for good: the server never learns of it.'],
    positionals: ['client.db', 'changeId'],
    options: { json },
    run: clientCommands.discard,
  },
};

function version() {
  return require('../../package.json').version;
}

function overview() {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return [
    'Usage: deltasync <command> [arguments]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    '',
    'Run "deltasync <command> --help" for the arguments of a command.',
    'Exit codes: 0 done, 1 failed, 2 bad arguments.',
    '',
  ].join('\n');
}

function commandHelp(name) {
  const command = COMMANDS[name];
  const flag = (option, key) => `--${key}${option.type === 'boolean' ? '' : option.type === 'integer' ? ' N' : ' <value>'}`;
  const flags = Object.entries(command.options).map(([key, option]) => [flag(option, key), option.help]);
  flags.push(['--help', 'show this help']);
  const width = Math.max(...flags.map(([text]) => text.length));
  return [
    `Usage: ${command.usage}`,
    '',
    `${command.summary[0].toUpperCase()}${command.summary.slice(1)}.`,
    ...(command.description.length ? ['', ...command.description] : []),
    '',
    'Options:',
    ...flags.map(([text, help]) => `  ${text.padEnd(width)}  ${help}`),
    '',
  ].join('\n');
}

/**
 * Runs the CLI. Resolves with the exit code; never throws.
 * @param {string[]} argv the arguments after `deltasync`
 * @param {{ stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream }} [io]
 * @returns {Promise<number>}
 */
async function main(argv, io = { stdout: process.stdout, stderr: process.stderr }) {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write('deltasync: missing command (run "deltasync --help" for the list)\n');
    return 2;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    io.stdout.write(overview());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === 'help') {
    if (!Object.prototype.hasOwnProperty.call(COMMANDS, rest[0])) {
      io.stderr.write(`deltasync: unknown command ${JSON.stringify(rest[0])} (run "deltasync --help" for the list)\n`);
      return 2;
    }
    io.stdout.write(commandHelp(rest[0]));
    return 0;
  }
  if (!Object.prototype.hasOwnProperty.call(COMMANDS, name)) {
    io.stderr.write(`deltasync: unknown command ${JSON.stringify(name)} (run "deltasync --help" for the list)\n`);
    return 2;
  }
  const command = COMMANDS[name];
  try {
    const parsed = parseArgs(rest, command);
    if (parsed.help) {
      io.stdout.write(commandHelp(name));
      return 0;
    }
    return await command.run(parsed, io);
  } catch (error) {
    const message = String(error && error.message ? error.message : error).replace(/\s*\n\s*/g, ' ');
    if (error instanceof UsageError) {
      io.stderr.write(`deltasync ${name}: ${message} (run "deltasync ${name} --help")\n`);
      return 2;
    }
    if (error instanceof CliError) {
      io.stderr.write(`deltasync ${name}: ${message}\n`);
      return 1;
    }
    const code = error && typeof error.code === 'string' ? ` (${error.code})` : '';
    io.stderr.write(`deltasync ${name}: ${message}${code}\n`);
    return 1;
  }
}

module.exports = { main, COMMANDS };
