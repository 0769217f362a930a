#!/usr/bin/env node
'use strict';

// The deltasync command line. See `deltasync --help`, or lib/cli/index.js.

const { main } = require('../lib/cli');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
