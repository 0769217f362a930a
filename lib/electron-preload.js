'use strict';

// deltasync/electron-preload: the renderer's half of the Electron bridge, for a preload
// script. It requires only the protocol module, so that it bundles into a sandboxed preload.

const { METHODS, EVENTS, DEFAULT_CHANNEL, eventChannel, bridgeError } = require('./electron-protocol');

/**
 * Puts on `window[key]` (through contextBridge.exposeInMainWorld) the renderer's sync client:
 * the methods deltasync/electron serves, each returning a promise, plus
 * subscribe(event, listener) -> unsubscribe. It also reports this window's online/offline,
 * focus/blur and visibility to main as notify() calls, so the client's triggers see them.
 * @param {{ contextBridge: { exposeInMainWorld(key: string, api: object): void },
 *           ipcRenderer: { invoke(channel: string, ...args: unknown[]): Promise<unknown>,
 *                          on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown } }} electron
 * @param {{ key?: string, channel?: string, window?: object | null }} [options]
 *   window: where the online/focus/visibility events come from (default: the global window, if any; null: none)
 * @returns {object} the object exposed
 */
function exposeSyncClient(electron, options = {}) {
  if (electron === null || typeof electron !== 'object') throw new TypeError('exposeSyncClient: pass { contextBridge, ipcRenderer }');
  const { contextBridge, ipcRenderer } = electron;
  if (!contextBridge || typeof contextBridge.exposeInMainWorld !== 'function') {
    throw new TypeError('exposeSyncClient: electron.contextBridge.exposeInMainWorld is not a function');
  }
  const api = createRendererClient(ipcRenderer, options);
  const { key = 'deltasync' } = options;
  if (typeof key !== 'string' || key === '') throw new TypeError('exposeSyncClient: options.key must be a non-empty string');
  contextBridge.exposeInMainWorld(key, api);
  const target = options.window === undefined ? globalThis.window : options.window;
  if (target) reportWindowEvents(target, api);
  return api;
}

/** The renderer's sync client over `ipcRenderer`, without exposing it anywhere. */
function createRendererClient(ipcRenderer, options = {}) {
  if (!ipcRenderer || typeof ipcRenderer.invoke !== 'function' || typeof ipcRenderer.on !== 'function') {
    throw new TypeError('exposeSyncClient: electron.ipcRenderer with invoke() and on() is required');
  }
  const { channel = DEFAULT_CHANNEL } = options;
  if (typeof channel !== 'string' || channel === '') throw new TypeError('exposeSyncClient: options.channel must be a non-empty string');

  const call = async (method, args) => {
    let reply;
    try {
      reply = await ipcRenderer.invoke(channel, method, ...args);
    } catch (error) {
      throw bridgeError({ code: invokeFailureCode(error), message: error && error.message });
    }
    if (reply && reply.ok === true) return reply.value;
    throw bridgeError(reply && reply.error);
  };

  const listeners = new Map(EVENTS.map((event) => [event, new Set()]));
  ipcRenderer.on(eventChannel(channel), (_event, name, payload) => {
    const set = listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        // A listener's own failure must not stop the others; report it like an unhandled one.
        setTimeout(() => {
          throw error;
        });
      }
    }
  });

  const api = {};
  for (const method of METHODS) api[method] = (...args) => call(method, args);
  api.subscribe = (event, listener) => {
    const set = listeners.get(event);
    if (!set) throw bridgeError({ code: 'INVALID_ARGUMENT', message: `Expected one of ${EVENTS.join(', ')} for event but received ${String(event)}` });
    if (typeof listener !== 'function') throw bridgeError({ code: 'INVALID_ARGUMENT', message: 'Expected a function for listener' });
    if (set.size === 0) {
      call('subscribe', [event]).catch((error) => {
        // Main refused (an event not served, a sender not allowed, the bridge removed): say so
        // where a developer looks, since no event will ever reach this listener.
        if (typeof console !== 'undefined') console.warn(`deltasync: subscribe('${event}') failed: ${error.message}`);
      });
    }
    set.add(listener);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      set.delete(listener);
      if (set.size === 0) call('unsubscribe', [event]).catch(() => {});
    };
  };
  return api;
}

/**
 * The code of an invoke that failed before main's handler answered: arguments Electron could
 * not copy are the caller's (INVALID_ARGUMENT), a channel without a handler is a bridge that
 * was removed or never exposed (CLOSED); anything else is INTERNAL.
 */
function invokeFailureCode(error) {
  const message = error && typeof error.message === 'string' ? error.message : '';
  if (/could not be cloned/i.test(message)) return 'INVALID_ARGUMENT';
  if (/No handler registered/i.test(message)) return 'CLOSED';
  return 'INTERNAL';
}

/** Reports the window's connectivity, focus and visibility to main; failures (no transport) are ignored. */
function reportWindowEvents(target, api) {
  const notify = (event) => {
    api.notify(event).catch(() => {});
  };
  const on = (emitter, name, listener) => {
    if (emitter && typeof emitter.addEventListener === 'function') emitter.addEventListener(name, listener);
  };
  on(target, 'online', () => notify('online'));
  on(target, 'offline', () => notify('offline'));
  on(target, 'focus', () => notify('focus'));
  on(target, 'blur', () => notify('blur'));
  const doc = target.document;
  on(doc, 'visibilitychange', () => notify(doc.visibilityState === 'hidden' ? 'hidden' : 'visible'));
}

module.exports = { exposeSyncClient, createRendererClient };
