'use strict';

// The README's benchmark table and Guarantees figures are generated (scripts/figures.js)
// from bench/results/latest.json and bench/results/checks.json; this fails when someone edits
// the figures by hand or commits new results without regenerating the README.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { renderBench, renderGuarantees } = require('../../scripts/figures');

const root = path.join(__dirname, '..', '..');

test('README.md holds exactly what the committed results render to', () => {
  const check = spawnSync(process.execPath, [path.join(root, 'scripts', 'figures.js')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

test('every trial is shown with its goals, the missed ones too', () => {
  const bench = {
    generatedAt: '2026-12-01T00:00:00.000Z',
    machine: { node: 'v20', cpus: 2, loadavgAtStart: [1, 1, 1] },
    summary: {
      a: { subject: 'fast/deltasync', changesPerSec: 2000, peer: 'fast/peer', peerChangesPerSec: 1000, vsPeer: 2,
        targets: [{ what: '>= 1.0x peer', unit: 'ratio', value: 2, met: true }] },
      z: { subject: 'slow/deltasync', changesPerSec: 10, peer: 'slow/peer', peerChangesPerSec: 500, vsPeer: 0.02, p99Ms: 210.5 },
      y: { subject: 'stall/deltasync', changesPerSec: 5, maxStallMs: 40.4,
        targets: [{ what: 'max stall <= 20 ms', unit: 'ms', value: 40.4, met: false }] },
    },
  };
  const text = renderBench(bench);
  assert.match(text, /\| \(a\) fast \| 2,000\/s \| 1,000\/s \(peer\) \| 2\.00x \| >= 1\.0x peer: 2\.00x, met \|/);
  assert.match(text, /\| \(z\) slow \| 10\/s \| 500\/s \(peer\) \| 0\.02x \| none set \| p99Ms 210\.5 ms \|/);
  assert.match(text, /max stall <= 20 ms: 40\.4 ms, \*\*missed\*\*/);
  assert.match(text, /Goals met: 1 of 2\./);
});

test('a check that was not run says so instead of showing a figure', () => {
  const text = renderGuarantees({});
  assert.equal((text.match(/\| not run \|/g) || []).length, 10);
  assert.match(text, /no run logged yet/);
});
