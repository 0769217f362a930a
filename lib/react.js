'use strict';

// deltasync/react: React hooks over a sync client. Bundled into browser pages, so it requires
// React only (an optional peer dependency), never the native client.
//
// One store per client holds the reads components make (entries keyed by what they read),
// shares each entry between the components that read it (ref-counted), refetches the active
// ones after every 'change' event and keeps a result's previous reference when it is
// deep-equal (same JSON text): a component re-renders only when what it reads changed.
// Every hook reads through useSyncExternalStore.

const React = require('react');

/** What useQuery and useConflicts return before their first result: one frozen array. */
const EMPTY_LIST = Object.freeze([]);
/** An entry no one subscribes to is dropped after two sweeps, this far apart. */
const SWEEP_MS = 250;
/** The client events each kind of entry needs while someone reads it. */
const KIND_EVENTS = {
  get: ['change'],
  list: ['change'],
  conflicts: ['change', 'conflict'],
  status: ['change', 'status', 'progress'],
};
const NOTIFY_EVENTS = [
  ['online', 'online'],
  ['offline', 'offline'],
  ['focus', 'focus'],
  ['blur', 'blur'],
];

// ---- the two kinds of client, as one adapter: call(method, ...args) -> Promise, subscribe(event, listener) -> unsubscribe

/** The in-process SyncClient is an EventEmitter with synchronous reads; the Electron renderer client has subscribe(). */
function isInProcessClient(client) {
  return typeof client.on === 'function' && typeof client.subscribe !== 'function';
}

function createAdapter(client) {
  if (client === null || typeof client !== 'object') {
    throw new TypeError(`deltasync/react: Expected a SyncClient or the Electron renderer client for client but received ${describe(client)}`);
  }
  if (isInProcessClient(client)) {
    const read = (method, args) => {
      if (method === 'status') return client.status;
      if (method === 'queueStats') return client.queue.stats();
      return client[method](...args);
    };
    return {
      inProcess: true,
      /** Reads at once: the in-process client answers synchronously. */
      readSync: read,
      call(method, ...args) {
        try {
          return Promise.resolve(read(method, args));
        } catch (error) {
          return Promise.reject(error);
        }
      },
      subscribe(event, listener) {
        client.on(event, listener);
        return () => client.removeListener(event, listener);
      },
      notify(event) {
        try {
          client.notify(event);
        } catch {
          // no transport, or closed: nothing to tell
        }
      },
    };
  }
  if (typeof client.subscribe === 'function' && typeof client.list === 'function') {
    return {
      inProcess: false,
      readSync: null,
      call: (method, ...args) => client[method](...args),
      subscribe: (event, listener) => client.subscribe(event, listener),
      // The preload already reports the window's focus, visibility and connectivity.
      notify: null,
    };
  }
  throw new TypeError('deltasync/react: Expected a SyncClient or the Electron renderer client (window.deltasync) for client but received an object without on() or subscribe()');
}

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return `${String(value).slice(0, 40)} of type ${typeof value}`;
}

// ---- the store

/** A read that failed: its snapshot, so that the hook throws the error during render. */
class ReadFailure {
  constructor(error) {
    this.error = error;
  }
}

const entryKey = (kind, args) => JSON.stringify([kind, ...args]);

function initialSnapshot(kind) {
  if (kind === 'list' || kind === 'conflicts') return EMPTY_LIST;
  if (kind === 'status') return null;
  return undefined;
}

/** Whether a change batch (null: unknown, anything may have changed) can touch what the entry reads. */
function touches(entry, changes) {
  if (changes === null) return true;
  if (entry.kind === 'get') return changes.some((c) => c.entityType === entry.args[0] && c.entityId === entry.args[1]);
  if (entry.kind === 'list') return changes.some((c) => c.entityType === entry.args[0]);
  return true;
}

/**
 * The store of one client. Entries are created on first read, subscribed by components,
 * refetched after changes and dropped when no one has read them for two sweeps.
 * @private exported as _createStore for tests only; not part of the API
 */
