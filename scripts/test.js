#!/usr/bin/env node
'use strict';

// `npm test`: every suite, from a clean clone.
//   1. the C++ build with its GoogleTest suite (build/), the Debian packages the package tests
//      need (as root), the inspector's page bundle, then the prebuilt binaries;
//   2. at once, as they share no build: the JS tests and the type test, and the package
//      tests (the packed tarball installed into empty projects, with their own source build);
//   3. the C++ suite under ASan+UBSan (build/asan).
// Stops at the first failing step and exits non-zero.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
  ? process.env.npm_execpath
  : fs.realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());

function npmRun(script) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    console.log(`\n=== npm run ${script}`);
    const child = spawn(process.execPath, [npmCli, 'run', script],
      { cwd: root, stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      if (code === 0) {
        console.log(`=== npm run ${script}: passed in ${seconds} s`);
        resolve();
      } else {
        reject(new Error(`npm run ${script} failed (${code ?? signal}) after ${seconds} s`));
      }
    });
  });
}

const sequence = async (...scripts) => {
  for (const script of scripts) await npmRun(script);
};

async function main() {
  await sequence('test:cpp', 'test:tools', 'build:inspector', 'prebuild');
  await Promise.all([sequence('test:js', 'test:types'), sequence('test:package')]);
  await sequence('test:sanitize');
}

main().catch((error) => {
  console.error(`\n${error.message}`);
  process.exit(1);
});
