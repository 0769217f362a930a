'use strict';

// `deltasync inspect --web <client.db>`: the device inspector on 127.0.0.1, behind a token
// printed once as a sign-in URL. Stops on SIGINT or SIGTERM.

const http = require('node:http');
const { CliError } = require('./args');
const { createDeviceInspector } = require('../inspector/device');
const { tokenAuthentication, newAdminToken, signInUrl } = require('../inspector/token-auth');

const HOST = '127.0.0.1';

async function inspectWeb({ positionals, options }, io, openClient) {
  const file = positionals['client.db'];
  const open = () => openClient(file, { observer: true });
  open().close(); // a file that is not a client database fails here, before listening
  const token = newAdminToken();
  const { authenticate, login } = tokenAuthentication(token);
  const allowWrites = options['allow-writes'] === true;
  let handler = null;
  const server = http.createServer((req, res) => {
    if (handler) return handler(req, res);
    res.statusCode = 503;
    res.end();
  });
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, HOST, resolve);
    });
  } catch (error) {
    throw new CliError(`cannot listen on ${HOST}:${options.port}: ${error.message}`);
  }
  const { port } = server.address();
  handler = createDeviceInspector({
    openClient: open,
    file,
    allowWrites,
    authenticate,
    login,
    // A page elsewhere that rebinds its own name to 127.0.0.1 still sends its own Host.
    allowedHosts: [`${HOST}:${port}`, `localhost:${port}`],
  });
  io.stdout.write(`deltasync inspector for ${file} (${allowWrites ? 'read-write' : 'read-only; --allow-writes to change it'})\n`);
  io.stdout.write(`open ${signInUrl(`http://${HOST}:${port}/`, token)}\n`);
  return new Promise((resolve) => {
    const stop = (signal) => {
      io.stdout.write(`${signal}: stopping\n`);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      server.closeAllConnections();
      server.close(() => resolve(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

module.exports = { inspectWeb };