function createStore(client, options = {}) {
  const adapter = createAdapter(client);
  const setTimer = options.setTimeout || setTimeout;
  const clearTimer = options.clearTimeout || clearTimeout;
  /** key -> entry */
  const entries = new Map();
  /** event name -> unsubscribe from the client */
  const clientListeners = new Map();
  /** Bumped by every change and whenever 'change' listening starts: an entry fetched at an older epoch may be stale. */
  let epoch = 0;
  /** The last 'progress' event, until a remote change or a status that is not syncing. */
  let progress = null;
  /** Changes waiting for the microtask that refetches: null entry means "unknown, refetch all". */
  let pending = null;
  let sweepTimer = null;
  let triggerRefs = 0;
  let releaseTriggers = null;

  function ensureEntry(kind, args) {
    const key = entryKey(kind, args);
    let entry = entries.get(key);
    if (!entry) {
      entry = {
        key,
        kind,
        method: kind === 'list' ? 'list' : kind === 'get' ? 'get' : kind,
        args,
        refs: 0,
        listeners: new Set(),
        marked: false,
        loaded: false,
        value: undefined,
        json: undefined,
        snapshot: initialSnapshot(kind),
        epoch: -1,
        seq: 0,
        appliedSeq: 0,
        inflight: false,
        again: false,
      };
      entries.set(key, entry);
      scheduleSweep();
    }
    return entry;
  }

  function computeSnapshot(entry) {
    if (entry.error) return new ReadFailure(entry.error);
    if (!entry.loaded) return initialSnapshot(entry.kind);
    if (entry.kind === 'status') return entry.value ? { ...entry.value, progress } : null;
    if (entry.kind === 'list' || entry.kind === 'conflicts') return entry.value || EMPTY_LIST;
    return entry.value;
  }

  function publish(entry) {
    entry.snapshot = computeSnapshot(entry);
    for (const listener of [...entry.listeners]) listener();
  }

  /** Takes a result: kept out when older than the one shown, ignored when deep-equal to it. */
  function settle(entry, seq, error, value) {
    if (seq <= entry.appliedSeq) return;
    entry.appliedSeq = seq;
    if (error) {
      entry.error = error;
      entry.loaded = true;
      entry.json = undefined;
      publish(entry);
      return;
    }
    if (keep(entry, value)) publish(entry);
  }

  /** Stores a value read for `entry`; false (nothing stored) when it is deep-equal to the one shown. */
  function keep(entry, value) {
    const json = value === undefined ? 'undefined' : JSON.stringify(value);
    if (entry.loaded && !entry.error && json === entry.json) return false;
    entry.error = null;
    entry.loaded = true;
    entry.value = value;
    entry.json = json;
    return true;
  }

  function fetchEntry(entry) {
    entry.epoch = epoch;
    if (adapter.readSync) {
      const seq = ++entry.seq;
      let value;
      try {
        value = adapter.readSync(entry.method, entry.args);
      } catch (error) {
        settle(entry, seq, error);
        return;
      }
      settle(entry, seq, null, value);
      return;
    }
    if (entry.inflight) {
      // One more read when this one is back, whatever the number of changes meanwhile; none
      // when nothing changed since it started (a StrictMode remount asks again for the same).
      if (entry.inflightEpoch !== epoch) entry.again = true;
      return;
    }
    entry.inflight = true;
    entry.inflightEpoch = epoch;
    entry.again = false;
    const seq = ++entry.seq;
    const done = (error, value) => {
      entry.inflight = false;
      settle(entry, seq, error, value);
      if (entry.again) {
        entry.again = false;
        if (entry.refs > 0) fetchEntry(entry);
        else entry.epoch = -1; // the read the change asked for did not happen
      }
    };
    adapter.call(entry.method, ...entry.args).then(
      (value) => done(null, value),
      (error) => done(error || new Error('deltasync/react: the read failed')),
    );
  }

  // ---- client events

  function onChange(event) {
    let changes = null; // null: unknown, refetch every active read
    if (event && event.source === 'local' && Array.isArray(event.changes)) changes = event.changes;
    else if (event && event.source === 'resolution') changes = [{ entityType: event.entityType, entityId: event.entityId }];
    if (event && event.source === 'remote' && progress !== null) {
      progress = null; // the page is applied
      for (const entry of entries.values()) if (entry.kind === 'status' && entry.loaded) publish(entry);
    }
    changed(changes);
  }

  /** Something changed (changes: the WriteResults, or null when unknown): refetch the active entries it may touch, in one microtask. */
  function changed(changes) {
    if (pending === null) {
      pending = { baseEpoch: epoch, changes: [] };
      queueMicrotask(flushChanges);
    }
    if (changes === null || pending.changes === null) pending.changes = null;
    else pending.changes.push(...changes);
    epoch++;
  }

  function flushChanges() {
    const batch = pending;
    pending = null;
    if (batch === null) return;
    for (const entry of entries.values()) {
      if (entry.refs === 0) continue; // stale by epoch: read again when subscribed
      if (touches(entry, batch.changes)) fetchEntry(entry);
      else if (entry.epoch >= batch.baseEpoch) entry.epoch = epoch; // untouched, still current
    }
  }

  function onStatus(status) {
    if (status && status.state !== 'syncing') progress = null;
    for (const entry of entries.values()) {
      if (entry.kind !== 'status') continue;
      entry.appliedSeq = entry.seq; // a read in flight is older than this event
      keep(entry, status);
      publish(entry); // even when the status is unchanged: progress may have been cleared
    }
  }

  function onProgress(report) {
    progress = report && typeof report === 'object' ? { applied: report.applied, total: report.total, bytesParsed: report.bytesParsed } : null;
    for (const entry of entries.values()) if (entry.kind === 'status' && entry.loaded && !entry.error) publish(entry);
  }

  function onConflict() {
    const only = [];
    for (const entry of entries.values()) if (entry.kind === 'conflicts' && entry.refs > 0) only.push(entry);
    for (const entry of only) fetchEntry(entry);
  }

  const HANDLERS = { change: onChange, status: onStatus, progress: onProgress, conflict: onConflict };

  function wantedEvents() {
    const wanted = new Set();
    for (const entry of entries.values()) if (entry.refs > 0) for (const event of KIND_EVENTS[entry.kind]) wanted.add(event);
    return wanted;
  }

  /** Starts the client listeners an entry needs; returns whether 'change' or 'status' listening started (reads before it may be stale). */
  function listenFor(kind) {
    let started = false;
    for (const event of KIND_EVENTS[kind]) {
      if (clientListeners.has(event)) continue;
      clientListeners.set(event, adapter.subscribe(event, HANDLERS[event]));
      if (event === 'change') epoch++;
      started = true;
    }
    return started;
  }

  /** Stops the client listeners no subscribed entry needs, and drops entries unread for two sweeps. */
  function sweep() {
    sweepTimer = null;
    const wanted = wantedEvents();
    for (const [event, unsubscribe] of [...clientListeners]) {
      if (wanted.has(event)) continue;
      clientListeners.delete(event);
      unsubscribe();
      if (event === 'change') epoch++; // changes from now on go unseen
      if (event === 'progress') progress = null;
    }
    let idle = false;
    for (const [key, entry] of [...entries]) {
      if (entry.refs > 0) continue;
      if (entry.marked || entry.error) entries.delete(key); // a failure is read again, not remembered
      else {
        entry.marked = true;
        idle = true;
      }
    }
    if (idle) scheduleSweep();
  }

  function scheduleSweep() {
    if (sweepTimer !== null) return;
    sweepTimer = setTimer(sweep, SWEEP_MS);
    if (sweepTimer && typeof sweepTimer.unref === 'function') sweepTimer.unref();
  }

  // ---- what the hooks use

  /** The current snapshot of a read; the in-process client reads at once when nothing is known. */
  function snapshot(kind, args) {
    const entry = ensureEntry(kind, args);
    entry.marked = false; // read by a render that may commit later: not swept yet
    if (adapter.readSync && entry.refs === 0 && entry.epoch !== epoch) fetchEntry(entry);
    return entry.snapshot;
  }

  function subscribe(kind, args, listener) {
    const entry = ensureEntry(kind, args);
    entry.refs++;
    entry.marked = false;
    const started = listenFor(kind);
    if (!entry.loaded || entry.epoch !== epoch || (started && kind === 'status')) fetchEntry(entry);
    entry.listeners.add(listener);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      entry.listeners.delete(listener);
      entry.refs--;
      if (entry.refs === 0) scheduleSweep();
    };
  }

  /** Resolves a conflict; its 'change' event (source 'resolution') refetches the conflicts and the entity's reads. */
  function resolveConflict(conflictId, resolution) {
    return adapter.call('resolveConflict', conflictId, resolution);
  }

  /** Reports the window's focus, visibility and connectivity to an in-process client, once however many components ask. */
  function retainTriggers() {
    if (!adapter.notify) return () => {};
    if (triggerRefs++ === 0) releaseTriggers = watchWindow(adapter.notify);
    let retained = true;
    return () => {
      if (!retained) return;
      retained = false;
      if (--triggerRefs === 0 && releaseTriggers) {
        releaseTriggers();
        releaseTriggers = null;
      }
    };
  }

  return {
    client,
    adapter,
    snapshot,
    subscribe,
    call: adapter.call,
    resolveConflict,
    retainTriggers,
    /** @private for tests: how many entries and client listeners are alive */
    _debug: () => ({ entries: entries.size, events: [...clientListeners.keys()], epoch }),
    /** @private for tests: run the pending sweep now */
    _sweep: () => {
      if (sweepTimer !== null) clearTimer(sweepTimer);
      sweep();
    },
  };
}

