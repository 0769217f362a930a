#!/usr/bin/env node
'use strict';

// npm run bench: a declarative list of trials, each run in its own child
// process (a bench/trials/*.js script or a C++ binary) that prints one JSON
// line. Ratios compare trials of the same run only, so a noisy machine moves
// both sides together. The full results go to bench/results/latest.json.
//
//   node bench/run.js                   every trial, full sizes
//   node bench/run.js --quick           small sizes (a smoke test; skips building the C++ trial)
//                                       --quick and --filter runs write os.tmpdir()/deltasync-bench-partial.json
//   node bench/run.js --filter many     only trials whose id contains "many"
//   node bench/run.js --repeat 3        run the list 3 times, interleaved; keep each trial's median run
//   node bench/run.js --out file.json   write the results elsewhere
//   node bench/run.js --list            print the trial ids
//
// Scratch databases live in a fresh directory under os.tmpdir(), removed after each trial.
// Exits 1 when a trial crashes (non-zero exit, signal, timeout or no JSON line).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BENCH_BUILD_DIR = path.join(ROOT, 'build', 'bench');
const BUILD_LOCK = '/tmp/deltasync-build.lock';
const TRIAL_TIMEOUT_MS = 15 * 60 * 1000;

// ---- The trials. `params(quick)` gives the child's parameters; `binary` names a
// CMake target in build/bench instead of a script.

