'use strict';

// test/js/82.server-resolvers.test.js, every server in it on PostgreSQL (the same tests, the same expectations).
require('../postgres-harness').runOnPostgres('82.server-resolvers.test.js');
