'use strict';

// Transports carry one sync request ({ deviceId, lastKnownServerVersion, changes, limit })
// to the server and bring back the response body as bytes, which go to C++ unparsed.

const http = require('node:http');
const https = require('node:https');
const { SyncError } = require('./errors');
const is = require('./is');

/**
 * A transport failure. `status` is the HTTP status when there was a response;
 * `retryAfterMs` is the server's Retry-After, when it sent one.
 */
class TransportError extends SyncError {
  constructor(message, { status, retryAfterMs, cause } = {}) {
    super(message, status === 401 || status === 403 ? 'AUTH' : 'TRANSPORT');
    this.name = 'TransportError';
    if (status !== undefined) this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
    if (cause !== undefined) this.cause = cause;
  }
}

/** Retry-After: delta-seconds or an HTTP date. Returns milliseconds from `now`, or undefined. */
function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value === '') return undefined;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** A signal that aborts when either does (AbortSignal.any, which Node 18 lacks). */
function eitherSignal(a, b) {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([a, b]);
  const controller = new AbortController();
  for (const signal of [a, b]) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true, signal: controller.signal });
  }
  return controller.signal;
}

/**
 * POSTs `body` over node:http(s) and resolves with { status, retryAfter, body: Buffer }.
 * The body is copied chunk by chunk into one buffer of the announced length, so a large page
 * never costs the event loop one long copy or a stream machinery's garbage (which fetch's
 * did: the longest client stalls of a cold sync). Rejects with the signal's reason when it
 * aborts, and with an Error named 'TimeoutError' past `timeoutMs`.
 */
function postOverNodeHttp(target, agent, { headers, body, signal, timeoutMs }) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const settle = (error, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
      if (error) {
        request.destroy();
        reject(error);
      } else {
        resolve(value);
      }
    };
    const onAbort = () => settle(signal.reason);
    const payload = Buffer.from(body);
    const request = (target.protocol === 'https:' ? https : http).request(target, {
      method: 'POST',
      agent,
      headers: { ...headers, 'content-length': payload.length },
    });
    const timer = setTimeout(() => settle(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => settle(error));
    request.on('response', (response) => {
      const declared = Number(response.headers['content-length']);
      const sized = Number.isSafeInteger(declared) && declared >= 0;
      let buffer = sized ? Buffer.allocUnsafe(declared) : null;
      const chunks = [];
      let size = 0;
      response.on('data', (chunk) => {
        if (buffer && size + chunk.length <= buffer.length) chunk.copy(buffer, size);
        else chunks.push(chunk);
        size += chunk.length;
      });
      response.on('end', () => {
        if (!buffer || size !== buffer.length) buffer = Buffer.concat(buffer ? [buffer.subarray(0, Math.min(size, buffer.length)), ...chunks] : chunks);
        settle(null, { status: response.statusCode, retryAfter: response.headers['retry-after'], body: buffer });
      });
      response.on('aborted', () => settle(new Error('the response broke off')));
      response.on('error', (error) => settle(error));
    });
    request.end(payload);
  });
}

/**
 * POST {url}/v2 with the request as JSON, over node:http(s) or, when given, a custom fetch.
 * @param {{ url: string, headers?: object | (() => object | Promise<object>), timeoutMs?: number, fetch?: typeof fetch }} options
 */
