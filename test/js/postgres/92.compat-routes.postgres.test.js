'use strict';

// test/js/92.compat-routes.test.js, every server in it on PostgreSQL (the same tests, the same expectations).
require('../postgres-harness').runOnPostgres('92.compat-routes.test.js');
