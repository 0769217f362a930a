'use strict';

const { SyncClient } = require('./client');
const { SyncServer } = require('./server');
const { SyncError } = require('./errors');
const { httpTransport, TransportError } = require('./transport');

module.exports = { SyncClient, SyncServer, SyncError, httpTransport, TransportError };
