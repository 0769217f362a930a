'use strict';

// The protocol between deltasync/electron (main) and deltasync/electron-preload (renderer),
// in one place. It requires nothing, so that a sandboxed preload bundles it as is.
//
// Requests: ipcRenderer.invoke(channel, method, ...args), method one of METHODS or
// "subscribe"/"unsubscribe" with an event name. Replies are plain data, never a thrown error
// (Electron would keep only its message): { ok: true, value } or
// { ok: false, error: { code, message } }. Events: main sends
// webContents.send(`${channel}:event`, name, payload) to each window subscribed to `name`.

/** The client methods a renderer can call, with the most arguments each takes. */
const METHOD_ARITY = {
  get: 3,
  list: 2,
  put: 3,
  patch: 3,
  delete: 2,
  batch: 1,
  sync: 1,
  status: 0,
  conflicts: 0,
  resolveConflict: 2,
  queueStats: 0,
  notify: 1,
};
const METHODS = Object.keys(METHOD_ARITY);
/** The client events a renderer can subscribe to. */
const EVENTS = ['change', 'status', 'conflict', 'progress'];
const DEFAULT_CHANNEL = 'deltasync';

/** The channel main pushes events on. */
const eventChannel = (channel) => `${channel}:event`;

/**
 * The error a bridged call rejects with in the renderer. Electron's contextBridge keeps only
 * the message of an Error that crosses into the page, so the code also leads the message.
 */
function bridgeError(error) {
  const code = error && typeof error.code === 'string' ? error.code : 'INTERNAL';
  const message = error && typeof error.message === 'string' ? error.message : 'The deltasync bridge failed';
  const result = new Error(`${code}: ${message}`);
  result.name = 'SyncError';
  result.code = code;
  return result;
}

module.exports = { METHOD_ARITY, METHODS, EVENTS, DEFAULT_CHANNEL, eventChannel, bridgeError };
