'use strict';

// test/js/160.inspector.test.js, its server on PostgreSQL (the same views, the same expectations).
require('../postgres-harness').runOnPostgres('160.inspector.test.js');
