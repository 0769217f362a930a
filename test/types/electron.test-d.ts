// Type test of deltasync/electron and deltasync/electron-preload (compiled by `npm run test:types`).

import { SyncClient, httpTransport } from 'deltasync';
import type { WriteResult, SyncStatus, ChangeEvent } from 'deltasync';
import { exposeToRenderer, attachToElectron } from 'deltasync/electron';
import { exposeSyncClient } from 'deltasync/electron-preload';
import type { RendererSyncClient } from 'deltasync/electron-preload';
import { EventEmitter } from 'node:events';

const client = new SyncClient({ path: 'app.db', transport: httpTransport({ url: 'http://localhost:3000/api/sync' }) });
const ipcMain = { handle(_channel: string, _listener: (event: any, ...args: any[]) => unknown) {}, removeHandler(_channel: string) {} };

const unexpose: () => void = exposeToRenderer(client, { ipcMain });
exposeToRenderer(client, { ipcMain, channel: 'sync', allow: ['get', 'list'], events: ['status'], limits: { maxRequestBytes: 1024 } });
exposeToRenderer(client, { ipcMain, isAllowedSender: async (event) => event.senderFrame.url.startsWith('file://') });
// @ts-expect-error no such event
exposeToRenderer(client, { ipcMain, events: ['error'] });
// @ts-expect-error applyRemote is not a method a renderer can be served
exposeToRenderer(client, { ipcMain, allow: ['applyRemote'] });
// @ts-expect-error ipcMain is required
exposeToRenderer(client, {});
unexpose();

const detach: () => void = attachToElectron(client, {
  app: new EventEmitter(),
  powerMonitor: new EventEmitter(),
  net: { isOnline: () => true },
  onlineCheckMs: 1000,
});
detach();

const results: Array<WriteResult | boolean> = client.batch([
  { op: 'put', entityType: 'note', entityId: 'a', doc: { title: 'x' } },
  { op: 'patch', entityType: 'note', entityId: 'a', fields: { done: true } },
  { op: 'delete', entityType: 'note', entityId: 'b' },
]);
// @ts-expect-error a patch carries fields, not doc
client.batch([{ op: 'patch', entityType: 'note', entityId: 'a', doc: {} }]);

declare const electron: {
  contextBridge: { exposeInMainWorld(key: string, api: any): void };
  ipcRenderer: { invoke(channel: string, ...args: any[]): Promise<any>; on(channel: string, listener: (event: any, ...args: any[]) => void): unknown };
};
const api: RendererSyncClient = exposeSyncClient(electron, { key: 'sync', window: null });

async function renderer(deltasync: RendererSyncClient) {
  const doc: { title: string } | undefined = await deltasync.get<{ title: string }>('note', 'a');
  const withMeta = await deltasync.get('note', 'a', { meta: true });
  const dirty: boolean | undefined = withMeta?.meta.dirty;
  const written: WriteResult = await deltasync.put('note', 'a', { title: 'x' });
  const status: SyncStatus = await deltasync.status();
  const unsubscribe: () => void = deltasync.subscribe('change', (event: ChangeEvent) => void event.source);
  deltasync.subscribe('status', (next) => void next.pendingChanges);
  // @ts-expect-error no such event
  deltasync.subscribe('error', () => {});
  // @ts-expect-error every call is a promise
  const sync: SyncStatus = deltasync.status();
  unsubscribe();
  return [doc, dirty, written, status, results, sync];
}
void renderer(api);
