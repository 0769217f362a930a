'use strict';

// test/js/90.server.test.js, every server in it on PostgreSQL (the same tests, the same expectations).
require('../postgres-harness').runOnPostgres('90.server.test.js');
