// A renderer's view: compiled with the DOM's types and without Node's (browser.tsconfig.json),
// as a browser-only Electron renderer is. deltasync/react and deltasync/electron-preload must
// need nothing from @types/node.

import { SyncProvider, useQuery, useSyncStatus } from 'deltasync/react';
import type { RendererSyncClient } from 'deltasync/electron-preload';

declare global {
  interface Window {
    deltasync: RendererSyncClient;
  }
}

interface Note {
  title: string;
  done: boolean;
  tags?: string[];
  meta: { words: number };
}

function Notes() {
  const notes = useQuery<Note>('note', { orderBy: 'title' });
  const state = useSyncStatus((status) => status?.state ?? 'starting');
  const save = (note: Note) => window.deltasync.put('note', note.title, note); // an interface is a document
  // @ts-expect-error a Date is not JSON
  void window.deltasync.put('note', 'x', { at: new Date() });
  // @ts-expect-error a function is not JSON
  void window.deltasync.patch('note', 'x', { run: () => 1 });
  return (
    <ul data-state={state}>
      {notes.map((note) => (
        <li key={note.title} onClick={() => void save({ ...note, done: !note.done })}>
          {note.title}
        </li>
      ))}
    </ul>
  );
}

export const app = (
  <SyncProvider client={window.deltasync}>
    <Notes />
  </SyncProvider>
);
