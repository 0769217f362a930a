'use strict';

const { SyncClient } = require('./client');
const { SyncError } = require('./errors');

module.exports = { SyncClient, SyncError };
