'use strict';

// A sync server in its own process, started by common.startServerChild (fork):
// Express on 127.0.0.1 (a free port) with deltasync's createSyncRouter or the JS
// peer (bench/peer-server.js), both at /api/sync, the user id from the x-user-id
// header; or PouchDB's own server (express-pouchdb on LevelDB, the databases under the
// directory `file`) served as it is at /, with the Express 4 it brings. Messages (IPC):
//   -> { type: 'ready', port }                         once listening
//   <- { type: 'probe-start' } -> { type: 'probe-started' }
//   <- { type: 'probe-stop' }  -> { type: 'probe', stats }   event-loop stall (common.startStallProbe)
//   <- { type: 'cpu' }         -> { type: 'cpu', threadCpuMs }           CPU ms of each thread so far
//   <- { type: 'exit' }        -> { type: 'bye', peakRssKb, cpuUserMs, cpuSystemMs, threadCpuMs }, then exits
// Params (argv[2], JSON): { impl: 'deltasync' | 'better-sqlite3' | 'pouchdb', file, limits, postgres? (deltasync on PostgreSQL),
//   durability? ('normal' | 'full', for the SQLite servers) }

const express = require('express');
const c = require('./common');

const { impl, file, limits = {}, postgres, durability = 'normal' } = c.params();

const app = express();
app.disable('x-powered-by');
const authenticate = (req) => req.get('x-user-id');
let close;
let handler = app;
if (impl === 'deltasync') {
  const { SyncServer } = require('../..');
  const { createSyncRouter } = require('../../lib/express');
  const server = new SyncServer({ ...(postgres ? { postgres } : { path: file, durability }), limits });
  app.use('/api/sync', createSyncRouter(server, { authenticate }));
  close = () => server.close();
} else if (impl === 'better-sqlite3') {
  const { createPeerServer } = require('../peer-server');
  const peer = createPeerServer({ path: file, limits, durability });
  app.use('/api/sync', peer.router({ authenticate }));
  close = () => peer.close();
} else if (impl === 'pouchdb') {
  const path = require('node:path');
  const PouchDB = require('pouchdb-node').defaults({ prefix: `${file}${path.sep}` });
  handler = require('express-pouchdb')(PouchDB, {
    mode: 'minimumForPouchDB',
    inMemoryConfig: true,
    logPath: path.join(file, 'express-pouchdb.log'),
  });
  close = () => {};
} else {
  throw new Error(`unknown impl ${impl}`);
}

const listener = require('node:http').createServer(handler);
listener.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: listener.address().port });
});
listener.keepAliveTimeout = 60000;

let probe = null;
process.on('message', (message) => {
  if (message.type === 'probe-start') {
    probe = c.startStallProbe();
    process.send({ type: 'probe-started' });
  } else if (message.type === 'probe-stop') {
    const stats = probe ? probe.stop() : null;
    probe = null;
    process.send({ type: 'probe', stats });
  } else if (message.type === 'cpu') {
    process.send({ type: 'cpu', threadCpuMs: c.threadCpuMs() });
  } else if (message.type === 'exit') {
    listener.close();
    listener.closeAllConnections();
    close();
    const usage = process.resourceUsage();
    process.send(
      {
        type: 'bye',
        peakRssKb: usage.maxRSS,
        cpuUserMs: usage.userCPUTime / 1000,
        cpuSystemMs: usage.systemCPUTime / 1000,
        threadCpuMs: c.threadCpuMs(),
      },
      () => process.exit(0),
    );
  }
});
process.on('disconnect', () => process.exit(0));