const TRIALS = [
  {
    id: 'enqueue-single/deltasync',
    group: 'a',
    label: 'deltasync queue.enqueue()',
    script: 'trials/enqueue-single.js',
    params: (quick) => ({ impl: 'deltasync', count: quick ? 2000 : 20000, rounds: 5, warmup: quick ? 200 : 1000 }),
  },
  {
    id: 'enqueue-single/better-sqlite3',
    group: 'a',
    label: 'better-sqlite3 INSERT, implicit tx',
    script: 'trials/enqueue-single.js',
    params: (quick) => ({ impl: 'better-sqlite3', count: quick ? 2000 : 20000, rounds: 5, warmup: quick ? 200 : 1000 }),
  },
  {
    id: 'enqueue-many/deltasync',
    group: 'b',
    label: 'deltasync queue.enqueueMany()',
    script: 'trials/enqueue-many.js',
    params: (quick) => ({ impl: 'deltasync', count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'enqueue-many/better-sqlite3',
    group: 'b',
    label: 'better-sqlite3 prepared INSERT, 1 tx',
    script: 'trials/enqueue-many.js',
    params: (quick) => ({ impl: 'better-sqlite3', count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'enqueue-many/sqlite-ceiling',
    group: 'c',
    label: 'C++ sqlite3 API, pre-built values',
    binary: 'bench_ceiling',
    params: (quick) => ({ count: quick ? 10000 : 100000, iterations: quick ? 1 : 3 }),
  },
  {
    id: 'memory-flat/deltasync',
    group: 'd',
    label: 'deltasync queue.enqueueMany()',
    script: 'trials/memory-flat.js',
    params: (quick) => ({ impl: 'deltasync', total: quick ? 100000 : 1000000, batch: 10000 }),
  },
  {
    id: 'memory-flat/better-sqlite3',
    group: 'd',
    label: 'better-sqlite3 prepared INSERT, 1 tx/batch',
    script: 'trials/memory-flat.js',
    params: (quick) => ({ impl: 'better-sqlite3', total: quick ? 100000 : 1000000, batch: 10000 }),
  },
];

// What each group compares, and the targets of the "Foundation" issue (reported, never enforced).
const GROUPS = {
  a: {
    title: (p) => `(a) enqueue: one committed transaction per change, ${fmtInt(p.count)} changes (median of ${p.rounds} rounds)`,
    subject: 'enqueue-single/deltasync',
    peer: 'enqueue-single/better-sqlite3',
    targets: { minPeerRatio: 1.0 },
  },
  b: {
    title: (p) => `(b) enqueueMany: ${fmtInt(p.count)} changes in one transaction (median of ${p.iterations})`,
    subject: 'enqueue-many/deltasync',
    peer: 'enqueue-many/better-sqlite3',
    ceiling: 'enqueue-many/sqlite-ceiling',
    targets: { minPeerRatio: 2.0, minChangesPerSec: 300000 },
  },
  c: {
    title: (p) => `(c) raw SQLite ceiling: the same ${fmtInt(p.count)} rows, one prepared statement, one tx`,
    subject: 'enqueue-many/sqlite-ceiling',
    ceiling: 'enqueue-many/sqlite-ceiling',
  },
  d: {
    title: (p) => `(d) memory: ${fmtInt(p.total)} changes via enqueueMany in batches of ${fmtInt(p.batch)}`,
    subject: 'memory-flat/deltasync',
    peer: 'memory-flat/better-sqlite3',
    memory: true,
  },
};

// ---- Command line.

function parseArgs(argv) {
  const options = { quick: false, filter: null, out: null, list: false, build: null, repeat: 1 };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--list') options.list = true;
    else if (arg === '--build') options.build = true;
    else if (arg === '--no-build') options.build = false;
    else if (arg === '--filter' || arg === '--out' || arg === '--repeat') {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      options[arg.slice(2)] = argv[++i];
    } else if (arg.startsWith('--repeat=')) options.repeat = arg.slice('--repeat='.length); else if (arg.startsWith('--filter=')) options.filter = arg.slice('--filter='.length);
    else if (arg.startsWith('--out=')) options.out = arg.slice('--out='.length);
    else if (arg === '--help' || arg === '-h') usage(null);
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  options.repeat = Number(options.repeat);
  if (!Number.isSafeInteger(options.repeat) || options.repeat < 1) usage('--repeat needs a positive integer');
  return options;
}

function usage(error) {
  const text =
    'Usage: node bench/run.js [--quick] [--filter <substring of a trial id>] [--repeat <n>] [--out <file.json>] [--list]\n' +
    '                         [--build | --no-build]   (build build/bench/bench_ceiling; default: full runs only)\n';
  if (error) {
    process.stderr.write(`bench: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

// ---- Formatting.

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US');
}
function fmtRatio(r) {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '-';
}
function fmtPct(f) {
  return Number.isFinite(f) ? `${(f * 100).toFixed(0)}%` : '-';
}
function fmtMb(mb) {
  return Number.isFinite(mb) ? `${mb.toFixed(0)} MB` : '-';
}
function pad(text, width, right = false) {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

// ---- Building the C++ trials.

function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    let stat;
    try {
      stat = fs.statSync(p);
    } catch {
      continue;
    }
    if (stat.isDirectory()) newest = Math.max(newest, newestMtime(fs.readdirSync(p).map((f) => path.join(p, f))));
    else newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

/** Builds `target` in build/bench unless it is newer than its sources. Returns an error message or null. */
function buildBinary(target) {
  const binary = path.join(BENCH_BUILD_DIR, target);
  const inputs = [path.join(ROOT, 'bench', 'cpp'), path.join(ROOT, 'src', 'core'), path.join(ROOT, 'CMakeLists.txt')];
  if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= newestMtime(inputs)) return null;
  const steps = [
    ['cmake', '-S', '.', '-B', 'build/bench', '-DDELTASYNC_BENCH=ON', '-DCMAKE_BUILD_TYPE=Release'],
    ['cmake', '--build', 'build/bench', '--target', target, '-j2'],
  ];
  process.stdout.write(`building ${target} (flock ${BUILD_LOCK} ...)\n`);
  for (const step of steps) {
    const run = spawnSync('flock', [BUILD_LOCK, ...step], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (run.error || run.status !== 0) {
      const output = `${run.stdout || ''}${run.stderr || ''}`.trim().split('\n').slice(-20).join('\n');
      return `build of ${target} failed (${step.join(' ')}): ${run.error ? run.error.message : `exit ${run.status}`}\n${output}`;
    }
  }
  return null;
}

// ---- Running one trial.

function runTrial(trial, quick) {
  const params = trial.params(quick);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltasync-bench-'));
  let command;
  let args;
  if (trial.binary) {
    command = path.join(BENCH_BUILD_DIR, trial.binary);
    args = ['--dir', dir];
    for (const [key, value] of Object.entries(params)) args.push(`--${key}`, String(value));
  } else {
    command = process.execPath;
    args = [path.join(__dirname, trial.script), JSON.stringify({ ...params, dir })];
  }
  const started = Date.now();
  const child = spawnSync(command, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: TRIAL_TIMEOUT_MS,
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const durationMs = Date.now() - started;
  fs.rmSync(dir, { recursive: true, force: true });

  const entry = { id: trial.id, group: trial.group, label: trial.label, params, durationMs, ok: false };
  const stderr = (child.stderr || '').trim();
  if (child.error) {
    entry.error = child.error.code === 'ETIMEDOUT' ? `timed out after ${TRIAL_TIMEOUT_MS} ms` : child.error.message;
  } else if (child.signal) {
    entry.error = `killed by ${child.signal}`;
  } else if (child.status !== 0) {
    entry.error = `exited with code ${child.status}`;
  } else {
    const line = (child.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
    try {
      entry.result = JSON.parse(line);
      entry.ok = Number.isFinite(entry.result.changesPerSec);
      if (!entry.ok) entry.error = 'the JSON line has no changesPerSec';
    } catch {
      entry.error = 'printed no JSON line';
    }
  }
  if (!entry.ok && stderr) entry.stderr = stderr.split('\n').slice(-20).join('\n');
  return entry;
}

// ---- Summary and table.

function summarize(entries) {
  const byId = new Map(entries.filter((e) => e.ok).map((e) => [e.id, e]));
  const rate = (id) => (byId.has(id) ? byId.get(id).result.changesPerSec : NaN);
  const summary = {};
  for (const [key, group] of Object.entries(GROUPS)) {
    if (!entries.some((e) => e.group === key)) continue;
    const s = { subject: group.subject, changesPerSec: rate(group.subject) };
    if (group.peer) {
      s.peer = group.peer;
      s.peerChangesPerSec = rate(group.peer);
      s.vsPeer = s.changesPerSec / s.peerChangesPerSec;
    }
    if (group.ceiling && group.ceiling !== group.subject) {
      s.ceilingChangesPerSec = rate(group.ceiling);
      s.ofCeiling = s.changesPerSec / s.ceilingChangesPerSec;
      if (group.peer) s.peerOfCeiling = s.peerChangesPerSec / s.ceilingChangesPerSec;
    }
    if (group.memory && byId.has(group.subject)) {
      const r = byId.get(group.subject).result;
      Object.assign(s, { rssAt10Mb: r.rssAt10Mb, rssAt50Mb: r.rssAt50Mb, rssAt100Mb: r.rssAt100Mb, growth: r.growth });
    }
    if (group.targets) {
      s.targets = [];
      const t = group.targets;
      if (t.minPeerRatio !== undefined) {
        s.targets.push({ what: `>= ${t.minPeerRatio.toFixed(1)}x better-sqlite3`, value: s.vsPeer, min: t.minPeerRatio });
      }
      if (t.minChangesPerSec !== undefined) {
        s.targets.push({ what: `>= ${fmtInt(t.minChangesPerSec)} changes/s`, value: s.changesPerSec, min: t.minChangesPerSec });
      }
      for (const target of s.targets) {
        target.met = Number.isFinite(target.value) ? target.value >= target.min : null;
        if (!Number.isFinite(target.value)) target.value = null;
      }
    }
    // JSON has no NaN: a missing side becomes null.
    for (const [k, v] of Object.entries(s)) if (typeof v === 'number' && !Number.isFinite(v)) s[k] = null;
    summary[key] = s;
  }
  return summary;
}

function printTable(entries, summary, quick) {
  const out = [];
  const W = [44, 12, 10, 12, 11];
  out.push(
    `${pad('trial', W[0])}${pad('changes/s', W[1], true)}${pad('vs peer', W[2], true)}` +
      `${pad('of ceiling', W[3], true)}${pad('peak RSS', W[4], true)}`,
  );
  out.push('-'.repeat(W.reduce((a, b) => a + b)));
  for (const [key, group] of Object.entries(GROUPS)) {
    const members = entries.filter((e) => e.group === key);
    if (members.length === 0) continue;
    out.push(group.title(members[0].params));
    const s = summary[key] || {};
    for (const e of members) {
      const isSubject = e.id === group.subject;
      if (!e.ok) {
        out.push(`  ${pad(e.label, W[0] - 2)}${pad(e.skipped ? 'skipped' : 'CRASHED', W[1], true)}  ${e.error}`);
        continue;
      }
      const r = e.result;
      const vsPeer = isSubject && group.peer ? fmtRatio(s.vsPeer) : '';
      let ofCeiling = '';
      if (group.ceiling) {
        if (e.id === group.ceiling) ofCeiling = '100%';
        else ofCeiling = fmtPct(isSubject ? s.ofCeiling : s.peerOfCeiling);
      }
      out.push(
        `  ${pad(e.label, W[0] - 2)}${pad(fmtInt(r.changesPerSec), W[1], true)}${pad(vsPeer, W[2], true)}` +
          `${pad(ofCeiling, W[3], true)}${pad(fmtMb(r.peakRssKb / 1024), W[4], true)}`,
      );
    }
    if (group.memory) {
      out.push(
        `  ${pad('RSS after 10% / 50% / 100% of the data', W[0] - 2)}${pad('RSS@10%', W[1], true)}` +
          `${pad('RSS@50%', W[2], true)}${pad('RSS@100%', W[3], true)}${pad('100%/10%', W[4], true)}`,
      );
      for (const e of members.filter((m) => m.ok)) {
        const r = e.result;
        out.push(
          `    ${pad(e.id.split('/')[1], W[0] - 4)}${pad(fmtMb(r.rssAt10Mb), W[1], true)}` +
            `${pad(fmtMb(r.rssAt50Mb), W[2], true)}${pad(fmtMb(r.rssAt100Mb), W[3], true)}` +
            `${pad(fmtRatio(r.growth), W[4], true)}`,
        );
      }
    }
  }
  const targetLines = [];
  for (const [key, s] of Object.entries(summary)) {
    for (const t of s.targets || []) {
      const value = t.what.includes('changes/s') ? `${fmtInt(t.value ?? NaN)} changes/s` : fmtRatio(t.value ?? NaN);
      const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED';
      targetLines.push(`  (${key}) ${pad(t.what, 28)} ${pad(value, 20)} ${verdict}`);
    }
  }
  if (targetLines.length) {
    out.push('');
    out.push(`Targets (issue "Foundation"; reported, not enforced${quick ? '; --quick sizes are not representative' : ''}):`);
    out.push(...targetLines);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---- Main.

function main() {
  const options = parseArgs(process.argv.slice(2));
  const filter = options.filter ? options.filter.toLowerCase() : null;
  const selected = TRIALS.filter(
    (t) => !filter || t.id.toLowerCase().includes(filter) || t.label.toLowerCase().includes(filter),
  );
  if (options.list) {
    for (const t of TRIALS) process.stdout.write(`${t.id}\n`);
    return 0;
  }
  if (selected.length === 0) usage(`no trial matches --filter ${JSON.stringify(options.filter)} (see --list)`);

  const mode = options.quick ? 'quick' : 'full';
  const partial = options.quick || Boolean(filter);
  // Only a full, unfiltered run replaces the committed summary; partial runs go to the temp dir.
  const outFile = path.resolve(
    options.out ||
      (partial ? path.join(os.tmpdir(), 'deltasync-bench-partial.json') : path.join(__dirname, 'results', 'latest.json')),
  );
  const cpus = os.cpus();
  const machine = {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown',
    totalMemMb: Math.round(os.totalmem() / 2 ** 20),
    scratchDir: os.tmpdir(),
    loadavgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
  process.stdout.write(
    `deltasync bench (${mode}${filter ? `, filter "${options.filter}"` : ''}): node ${machine.node}, ` +
      `${machine.cpus} x ${machine.cpuModel}, load ${machine.loadavgAtStart.join(' ')}, scratch ${machine.scratchDir}\n`,
  );

  // Build (or find) the C++ trials first; a trial that cannot run is reported once.
  const built = new Map();
  const unrunnable = new Map();
  for (const trial of selected.filter((t) => t.binary)) {
    const binary = path.join(BENCH_BUILD_DIR, trial.binary);
    const build = options.build ?? !options.quick;
    if (!built.has(trial.binary)) built.set(trial.binary, build ? buildBinary(trial.binary) : null);
    const buildError = built.get(trial.binary);
    if (buildError || !fs.existsSync(binary)) {
      const skipped = !buildError;
      unrunnable.set(trial.id, {
        id: trial.id,
        group: trial.group,
        label: trial.label,
        params: trial.params(options.quick),
        ok: false,
        skipped,
        error: buildError || `${path.relative(ROOT, binary)} is not built (run without --quick, or pass --build)`,
      });
      process.stdout.write(`  ${pad(trial.id, 34)} ${skipped ? 'skipped: not built' : 'BUILD FAILED'}\n`);
    }
  }

  // With --repeat N the whole list runs N times, interleaved, and each trial keeps its median run.
  const runs = new Map(selected.map((t) => [t.id, []]));
  for (let round = 1; round <= options.repeat; ++round) {
    if (options.repeat > 1) process.stdout.write(`round ${round} of ${options.repeat}\n`);
    for (const trial of selected) {
      if (unrunnable.has(trial.id)) continue;
      process.stdout.write(`  ${pad(trial.id, 34)} `);
      const entry = runTrial(trial, options.quick);
      runs.get(trial.id).push(entry);
      process.stdout.write(
        entry.ok
          ? `${fmtInt(entry.result.changesPerSec)} changes/s (${(entry.durationMs / 1000).toFixed(1)} s)\n`
          : `CRASHED: ${entry.error}\n${entry.stderr ? `${entry.stderr.replace(/^/gm, '      ')}\n` : ''}`,
      );
    }
  }
  const entries = selected.map((trial) => {
    if (unrunnable.has(trial.id)) return unrunnable.get(trial.id);
    const list = runs.get(trial.id);
    const crashed = list.find((e) => !e.ok);
    if (crashed || list.length === 1) return crashed || list[0];
    const sorted = [...list].sort((x, y) => x.result.changesPerSec - y.result.changesPerSec);
    const median = sorted[(sorted.length - 1) >> 1];
    return { ...median, repeats: list.map((e) => e.result.changesPerSec) };
  });
  machine.loadavgAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);

  const summary = summarize(entries);
  process.stdout.write('\n');
  printTable(entries, summary, options.quick);

  const results = {
    generatedAt: new Date().toISOString(),
    mode,
    filter: options.filter,
    repeat: options.repeat,
    machine,
    versions: {
      deltasync: require('../package.json').version,
      betterSqlite3: require('better-sqlite3/package.json').version,
    },
    sqlite: {
      deltasync: entries.find((e) => e.ok && e.id.endsWith('/deltasync'))?.result.sqliteVersion ?? null,
      betterSqlite3: entries.find((e) => e.ok && e.id.endsWith('/better-sqlite3'))?.result.sqliteVersion ?? null,
    },
    pragmas: 'journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON, temp_store=MEMORY, cache_size=-16000 (all peers)',
    summary,
    trials: entries,
  };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\nresults: ${outFile}\n`);

  const crashed = entries.filter((e) => !e.ok && !e.skipped);
  if (crashed.length > 0) {
    process.stderr.write(`bench: ${crashed.length} trial(s) crashed: ${crashed.map((e) => e.id).join(', ')}\n`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
