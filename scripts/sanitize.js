#!/usr/bin/env node
'use strict';

// Builds the C++ core and its GoogleTest suite with sanitizers and runs it.
//   node scripts/sanitize.js          ASan + UBSan, every test (build/asan), then the addon
//                                     itself built the same way and loaded into node with the
//                                     ASan runtime preloaded, under the JS tests that exercise
//                                     native lifetimes (close, worker threads, apply, ingest)
//   node scripts/sanitize.js --tsan   ThreadSanitizer, the threaded tests (build/tsan):
//                                     the server's concurrent syncs, the SQLite busy-wait
//                                     writers, the scheduler and the worker-thread apply
//                                     (test/cpp/99_threads_test.cc), the session's FifoLock,
//                                     the WAL checkpointer thread, and a pulled page's
//                                     validation in halves and decoding ahead (PagePrefetcher),
//                                     and ingestion's reader one step ahead of its writes
//
// Fails on any sanitizer report. Every kind of report already fails its test (ASan aborts,
// UBSan is built with -fno-sanitize-recover, TSan halts on error, LSan exits non-zero); as a
// second net, the output of every test, passed or not, is kept in a JUnit file
// (build/<asan|tsan>/ctest-junit.xml) and searched for reports.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsan = process.argv.includes('--tsan');
const dir = path.join(root, 'build', tsan ? 'tsan' : 'asan');
const flag = tsan ? '-DDELTASYNC_TSAN=ON' : '-DDELTASYNC_SANITIZE=ON';
// The tests that start threads (or exercise the code the threads share), for ThreadSanitizer.
const TSAN_TESTS = '^(JoiningThread\\.|IngesterTest\\.|PagePrefetcher\\.|ValidatePullPage\\.|SyncServerCore\\.Concurrent|GroupCommitTest\\.|SyncServerGroupCommit\\.|FifoLock\\.|WalCheckpointerTest\\.|BusyTest\\.|ClientThreads\\.|Scheduler|BackoffTest\\.|FullJitterDelayMs\\.)';
const junit = path.join(dir, 'ctest-junit.xml');
const REPORT = /runtime error:|ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|SUMMARY: \w+Sanitizer/;

function run(command, args) {
  console.log(`$ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: root, stdio: 'inherit' });
}

// The JS tests whose native objects outlive, cross or race one another.
const ADDON_JS_TESTS = [
  '10.client', '40.worker-threads', '60.store', '70.apply', '95.engine', '95.engine-pull-ahead', '97.ingest',
].map((name) => path.join('test', 'js', `${name}.test.js`));

// Configured as cmake-js would (Node-API headers, the addon's output folder), so that the
// ASan build makes the addon too, from the same instrumented core.
const addonArgs = tsan ? [] : [
  '-DCMAKE_JS_VERSION=8.0.0',
  `-DCMAKE_JS_INC=${path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include')}`,
  `-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=${path.join(dir, 'Release')}`,
];
run('cmake', ['-S', '.', '-B', dir, '-DBUILD_TESTING=ON', '-DCMAKE_BUILD_TYPE=RelWithDebInfo', flag, ...addonArgs]);
run('cmake', ['--build', dir, '--target', 'core_tests', ...(tsan ? [] : ['deltasync']), '-j2']);

fs.rmSync(junit, { force: true });
const ctestArgs = ['--test-dir', dir, '--output-on-failure', '-j2', '--output-junit', junit,
  '--test-output-size-passed', '10000000', '--test-output-size-failed', '10000000', ...(tsan ? ['-R', TSAN_TESTS] : [])];
console.log(`$ ctest ${ctestArgs.join(' ')}`);
const ctest = spawnSync('ctest', ctestArgs, {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1',
  },
});

// The tests whose output holds a report (the JUnit file keeps passed tests' output too).
const xml = fs.existsSync(junit) ? fs.readFileSync(junit, 'utf8') : '';
const reported = xml.split('<testcase ').slice(1).filter((block) => REPORT.test(block))
  .map((block) => (block.match(/name="([^"]*)"/) || [])[1]);
if (reported.length > 0) {
  console.error(`\nSanitizer reports in ${reported.length} test(s): ${reported.join(', ')} (see ${junit}).`);
  process.exit(1);
}
if (ctest.status !== 0 || !xml) {
  console.error(`ctest failed (status ${ctest.status}, signal ${ctest.signal}).`);
  process.exit(1);
}
if (!tsan) runAddonTests();
console.log(`\nNo sanitizer reports (${tsan ? 'ThreadSanitizer' : 'AddressSanitizer + UndefinedBehaviorSanitizer'}).`);

/** The instrumented addon under the JS tests of native lifetimes; fails on any report. */
function runAddonTests() {
  const runtime = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  const addon = path.join(dir, 'Release', 'deltasync.node');
  const args = ['--test', '--test-concurrency=1', ...ADDON_JS_TESTS];
  console.log(`$ LD_PRELOAD=${runtime} DELTASYNC_NATIVE_MODULE=${path.relative(root, addon)} node ${args.join(' ')}`);
  const result = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      LD_PRELOAD: runtime,
      DELTASYNC_NATIVE_MODULE: addon,
      // node itself is not instrumented and keeps memory until exit: leaks are not ours to judge here.
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  });
  process.stdout.write(result.stdout.split('\n').filter((line) => /^# (tests|pass|fail|cancelled|todo)/.test(line)).join('\n') + '\n');
  const passed = Number((result.stdout.match(/^# pass (\d+)/m) || [])[1] || 0);
  const cppTests = (xml.match(/<testcase /g) || []).length;
  const output = `${result.stdout}\n${result.stderr}`;
  if (REPORT.test(output) || result.status !== 0) {
    const report = output.split('\n').filter((line) => REPORT.test(line) || /^not ok/.test(line)).slice(0, 20).join('\n');
    console.error(`\nThe addon under ASan+UBSan failed (status ${result.status}, signal ${result.signal}):\n${report}\n` +
      `${result.stderr.slice(-4000)}`);
    process.exit(1);
  }
  // For the README (scripts/figures.js).
  const figures = path.join(root, 'build', 'figures');
  fs.mkdirSync(figures, { recursive: true });
  fs.writeFileSync(path.join(figures, 'sanitize.json'), `${JSON.stringify({ cppTests, jsTests: passed }, null, 2)}\n`);
}
