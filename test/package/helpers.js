'use strict';

// Shared by the package tests: run npm and node the way a user's shell would, in throwaway
// projects under one temporary folder.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repoRoot = path.join(__dirname, '..', '..');

/** The npm CLI script that runs this test (npm test sets npm_execpath), or the one on PATH. */
function npmCli() {
  if (process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)) return process.env.npm_execpath;
  const found = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return fs.realpathSync(found);
}

function run(command, args, options = {}) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0 && !options.allowFailure) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal} in ${options.cwd}\n` +
      `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return { ...result, seconds };
}

function npm(args, options = {}) {
  return run(options.node ?? process.execPath, [npmCli(), ...args], options);
}

const INSTALL_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

/** A new empty project: a folder with a package.json, as `npm init -y` makes it. */
function emptyProject(root, name) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }, null, 2));
  return dir;
}

/** The README's quick-start block (the first ```js block under "## Quick start"), as written. */
function readmeQuickStart() {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split(/^## Quick start\s*$/m)[1];
  if (!section) throw new Error('README.md has no "## Quick start" section');
  const block = section.match(/```js\n([\s\S]*?)```/);
  if (!block) throw new Error('README.md\'s quick start has no ```js block');
  return block[1];
}

/** A folder holding only `node` and `npm`: a PATH on which no compiler, cmake or make is found. */
function nodeOnlyPath(root) {
  const bin = path.join(root, 'node-only-bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.rmSync(path.join(bin, 'node'), { force: true });
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli()}" "$@"\n`, { mode: 0o755 });
  return bin;
}

function tempRoot(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Total size in bytes of the files under `dir`. */
function treeSize(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeSize(full);
    else if (entry.isFile()) total += fs.statSync(full).size;
  }
  return total;
}

module.exports = { repoRoot, npm, run, INSTALL_FLAGS, emptyProject, readmeQuickStart, nodeOnlyPath, tempRoot, treeSize };
