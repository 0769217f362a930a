// deltasync/electron: the main process's half of the Electron bridge. Electron's modules are
// typed structurally here (the parts used), so deltasync's types need no Electron install.

import type { SyncClient } from './index';

/** The client methods a renderer can be served. */
export type RendererMethod =
  | 'get'
  | 'list'
  | 'put'
  | 'patch'
  | 'delete'
  | 'batch'
  | 'sync'
  | 'status'
  | 'conflicts'
  | 'resolveConflict'
  | 'queueStats'
  | 'notify';

/** What an IPC event carries that deltasync reads: the sending webContents. */
export interface IpcMainEventLike {
  sender: {
    send(channel: string, ...args: any[]): void;
    isDestroyed?(): boolean;
    once?(event: 'destroyed', listener: () => void): unknown;
  };
  [key: string]: any;
}

export interface ExposeToRendererOptions {
  /** Electron's ipcMain. */
  ipcMain: {
    handle(channel: string, listener: (event: any, ...args: any[]) => unknown): void;
    removeHandler(channel: string): void;
  };
  /** Default "deltasync". */
  channel?: string;
  /** The methods served; default all of them. A refused method answers FORBIDDEN. */
  allow?: RendererMethod[];
  /** The events renderers may subscribe to; default all of change, status, conflict, progress. */
  events?: Array<'change' | 'status' | 'conflict' | 'progress'>;
  /** maxRequestBytes (default 8 MiB) and maxDepth (default 100) of one request's arguments. */
  limits?: { maxRequestBytes?: number; maxDepth?: number };
  /** Decides per request whether its sender may use the bridge (e.g. check event.senderFrame.url); anything but true: FORBIDDEN. */
  isAllowedSender?: (event: any) => boolean | Promise<boolean>;
}

/** Serves a safe subset of the client to every renderer; returns the function that removes it. */
export function exposeToRenderer(client: SyncClient, options: ExposeToRendererOptions): () => void;

interface EmitterLike {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

interface WindowLike extends EmitterLike {
  isVisible(): boolean;
  isMinimized(): boolean;
}

export interface AttachToElectronOptions {
  /** browser-window-focus, browser-window-blur and browser-window-created. */
  app?: EmitterLike;
  /** suspend (offline), resume (net.isOnline() asked again, else online) and lock-screen/unlock-screen (hidden/visible). */
  powerMonitor?: EmitterLike;
  /** net.isOnline(), checked at attach and every onlineCheckMs. */
  net?: { isOnline(): boolean };
  /** BrowserWindow's getAllWindows() and getFocusedWindow(), for visibility and blur. */
  BrowserWindow?: { getAllWindows(): WindowLike[]; getFocusedWindow(): unknown };
  /** Default 5000. */
  onlineCheckMs?: number;
}

/** Wires connectivity, power and window events to client.notify(); returns the function that removes every listener. */
export function attachToElectron(client: SyncClient, modules: AttachToElectronOptions): () => void;
