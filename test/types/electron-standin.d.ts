// The parts of Electron's API the example uses, as Electron documents them. Electron's own
// types cannot be installed here (its package downloads a binary), so the example is checked
// against this stand-in.
declare module 'electron' {
  import { EventEmitter } from 'node:events';

  interface WebPreferences {
    preload?: string;
    contextIsolation?: boolean;
    sandbox?: boolean;
    nodeIntegration?: boolean;
  }
  interface WebContents extends EventEmitter {
    setWindowOpenHandler(handler: (details: { url: string }) => { action: 'allow' | 'deny' }): void;
    on(event: 'will-navigate', listener: (event: { preventDefault(): void }, url: string) => void): this;
  }
  export class BrowserWindow extends EventEmitter {
    constructor(options?: { width?: number; height?: number; webPreferences?: WebPreferences });
    webContents: WebContents;
    loadFile(filePath: string): Promise<void>;
    isVisible(): boolean;
    isMinimized(): boolean;
    static getAllWindows(): BrowserWindow[];
    static getFocusedWindow(): BrowserWindow | null;
  }
  interface App extends EventEmitter {
    whenReady(): Promise<void>;
    getPath(name: 'userData' | 'home' | 'temp'): string;
    quit(): void;
  }
  export const app: App;
  export const ipcMain: {
    handle(channel: string, listener: (event: any, ...args: any[]) => Promise<any> | any): void;
    removeHandler(channel: string): void;
  };
  export const powerMonitor: EventEmitter;
  export const net: { isOnline(): boolean };
  export const contextBridge: { exposeInMainWorld(apiKey: string, api: any): void };
  export const ipcRenderer: {
    invoke(channel: string, ...args: any[]): Promise<any>;
    on(channel: string, listener: (event: any, ...args: any[]) => void): unknown;
  };
}
