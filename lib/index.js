'use strict';

const { SyncClient } = require('./client');
const { SyncServer } = require('./server');
const { SyncError } = require('./errors');

module.exports = { SyncClient, SyncServer, SyncError };
