#!/usr/bin/env node
'use strict';

// Replays one seed of the deterministic simulation (test/js/110.simulation.test.js)
// and prints every step: what each client wrote, every request with the fault it
// met and the server's answer, restarts, and the quiescence rounds; then the
// result of the checks.
//
//   node scripts/replay-sim.js <seed> [--steps N] [--quiet]
//
// --quiet prints only the outcome and the counts. Exit status 1 when a check fails.
// SIM_STEPS and SIM_COALESCE=0 act as in the test (a replay needs the same ones).

const { Simulation } = require('../test/js/fixtures/sim-world');

function main(argv) {
  const args = argv.slice(2);
  const seed = Number(args[0]);
  if (!Number.isInteger(seed) || seed < 0) {
    process.stderr.write('usage: node scripts/replay-sim.js <seed> [--steps N] [--quiet]\n');
    return Promise.resolve(2);
  }
  const stepsAt = args.indexOf('--steps');
  const steps = stepsAt >= 0 ? Number(args[stepsAt + 1]) : process.env.SIM_STEPS ? Number(process.env.SIM_STEPS) : undefined;
  const quiet = args.includes('--quiet');
  const coalesce = process.env.SIM_COALESCE !== '0';
  const simulation = new Simulation(seed, { steps, coalesce, trace: quiet ? undefined : (line) => process.stdout.write(`${line}\n`) });
  return simulation.run().then(
    ({ counts, notes }) => {
      for (const note of notes) process.stdout.write(`note: ${note}\n`);
      process.stdout.write(`seed ${seed}: every check passed ${JSON.stringify(counts)}\n`);
      return 0;
    },
    (error) => {
      process.stdout.write(`seed ${seed}: FAILED\n${error.stack ?? error}\n`);
      return 1;
    },
  );
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
