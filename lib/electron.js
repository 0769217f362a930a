'use strict';

// deltasync/electron: the main process's half of the Electron bridge. Electron's own modules
// are arguments, so this file loads without Electron and is tested with stand-ins that follow
// Electron's documented signatures.

const { SyncError } = require('./errors');
const is = require('./is');
const { METHOD_ARITY, METHODS, EVENTS, DEFAULT_CHANNEL, eventChannel } = require('./electron-protocol');

const DEFAULT_LIMITS = { maxRequestBytes: 8 * 1024 * 1024, maxDepth: 100 };
const LIMIT_OPTIONS = Object.keys(DEFAULT_LIMITS);

/** How main runs each method on the client; the client checks the arguments as it always does. */
const CALLS = {
  get: (client, args) => client.get(...args),
  list: (client, args) => client.list(...args),
  put: (client, args) => client.put(...args),
  patch: (client, args) => client.patch(...args),
  delete: (client, args) => client.delete(...args),
  batch: (client, args) => client.batch(...args),
  sync: (client, args) => client.sync(...args),
  status: (client) => client.status,
  conflicts: (client) => client.conflicts(),
  resolveConflict: (client, args) => client.resolveConflict(...args),
  queueStats: (client) => client.queue.stats(),
  notify: (client, args) => client.notify(...args),
};

/** A coded reply for any failure: the renderer gets { code, message }, main never throws. */
function failure(error) {
  if (error instanceof SyncError) return { ok: false, error: { code: error.code, message: error.message } };
  return { ok: false, error: { code: 'INTERNAL', message: error && error.message ? String(error.message) : String(error) } };
}

/**
 * Checks that a renderer's arguments are plain data (what JSON could carry, plus undefined)
 * within the size and depth limits. The client then checks their meaning.
 */
function checkPlainData(args, limits) {
  let bytes = 0;
  const visit = (value, path, depth) => {
    if (depth > limits.maxDepth) throw new SyncError(`${path} is nested deeper than ${limits.maxDepth} levels`, 'LIMIT_EXCEEDED');
    if (value === null || value === undefined || typeof value === 'boolean') {
      bytes += 5;
    } else if (typeof value === 'number') {
      bytes += 24;
    } else if (typeof value === 'string') {
      bytes += value.length * 3 + 2;
    } else if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) throw is.invalid(path, 'plain data', value);
      bytes += 2;
      for (let i = 0; i < value.length && bytes <= limits.maxRequestBytes; i++) visit(value[i], `${path}[${i}]`, depth + 1);
    } else if (is.isPlainObject(value)) {
      bytes += 2;
      for (const key of Object.keys(value)) {
        if (bytes > limits.maxRequestBytes) break;
        bytes += key.length * 3 + 3;
        visit(value[key], `${path}.${key}`, depth + 1);
      }
    } else {
      throw is.invalid(path, 'plain data (objects, arrays, strings, numbers, booleans, null)', value);
    }
    if (bytes > limits.maxRequestBytes) {
      throw new SyncError(`The request is larger than limits.maxRequestBytes (${limits.maxRequestBytes} bytes)`, 'LIMIT_EXCEEDED');
    }
  };
  args.forEach((arg, index) => visit(arg, `arguments[${index}]`, 0));
}

function checkLimits(limits) {
  const resolved = { ...DEFAULT_LIMITS, ...is.optionsObject('options.limits', limits, LIMIT_OPTIONS) };
  for (const [key, value] of Object.entries(resolved)) {
    if (!is.isPositiveInteger(value)) throw is.invalid(`options.limits.${key}`, 'a positive integer', value);
  }
  return resolved;
}

function requireClient(client) {
  if (client === null || typeof client !== 'object' || typeof client.batch !== 'function' || typeof client.on !== 'function') {
    throw is.invalid('client', 'a SyncClient', client);
  }
}

/**
 * Serves `client` to every renderer over `ipcMain.handle(channel)`: the methods in `allow`
 * (default: all of get, list, put, patch, delete, batch, sync, status, conflicts,
 * resolveConflict, queueStats, notify) and subscriptions to change, status, conflict and
 * progress events, pushed to each subscribed webContents. Every request is checked in main;
 * a bad one answers { ok: false, error: { code, message } } and writes nothing.
 * @param {import('./client').SyncClient} client
 * @param {import('../types/electron').ExposeToRendererOptions} options
 * @returns {() => void} removes the handler, the subscriptions and the client listeners
 */
