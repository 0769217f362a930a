#!/usr/bin/env node
'use strict';

// Prints the source folders of the pinned C/C++ dependencies, one `NAME=path` per line, for
// CMakeLists.txt. They are found with Node's own resolver starting from this package, so a
// source build works wherever the package manager put them: nested, hoisted to the app's
// node_modules, in an npm workspace root, or in pnpm's symlinked store.

const path = require('node:path');
const fs = require('node:fs');

const packageRoot = path.join(__dirname, '..');

const DEPENDENCIES = [
  { variable: 'SQLITE_DIR', name: '@nozbe/sqlite', folder: 'sqlite-amalgamation-3460000', marker: 'sqlite3.c' },
  { variable: 'SIMDJSON_DIR', name: '@nozbe/simdjson', folder: 'src', marker: 'simdjson.cpp' },
  { variable: 'NODE_ADDON_API_DIR', name: 'node-addon-api', folder: '', marker: 'napi.h' },
];

function resolvePackageDir(name) {
  // Resolve from this package's real location, so pnpm's store layout resolves its siblings.
  const from = fs.realpathSync(packageRoot);
  const manifest = require.resolve(`${name}/package.json`, { paths: [from] });
  return path.dirname(manifest);
}

const lines = [];
for (const dependency of DEPENDENCIES) {
  let dir;
  try {
    dir = path.join(resolvePackageDir(dependency.name), dependency.folder);
  } catch (error) {
    console.error(`deltasync: cannot find the npm package ${dependency.name} from ${packageRoot} (${error.message}). ` +
      'Run `npm install` in the app first.');
    process.exit(1);
  }
  if (!fs.existsSync(path.join(dir, dependency.marker))) {
    console.error(`deltasync: ${dependency.name} was found at ${dir}, but ${dependency.marker} is missing from it.`);
    process.exit(1);
  }
  lines.push(`${dependency.variable}=${dir.split(path.sep).join('/')}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
