'use strict';

// A sync server in its own process, started by server-load.js with fork():
// Express on 127.0.0.1 (a free port) with deltasync's createSyncRouter or the JS
// peer (bench/peer-server.js), both at /api/sync, the user id from the x-user-id
// header. Messages (IPC):
//   -> { type: 'ready', port }                         once listening
//   <- { type: 'probe-start' } -> { type: 'probe-started' }
//   <- { type: 'probe-stop' }  -> { type: 'probe', stats }   event-loop stall (common.startStallProbe)
//   <- { type: 'exit' }        -> { type: 'bye', peakRssKb, cpuUserMs, cpuSystemMs, threadCpuMs }, then exits
// Params (argv[2], JSON): { impl: 'deltasync' | 'better-sqlite3', file, limits }

const express = require('express');
const c = require('./common');

const { impl, file, limits = {} } = c.params();

const app = express();
app.disable('x-powered-by');
const authenticate = (req) => req.get('x-user-id');
let close;
if (impl === 'deltasync') {
  const { SyncServer } = require('../..');
  const { createSyncRouter } = require('../../lib/express');
  const server = new SyncServer({ path: file, limits });
  app.use('/api/sync', createSyncRouter(server, { authenticate }));
  close = () => server.close();
} else if (impl === 'better-sqlite3') {
  const { createPeerServer } = require('../peer-server');
  const peer = createPeerServer({ path: file, limits });
  app.use('/api/sync', peer.router({ authenticate }));
  close = () => peer.close();
} else {
  throw new Error(`unknown impl ${impl}`);
}

const listener = app.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: listener.address().port });
});
listener.keepAliveTimeout = 60000;

/** CPU milliseconds of each thread of this process, by thread name (Linux /proc; {} elsewhere). */
function threadCpuMs() {
  const fs = require('node:fs');
  const out = {};
  try {
    const ticks = 100;  // USER_HZ on Linux
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
      const key = tid === String(process.pid) ? 'main' : name;
      out[key] = (out[key] || 0) + ms;
    }
  } catch {
    // not Linux
  }
  return out;
}

let probe = null;
process.on('message', (message) => {
  if (message.type === 'probe-start') {
    probe = c.startStallProbe();
    process.send({ type: 'probe-started' });
  } else if (message.type === 'probe-stop') {
    const stats = probe ? probe.stop() : null;
    probe = null;
    process.send({ type: 'probe', stats });
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
        threadCpuMs: threadCpuMs(),
      },
      () => process.exit(0),
    );
  }
});
process.on('disconnect', () => process.exit(0));
