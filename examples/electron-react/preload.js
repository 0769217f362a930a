// @ts-check
// The preload: puts window.deltasync in the page. Bundled into dist/preload.js (npm run
// build), because a sandboxed preload can require only electron itself.
'use strict';

const { contextBridge, ipcRenderer } = require('electron');
const { exposeSyncClient } = require('deltasync/electron-preload');

exposeSyncClient({ contextBridge, ipcRenderer });
