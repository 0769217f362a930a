'use strict';

// Loads the addon built by `npm install` (cmake-js) and hands it the SyncError class.

const path = require('node:path');
const { SyncError } = require('./errors');

function load() {
  const root = path.join(__dirname, '..', 'build');
  const candidates = [path.join(root, 'Release', 'deltasync.node'), path.join(root, 'Debug', 'deltasync.node')];
  let lastError;
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (error) {
      if (error.code !== 'MODULE_NOT_FOUND') throw error;
      lastError = error;
    }
  }
  throw new Error(
    `deltasync: the native addon is not built (${lastError.message}). Run \`npm install\` (or \`npm run build\`) ` +
      'in the deltasync package; it needs a C++17 compiler and cmake.',
  );
}

const addon = load();
addon.setErrorClass(SyncError);

module.exports = addon;