function httpTransport(options) {
  if (!is.isPlainObject(options)) throw is.invalid('options', 'an object with url', options);
  is.optionsObject('options', options, ['url', 'headers', 'timeoutMs', 'fetch']);
  const { url, headers, timeoutMs = 30000 } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (!is.isNonEmptyString(url)) throw is.invalid('options.url', 'the base URL of the sync routes', url);
  try {
    new URL(url);
  } catch {
    throw is.invalid('options.url', 'an absolute URL', url);
  }
  if (headers !== undefined && typeof headers !== 'function' && !is.isPlainObject(headers)) {
    throw is.invalid('options.headers', 'an object or a function returning one', headers);
  }
  if (!is.isPositiveInteger(timeoutMs)) throw is.invalid('options.timeoutMs', 'a positive integer', timeoutMs);
  if (typeof fetchImpl !== 'function') throw is.invalid('options.fetch', 'a fetch function', fetchImpl);
  const endpoint = `${url.replace(/\/+$/, '')}/v2`;

  /** The health check's probe of this transport's server: see probeServer. */
  const probe = ({ probeUrl = `${endpoint}/status`, ...rest }) => probeServer({ ...rest, url: probeUrl, headers, fetchImpl });

  /**
   * The live stream of this transport's server (GET {url}/v2/events): see openEventStream.
   * Over node:http(s), so only without a custom fetch (which then carries every request).
   */
  async function events({ deviceId, signal, keepAlive, idleTimeoutMs = 45000, onOpen, onEvent }) {
    const { openEventStream } = require('./live-client'); // it requires this module
    const extra = typeof headers === 'function' ? await headers() : headers;
    return openEventStream({
      url: `${endpoint}/events`,
      headers: { ...extra, 'x-device-id': deviceId },
      signal,
      keepAlive,
      connectTimeoutMs: timeoutMs,
      idleTimeoutMs,
      onOpen,
      onEvent,
    });
  }

  // Without a custom fetch, requests go over node:http(s) on connections kept alive by an agent
  // of this transport's own (its idle sockets never keep the process alive).
  const target = new URL(endpoint);
  const agent = options.fetch === undefined ? new (target.protocol === 'https:' ? https : http).Agent({ keepAlive: true }) : null;

  /** One POST: { status, retryAfter, body: Buffer }, or the error of the network or the timeout. */
  async function post(request, signal, extra) {
    const requestHeaders = { 'content-type': 'application/json', ...extra };
    if (agent) return postOverNodeHttp(target, agent, { headers: requestHeaders, body: JSON.stringify(request), signal, timeoutMs });
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await fetchImpl(endpoint, {
      method: 'POST',
      headers: requestHeaders,
      body: JSON.stringify(request),
      signal: signal ? eitherSignal(signal, timeout) : timeout,
    });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: Buffer.from(await response.arrayBuffer()) };
  }

  return Object.assign(transport, options.fetch === undefined ? { probe, events } : { probe });

  async function transport(request, { signal } = {}) {
    const extra = typeof headers === 'function' ? await headers() : headers;
    let response;
    try {
      response = await post(request, signal, extra);
    } catch (error) {
      if (signal && signal.aborted) throw error;
      const timedOut = error && error.name === 'TimeoutError';
      throw new TransportError(timedOut ? `No response from ${endpoint} within ${timeoutMs} ms` : `Request to ${endpoint} failed: ${error.message}`, {
        cause: error,
      });
    }
    const { body } = response;
    if (response.status < 200 || response.status > 299) {
      let detail = '';
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        if (parsed && parsed.error && parsed.error.message) detail = `: ${parsed.error.message}`;
      } catch {
        // not JSON
      }
      throw new TransportError(`${endpoint} answered ${response.status}${detail}`, {
        status: response.status,
        retryAfterMs: parseRetryAfter(response.retryAfter),
      });
    }
    return body;
  }
}

/**
 * The health check's probe: GET `url` (with `headers` and X-Device-ID). Resolves true when the
 * server answered below 500 (even 401: it is there), false when it answered 5xx or nothing at
 * all within `timeoutMs`. Never rejects.
 */
async function probeServer({ url, headers, fetchImpl = globalThis.fetch, deviceId, signal, timeoutMs }) {
  try {
    const extra = typeof headers === 'function' ? await headers() : headers;
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await fetchImpl(url, {
      method: 'GET',
      headers: { ...extra, 'x-device-id': deviceId },
      signal: signal ? eitherSignal(signal, timeout) : timeout,
    });
    await response.arrayBuffer().catch(() => {});
    return response.status < 500;
  } catch {
    return false;
  }
}

module.exports = { httpTransport, TransportError, parseRetryAfter, probeServer };
