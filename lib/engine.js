'use strict';

// SyncEngine: runs sync cycles for a SyncClient. When to run is decided in C++
// (core/scheduler.h); this file arms one timer for the scheduler's next wake-up,
// carries requests over the transport, and hands every response to C++ as bytes.

const { SyncError } = require('./errors');

const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const MAX_REQUESTS_PER_CYCLE = 10000;
const SYNCED_RETENTION_MS = 24 * 60 * 60 * 1000;
// Aged rows are purged this many at a time, the event loop free between slices, so a day's
// history that ages at once never holds it for one long DELETE.
const SYNCED_PURGE_SLICE = 1000;
// The end of a deltasync server's pull response that has more to send. Only a hint: a page
// fetched ahead on it is used only when the applied page left the cursor exactly there.
const MORE_TO_PULL_TAIL = /"latestServerVersion":(\d{1,15}),"headVersion":\d{1,15},"hasMore":true\}\s*$/;
const TAIL_BYTES = 128;

/** The cursor a response says it ends at when it says there is more to pull, else null. */
function nextPullCursor(bytes) {
  let tail;
  if (typeof bytes === 'string') tail = bytes.slice(-TAIL_BYTES);
  else {
    const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    tail = Buffer.from(view.buffer, view.byteOffset + Math.max(0, view.byteLength - TAIL_BYTES), Math.min(TAIL_BYTES, view.byteLength)).toString('latin1');
  }
  const match = MORE_TO_PULL_TAIL.exec(tail);
  return match ? Number(match[1]) : null;
}

function classify(error) {
  const status = error && error.status;
  if (status === 401 || status === 403) return 'auth';
  if (status === undefined || status === null || TRANSIENT_STATUS.has(status) || status >= 500) {
    return error instanceof SyncError && error.code !== 'TRANSPORT' && error.code !== 'AUTH' ? 'local' : 'transient';
  }
  return 'rejected'; // another 4xx: the request itself was refused
}

class SyncEngine {
  /**
   * @param {import('./client').SyncClient} client
   * @param {object} options resolved options: transport, triggers, retry, batch, keepAlive, healthCheck, live
   */
  constructor(client, options) {
    this._client = client;
    this._options = options;
    this._timer = null;
    this._cycle = null; // the running cycle's promise
    this._abort = null;
    this._probe = null; // the running health probe's promise
    this._probeAbort = null;
    this._waiters = []; // sync() calls waiting for the next cycle to end
    this._lastError = null;
    this._lastState = null;
    this._statusPending = null;
    this._purgePending = null; // the next slice of a purge of aged history
    this._closed = false;
    this._stream = null; // the open live stream's AbortController
    this._pokedVersion = 0; // the newest version a poke announced
    const { triggers, retry, healthCheck, live } = options;
    const health = healthCheck ? { healthIntervalMs: healthCheck.intervalMs, unreachableAfter: healthCheck.unreachableAfter } : {};
    const liveConfig = live ? { live: true, pokeDebounceMs: live.pokeDebounceMs, liveFallbackAfter: live.fallbackAfter } : {};
    client._handle.schedConfigure({ ...triggers, ...retry, ...health, ...liveConfig });
  }

  start() {
    this._native().schedStart();
    this._arm();
    this._syncStream();
    this._emitStatus();
  }

  stop() {
    this._native().schedStop();
    this._disarm();
    if (this._abort) this._abort.abort();
    if (this._probeAbort) this._probeAbort.abort();
    this._syncStream();
    this._emitStatus();
  }

  notify(event) {
    this._native().schedNotify(event);
    if (event === 'online') this._lastError = null;
    this._arm();
    this._syncStream();
    this._emitStatus();
  }

