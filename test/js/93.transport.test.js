'use strict';

// httpTransport without a custom fetch, over node:http against a raw HTTP server: the bytes
// come back whole (sized or chunked), errors become TransportErrors with the status and
// Retry-After, timeouts and aborts are told apart, connections are kept alive and never keep
// the process alive. (With a custom fetch, the same transport is tested in 96.engine-e2e.)

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { httpTransport, TransportError } = require('../..');

const servers = [];
after(() => Promise.all(servers.map((server) => new Promise((resolve) => {
  server.closeAllConnections();
  server.close(resolve);
}))));

/** A server whose handler is `handle`; resolves with its base URL and the sockets it saw. */
async function serve(handle) {
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk) => (body += chunk));
    req.on('end', () => handle(req, res, body));
  });
  server.on('connection', (socket) => sockets.add(socket));
  servers.push(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${server.address().port}/api/sync`, sockets };
}

const REQUEST = { deviceId: 'd1', lastKnownServerVersion: 0, changes: [] };

test('the body comes back as the exact bytes, sized or chunked, on one kept-alive connection', async () => {
  const big = JSON.stringify({ newChanges: Array.from({ length: 20000 }, (_, i) => ({ version: i + 1, text: 'x'.repeat(40) })) });
  let seen;
  const { base, sockets } = await serve((req, res, body) => {
    seen = { url: req.url, type: req.headers['content-type'], user: req.headers['x-user'], body: JSON.parse(body) };
    if (req.headers['x-chunked']) {
      res.write(big.slice(0, 1000));
      setImmediate(() => res.end(big.slice(1000)));
    } else {
      res.setHeader('content-length', Buffer.byteLength(big));
      res.end(big);
    }
  });
  let chunked = false;
  const transport = httpTransport({ url: base, headers: () => ({ 'x-user': 'alice', ...(chunked ? { 'x-chunked': '1' } : {}) }) });
  const sized = await transport(REQUEST);
  assert.ok(Buffer.isBuffer(sized));
  assert.equal(sized.toString('utf8'), big);
  assert.deepEqual(seen, { url: '/api/sync/v2', type: 'application/json', user: 'alice', body: REQUEST });
  chunked = true;
  assert.equal((await transport(REQUEST)).toString('utf8'), big);
  assert.equal(sockets.size, 1, 'the second request reused the first connection');
});

test('an HTTP error is a TransportError with its status, the server\'s message and Retry-After', async () => {
  const { base } = await serve((req, res) => {
    const status = Number(req.headers['x-status']);
    if (status === 503) res.setHeader('retry-after', '2');
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: { code: 'X', message: `refused with ${status}` } }));
  });
  for (const [status, code] of [[503, 'TRANSPORT'], [401, 'AUTH'], [403, 'AUTH'], [413, 'TRANSPORT']]) {
    const transport = httpTransport({ url: base, headers: { 'x-status': String(status) } });
    const error = await transport(REQUEST).then(() => null, (caught) => caught);
    assert.ok(error instanceof TransportError, String(status));
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.match(error.message, new RegExp(`answered ${status}: refused with ${status}`));
    assert.equal(error.retryAfterMs, status === 503 ? 2000 : undefined);
  }
});

test('no answer within timeoutMs, a refused connection and a response cut short are TransportErrors; an abort is the abort', async () => {
  const { base } = await serve((req, res) => {
    if (req.headers['x-cut']) {
      res.setHeader('content-length', '1000');
      res.write('{"partial":');
      setImmediate(() => res.socket.destroy());
    }
    // otherwise: never answers
  });
  const slow = httpTransport({ url: base, timeoutMs: 50 });
  await assert.rejects(slow(REQUEST), (error) => error instanceof TransportError && /No response from .* within 50 ms/.test(error.message));

  const cut = httpTransport({ url: base, headers: { 'x-cut': '1' } });
  await assert.rejects(cut(REQUEST), (error) => error instanceof TransportError && /failed/.test(error.message));

  const refused = httpTransport({ url: 'http://127.0.0.1:9/api/sync' });
  await assert.rejects(refused(REQUEST), (error) => error instanceof TransportError && error.code === 'TRANSPORT' && /Request to .* failed/.test(error.message));

  const controller = new AbortController();
  const waiting = httpTransport({ url: base })(REQUEST, { signal: controller.signal });
  const reason = new Error('stopped by the test');
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(waiting, (error) => error === reason);
  const already = new AbortController();
  already.abort(reason);
  await assert.rejects(httpTransport({ url: base })(REQUEST, { signal: already.signal }), (error) => error === reason);
});

test('a kept-alive connection never keeps the process alive', () => {
  const script = `
    const http = require('node:http');
    const { httpTransport } = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
    server.listen(0, '127.0.0.1', async () => {
      const transport = httpTransport({ url: 'http://127.0.0.1:' + server.address().port });
      await transport({ deviceId: 'd', lastKnownServerVersion: 0, changes: [] });
      server.unref();
      console.log('answered');
    });`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(child.stdout.trim(), 'answered');
  assert.equal(child.status, 0, `the process exited by itself (signal ${child.signal})`);
});
