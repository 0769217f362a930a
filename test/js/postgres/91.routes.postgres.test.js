'use strict';

// test/js/91.routes.test.js, every server in it on PostgreSQL (the same tests, the same expectations).
require('../postgres-harness').runOnPostgres('91.routes.test.js');
