// @ts-check
import { useState } from 'react';
import { useConflicts, useQuery, useSync, useSyncStatus } from 'deltasync/react';

/** @typedef {{ id: string, title: string, done?: boolean }} Note */

export function App() {
  return (
    <main>
      <SyncBar />
      <Conflicts />
      <NewNote />
      <Notes />
    </main>
  );
}

function SyncBar() {
  const { sync, syncState, syncError, isLoading } = useSync();
  const pending = useSyncStatus((status) => status?.pendingChanges ?? 0);
  return (
    <header>
      <span>{syncState ?? 'starting'}</span> · <span>{pending} unsynced</span>
      {syncError ? <span role="alert"> · {syncError.message}</span> : null}
      <button disabled={isLoading} onClick={() => sync().catch(() => {})}>
        Sync now
      </button>
    </header>
  );
}

function NewNote() {
  const [title, setTitle] = useState('');
  const add = () => {
    const id = crypto.randomUUID();
    window.deltasync.put('note', id, { id, title, done: false }).then(() => setTitle(''));
  };
  return (
    <form onSubmit={(event) => (event.preventDefault(), add())}>
      <input value={title} onChange={(event) => setTitle(event.target.value)} placeholder="New note" />
      <button type="submit" disabled={title === ''}>
        Add
      </button>
    </form>
  );
}

function Notes() {
  /** @type {Note[]} */
  const notes = /** @type {any} */ (useQuery('note', { orderBy: 'title' }));
  return (
    <ul>
      {notes.map((note) => (
        <li key={note.id}>
          <input
            type="checkbox"
            checked={note.done === true}
            onChange={(event) => window.deltasync.patch('note', note.id, { done: event.target.checked })}
          />
          <input defaultValue={note.title} onBlur={(event) => window.deltasync.patch('note', note.id, { title: event.target.value })} />
          <button onClick={() => window.deltasync.delete('note', note.id)}>Delete</button>
        </li>
      ))}
    </ul>
  );
}

function Conflicts() {
  const { conflicts, resolve } = useConflicts();
  if (conflicts.length === 0) return null;
  return (
    <section>
      <h2>Conflicts</h2>
      {conflicts.map((conflict) => (
        <div key={conflict.id}>
          <p>
            {conflict.entityType} {conflict.entityId}: yours {JSON.stringify(conflict.local)}, theirs {JSON.stringify(conflict.remote)}
          </p>
          <button onClick={() => resolve(conflict.id, { use: 'local' })}>Keep mine</button>
          <button onClick={() => resolve(conflict.id, { use: 'remote' })}>Keep theirs</button>
        </div>
      ))}
    </section>
  );
}
