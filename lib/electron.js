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
  const message = error && typeof error.message === 'string' ? error.message : 'unknown error';
  return { ok: false, error: { code: 'INTERNAL', message: message.slice(0, 500) } };
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
  is.optionsObject('options', options, ['ipcMain', 'channel', 'allow', 'events', 'limits', 'isAllowedSender']);
  const { ipcMain, channel = DEFAULT_CHANNEL, allow = METHODS, events = EVENTS, isAllowedSender } = options;
  if (!ipcMain || typeof ipcMain.handle !== 'function' || typeof ipcMain.removeHandler !== 'function') {
    throw is.invalid('options.ipcMain', "Electron's ipcMain (handle and removeHandler)", ipcMain);
  }
  if (!is.isNonEmptyString(channel)) throw is.invalid('options.channel', 'a non-empty string', channel);
  if (!Array.isArray(allow) || allow.some((method) => !METHODS.includes(method))) {
    throw is.invalid('options.allow', `an array of method names among ${METHODS.join(', ')}`, allow);
  }
  if (!Array.isArray(events) || events.some((name) => !EVENTS.includes(name))) {
    throw is.invalid('options.events', `an array of event names among ${EVENTS.join(', ')}`, events);
  }
  if (isAllowedSender !== undefined && typeof isAllowedSender !== 'function') {
    throw is.invalid('options.isAllowedSender', 'a function (event) => boolean | Promise<boolean>', isAllowedSender);
  }
  const limits = checkLimits(options.limits);
  const allowed = new Set(allow);
  const allowedEvents = new Set(events);

  /** webContents -> the events it subscribed to */
  const subscribers = new Map();
  /** webContents -> the function removing the listeners that end its subscriptions */
  const watched = new Map();
  /** event name -> the client listener forwarding it, while anyone subscribes */
  const forwarders = new Map();
  let disposed = false;

  const send = (name, payload) => {
    for (const [sender, names] of subscribers) {
      if (!names.has(name)) continue;
      if (typeof sender.isDestroyed === 'function' && sender.isDestroyed()) {
        forget(sender);
        continue;
      }
      try {
        sender.send(eventChannel(channel), name, payload);
      } catch {
        // This one event could not reach the window (it went away meanwhile, or the payload
        // could not be copied); its subscriptions stay until it is destroyed or navigates.
      }
    }
  };
  const refreshForwarders = () => {
    for (const name of EVENTS) {
      const wanted = !disposed && [...subscribers.values()].some((names) => names.has(name));
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
  /** A window's subscriptions end when it is destroyed, and when it navigates (its new page subscribes itself). */
  const watch = (sender) => {
    if (watched.has(sender) || typeof sender.on !== 'function') return;
    const end = () => forget(sender);
    const destroyed = () => {
      end();
      unwatch(sender);
    };
    sender.on('destroyed', destroyed);
    sender.on('did-navigate', end);
    watched.set(sender, () => {
      sender.removeListener('destroyed', destroyed);
      sender.removeListener('did-navigate', end);
    });
  };
  const unwatch = (sender) => {
    const remove = watched.get(sender);
    if (!remove) return;
    watched.delete(sender);
    remove();
  };
  const subscribe = (event, name, on) => {
    const sender = event && event.sender;
    if (!sender || typeof sender.send !== 'function') throw is.invalid('event.sender', 'a webContents', sender);
    if (typeof name !== 'string' || !EVENTS.includes(name)) throw is.invalid('event', `one of ${EVENTS.join(', ')}`, name);
    if (!allowedEvents.has(name)) throw new SyncError(`The event ${JSON.stringify(name)} is not served to renderers`, 'FORBIDDEN');
    if (!isMainFrame(event)) throw new SyncError('Only a window\'s main frame can subscribe (events go to the main frame)', 'FORBIDDEN');
    if (on) {
      if (!subscribers.has(sender)) subscribers.set(sender, new Set());
      subscribers.get(sender).add(name);
      watch(sender);
    } else if (subscribers.has(sender)) {
      subscribers.get(sender).delete(name);
      if (subscribers.get(sender).size === 0) subscribers.delete(sender);
    }
    refreshForwarders();
  };

  const handle = async (event, method, ...args) => {
    try {
      if (disposed) throw new SyncError('The deltasync bridge was removed', 'CLOSED');
      if (isAllowedSender && (await isAllowedSender(event)) !== true) {
        throw new SyncError('This sender may not use deltasync (isAllowedSender)', 'FORBIDDEN');
      }
      if (method === 'subscribe' || method === 'unsubscribe') {
        if (args.length !== 1) throw new SyncError(`${method}() takes one event name but received ${args.length} arguments`, 'INVALID_ARGUMENT');
        subscribe(event, args[0], method === 'subscribe');
        return { ok: true, value: undefined };
      }
      if (typeof method !== 'string' || !Object.hasOwn(METHOD_ARITY, method) || !allowed.has(method)) {
        const named = typeof method === 'string' ? JSON.stringify(method.slice(0, 64)) : `of type ${method === null ? 'null' : typeof method}`;
        throw new SyncError(`The method ${named} is not served to renderers`, 'FORBIDDEN');
      }
      if (args.length > METHOD_ARITY[method]) {
        throw new SyncError(`${method}() takes at most ${METHOD_ARITY[method]} arguments but received ${args.length}`, 'INVALID_ARGUMENT');
      }
      checkPlainData(args, limits);
      if (method === 'sync' && is.isPlainObject(args[0]) && args[0].manual === false) {
        // A non-manual call waits for the scheduler's next cycle, which may never come (offline,
        // stopped): a renderer could pile up waiting replies in main.
        throw is.invalid('options.manual', 'true or absent: renderers run manual syncs', false);
      }
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
    for (const sender of [...watched.keys()]) unwatch(sender);
    refreshForwarders();
  };
}

/** False only when Electron says the request came from a subframe (events are sent to the main frame). */
function isMainFrame(event) {
  const frame = event.senderFrame;
  const main = event.sender && event.sender.mainFrame;
  if (!frame || !main) return true;
  if (frame === main) return true;
  return frame.routingId === main.routingId && frame.processId === main.processId;
}

const NOTIFY_POWER = { suspend: 'offline', 'lock-screen': 'hidden', 'unlock-screen': 'visible' };

/**
 * Wires what Electron observes to client.notify(): connectivity (net.isOnline(), checked at
 * attach, on resume and every onlineCheckMs), suspend (offline) and resume (net's answer),
 * lock/unlock (hidden/visible), window focus/blur (app's browser-window events) and visibility
 * (each window's show/restore and hide/minimize, hidden only once no window is visible).
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
  const undo = new Set();
  /** Runs an Electron callback's work: a throw (a closed client, a destroyed window) never reaches Electron. */
  const guarded = (fn) => (...args) => {
    try {
      fn(...args);
    } catch {
      // nothing to tell, or no one to tell it to
    }
  };
  const notify = (event) => {
    if (client.isOpen) client.notify(event);
  };
  const listen = (emitter, name, listener) => {
    if (!emitter || typeof emitter.on !== 'function') return () => {};
    const wrapped = guarded(listener);
    emitter.on(name, wrapped);
    const remove = () => {
      emitter.removeListener(name, wrapped);
      undo.delete(remove);
    };
    undo.add(remove);
    return remove;
  };

  let online = null;
  const checkOnline = guarded(() => {
    if (!net || typeof net.isOnline !== 'function') return;
    const now = net.isOnline() !== false;
    if (now !== online) {
      online = now;
      notify(now ? 'online' : 'offline');
    }
  });
  checkOnline();
  if (net && typeof net.isOnline === 'function') {
    const timer = setInterval(checkOnline, onlineCheckMs);
    if (typeof timer.unref === 'function') timer.unref();
    undo.add(() => clearInterval(timer));
  }
  for (const [name, event] of Object.entries(NOTIFY_POWER)) {
    listen(powerMonitor, name, () => {
      if (name === 'suspend') online = false;
      notify(event);
    });
  }
  listen(powerMonitor, 'resume', () => {
    if (net && typeof net.isOnline === 'function') {
      online = null; // ask again: the network may not have come back with the machine
      checkOnline();
    } else {
      notify('online');
    }
  });

  const focused = () => (BrowserWindow && typeof BrowserWindow.getFocusedWindow === 'function' ? BrowserWindow.getFocusedWindow() : null);
  const windows = () => (BrowserWindow && typeof BrowserWindow.getAllWindows === 'function' ? BrowserWindow.getAllWindows() : []);
  const visible = (window) => {
    try {
      return window.isVisible() && !window.isMinimized();
    } catch {
      return false; // destroyed
    }
  };
  listen(app, 'browser-window-focus', () => notify('focus'));
  listen(app, 'browser-window-blur', () => {
    if (!focused()) notify('blur');
  });
  const watchWindow = (window) => {
    const removers = [
      listen(window, 'show', () => notify('visible')),
      listen(window, 'restore', () => notify('visible')),
      listen(window, 'hide', () => {
        if (!windows().some(visible)) notify('hidden');
      }),
      listen(window, 'minimize', () => {
        if (!windows().some(visible)) notify('hidden');
      }),
    ];
    const closed = listen(window, 'closed', () => {
      for (const remove of removers) remove();
      closed();
    });
  };
  for (const window of windows()) watchWindow(window);
  listen(app, 'browser-window-created', (_event, window) => watchWindow(window));

  let disposed = false;
  return function dispose() {
    if (disposed) return;
    disposed = true;
    for (const remove of [...undo]) remove();
  };
}

module.exports = { exposeToRenderer, attachToElectron };