function exposeToRenderer(client, options) {
  requireClient(client);
  if (!is.isPlainObject(options)) throw is.invalid('options', 'an object with ipcMain', options);
  is.optionsObject('options', options, ['ipcMain', 'channel', 'allow', 'limits', 'isAllowedSender']);
  const { ipcMain, channel = DEFAULT_CHANNEL, allow = METHODS, isAllowedSender } = options;
  if (!ipcMain || typeof ipcMain.handle !== 'function' || typeof ipcMain.removeHandler !== 'function') {
    throw is.invalid('options.ipcMain', "Electron's ipcMain (handle and removeHandler)", ipcMain);
  }
  if (!is.isNonEmptyString(channel)) throw is.invalid('options.channel', 'a non-empty string', channel);
  if (!Array.isArray(allow) || allow.some((method) => !METHODS.includes(method))) {
    throw is.invalid('options.allow', `an array of method names among ${METHODS.join(', ')}`, allow);
  }
  if (isAllowedSender !== undefined && typeof isAllowedSender !== 'function') {
    throw is.invalid('options.isAllowedSender', 'a function (event) => boolean', isAllowedSender);
  }
  const limits = checkLimits(options.limits);
  const allowed = new Set(allow);

  /** webContents -> the events it subscribed to */
  const subscribers = new Map();
  /** the webContents whose 'destroyed' event is listened to (once each, however often it resubscribes) */
  const watched = new WeakSet();
  /** event name -> the client listener forwarding it, while anyone subscribes */
  const forwarders = new Map();
  let disposed = false;

  const send = (name, payload) => {
    for (const [sender, events] of subscribers) {
      if (!events.has(name)) continue;
      try {
        if (typeof sender.isDestroyed === 'function' && sender.isDestroyed()) forget(sender);
        else sender.send(eventChannel(channel), name, payload);
      } catch {
        forget(sender); // a window that cannot be reached is one that went away
      }
    }
  };
  const refreshForwarders = () => {
    for (const name of EVENTS) {
      const wanted = !disposed && [...subscribers.values()].some((events) => events.has(name));
      if (wanted && !forwarders.has(name)) {
        const forward = (payload) => send(name, payload);
        forwarders.set(name, forward);
        client.on(name, forward);
      } else if (!wanted && forwarders.has(name)) {
        client.removeListener(name, forwarders.get(name));
        forwarders.delete(name);
      }
    }
  };
  const forget = (sender) => {
    if (!subscribers.delete(sender)) return;
    refreshForwarders();
  };
  const subscribe = (sender, name, on) => {
    if (!EVENTS.includes(name)) throw is.invalid('event', `one of ${EVENTS.join(', ')}`, name);
    if (on) {
      if (!subscribers.has(sender)) {
        subscribers.set(sender, new Set());
        if (!watched.has(sender) && typeof sender.once === 'function') {
          watched.add(sender);
          sender.once('destroyed', () => forget(sender));
        }
      }
      subscribers.get(sender).add(name);
    } else if (subscribers.has(sender)) {
      subscribers.get(sender).delete(name);
      if (subscribers.get(sender).size === 0) subscribers.delete(sender);
    }
    refreshForwarders();
  };

  const handle = async (event, method, ...args) => {
    try {
      if (disposed) throw new SyncError('The deltasync bridge was removed', 'CLOSED');
      if (isAllowedSender && !isAllowedSender(event)) throw new SyncError('This sender may not use deltasync', 'FORBIDDEN');
      const sender = event && event.sender;
      if (method === 'subscribe' || method === 'unsubscribe') {
        if (args.length !== 1) throw is.invalid('arguments', 'one event name', args);
        if (!sender || typeof sender.send !== 'function') throw is.invalid('event.sender', 'a webContents', sender);
        subscribe(sender, args[0], method === 'subscribe');
        return { ok: true, value: undefined };
      }
      if (typeof method !== 'string' || !Object.hasOwn(METHOD_ARITY, method) || !allowed.has(method)) {
        const named = typeof method === 'string' ? JSON.stringify(method.slice(0, 64)) : `of type ${method === null ? 'null' : typeof method}`;
        throw new SyncError(`The method ${named} is not served to renderers`, 'FORBIDDEN');
      }
      if (args.length > METHOD_ARITY[method]) {
        throw is.invalid('arguments', `at most ${METHOD_ARITY[method]} arguments for ${method}`, args);
      }
      checkPlainData(args, limits);
      const value = await CALLS[method](client, args);
      return { ok: true, value };
    } catch (error) {
      return failure(error);
    }
  };
  ipcMain.handle(channel, handle);

  return function dispose() {
    if (disposed) return;
    disposed = true;
    ipcMain.removeHandler(channel);
    subscribers.clear();
    refreshForwarders();
  };
}

