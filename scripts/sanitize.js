#!/usr/bin/env node
'use strict';

// Builds the C++ core and its GoogleTest suite with sanitizers and runs it.
//   node scripts/sanitize.js          ASan + UBSan (build/asan)
//   node scripts/sanitize.js --tsan   ThreadSanitizer (build/tsan)

const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsan = process.argv.includes('--tsan');
const dir = path.join(root, 'build', tsan ? 'tsan' : 'asan');
const flag = tsan ? '-DDELTASYNC_TSAN=ON' : '-DDELTASYNC_SANITIZE=ON';

function run(command, args, env) {
  console.log(`$ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
}

run('cmake', ['-S', '.', '-B', dir, '-DBUILD_TESTING=ON', '-DCMAKE_BUILD_TYPE=RelWithDebInfo', flag]);
run('cmake', ['--build', dir, '--target', 'core_tests', '-j2']);
run('ctest', ['--test-dir', dir, '--output-on-failure', '-j2'], {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  TSAN_OPTIONS: 'halt_on_error=1',
});
