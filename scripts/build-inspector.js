#!/usr/bin/env node
'use strict';

// Bundles the inspector page (web/inspector: plain DOM and uPlot) into lib/inspector-page/, the
// three files deltasync/inspector serves. Runs at pack time (scripts/prebuild.js), before the
// tests (scripts/test.js) and at install in a clone; a user of the package never needs a bundler.
// `--if-missing` does nothing when the bundle exists and esbuild is not installed (a registry install).

const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'web', 'inspector');
const out = path.join(root, 'lib', 'inspector-page');

function build() {
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch (error) {
    if (process.argv.includes('--if-missing') && fs.existsSync(path.join(out, 'inspector.js'))) return null;
    if (process.argv.includes('--if-missing') && !fs.existsSync(source)) return null;
    throw new Error(`build-inspector needs esbuild (a devDependency): ${error.message}`);
  }
  fs.mkdirSync(out, { recursive: true });
  const common = { bundle: true, minify: true, legalComments: 'none', logLevel: 'warning', absWorkingDir: root };
  esbuild.buildSync({ ...common, entryPoints: [path.join(source, 'main.js')], outfile: path.join(out, 'inspector.js'), format: 'iife', target: 'es2020' });
  esbuild.buildSync({ ...common, entryPoints: [path.join(source, 'style.css')], outfile: path.join(out, 'inspector.css') });
  fs.copyFileSync(path.join(source, 'index.html'), path.join(out, 'index.html'));
  return ['index.html', 'inspector.js', 'inspector.css'].map((name) => ({ name, bytes: fs.statSync(path.join(out, name)).size }));
}

if (require.main === module) {
  if (process.argv.includes('--if-missing') && fs.existsSync(path.join(out, 'inspector.js'))) process.exit(0);
  const files = build();
  if (files) console.error(`build-inspector: ${files.map((file) => `${file.name} ${file.bytes} B`).join(', ')}`);
}

module.exports = { build };
