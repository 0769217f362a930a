#!/usr/bin/env node
'use strict';

// Builds the libFuzzer targets (fuzz/targets/*.cc) with clang into build/fuzz and runs them.
//   npm run fuzz -- --minutes N [--target name] [--no-build] [--build-only]
//
// --minutes N   total time, split evenly between the targets run (default 1)
// --target name only this target: push_request, pull_page or ingest_jsonl
// --no-build    run what build/fuzz already holds
// --build-only  configure and build, run nothing
//
// Seeds are read from fuzz/corpus/<target>/ (never written); inputs the fuzzer finds
// interesting go to build/fuzz/corpus/<target>/ and survive between runs. A crash, leak,
// timeout or out-of-memory input is saved to fuzz/crashes/<target>/, which `npm test`
// replays (test/cpp/98_corpus_test.cc); keep it there as a regression case once fixed.
// Writes fuzz/log.json (commit it: the README's fuzzing figures come from it).
// Exits 1 when any target found something.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buildDir = path.join(root, 'build', 'fuzz');
const targets = {
  push_request: { maxLen: 4096 },
  pull_page: { maxLen: 4096 },
  ingest_jsonl: { maxLen: 8192 },
};

function usage(message) {
  console.error(`${message}\nUsage: npm run fuzz -- --minutes N [--target ${Object.keys(targets).join('|')}] ` +
    '[--no-build] [--build-only]');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { minutes: 1, targets: Object.keys(targets), build: true, run: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--minutes') {
      options.minutes = Number(argv[++i]);
      if (!Number.isFinite(options.minutes) || options.minutes <= 0) usage('Expected a positive number for --minutes');
    } else if (arg === '--target') {
      const name = argv[++i];
      if (!Object.hasOwn(targets, name)) usage(`Unknown target ${JSON.stringify(name)}`);
      options.targets = [name];
    } else if (arg === '--no-build') {
      options.build = false;
    } else if (arg === '--build-only') {
      options.run = false;
    } else {
      usage(`Unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return options;
}

function run(command, args) {
  console.log(`$ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: root, stdio: 'inherit' });
}

function build(names) {
  const generator = spawnSync('ninja', ['--version']).status === 0 ? ['-G', 'Ninja'] : [];
  run('cmake', ['-S', '.', '-B', buildDir, ...generator, '-DCMAKE_C_COMPILER=clang', '-DCMAKE_CXX_COMPILER=clang++',
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DDELTASYNC_FUZZ=ON', '-DBUILD_TESTING=OFF']);
  run('cmake', ['--build', buildDir, '-j2', '--target', ...names.map((name) => `fuzz_${name}`)]);
}

function listFiles(dir) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => !name.startsWith('.')) : [];
}

// Runs one target for `seconds`; returns {name, seconds, execs, found: [files]}.
function fuzz(name, seconds) {
  const binary = path.join(buildDir, `fuzz_${name}`);
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run without --no-build`);
  const seeds = path.join(root, 'fuzz', 'corpus', name);
  const work = path.join(buildDir, 'corpus', name);
  const crashes = path.join(root, 'fuzz', 'crashes', name);
  const dict = path.join(root, 'fuzz', 'dicts', `${name}.dict`);
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(crashes, { recursive: true });
  const before = new Set(listFiles(crashes));
  const args = [
    work, seeds,
    `-max_total_time=${seconds}`,
    `-max_len=${targets[name].maxLen}`,
    '-timeout=10',
    '-rss_limit_mb=2048',
    '-print_final_stats=1',
    `-artifact_prefix=${crashes}${path.sep}`,
    ...(fs.existsSync(dict) ? [`-dict=${dict}`] : []),
  ];
  console.log(`\n== ${name}: ${seconds} s`);
  console.log(`$ ${binary} ${args.join(' ')}`);
  const result = spawnSync(binary, args, {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  });
  const output = `${result.stdout || ''}${result.stderr || ''}`;
  // Keep the log: libFuzzer prints a status line per new input, too much for the console.
  fs.writeFileSync(path.join(buildDir, `${name}.log`), output);
  const tail = output.split('\n').filter((line) => /^(stat::|#\d+\s+DONE|==\d+==|SUMMARY|INTERNAL|.*runtime error)/.test(line));
  console.log(tail.slice(0, 40).join('\n'));
  const execs = Number((output.match(/stat::number_of_executed_units:\s*(\d+)/) || [])[1] || 0);
  const found = listFiles(crashes).filter((file) => !before.has(file));
  if (result.status !== 0 && found.length === 0) {
    found.push(`(exit status ${result.status}, signal ${result.signal}; see ${path.join(buildDir, `${name}.log`)})`);
  }
  const corpusFiles = listFiles(work).length + listFiles(seeds).length;
  return { name, seconds, execs, corpusFiles, found };
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.build) build(options.targets);
  if (!options.run) return;
  const seconds = Math.max(1, Math.floor((options.minutes * 60) / options.targets.length));
  const results = options.targets.map((name) => fuzz(name, seconds));
  // The log the README cites (scripts/figures.js): what was run, for how long, and what it found.
  const log = {
    date: new Date().toISOString(),
    cpuSeconds: results.reduce((sum, r) => sum + r.seconds, 0),
    executions: results.reduce((sum, r) => sum + r.execs, 0),
    corpusFiles: results.reduce((sum, r) => sum + r.corpusFiles, 0),
    found: results.reduce((sum, r) => sum + r.found.length, 0),
    targets: results.map(({ name, seconds, execs, corpusFiles, found }) => ({ name, seconds, executions: execs, corpusFiles, found: found.length })),
  };
  fs.writeFileSync(path.join(root, 'fuzz', 'log.json'), `${JSON.stringify(log, null, 2)}\n`);
  console.log('\n== summary');
  for (const r of results) {
    console.log(`${r.name}: ${r.seconds} s, ${r.execs} executions, ` +
      (r.found.length ? `FOUND ${r.found.join(', ')} (in fuzz/crashes/${r.name}/)` : 'nothing found'));
  }
  if (results.some((r) => r.found.length)) process.exit(1);
}

main();