function watchWindow(notify) {
  const win = typeof window === 'undefined' ? null : window;
  if (!win || typeof win.addEventListener !== 'function') return () => {};
  const undo = [];
  const listen = (target, name, listener) => {
    if (!target || typeof target.addEventListener !== 'function') return;
    target.addEventListener(name, listener);
    undo.push(() => target.removeEventListener(name, listener));
  };
  for (const [name, event] of NOTIFY_EVENTS) listen(win, name, () => notify(event));
  const doc = win.document;
  listen(doc, 'visibilitychange', () => notify(doc.visibilityState === 'hidden' ? 'hidden' : 'visible'));
  return () => {
    for (const step of undo) step();
  };
}

/** One store per client, so that providers, StrictMode's double render and windows share it. */
const stores = new WeakMap();
function storeFor(client) {
  let store = client !== null && typeof client === 'object' ? stores.get(client) : undefined;
  if (!store) {
    store = createStore(client);
    stores.set(client, store);
  }
  return store;
}

// ---- components and hooks

const StoreContext = React.createContext(null);
StoreContext.displayName = 'DeltasyncStore';

/** Makes `client` (a SyncClient, or the Electron renderer client) available to the hooks below it. */
function SyncProvider({ client, children }) {
  const store = storeFor(client);
  return React.createElement(StoreContext.Provider, { value: store }, children);
}

