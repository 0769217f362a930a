#!/usr/bin/env node
'use strict';

// Builds the prebuilt binaries that ship in the package (`npm run prebuild`; `npm pack` and
// `npm publish` run it through `prepack`), after the inspector's page bundle:
//   prebuilds/<platform>-<arch>/deltasync.node   for this machine, from the release build
//   prebuilds/linux-arm64/deltasync.node         when this is linux-x64 and Debian's cross
//                                                compiler (g++-aarch64-linux-gnu) is present
// Each binary is stripped and checked: it exports only the Node-API entry points, needs no
// C++ runtime from the system and, on Linux, no glibc newer than 2.34.
//   --no-cross   skip the arm64 cross build

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { platformTag, packageRoot } = require('../lib/platform');

const MAX_GLIBC = [2, 34];
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');

function run(command, args, options = {}) {
  console.error(`$ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: packageRoot, stdio: ['ignore', 2, 2], ...options });
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Copies, strips and checks one binary, then moves it into prebuilds/<tag>/ in one rename, so
 *  a process that has the previous one loaded keeps its mapping intact. */
function publish(built, tag, tools) {
  const dir = path.join(packageRoot, 'prebuilds', tag);
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, 'deltasync.node');
  const staged = `${target}.${process.pid}.tmp`;
  fs.copyFileSync(built, staged);
  try {
    if (process.platform === 'linux') {
      // An unchecked binary never ships: without these tools the build stops.
      for (const tool of [tools.strip, tools.objdump]) {
        if (!has(tool)) throw new Error(`${tool} is not installed: it is needed to strip and check ${tag}'s binary (Debian: binutils)`);
      }
      run(tools.strip, ['--strip-unneeded', staged]);
      checkLinuxBinary(staged, tag, tools.objdump);
    }
    fs.renameSync(staged, target);
  } finally {
    fs.rmSync(staged, { force: true });
  }
  console.error(`${path.relative(packageRoot, target)}: ${(fs.statSync(target).size / 1e6).toFixed(2)} MB`);
}

function checkLinuxBinary(file, tag, objdump) {
  const dynamic = execFileSync(objdump, ['-T', '-p', file], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]);
  const cxxRuntime = needed.filter((lib) => /libstdc\+\+|libc\+\+/.test(lib));
  const glibc = [...dynamic.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  const newest = glibc.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0]);
  const exported = [...dynamic.matchAll(/^\S+\s+g\s+DF?\s+\.text\s+\S+\s+(?:Base\s+)?(\S+)$/gm)].map((m) => m[1]);
  const problems = [];
  if (cxxRuntime.length) problems.push(`links ${cxxRuntime.join(', ')}`);
  if (newest[0] > MAX_GLIBC[0] || (newest[0] === MAX_GLIBC[0] && newest[1] > MAX_GLIBC[1])) {
    problems.push(`needs GLIBC_${newest.join('.')} (at most ${MAX_GLIBC.join('.')} allowed)`);
  }
  const extra = exported.filter((name) => !/^(napi_register_module_v1|node_api_module_get_api_version_v1)$/.test(name));
  if (extra.length) problems.push(`exports ${extra.slice(0, 5).join(', ')}`);
  if (problems.length) throw new Error(`${file}: ${problems.join('; ')}`);
  console.error(`${tag}: needs ${needed.join(', ')}; newest glibc symbol ${newest.join('.')}`);
}

// The inspector's page ships bundled (lib/inspector-page/), built from web/inspector/.
const inspectorPage = require('./build-inspector').build();
console.error(`inspector page: ${inspectorPage.map((file) => `${file.name} ${file.bytes} B`).join(', ')}`);

const native = platformTag();
run(process.execPath, [cmakeJs, 'compile', '--parallel', '2']);
publish(path.join(packageRoot, 'build', 'Release', 'deltasync.node'), native, { strip: 'strip', objdump: 'objdump' });

if (native === 'linux-x64' && !process.argv.includes('--no-cross')) {
  if (has('aarch64-linux-gnu-g++')) {
    const out = path.join('build', 'cross-arm64');
    run(process.execPath, [cmakeJs, 'compile', '--parallel', '2', '--arch', 'arm64', '--out', out,
      '--CDCMAKE_SYSTEM_NAME=Linux', '--CDCMAKE_SYSTEM_PROCESSOR=aarch64',
      '--CDCMAKE_C_COMPILER=aarch64-linux-gnu-gcc', '--CDCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++']);
    publish(path.join(packageRoot, out, 'Release', 'deltasync.node'), 'linux-arm64',
      { strip: 'aarch64-linux-gnu-strip', objdump: 'aarch64-linux-gnu-objdump' });
  } else {
    console.error('linux-arm64: skipped (no aarch64-linux-gnu-g++; Debian: apt-get install g++-aarch64-linux-gnu)');
  }
}
