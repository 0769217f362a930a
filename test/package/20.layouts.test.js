'use strict';

// scripts/resolve-deps.js, which the source build uses to find the C/C++ packages, run from a
// copy of deltasync placed the way each package manager places it. And the binding never
// hands V8 memory it does not own (Electron's V8 memory cage aborts on external buffers).

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { repoRoot, tempRoot } = require('./helpers');

const SQLITE = ['@nozbe/sqlite', 'sqlite-amalgamation-3460000/sqlite3.c'];
const SIMDJSON = ['@nozbe/simdjson', 'src/simdjson.cpp'];
const ADDON_API = ['node-addon-api', 'napi.h'];

function fakePackage(dir, [name, marker]) {
  fs.mkdirSync(path.join(dir, path.dirname(marker)), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '0.0.0' }));
  fs.writeFileSync(path.join(dir, marker), '');
  return dir;
}

function fakeDeltasync(dir) {
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'scripts', 'resolve-deps.js'), path.join(dir, 'scripts', 'resolve-deps.js'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'deltasync', version: '0.0.0' }));
  return dir;
}

function resolveFrom(deltasyncDir) {
  const out = execFileSync(process.execPath, [path.join(deltasyncDir, 'scripts', 'resolve-deps.js')], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
}

const real = (p) => fs.realpathSync(p).split(path.sep).join('/');

test('nested: the dependencies inside deltasync\'s own node_modules', () => {
  const root = tempRoot('deltasync-layout-');
  const pkg = fakeDeltasync(path.join(root, 'node_modules', 'deltasync'));
  const sqlite = fakePackage(path.join(pkg, 'node_modules', '@nozbe', 'sqlite'), SQLITE);
  const simdjson = fakePackage(path.join(pkg, 'node_modules', '@nozbe', 'simdjson'), SIMDJSON);
  fakePackage(path.join(pkg, 'node_modules', 'node-addon-api'), ADDON_API);
  const found = resolveFrom(pkg);
  assert.equal(found.SQLITE_DIR, `${real(sqlite)}/sqlite-amalgamation-3460000`);
  assert.equal(found.SIMDJSON_DIR, `${real(simdjson)}/src`);
});

test('hoisted: the dependencies next to deltasync in the app\'s node_modules', () => {
  const root = tempRoot('deltasync-layout-');
  const pkg = fakeDeltasync(path.join(root, 'node_modules', 'deltasync'));
  const sqlite = fakePackage(path.join(root, 'node_modules', '@nozbe', 'sqlite'), SQLITE);
  fakePackage(path.join(root, 'node_modules', '@nozbe', 'simdjson'), SIMDJSON);
  fakePackage(path.join(root, 'node_modules', 'node-addon-api'), ADDON_API);
  assert.equal(resolveFrom(pkg).SQLITE_DIR, `${real(sqlite)}/sqlite-amalgamation-3460000`);
});

test('npm workspaces: deltasync in a member, the dependencies hoisted to the workspace root', () => {
  const root = tempRoot('deltasync-layout-');
  const pkg = fakeDeltasync(path.join(root, 'packages', 'desktop', 'node_modules', 'deltasync'));
  const sqlite = fakePackage(path.join(root, 'node_modules', '@nozbe', 'sqlite'), SQLITE);
  fakePackage(path.join(root, 'node_modules', '@nozbe', 'simdjson'), SIMDJSON);
  fakePackage(path.join(root, 'node_modules', 'node-addon-api'), ADDON_API);
  assert.equal(resolveFrom(pkg).SQLITE_DIR, `${real(sqlite)}/sqlite-amalgamation-3460000`);
});

test('pnpm: deltasync reached through a symlink, its dependencies as symlinks in the store', () => {
  const root = tempRoot('deltasync-layout-');
  const store = path.join(root, 'node_modules', '.pnpm');
  const pkg = fakeDeltasync(path.join(store, 'deltasync@0.1.0', 'node_modules', 'deltasync'));
  const sqlite = fakePackage(path.join(store, '@nozbe+sqlite@3.46.0', 'node_modules', '@nozbe', 'sqlite'), SQLITE);
  const simdjson = fakePackage(path.join(store, '@nozbe+simdjson@3.9.4', 'node_modules', '@nozbe', 'simdjson'), SIMDJSON);
  const addonApi = fakePackage(path.join(store, 'node-addon-api@8.5.0', 'node_modules', 'node-addon-api'), ADDON_API);
  const siblings = path.join(store, 'deltasync@0.1.0', 'node_modules');
  fs.mkdirSync(path.join(siblings, '@nozbe'), { recursive: true });
  fs.symlinkSync(sqlite, path.join(siblings, '@nozbe', 'sqlite'));
  fs.symlinkSync(simdjson, path.join(siblings, '@nozbe', 'simdjson'));
  fs.symlinkSync(addonApi, path.join(siblings, 'node-addon-api'));
  fs.symlinkSync(pkg, path.join(root, 'node_modules', 'deltasync'));
  // Nothing is hoisted: only the symlinked siblings in the store can satisfy the lookup.
  const found = resolveFrom(path.join(root, 'node_modules', 'deltasync'));
  assert.equal(found.SQLITE_DIR, `${real(sqlite)}/sqlite-amalgamation-3460000`);
  assert.equal(found.NODE_ADDON_API_DIR, real(addonApi));
});

test('a missing dependency is a clear error, not a wrong path', () => {
  const root = tempRoot('deltasync-layout-');
  const pkg = fakeDeltasync(path.join(root, 'node_modules', 'deltasync'));
  assert.throws(() => execFileSync(process.execPath, [path.join(pkg, 'scripts', 'resolve-deps.js')], { stdio: 'pipe' }),
    (error) => /cannot find the npm package @nozbe\/sqlite/.test(String(error.stderr)));
});

test('the binding creates no external buffers (Electron\'s V8 memory cage aborts on them)', () => {
  const dir = path.join(repoRoot, 'src', 'binding');
  const external = [
    /napi_create_external_(array)?buffer/,
    /Napi::(Buffer<[^>]*>|ArrayBuffer)::New\(\s*[^,()]+,\s*[^,()]+,\s*[^)]+\)/, // (env, data, length[, finalizer])
    /Napi::External/,
  ];
  for (const file of fs.readdirSync(dir).filter((name) => /\.(cc|h)$/.test(name))) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const pattern of external) assert.doesNotMatch(source, pattern, `${file} creates an external buffer`);
  }
});

