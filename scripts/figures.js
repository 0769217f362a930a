#!/usr/bin/env node
'use strict';

// The figures the README quotes, generated, never copied by hand.
//
//   node scripts/figures.js            check: exit 1 when README.md differs from what the
//                                      results below render to (a test runs this)
//   node scripts/figures.js --collect  merge the figures the last test run left in
//                                      build/figures/*.json into bench/results/checks.json
//   node scripts/figures.js --write    rewrite the README sections from the results
//   (npm run figures = --collect --write)
//
// Sources, both committed:
//   bench/results/latest.json  the last full `npm run bench`: every trial, its goal and whether
//                              it was met, the bad ones too;
//   bench/results/checks.json  what the last `npm test` measured: crash kills, simulation seeds,
//                              fault and power-loss trials, hostile cases, the load test, the
//                              package, and the last fuzzing run (fuzz/log.json).
// The README holds the rendered text between <!-- figures:NAME --> and <!-- /figures:NAME -->.

const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const README = path.join(root, 'README.md');
const BENCH = path.join(root, 'bench', 'results', 'latest.json');
const CHECKS = path.join(root, 'bench', 'results', 'checks.json');
const FIGURES_DIR = path.join(root, 'build', 'figures');
const FUZZ_LOG = path.join(root, 'fuzz', 'log.json');

const COLD_SYNC_CEILING =
  'the share of the ceiling counts the whole sync: the server reading its log, HTTP on loopback, and the apply; deltasync asks for the next page while one applies, the peer asks after';

// What a reader must know to read a trial's figure honestly; one line each, keyed by trial.
const CAVEATS = {
  b: 'both goals sit near the raw SQLite ceiling (c) measured in the same run, which only inserts the rows: no JSON serialized, validated or decoded, and no changeId made per change',
  e: 'the whole page is validated (on two threads) before its first write, so that a malformed page changes nothing; the writes then run beside the decoding of the next window, close to the pace of the ceiling\'s writes',
  f: 'both processes hold node and the 29 MB page (about 79 MB) before the apply starts, and both give SQLite a 4 MB page cache, as deltasync\'s client does',
  g: 'a put() due every 5 ms while the apply runs; it waits for the chunk in progress',
  j: 'both sides run the same prepared statement, one indexed read per call: what differs is only the cost of the call into C++',
  l: 'the server and the load generator share the 2 cores; the core\'s work runs on a worker beside Express, while the peer does all of its work on the main thread',
  l2: 'random UUID v4 changeIds (older clients): every index insert lands on a random page',
  l4: '32 devices of 16 users at once: requests wait for the one SQLite session in turn, and those that queue share one commit',
  l5: 'every commit is synced to disk; the requests that queue for the session share one commit, so one fsync',
  m: 'objects: the text is built off the main thread, then JSON.parse on the main thread takes about half of the time',
  o2: 'a client that already synced 100,000 changes, still in its queue: each cycle pays for them',
  p: COLD_SYNC_CEILING,
  p2: COLD_SYNC_CEILING,
  q: 'both insert time-ordered (UUID v7) changeIds; the second, unchanged run is skipped by manifest (unchangedVsPeer)',
  s: 'the peer is the same client polling every second (live: false); its idle requests are that polling',
  t: "PouchDB replicates each document's latest revision (50,000 documents); its rate counts the server's 100,000 changes, as for deltasync",
  v: "PouchDB's LevelDB writes are not synced to disk; deltasync's put() returns with its change committed to SQLite's log",
  r: 'the peer is the built-in merge on the same conflicts; resolverCostUs is what a JS resolver adds per conflicting change (the request runs twice in C++, plus the call)',
  r2: 'the peer is the built-in merge on the same conflicts; resolverCostUs is what a JS resolver adds per conflicting change (reading the conflicts, the call, writing the verdicts)',
};

const readJson = (file, fallback) => (fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : fallback);

