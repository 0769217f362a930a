'use strict';

// test/js/120.hostile.test.js with the server on PostgreSQL: every hostile row refused with the
// same code, and every table of the server's schema unchanged.
require('../postgres-harness').runOnPostgres('120.hostile.test.js');
