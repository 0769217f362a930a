'use strict';

// The client's end of live updates: GET {base}/v2/events, read as Server-Sent Events. Over
// node:http(s) rather than fetch, so that the socket can be unreferenced: an open stream never
// keeps a process alive that would otherwise exit.

const http = require('node:http');
const https = require('node:https');

const { TransportError, parseRetryAfter } = require('./transport');

const MAX_EVENT_CHARS = 64 * 1024; // pokes are tiny; a stream that sends more is not ours

/**
 * Opens the stream and reads it until it ends.
 * @param {object} options
 * @param {string} options.url the events URL
 * @param {object} [options.headers] request headers (authentication)
 * @param {AbortSignal} options.signal closes the stream
 * @param {boolean} options.keepAlive whether the open socket keeps the process alive
 * @param {number} options.connectTimeoutMs how long to wait for the response headers
 * @param {number} options.idleTimeoutMs how long the open stream may stay silent (no event and no
 *   heartbeat) before it counts as broken: a connection a sleeping laptop or a NAT dropped
 * @param {() => void} options.onOpen the server accepted the stream
 * @param {(event: object) => void} options.onEvent one parsed `data:` payload
 * @returns {Promise<void>} resolves when the server ends the stream or `signal` aborts;
 *   rejects with a TransportError when it cannot be opened or breaks
 */
function openEventStream({ url, headers = {}, signal, keepAlive, connectTimeoutMs, idleTimeoutMs, onOpen, onEvent }) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      request.destroy();
      if (error && !signal.aborted) reject(error);
      else resolve();
    };
    const onAbort = () => finish();
    const request = client.request(target, {
      method: 'GET',
      headers: { accept: 'text/event-stream', 'cache-control': 'no-store', ...headers },
    });
    const connectTimer = setTimeout(() => {
      finish(new TransportError(`No answer from ${url} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    if (!keepAlive) connectTimer.unref();
    let idleTimer = null;
    const stillAlive = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => finish(new TransportError(`The live stream from ${url} was silent for ${idleTimeoutMs} ms`)), idleTimeoutMs);
      if (!keepAlive) idleTimer.unref();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    request.on('socket', (socket) => {
      if (!keepAlive) socket.unref();
    });
    request.on('error', (error) => finish(new TransportError(`The live stream from ${url} failed: ${error.message}`, { cause: error })));
    request.on('response', (response) => {
      clearTimeout(connectTimer);
      const type = String(response.headers['content-type'] ?? '');
      if (response.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        response.resume();
        finish(
          new TransportError(`${url} answered ${response.statusCode} to the live stream`, {
            status: response.statusCode,
            retryAfterMs: parseRetryAfter(response.headers['retry-after']),
          }),
        );
        return;
      }
      onOpen();
      stillAlive();
      response.setEncoding('utf8');
      let buffer = '';
      response.on('data', (chunk) => {
        stillAlive(); // an event or a heartbeat
        buffer += chunk.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
            .join('\n');
          if (data === '') continue; // a comment (heartbeat) or a field we do not use
          try {
            onEvent(JSON.parse(data));
          } catch {
            // not a poke, or the listener failed: this stream's reader never throws into the socket
          }
        }
        if (buffer.length > MAX_EVENT_CHARS) finish(new TransportError(`The live stream from ${url} sent an event over ${MAX_EVENT_CHARS} characters`));
      });
      response.on('end', () => finish());
      response.on('aborted', () => finish(new TransportError(`The live stream from ${url} broke off`)));
      response.on('error', (error) => finish(new TransportError(`The live stream from ${url} failed: ${error.message}`, { cause: error })));
    });
    request.end();
  });
}

module.exports = { openEventStream };