function number(value, digits = 0) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function metric(key, value) {
  if (/Ms$/.test(key)) return `${number(value, 1)} ms`;
  if (/(Us|UsPerConflict)$/.test(key) || key === 'usPerConflict') return `${number(value, 1)} µs`;
  if (/Mb$/.test(key)) return `${number(value, 0)} MB`;
  if (/PerSec$/.test(key)) return `${number(value, 0)}/s`;
  if (/PerMin$/.test(key)) return `${number(value, 0)}/min`;
  if (/^(vsPeer|.*VsPeer|growth|peerGrowth)$/.test(key)) return `${number(value, 2)}x`;
  if (/^(ofCeiling|peerOfCeiling)$/.test(key)) return `${number(value * 100, 0)}%`;
  return number(value, Number.isInteger(value) ? 0 : 2);
}

function targetText(target) {
  const shown = target.unit === 'pct' ? `${number(target.value * 100, 0)}%`
    : target.unit === 'ratio' ? `${number(target.value, 2)}x`
      : target.unit === 'ms' ? `${number(target.value, 1)} ms`
        : target.unit === 'perMin' ? `${number(target.value, 0)}/min` : number(target.value, 0);
  return `${target.what}: ${shown}, ${target.met ? 'met' : '**missed**'}`;
}

