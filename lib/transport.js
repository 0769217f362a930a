'use strict';

// Transports carry one sync request ({ deviceId, lastKnownServerVersion, changes, limit })
// to the server and bring back the response body as bytes, which go to C++ unparsed.

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
 * A transport over fetch: POST {url}/v2 with the request as JSON.
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

  return Object.assign(transport, options.fetch === undefined ? { probe, events } : { probe });

  async function transport(request, { signal } = {}) {
    const extra = typeof headers === 'function' ? await headers() : headers;
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? eitherSignal(signal, timeout) : timeout;
    let response;
    try {
      response = await fetchImpl(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...extra },
        body: JSON.stringify(request),
        signal: combined,
      });
    } catch (error) {
      if (signal && signal.aborted) throw error;
      const timedOut = timeout.aborted;
      throw new TransportError(timedOut ? `No response from ${endpoint} within ${timeoutMs} ms` : `Request to ${endpoint} failed: ${error.message}`, {
        cause: error,
      });
    }
    const body = Buffer.from(await response.arrayBuffer());
    if (!response.ok) {
      let detail = '';
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        if (parsed && parsed.error && parsed.error.message) detail = `: ${parsed.error.message}`;
      } catch {
        // not JSON
      }
      throw new TransportError(`${endpoint} answered ${response.status}${detail}`, {
        status: response.status,
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
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
