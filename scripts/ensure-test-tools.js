#!/usr/bin/env node
'use strict';

// Installs the Debian packages the tests use when they are missing and this runs as root on
// Debian or Ubuntu (as CI does): the aarch64 cross compiler, for the linux-arm64 prebuild,
// qemu-user, to run it, and chromium, for the React hooks test. Elsewhere it says what is missing; the arm64 test then
// reports itself skipped with the reason.

const { spawnSync } = require('node:child_process');

const TOOLS = [
  { command: 'aarch64-linux-gnu-g++', apt: 'g++-aarch64-linux-gnu' },
  { command: 'qemu-aarch64', apt: 'qemu-user' },
  { command: 'chromium', apt: 'chromium' },
];

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const missing = TOOLS.filter((tool) => !has(tool.command));
if (missing.length === 0) process.exit(0);

const names = missing.map((tool) => tool.apt);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !has('apt-get')) {
  console.error(`ensure-test-tools: ${names.join(', ')} not installed (needs root and apt-get); the tests that need them (arm64 package, React hooks in Chromium) will be skipped.`);
  process.exit(0);
}
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...names], { stdio: 'inherit', env });
console.error(`ensure-test-tools: installing ${names.join(', ')}`);
if (install().status !== 0) {
  spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
  if (install().status !== 0) console.error(`ensure-test-tools: could not install ${names.join(', ')}; the tests that need them will be skipped.`);
}