test('no loadable native module is a SyncError NATIVE_MODULE naming the platform and the build command', () => {
  const script = `
    try { require(${JSON.stringify(repoRoot)}); console.log('loaded'); }
    catch (error) { console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message })); }`;
  const out = execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, DELTASYNC_NATIVE_MODULE: path.join(tempRoot('deltasync-none-'), 'missing.node') },
  });
  const error = JSON.parse(out);
  assert.equal(error.name, 'SyncError');
  assert.equal(error.code, 'NATIVE_MODULE');
  assert.match(error.message, /no native module that loads on linux-x64 \(glibc\)/);
  assert.match(error.message, /missing\.node: not present/);
  assert.match(error.message, /npm rebuild deltasync --foreground-scripts/);
  assert.match(error.message, /npm approve-scripts deltasync/);
});

test('a file that is not a native module is reported with the loader\'s reason', () => {
  const bogus = path.join(tempRoot('deltasync-bogus-'), 'deltasync.node');
  fs.writeFileSync(bogus, 'not an ELF file');
  const out = execFileSync(process.execPath, ['-e', `
    try { require(${JSON.stringify(repoRoot)}); } catch (error) { console.log(error.code, error.message); }`],
  { encoding: 'utf8', env: { ...process.env, DELTASYNC_NATIVE_MODULE: bogus } });
  assert.match(out, /^NATIVE_MODULE /);
  assert.match(out, /deltasync\.node: .*(invalid ELF header|file too short)/);
});