  /** Opens the live stream when the scheduler wants one, and closes it when it no longer does. */
  _syncStream() {
    if (this._closed || !this._options.live) return;
    const native = this._client._handle;
    if (this._stream) {
      if (!native.schedWantsStream()) this._stream.abort();
      return;
    }
    if (!native.schedTryOpenStream()) return;
    const controller = new AbortController();
    this._stream = controller;
    const client = this._client;
    let opened = false;
    // A transport's events() may throw, resolve at once or never open: each counts as a failure.
    Promise.resolve()
      .then(() =>
        this._options.live.events({
          deviceId: client.deviceId,
          signal: controller.signal,
          keepAlive: this._options.keepAlive,
          onOpen: () => {
            if (this._closed || controller.signal.aborted || opened) return;
            opened = true;
            native.schedStreamOpened();
            this._emitStatus();
            this._arm();
          },
          onEvent: (event) => this._poked(event),
        }),
      )
      .then(
        () => ({ failed: !opened }),
        (error) => ({ failed: true, retryAfterMs: Number.isFinite(error?.retryAfterMs) ? error.retryAfterMs : null }),
      )
      .then(({ failed, retryAfterMs = null }) => {
        if (this._stream === controller) this._stream = null;
        if (this._closed) return;
        native.schedStreamClosed(failed && !controller.signal.aborted, retryAfterMs);
        this._emitStatus();
        this._arm();
        this._tick();
      });
  }

  /** A poke: the server's log reached `latestServerVersion`. Pulls unless this client has it. */
  _poked(event) {
    const version = event && event.latestServerVersion;
    if (this._closed || !Number.isSafeInteger(version)) return;
    this._pokedVersion = Math.max(this._pokedVersion, version);
    if (this._cycle) return; // looked at again when the cycle ends
    if (version > this._client.serverVersion) {
      this._native().schedNotify('poke');
      this._arm();
    }
  }

  /** A local write happened: the scheduler sends it after localChangeDelayMs. */
  localChange() {
    if (this._closed) return;
    this._native().schedNotify('change');
    this._arm();
    this._statusSoon(); // pendingChanges moved
  }

  /** One 'status' after a burst of local writes (a status costs a count of the queue), if anyone listens. */
  _statusSoon() {
    if (this._statusPending || this._client.listenerCount('status') === 0) return;
    this._statusPending = setImmediate(() => {
      this._statusPending = null;
      this._emitStatus();
    });
    if (typeof this._statusPending.unref === 'function') this._statusPending.unref();
  }

  /** Runs a cycle now (manual) or at the next allowed moment, and resolves when it ends. */
  sync(manual) {
    const native = this._native();
    const waiter = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    // A stopped scheduler runs no automatic cycle: then every sync() is a manual one.
    if (manual || native.schedStatus().state === 'stopped') native.schedRequestManual();
    else native.schedNotify('focus');
    this._arm();
    this._tick();
    return waiter;
  }

  status() {
    const client = this._client;
    const sched = this._native().schedStatus();
    const stats = JSON.parse(this._native().stats(false)); // the unsynced totals, from the status index only
    return {
      state: sched.state,
      pendingChanges: stats.pending + stats.syncing,
      failedChanges: stats.failed,
      lastSyncTime: stats.lastSyncTime,
      lastError: this._lastError,
      nextSyncAt: sched.state === 'syncing' ? null : sched.nextSyncAt,
      serverVersion: client.serverVersion,
      offlineReason: sched.offlineReason,
      live: sched.live,
    };
  }

  close() {
    this._closed = true;
    if (this._statusPending) clearImmediate(this._statusPending);
    if (this._purgePending) clearImmediate(this._purgePending);
    this._disarm();
    if (this._abort) this._abort.abort();
    if (this._probeAbort) this._probeAbort.abort();
    if (this._stream) this._stream.abort();
    const error = new SyncError('The client was closed', 'CLOSED');
    for (const waiter of this._waiters.splice(0)) waiter.reject(error);
  }