function renderBench(bench) {
  if (!bench) return 'No benchmark results yet: run `npm run bench`.';
  const { machine } = bench;
  const lines = [
    `${bench.repeat > 1 ? `\`npm run bench -- --repeat ${bench.repeat}\`, each trial's median of ${bench.repeat} runs` : 'One full run of `npm run bench`'} ` +
      `(${bench.generatedAt.slice(0, 10)}, node ${machine.node}, ${machine.cpus} cores, ` +
      `load average ${machine.loadavgAtStart.map((load) => number(load, 1)).join(' / ')} at the start): every trial, ` +
      'each against its peer measured in the same run. Ratios are the figures to read; absolute rates move with the load.',
    '',
    '| trial | deltasync | peer | ratio | goal | other figures | caveat |',
    '|---|---|---|---|---|---|---|',
  ];
  const shown = new Set(['changesPerSec', 'peerChangesPerSec', 'vsPeer']);
  for (const [id, trial] of Object.entries(bench.summary)) {
    const extra = Object.entries(trial)
      .filter(([key, value]) => typeof value === 'number' && !shown.has(key))
      .map(([key, value]) => `${key} ${metric(key, value)}`)
      .join(', ');
    const goals = (trial.targets ?? []).map(targetText).join('; ') || 'none set';
    lines.push(`| (${id}) ${trial.subject.replace(/\/deltasync$/, '')} | ${metric('changesPerSec', trial.changesPerSec)} | ` +
      `${trial.peerChangesPerSec === undefined ? '' : `${metric('peerChangesPerSec', trial.peerChangesPerSec)} (${trial.peer.split('/').pop()})`} | ` +
      `${trial.vsPeer === undefined ? '' : metric('vsPeer', trial.vsPeer)} | ${goals} | ${extra} | ${CAVEATS[id] ?? ''} |`);
  }
  const missed = Object.values(bench.summary).flatMap((trial) => trial.targets ?? []).filter((target) => !target.met).length;
  const all = Object.values(bench.summary).flatMap((trial) => trial.targets ?? []).length;
  lines.push('', `Goals met: ${all - missed} of ${all}. Rates are changes (or records, or operations) per second. ` +
    '`bench/README.md` says what each trial times.');
  return lines.join('\n');
}

function renderGuarantees(checks) {
  const c = checks ?? {};
  const row = (name, what, figures) => `| ${name} | ${what} | ${figures} |`;
  const fuzz = c.fuzz;
  const lines = [
    '| check | what it does | figures (the last `npm test` on this machine) |',
    '|---|---|---|',
    row('crash tests (`test/js/100.crash`)',
      'a child writing, applying and syncing kills itself (SIGKILL) just before or just after a seeded commit of its database, so kills land on local writes, apply chunks, queue transitions and crash recovery, and a seed reproduces its kills; after each kill `integrity_check`, every acknowledged write present with its change, nothing half-applied, every note as its writes made it; at the end the server holds each change exactly once',
      c.crash ? `${number(c.crash.kills)} kills in ${c.crash.trials} trials, all passed (\`CRASH_TRIALS\` for more)` : 'not run'),
    row('server crash tests (`test/js/101.server-crash`)',
      'the server runs in a child that kills itself (SIGKILL) just before or just after a seeded commit, its schema\'s commits while it opens included, while three devices push and pull through it over HTTP; it restarts on the same file each time; after the last kill the log is gapless with each changeId once, every change a device counts as synced is logged at the version it was acknowledged at, the log replays to exactly what the devices wrote, and the file passes `integrity_check`',
      c['server-crash'] ? `${number(c['server-crash'].kills)} kills in ${c['server-crash'].trials} trials (${c['server-crash'].killsBeforeCommit} before a commit, ${c['server-crash'].killsAfterCommit} after one, the response lost; ${c['server-crash'].killsWhileOpening} while opening), all passed (\`SERVER_CRASH_TRIALS\` for more)` : 'not run'),
    row('deterministic simulation (`test/js/110.simulation`)',
      'real server and clients joined by a seeded faulty transport: dropped requests and responses, duplicates, reordering, 429/503 with Retry-After, offline clients, restarts, client clocks skewed up to ±3 h (store writes included); every fourth seed settles one entity type through JS resolvers on the server and on the devices; after quiescence every replica equals the server, versions gapless, each change applied once',
      c.simulation ? `${number(c.simulation.seeds)} seeds, all passed (\`SIM_SEEDS\` for more)` : 'not run'),
    row('I/O fault injection (`test/cpp/97_fault`)',
      'a SQLite VFS failing the Nth write, sync, truncate or read, swept over enqueue, put, apply and server push',
      c.cpp?.faultTrials ? `${number(c.cpp.faultTrials)} trials: every fault a coded \`STORAGE\` error, the file consistent and usable` : 'not run'),
    row('power loss (`test/cpp/97_power_loss`)',
      'the same VFS keeps each file as of its last fsync and drops every later write at a simulated power cut; the database is reopened from what was synced',
      c.cpp?.powerCuts ? `${number(c.cpp.powerCuts)} power cuts: with \`durability: 'full'\` every acknowledged write survived; with \`'normal'\` a prefix survived and the file was never corrupt` : 'not run'),
    row('hostile input (`test/js/120.hostile`, `122.real-clients`)',
      '100,000-deep nesting, 100 MB bodies, 10^6-element arrays, duplicate keys, invalid UTF-8, lone surrogates, NUL, `__proto__`, `1e400`, 2^53+1, other users\' ids, clients with other habits, far-future clocks, restored servers… at the JS API and over HTTP',
      c.hostile ? `${number(c.hostile.coded)} cases each a coded error (or 4xx JSON) with the whole database unchanged; ${c.hostile.isolation} cases of another user's ids, each with its outcome stated and the other user unchanged` +
        `${c['real-clients'] ? `; ${c['real-clients'].tests} tests of real clients and attacks` : ''}` +
        `${c['electron-hostile'] ? `; ${c['electron-hostile'].cases} hostile IPC requests from an Electron renderer, each a coded reply with the database unchanged` : ''}` : 'not run'),
    row('Electron bridge and React hooks (`test/js/140.electron`, `150.react`)',
      'main and two renderers as worker threads with stand-ins of Electron\'s IPC (structured clone); the hooks in headless Chromium over the same bridge, counting renders per component',
      c.electron && c.react ? `IPC round trip (median): \`get\` ${number(c.electron.getMedianMs, 3)} ms, \`list\` of 100 documents ${number(c.electron.list100MedianMs, 3)} ms; ` +
        `re-renders of a note list on a write to another type: ${c.react.localWriteOfAnotherType.NoteList}, of a state badge on two progress ticks and the end of the page: ${c.react.twoProgressTicksAndTheEnd.StateBadge}` : 'not run'),
    row('load (`test/js/130.load`)',
      `${c.load?.clients ?? 32} clients syncing through one Express server`,
      c.load ? `${number(c.load.loadSeconds, 0)} s: ${number(c.load.logged)} changes, 0 errors, 0 lost or duplicated, gapless versions, server event loop p99 ${number(c.load.serverEventLoopMs?.p99 ?? 0, 1)} ms (\`LOAD_SECONDS\` for longer)` : 'not run'),
    row('fuzzing (`npm run fuzz`)',
      'libFuzzer with ASan+UBSan on the push decoder, the pull-page applier and the JSONL parser; the corpus and every crash replay in `npm test`',
      fuzz ? `last run ${fuzz.date.slice(0, 10)}: ${number(fuzz.cpuSeconds / 60, 1)} CPU-minutes, ${number(fuzz.executions)} executions, ${fuzz.found} found (log: \`fuzz/log.json\`)` : 'no run logged yet'),
    row('sanitizers',
      'the C++ suite under ASan+UBSan, then the addon itself built the same way and loaded into node under the JS tests of native lifetimes (part of `npm test`); ThreadSanitizer with `npm run test:tsan`',
      c.sanitize ? `${number(c.sanitize.cppTests)} C++ tests and ${number(c.sanitize.jsTests)} JS tests, no report` : 'not run'),
    row('package (`test/package`)',
      'the packed tarball installed into empty projects: normally, with `--ignore-scripts` and no compiler, and built from source; the quick start under every supported Node major and on arm64',
      c.package ? `tarball ${number(c.package.tarball.bytes / 1e6, 1)} MB (${number(c.package.tarball.unpackedBytes / 1e6, 1)} MB unpacked); install ${number(c.package.installs.prebuilt.seconds, 1)} s with the prebuild, ${number(c.package.installs.source.seconds, 0)} s from source; Node ${Object.values(c.package.nodeMajors).join(', ')}${c.package.arm64 ? '; linux-arm64 under qemu' : ''}` : 'not run'),
  ];
  return lines.join('\n');
}

