'use strict';

// Finds and loads the native addon, in this order:
//   1. the prebuilt binary shipped in the package (prebuilds/<platform>-<arch>[-musl]/deltasync.node);
//   2. a local source build (build/Release/deltasync.node): npm install where no prebuild
//      matched, or `npm run build:native` in a clone;
// and otherwise throws a SyncError with code NATIVE_MODULE naming what it tried.
// A source build newer than the prebuild goes first: it was made on purpose after the
// package was unpacked (DELTASYNC_BUILD_FROM_SOURCE, `npm rebuild`, a clone being worked on).
// DELTASYNC_NATIVE_MODULE=<path> loads that file instead (to test one particular build).

const fs = require('node:fs');
const path = require('node:path');
const { SyncError } = require('./errors');
const { describePlatform, prebuildPath, sourceBuildPath } = require('./platform');

function candidates() {
  if (process.env.DELTASYNC_NATIVE_MODULE) {
    return [{ kind: 'DELTASYNC_NATIVE_MODULE', file: path.resolve(process.env.DELTASYNC_NATIVE_MODULE) }];
  }
  const ordered = [
    { kind: 'prebuild', file: prebuildPath() },
    { kind: 'source build', file: sourceBuildPath() },
  ];
  const mtime = (file) => fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  if (mtime(ordered[1].file) > mtime(ordered[0].file) && mtime(ordered[0].file) >= 0) ordered.reverse();
  return ordered;
}

function load() {
  const tried = [];
  for (const { kind, file } of candidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${kind} ${file}: not present`);
      continue;
    }
    try {
      return require(file);
    } catch (error) {
      tried.push(`${kind} ${file}: ${String(error.message).split('\n')[0]}`);
    }
  }
  throw new SyncError(
    `deltasync has no native module that loads on ${describePlatform()}. Tried:\n  ${tried.join('\n  ')}\n` +
      'Build it from source with `npm rebuild deltasync --foreground-scripts` (needs a C++17 compiler and cmake; ' +
      'an npm that skips unapproved install scripts needs `npm approve-scripts deltasync` first).',
    'NATIVE_MODULE',
  );
}

const addon = load();
addon.setErrorClass(SyncError);

module.exports = addon;
