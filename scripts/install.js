#!/usr/bin/env node
'use strict';

// The package's install step. With a prebuilt binary for this platform that loads, it does
// nothing: no compiler runs (and `npm install --ignore-scripts` works just as well). Without
// one it builds the addon from source with cmake-js, saying so first.
// DELTASYNC_BUILD_FROM_SOURCE=1 always builds from source.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const { describePlatform, packageRoot, prebuildPath } = require('../lib/platform');

function prebuildLoads(file) {
  if (!fs.existsSync(file)) return { ok: false, why: 'none is shipped for this platform' };
  // In a child process: a binary that fails to load (an older glibc, say) must not take this
  // process with it.
  const probe = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { encoding: 'utf8' });
  if (probe.status === 0) return { ok: true };
  return { ok: false, why: `the shipped one does not load here: ${(probe.stderr || '').trim().split('\n').find((line) => /Error/.test(line)) ?? `exit ${probe.status}`}` };
}

// In a clone, the inspector's page is bundled here too (a packed package ships it built).
const pageBuilder = require('node:path').join(__dirname, 'build-inspector.js');
if (fs.existsSync(pageBuilder)) {
  const page = spawnSync(process.execPath, [pageBuilder, '--if-missing'], { stdio: 'inherit' });
  if (page.status !== 0) console.error('deltasync: the inspector page was not built; run `npm run build:inspector`.');
}

const prebuild = prebuildPath();
if (!process.env.DELTASYNC_BUILD_FROM_SOURCE) {
  const check = prebuildLoads(prebuild);
  if (check.ok) process.exit(0);
  console.error(`deltasync: no usable prebuilt binary for ${describePlatform()} (${check.why}); building from source.`);
} else {
  console.error('deltasync: DELTASYNC_BUILD_FROM_SOURCE is set; building from source.');
}
console.error('deltasync: the source build needs a C++17 compiler and cmake >= 3.18 on PATH, and takes about a minute.');

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [fs.realpathSync(packageRoot)] });
} catch {
  console.error('deltasync: cmake-js is not installed next to deltasync; run `npm install` again.');
  process.exit(1);
}
const build = spawnSync(process.execPath, [cmakeJs, 'compile', '--parallel', '2'], { cwd: packageRoot, stdio: 'inherit' });
if (build.status !== 0) {
  console.error(
    `deltasync: the source build failed (exit ${build.status ?? build.signal}). Install a C++17 compiler and cmake ` +
      '(Debian/Ubuntu: `apt-get install build-essential cmake`; macOS: `xcode-select --install` and `brew install cmake`), ' +
      'then run `npm rebuild deltasync --foreground-scripts`.',
  );
  process.exit(1);
}
