'use strict';

// Which prebuilt binary fits this process. Shared by the loader (lib/native.js) and the
// install step (scripts/install.js), so both look for the same file.

const path = require('node:path');

const packageRoot = path.join(__dirname, '..');

let libc;

/** 'glibc' or 'musl' on Linux (as Node's own process report tells it), otherwise ''. Asked once. */
function libcFamily() {
  if (libc !== undefined) return libc;
  if (process.platform !== 'linux') return (libc = '');
  let report = null;
  if (typeof process.report?.getReport === 'function') {
    // The report lists every open handle unless told not to; only its header is needed here.
    const excluded = process.report.excludeNetwork;
    process.report.excludeNetwork = true;
    try {
      report = process.report.getReport();
    } finally {
      process.report.excludeNetwork = excluded;
    }
  }
  return (libc = report?.header?.glibcVersionRuntime ? 'glibc' : 'musl');
}

/** The prebuild folder for this process: linux-x64, linux-arm64, linux-x64-musl, darwin-arm64, win32-x64 ... */
function platformTag() {
  return `${process.platform}-${process.arch}${libcFamily() === 'musl' ? '-musl' : ''}`;
}

/** A human description: "linux-x64 (glibc)" */
function describePlatform() {
  const libc = libcFamily();
  return `${process.platform}-${process.arch}${libc ? ` (${libc})` : ''}`;
}

const prebuildPath = (tag = platformTag()) => path.join(packageRoot, 'prebuilds', tag, 'deltasync.node');
const sourceBuildPath = () => path.join(packageRoot, 'build', 'Release', 'deltasync.node');

module.exports = { packageRoot, libcFamily, platformTag, describePlatform, prebuildPath, sourceBuildPath };