function useStore(hook) {
  const store = React.useContext(StoreContext);
  if (store === null) throw new Error(`deltasync/react: ${hook}() must be called inside <SyncProvider client={...}>`);
  return store;
}

/** Reads one entry through useSyncExternalStore; a failed read throws here, during render. */
function useEntry(store, kind, args) {
  const key = entryKey(kind, args);
  const subscribe = React.useCallback((listener) => store.subscribe(kind, args, listener), [store, key]); // eslint-disable-line react-hooks/exhaustive-deps
  const getSnapshot = React.useCallback(() => store.snapshot(kind, args), [store, key]); // eslint-disable-line react-hooks/exhaustive-deps
  const value = React.useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  if (value instanceof ReadFailure) throw value.error;
  return value;
}

/** The client given to the nearest SyncProvider. */
function useSyncClient() {
  return useStore('useSyncClient').client;
}

const identity = (value) => value;

/**
 * The selected part of the status snapshot: the client's SyncStatus plus `progress`, or null
 * before the first status is known. Re-renders only when the selection changes (isEqual).
 */
function useSyncStatus(selector = identity, isEqual = Object.is) {
  const store = useStore('useSyncStatus');
  const subscribe = React.useCallback((listener) => store.subscribe('status', [], listener), [store]);
  // The last selection rendered, so that a new selector (an inline function) returning an equal value keeps it.
  const last = React.useRef({ has: false, value: undefined });
  const getSelection = React.useMemo(() => {
    let memoized = false;
    let memoSnapshot;
    let memoSelection;
    return () => {
      const snapshot = store.snapshot('status', []);
      if (snapshot instanceof ReadFailure) return snapshot;
      if (memoized && snapshot === memoSnapshot) return memoSelection;
      const next = selector(snapshot);
      const previous = memoized ? { has: true, value: memoSelection } : last.current;
      memoized = true;
      memoSnapshot = snapshot;
      memoSelection = previous.has && isEqual(previous.value, next) ? previous.value : next;
      return memoSelection;
    };
  }, [store, selector, isEqual]);
  const selection = React.useSyncExternalStore(subscribe, getSelection, getSelection);
  React.useEffect(() => {
    last.current = { has: true, value: selection };
  }, [selection]);
  if (selection instanceof ReadFailure) throw selection.error;
  return selection;
}

