'use strict';

// `npm run demo` (node scripts/demo.js): the whole story end to end, in its own process.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const DEMO = path.join(__dirname, '..', '..', 'scripts', 'demo.js');

function runDemo() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('the demo exits 0 and every expectation holds', { timeout: 120000 }, async () => {
  const { code, signal, stdout, stderr } = await runDemo();
  assert.equal(signal, null);
  assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
  assert.match(stdout, /All expectations held\.\n$/);
  assert.doesNotMatch(stdout, /^\s*FAIL /m);
  assert.match(stdout, /server on http:\/\/127\.0\.0\.1:\d+\/api\/sync/);
  assert.equal(stderr, '');
});
