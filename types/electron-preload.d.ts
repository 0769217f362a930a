// deltasync/electron-preload: the renderer's half of the Electron bridge.

import type {
  ApplyProgress,
  AppliedConflict,
  BatchOp,
  ChangeEvent,
  Conflict,
  ConflictResolution,
  DocumentWithMeta,
  JsonFields,
  JsonObject,
  ListOptions,
  QueueStats,
  ServerConflictEvent,
  SyncNotifyEvent,
  SyncStatus,
  SyncSummary,
  WriteResult,
} from './index';

/** The events a renderer can subscribe to, with their payloads (plain data). */
export interface RendererEvents {
  change: ChangeEvent;
  status: SyncStatus;
  conflict: AppliedConflict | ServerConflictEvent;
  progress: ApplyProgress;
}

/**
 * The sync client a renderer sees (window.deltasync): SyncClient's safe subset, every call a
 * promise. A failure rejects with an Error whose message is "CODE: message" (contextBridge
 * keeps only the message of an Error) and whose `code` is set where it survives.
 */
export interface RendererSyncClient {
  get<T = JsonObject>(entityType: string, entityId: string, options?: { meta?: false }): Promise<T | undefined>;
  get<T = JsonObject>(entityType: string, entityId: string, options: { meta: true }): Promise<DocumentWithMeta<T> | undefined>;
  list<T = JsonObject>(entityType: string, options?: ListOptions): Promise<T[]>;
  put<T extends JsonFields<T>>(entityType: string, entityId: string, doc: T): Promise<WriteResult>;
  patch<T extends JsonFields<T>>(entityType: string, entityId: string, fields: T): Promise<WriteResult>;
  delete(entityType: string, entityId: string): Promise<boolean>;
  batch(ops: BatchOp[]): Promise<Array<WriteResult | boolean>>;
  sync(options?: { manual?: boolean }): Promise<SyncSummary>;
  status(): Promise<SyncStatus>;
  conflicts(): Promise<Conflict[]>;
  resolveConflict(conflictId: number, resolution: ConflictResolution): Promise<JsonObject | undefined>;
  queueStats(): Promise<QueueStats>;
  notify(event: SyncNotifyEvent): Promise<void>;
  /** Listens to a client event pushed from main; returns the function that stops listening. */
  subscribe<E extends keyof RendererEvents>(event: E, listener: (payload: RendererEvents[E]) => void): () => void;
}

/** The parts of Electron's contextBridge and ipcRenderer the preload uses. */
export interface PreloadElectron {
  contextBridge: { exposeInMainWorld(apiKey: string, api: any): void };
  ipcRenderer: {
    invoke(channel: string, ...args: any[]): Promise<any>;
    on(channel: string, listener: (event: any, ...args: any[]) => void): unknown;
  };
}

export interface ExposeSyncClientOptions {
  /** The window property, default "deltasync". */
  key?: string;
  /** The IPC channel, default "deltasync" (the same as exposeToRenderer's). */
  channel?: string;
  /** Where online/offline, focus/blur and visibilitychange come from: default the global window; null for none. */
  window?: EventTarget | null;
}

/** Puts the renderer's sync client on window[key] through contextBridge, and reports the window's events to main. */
export function exposeSyncClient(electron: PreloadElectron, options?: ExposeSyncClientOptions): RendererSyncClient;
/** The renderer's sync client over ipcRenderer, exposed nowhere (for a preload that exposes it itself). */
export function createRendererClient(ipcRenderer: PreloadElectron['ipcRenderer'], options?: { channel?: string }): RendererSyncClient;
