// @ts-check
// The Electron main process: the SyncClient lives here (a renderer cannot load a native
// addon under context isolation) and is served to every window over IPC.
'use strict';

const path = require('node:path');
const { app, BrowserWindow, ipcMain, powerMonitor, net } = require('electron');
const { SyncClient, httpTransport } = require('deltasync');
const { exposeToRenderer, attachToElectron } = require('deltasync/electron');

// A server to try it with: npx deltasync serve --db server.db --insecure-dev-users
const SYNC_URL = process.env.DELTASYNC_EXAMPLE_SYNC_URL ?? 'http://127.0.0.1:3000/api/sync';

app.whenReady().then(() => {
  const client = new SyncClient({
    path: path.join(app.getPath('userData'), 'notes.db'),
    conflicts: 'manual',
    transport: httpTransport({ url: SYNC_URL, headers: { 'x-user-id': 'demo-user' } }),
    healthCheck: true, // "online" from the OS is not "the server answers": probe it when in doubt
  });
  // Only this app's own page may use the client: not a page a window navigated to or opened.
  const isAllowedSender = (/** @type {any} */ event) => event.senderFrame?.url?.startsWith('file://') === true;
  const unexpose = exposeToRenderer(client, { ipcMain, isAllowedSender });
  const detach = attachToElectron(client, { app, powerMonitor, net, BrowserWindow });
  client.start();

  const window = new BrowserWindow({
    width: 900,
    height: 700,
    webPreferences: {
      preload: path.join(__dirname, 'dist', 'preload.js'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    },
  });
  window.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  window.webContents.on('will-navigate', (event) => event.preventDefault());
  window.loadFile(path.join(__dirname, 'index.html'));

  app.on('before-quit', () => {
    detach();
    unexpose();
    client.close();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