function collect() {
  const checks = readJson(CHECKS, {});
  if (fs.existsSync(FIGURES_DIR)) {
    const cpp = { faultTrials: 0, powerCuts: 0 };
    let cppSeen = false;
    for (const name of fs.readdirSync(FIGURES_DIR).sort()) {
      const data = readJson(path.join(FIGURES_DIR, name));
      if (name.startsWith('cpp-')) {
        cppSeen = true;
        for (const key of Object.keys(cpp)) cpp[key] += data[key] ?? 0;
      } else {
        checks[name.replace(/\.json$/, '')] = data;
      }
    }
    if (cppSeen) checks.cpp = cpp;
  }
  const fuzz = readJson(FUZZ_LOG, null);
  if (fuzz) checks.fuzz = fuzz;
  fs.writeFileSync(CHECKS, `${JSON.stringify(checks, null, 2)}\n`);
  return checks;
}

function render(readme, bench, checks) {
  const sections = { bench: renderBench(bench), guarantees: renderGuarantees(checks) };
  let out = readme;
  for (const [name, text] of Object.entries(sections)) {
    const pattern = new RegExp(`(<!-- figures:${name} -->\\n)[\\s\\S]*?(<!-- /figures:${name} -->)`);
    if (!pattern.test(out)) throw new Error(`README.md has no <!-- figures:${name} --> ... <!-- /figures:${name} --> section`);
    out = out.replace(pattern, (_, open, close) => `${open}${text}\n${close}`);
  }
  return out;
}

function main(argv) {
  if (argv.includes('--collect')) collect();
  const readme = fs.readFileSync(README, 'utf8');
  const rendered = render(readme, readJson(BENCH, null), readJson(CHECKS, null));
  if (argv.includes('--write')) {
    fs.writeFileSync(README, rendered);
    return 0;
  }
  if (rendered !== readme) {
    const a = readme.split('\n');
    const b = rendered.split('\n');
    const at = a.findIndex((line, i) => line !== b[i]);
    console.error(`README.md's figures differ from what bench/results renders to (first at line ${at + 1}):\n` +
      `  README:   ${a[at]}\n  rendered: ${b[at]}\nRun \`npm run figures\` after \`npm test\` (and \`npm run bench\`).`);
    return 1;
  }
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));

module.exports = { render, renderBench, renderGuarantees };
