// @ts-check
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { SyncProvider } from 'deltasync/react';
import { App } from './App.jsx';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <SyncProvider client={window.deltasync}>
      <App />
    </SyncProvider>
  </StrictMode>,
);
