// What the preload put on window.
interface Window {
  deltasync: import('deltasync/electron-preload').RendererSyncClient;
}
