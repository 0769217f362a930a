'use strict';

// Live updates for the router: GET {base}/v2/events, a Server-Sent Events stream per device.
// It sends {"latestServerVersion": n} when it opens and whenever the user's log advances
// (whichever request committed the change), and a comment line every heartbeatMs so that
// proxies keep an idle stream open. Pokes go only to the streams of the user whose log moved.

const { SyncError } = require('./errors');
const { UserTally } = require('./tally');

const DEFAULTS = { maxStreams: 1000, maxStreamsPerUser: 16, heartbeatMs: 15000 };
// A device that stops reading lets its stream's unsent bytes pile up in memory; past this the
// stream is ended (a device that comes back reconnects and is told the head at once).
const MAX_UNSENT_BYTES = 64 * 1024;

class LiveStreams {
  /**
   * @param {import('./server').SyncServer} server
   * @param {{ maxStreams: number, maxStreamsPerUser: number, heartbeatMs: number }} options
   */
  constructor(server, options) {
    this._server = server;
    this._options = options;
    this._open = new UserTally();
  }

  /** Why a new stream of `userId` is refused (a SyncError), or null. */
  refusal(userId) {
    const { maxStreams, maxStreamsPerUser } = this._options;
    if (this._open.total >= maxStreams) {
      return new SyncError(`The server has ${this._open.total} live streams open, its limit; try again shortly`, 'TOO_MANY_STREAMS');
    }
    if (this._open.of(userId) >= maxStreamsPerUser) {
      return new SyncError(`This user has ${maxStreamsPerUser} live streams open, the limit; close one first`, 'TOO_MANY_STREAMS');
    }
    return null;
  }

  /** Throws CLOSED, or the refusal, when a stream of `userId` may not open now. */
  _admit(userId) {
    this._server._native();
    const refused = this.refusal(userId);
    if (refused) throw refused;
  }

  /** Answers HEAD: the status and headers a stream of `userId` would open with, and no stream. */
  head(userId, res) {
    this._admit(userId);
    writeStreamHead(res);
    res.end();
  }

  /** Serves one stream until the device goes away or the server closes. */
  async serve(userId, req, res) {
    this._admit(userId); // before anything is sent
    if (res.destroyed) return; // the device left while it was authenticated: no stream to hold
    this._open.add(userId, 1);
    let last = -1;
    let ended = false;
    const write = (text) => {
      if (ended) return;
      if (res.writableLength > MAX_UNSENT_BYTES) {
        end(true); // dropped, not ended: what is buffered for it is freed at once
        return;
      }
      res.write(text);
    };
    const send = (version) => {
      if (ended || version <= last) return;
      last = version;
      write(`data: {"latestServerVersion":${version}}\n\n`);
    };
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), this._options.heartbeatMs);
    heartbeat.unref();
    let unwatch = () => {};
    const end = (drop = false) => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unwatch();
      this._open.add(userId, -1);
      if (drop) res.destroy();
      else res.end();
    };
    res.on('close', () => end()); // the connection went away (req's 'close' only says the request was read)
    res.on('error', () => end(true));
    writeStreamHead(res);
    res.flushHeaders();
    unwatch = this._server._watch(userId, (version) => (version === null ? end() : send(version)));
    try {
      send(await this._server._headVersion(userId));
    } catch {
      end(); // closed meanwhile
    }
  }
}

function writeStreamHead(res) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no'); // nginx: pass each event on at once
}

module.exports = { LiveStreams, LIVE_DEFAULTS: DEFAULTS, MAX_UNSENT_BYTES };
