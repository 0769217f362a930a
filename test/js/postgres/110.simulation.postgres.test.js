'use strict';

// test/js/110.simulation.test.js, every server in it on PostgreSQL (the same tests, the same expectations).
require('../postgres-harness').runOnPostgres('110.simulation.test.js');