  // Deletes the acknowledged changes older than SYNCED_RETENTION_MS, a slice per turn of the
  // event loop, until a slice finds fewer. A slice that fails (the database busy, say) ends the
  // run; the next successful cycle starts another.
  _purgeAged() {
    this._purgePending = null;
    if (this._closed) return;
    let purged = 0;
    try {
      purged = this._client._handle.purgeSynced(SYNCED_RETENTION_MS, SYNCED_PURGE_SLICE);
    } catch {
      return;
    }
    if (purged === SYNCED_PURGE_SLICE) this._purgePending = setImmediate(() => this._purgeAged());
  }

  _native() {
    if (this._closed) throw new SyncError('The client is closed', 'CLOSED');
    return this._client._native();
  }

  _disarm() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
  }

  _arm() {
    if (this._closed) return;
    this._disarm();
    const at = this._client._handle.schedNextWakeAt();
    if (at === null) return;
    const delay = Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1));
    this._timer = setTimeout(() => {
      this._timer = null;
      this._tick();
    }, delay);
    if (!this._options.keepAlive) this._timer.unref();
  }

  _tick() {
    this._syncStream();
    if (this._closed || this._cycle || this._probe) return;
    if (this._client._handle.schedTryProbe()) {
      this._probe = this._runProbe().finally(() => {
        this._probe = null;
        if (!this._closed) {
          this._emitStatus();
          this._arm();
          this._tick();
        }
      });
      return;
    }
    if (!this._client._handle.schedTryStart()) {
      this._arm();
      return;
    }
    this._cycle = this._runCycle().finally(() => {
      this._cycle = null;
      if (!this._closed) {
        // A poke that came during the cycle and announced more than it pulled: one more cycle
        // (once: a poke the server cannot honour never turns into a loop).
        if (this._pokedVersion > this._client.serverVersion) this._native().schedNotify('poke');
        this._pokedVersion = 0;
        this._arm();
        this._tick();
      }
    });
  }

  /** One health probe: does the server answer at all? */
  async _runProbe() {
    const { probe, timeoutMs } = this._options.healthCheck;
    this._probeAbort = new AbortController();
    let reached = false;
    try {
      reached = (await probe({ deviceId: this._client.deviceId, signal: this._probeAbort.signal, timeoutMs })) === true;
    } catch {
      // a probe that throws did not reach the server
    } finally {
      this._probeAbort = null;
    }
    if (this._closed) return;
    if (reached) this._lastError = null;
    this._client._handle.schedProbeFinished(reached);
  }

  async _runCycle() {
    const client = this._client;
    const native = client._handle;
    this._abort = new AbortController();
    const signal = this._abort.signal;
    this._emitStatus();
    const summary = { pushed: 0, conflicts: 0, rejected: 0, failed: [], pulled: 0, requests: 0 };
    let outcome = 'success';
    let retryAfterMs = null;
    let failure = null;
    let ahead = null; // the next page, asked for while this one applies (pullAhead)
    try {
      let hasMore = true;
      let isolate = false; // after a refused request: one change per request, to find the one refused
      const refused = new Set(); // changes refused on their own in this cycle
      let endpointAnswers = false; // a request of this cycle got a response
      for (let request = 0; request < MAX_REQUESTS_PER_CYCLE; request += 1) {
        if (this._closed || signal.aborted) throw new SyncError('The sync was stopped', 'ABORTED');
        const batch = JSON.parse(native.takeBatch(isolate ? 1 : this._options.batch.push));
        // A page asked for ahead is this request when nothing waits to be pushed and the last
        // page left the cursor where it expected; a write made meanwhile goes out now instead.
        const early =
          ahead !== null && batch.length === 0 && hasMore && ahead.cursor === client.serverVersion ? ahead : null;
        if (ahead !== null && early === null) ahead.controller.abort();
        ahead = null;
        // The first request always goes out (it pulls); later ones only while there is more to do.
        if (request > 0 && batch.length === 0 && !hasMore) break;
        if (batch.some((change) => refused.has(change.changeId))) {
          native.releaseInFlight(); // refused once already in this cycle: its next try waits for the next cycle
          break;
        }
        const body = {
          deviceId: client.deviceId,
          lastKnownServerVersion: client.serverVersion,
          changes: batch.map(toWire),
          limit: this._options.batch.pull,
        };
        let bytes;
        try {
          bytes = await (early ? early.response : this._options.transport(body, { signal }));
        } catch (error) {
          if (this._closed) throw error;
          if (classify(error) === 'rejected' && batch.length > 0 && !endpointAnswers) {
            // Before any change is blamed: does the server answer a request with no changes? A
            // wrong URL (404) or a proxy's refusal refuses every request, and no change is at fault.
            const probeError = await this._failureOfEmptyRequest(body, signal);
            if (this._closed) throw error;
            if (probeError) {
              native.releaseInFlight();
              throw probeError; // refused too (the cycle fails and backs off), or auth, or the network
            }
            endpointAnswers = true;
          }
          if (classify(error) === 'rejected' && batch.length > 1) {
            // One change may have made the whole request unacceptable (say, too large):
            // send the batch again one change at a time so only that one counts a retry.
            native.releaseInFlight();
            isolate = true;
            continue;
          }
          if (classify(error) === 'rejected' && batch.length === 1) {
            // This change alone is refused: it counts a retry, and the others go on.
            const [change] = batch;
            const status = native.markFailed(change.changeId, `${error.status ?? ''} ${error.message}`.trim(), this._options.retry.maxRetries);
            refused.add(change.changeId);
            summary.rejected += 1;
            if (status === 'failed') summary.failed.push(change.changeId);
            continue;
          }
          native.releaseInFlight();
          throw error;
        }
        if (this._closed) throw new SyncError('The client was closed', 'CLOSED');
        if (typeof bytes !== 'string' && !ArrayBuffer.isView(bytes) && !(bytes instanceof ArrayBuffer)) {
          native.releaseInFlight();
          throw new SyncError('Expected the transport to resolve with the response body as bytes or a string', 'TRANSPORT');
        }
        if (batch.length === 0 && request + 1 < MAX_REQUESTS_PER_CYCLE) {
          const cursor = nextPullCursor(bytes);
          if (cursor !== null) ahead = this._pullAhead(body, cursor, signal);
        }
        const result = await client._applyResponse(bytes, this._options.retry.maxRetries).catch((error) => {
          // A body that is no sync response (a captive portal's page, a cut-off answer) is the
          // server's or the network's failure, not a bad argument of the app's; nothing of it applied.
          if (error instanceof SyncError && error.code === 'INVALID_ARGUMENT') {
            throw new SyncError(`The server's answer is not a sync response: ${error.message}`, 'TRANSPORT');
          }
          throw error;
        });
        endpointAnswers = true;
        summary.requests += 1;
        summary.pushed += result.pushed.applied;
        summary.conflicts += result.pushed.conflicts.length + result.conflicts.length;
        summary.rejected += result.pushed.rejected;
        summary.failed.push(...result.pushed.failed);
        summary.pulled += result.applied;
        if (!this._closed) {
          for (const conflict of result.pushed.conflicts) {
            client.emit('conflict', { ...conflict, source: 'server' });
          }
        }
        // Anything the response did not settle goes back to pending.
        const unsettled = native.releaseInFlight();
        hasMore = result.hasMore;
        if (batch.length > 0 && unsettled === batch.length && !hasMore) break; // no progress: end the cycle
      }
    } catch (error) {
      failure = error;
      const kind = this._closed || signal.aborted ? 'aborted' : classify(error);
      if (!this._closed) native.releaseInFlight();
      if (kind === 'auth') outcome = 'auth';
      else if (kind === 'aborted') outcome = 'aborted';
      else if (kind === 'rejected') outcome = 'transient'; // the server refused even a request with no change
      else if (kind === 'transient' && error && error.status === undefined) outcome = 'unreachable'; // no answer at all
      else outcome = 'transient';
      retryAfterMs = error && Number.isFinite(error.retryAfterMs) ? error.retryAfterMs : null;
    } finally {
      if (ahead !== null) ahead.controller.abort(); // not needed after all
      this._abort = null;
    }
    if (this._closed) return;
    native.schedFinished(outcome, retryAfterMs);
    // Acknowledged changes are kept a day (for support and echo detection), then purged,
    // so the queue does not grow with the client's whole history.
    if (outcome === 'success' && !this._purgePending) this._purgeAged();
    const waiters = this._waiters.splice(0);
    if (failure) {
      let error =
        failure instanceof SyncError
          ? failure
          : new SyncError(`Sync failed: ${failure && failure.message ? failure.message : failure}`, 'TRANSPORT');
      if (outcome === 'aborted' && error.code !== 'ABORTED' && error.code !== 'CLOSED') {
        error = new SyncError('The sync was stopped', 'ABORTED');
      } else if (outcome === 'auth' && error.code !== 'AUTH') {
        const auth = new SyncError(`Not authorized: ${error.message}`, 'AUTH');
        if (error.status !== undefined) auth.status = error.status;
        error = auth;
      }
      if (outcome !== 'aborted') {
        this._lastError = { code: error.code, message: error.message, at: Date.now() };
        // 'error' only reaches listeners: EventEmitter throws an unheard 'error', and a failed
        // background sync must never take the host process down. status.lastError keeps it.
        if (client.listenerCount('error') > 0) client.emit('error', error);
      }
      for (const waiter of waiters) waiter.reject(error);
    } else {
      this._lastError = null;
      client.emit('sync', summary);
      for (const waiter of waiters) waiter.resolve(summary);
    }
    this._emitStatus();
  }

  /**
   * Asks for the page after `cursor` while the page that ends there applies, so the server's
   * work and the transfer overlap the apply (a cold sync is then paced by the slower of the
   * two, not by their sum). Returns { cursor, controller, response }; the response is awaited
   * only when the applied page left the cursor at `cursor` and nothing waits to be pushed, and
   * its failure is then that request's failure. Aborted with the cycle, or by the caller when unused.
   */
  _pullAhead(body, cursor, signal) {
    const controller = new AbortController();
    const abort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    const request = { ...body, lastKnownServerVersion: cursor };
    const response = Promise.resolve()
      .then(() => this._options.transport(request, { signal: controller.signal }))
      .finally(() => signal.removeEventListener('abort', abort));
    response.catch(() => {}); // unused, its failure concerns nobody; used, it is rethrown where awaited
    return { cursor, controller, response };
  }

  /**
   * Sends `body` without its changes, asking for one pulled change, and returns the error the
   * transport answers with, or null when it answers (what comes back is not applied).
   */
  async _failureOfEmptyRequest(body, signal) {
    try {
      await this._options.transport({ ...body, changes: [], limit: 1 }, { signal });
      return null;
    } catch (error) {
      return error;
    }
  }

  _emitStatus() {
    // status() counts the unsynced queue (O(queue)): not worth it on every cycle when no one listens.
    if (this._closed || this._client.listenerCount('status') === 0) {
      this._lastState = null;
      return;
    }
    const status = this.status();
    const key = `${status.state}|${status.nextSyncAt}|${status.pendingChanges}|${status.failedChanges}|${status.offlineReason}|${status.live}`;
    if (key === this._lastState) return;
    this._lastState = key;
    this._client.emit('status', status);
  }
}

function toWire(change) {
  const wire = {
    changeId: change.changeId,
    type: change.type,
    entityType: change.entityType,
    entityId: change.entityId,
    timestamp: change.timestamp,
  };
  if (change.data !== null) wire.data = change.data;
  if (change.baseVersion !== null) wire.baseVersion = change.baseVersion;
  return wire;
}

module.exports = { SyncEngine, classify };