const NOTIFY_POWER = { suspend: 'offline', resume: 'online', 'lock-screen': 'hidden', 'unlock-screen': 'visible' };

/**
 * Wires what Electron observes to client.notify(): connectivity (net.isOnline(), checked every
 * onlineCheckMs), suspend/resume and lock/unlock (powerMonitor), window focus/blur and
 * visibility (app's browser-window events and each window's show/hide/minimize/restore).
 * Every module is optional; the client needs a transport.
 * @param {import('./client').SyncClient} client
 * @param {import('../types/electron').AttachToElectronOptions} modules
 * @returns {() => void} removes every listener and timer it added
 */
function attachToElectron(client, modules) {
  requireClient(client);
  if (!is.isPlainObject(modules)) throw is.invalid('modules', 'an object of Electron modules { app, powerMonitor, net, BrowserWindow }', modules);
  is.optionsObject('modules', modules, ['app', 'powerMonitor', 'net', 'BrowserWindow', 'onlineCheckMs']);
  const { app, powerMonitor, net, BrowserWindow, onlineCheckMs = 5000 } = modules;
  if (!is.isPositiveInteger(onlineCheckMs)) throw is.invalid('modules.onlineCheckMs', 'a positive integer of milliseconds', onlineCheckMs);
  client._requireEngine('attachToElectron'); // INVALID_ARGUMENT now, not at the first event, without a transport
  const undo = [];
  const notify = (event) => {
    try {
      if (client.isOpen) client.notify(event);
    } catch {
      // closed meanwhile: nothing to tell
    }
  };
  const listen = (emitter, name, listener) => {
    if (!emitter || typeof emitter.on !== 'function') return;
    emitter.on(name, listener);
    undo.push(() => emitter.removeListener(name, listener));
  };

  if (net && typeof net.isOnline === 'function') {
    let online = null;
    const check = () => {
      let now;
      try {
        now = net.isOnline() !== false;
      } catch {
        return;
      }
      if (now !== online) {
        online = now;
        notify(now ? 'online' : 'offline');
      }
    };
    check();
    const timer = setInterval(check, onlineCheckMs);
    if (typeof timer.unref === 'function') timer.unref();
    undo.push(() => clearInterval(timer));
  }
  for (const [name, event] of Object.entries(NOTIFY_POWER)) listen(powerMonitor, name, () => notify(event));

  const focused = () => (BrowserWindow && typeof BrowserWindow.getFocusedWindow === 'function' ? BrowserWindow.getFocusedWindow() : null);
  const windows = () => (BrowserWindow && typeof BrowserWindow.getAllWindows === 'function' ? BrowserWindow.getAllWindows() : []);
  const anyVisible = () => windows().some((window) => window.isVisible() && !window.isMinimized());
  listen(app, 'browser-window-focus', () => notify('focus'));
  listen(app, 'browser-window-blur', () => {
    if (!focused()) notify('blur');
  });
  const watchWindow = (window) => {
    const shown = () => notify('visible');
    const hidden = () => {
      if (!anyVisible()) notify('hidden');
    };
    listen(window, 'show', shown);
    listen(window, 'restore', shown);
    listen(window, 'hide', hidden);
    listen(window, 'minimize', hidden);
  };
  for (const window of windows()) watchWindow(window);
  listen(app, 'browser-window-created', (_event, window) => watchWindow(window));

  let disposed = false;
  return function dispose() {
    if (disposed) return;
    disposed = true;
    for (const step of undo.reverse()) step();
  };
}

module.exports = { exposeToRenderer, attachToElectron };