/** The document, or undefined when there is none or before the first read is back. */
function useDocument(entityType, entityId) {
  return useEntry(useStore('useDocument'), 'get', [entityType, entityId]);
}

/** The documents list(entityType, options) returns; the same empty array before the first read is back. */
function useQuery(entityType, options) {
  return useEntry(useStore('useQuery'), 'list', options === undefined ? [entityType] : [entityType, options]);
}

/** The open conflicts, and resolve(conflictId, resolution) -> Promise. */
function useConflicts() {
  const store = useStore('useConflicts');
  const conflicts = useEntry(store, 'conflicts', []);
  const resolve = React.useCallback((conflictId, resolution) => store.resolveConflict(conflictId, resolution), [store]);
  return React.useMemo(() => ({ conflicts, resolve }), [conflicts, resolve]);
}

const selectStateAndError = (status) => ({ state: status ? status.state : null, lastError: status ? status.lastError : null });
const sameStateAndError = (a, b) => a.state === b.state && JSON.stringify(a.lastError) === JSON.stringify(b.lastError);

/** sync() from this component: the number in flight, kept in component state (it is this component's own doing). */
function useManualSync(store) {
  const [inFlight, setInFlight] = React.useState(0);
  const sync = React.useCallback(() => {
    setInFlight((n) => n + 1);
    const result = store.call('sync');
    const done = () => setInFlight((n) => n - 1);
    result.then(done, done);
    return result;
  }, [store]);
  return [sync, inFlight > 0];
}

/** { sync, syncState, syncError, isLoading }: sync() runs a manual cycle and resolves with its summary. */
function useSync() {
  const store = useStore('useSync');
  const { state, lastError } = useSyncStatus(selectStateAndError, sameStateAndError);
  const [sync, calling] = useManualSync(store);
  const isLoading = state === 'syncing' || calling;
  return React.useMemo(() => ({ sync, syncState: state, syncError: lastError, isLoading }), [sync, state, lastError, isLoading]);
}

const selectSyncing = (status) => (status ? status.state === 'syncing' : false);

/**
 * { manualSync, isSyncing }. With an in-process client it also reports the window's focus,
 * blur, visibility and connectivity to client.notify() while mounted (failures ignored); the
 * Electron preload already does this for the renderer client.
 */
function useSyncTriggers() {
  const store = useStore('useSyncTriggers');
  const syncing = useSyncStatus(selectSyncing);
  const [manualSync, calling] = useManualSync(store);
  React.useEffect(() => store.retainTriggers(), [store]);
  const isSyncing = syncing || calling;
  return React.useMemo(() => ({ manualSync, isSyncing }), [manualSync, isSyncing]);
}

module.exports = {
  SyncProvider,
  useSyncClient,
  useSyncStatus,
  useDocument,
  useQuery,
  useConflicts,
  useSync,
  useSyncTriggers,
  /** @private for tests only: a store over a client, and the store SyncProvider uses for a client */
  _createStore: createStore,
  _storeFor: storeFor,
};
