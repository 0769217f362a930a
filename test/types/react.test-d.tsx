// Type test for deltasync/react: compiled with `tsc --noEmit`; a line marked @ts-expect-error must fail to type-check.
import { StrictMode } from 'react';
import { SyncClient, type Conflict, type JsonObject, type SyncStatus, type SyncSummary } from 'deltasync';
import {
  SyncProvider,
  useConflicts,
  useDocument,
  useQuery,
  useSync,
  useSyncClient,
  useSyncStatus,
  useSyncTriggers,
  type RendererSyncClient,
  type SyncStatusSnapshot,
} from 'deltasync/react';

interface Note {
  title: string;
  n: number;
}

function NoteList() {
  const notes: readonly Note[] = useQuery<Note>('note', { where: { n: { $gte: 1 } }, orderBy: '-n', limit: 20, offset: 0 });
  const all: readonly JsonObject[] = useQuery('note');
  // @ts-expect-error the result is read-only: it is shared between components
  notes.push({ title: 'x', n: 1 });
  // @ts-expect-error an unknown list option
  useQuery('note', { sort: 'n' });
  return (
    <ul>
      {notes.map((note) => (
        <li key={note.title}>{note.title}</li>
      ))}
      {all.length}
    </ul>
  );
}

function NoteView({ id }: { id: string }) {
  const note = useDocument<Note>('note', id);
  const title: string | undefined = note?.title;
  // @ts-expect-error the document may be undefined (missing, or not read yet)
  const n: number = note.n;
  // @ts-expect-error ids are strings
  useDocument('note', 1);
  return <p>{title ?? n}</p>;
}

function Badge() {
  const state: SyncStatus['state'] | undefined = useSyncStatus((s) => s?.state);
  const percent: number | null = useSyncStatus(
    (s) => (s?.progress ? s.progress.applied / s.progress.total : null),
    (a, b) => a === b,
  );
  const whole: SyncStatusSnapshot | null = useSyncStatus();
  const pending: number = whole ? whole.pendingChanges : 0;
  // @ts-expect-error the snapshot is null before the first status is known
  useSyncStatus((s) => s.state);
  // @ts-expect-error isEqual compares two selections of the selector's type
  useSyncStatus((s) => s?.pendingChanges ?? 0, (a: string, b: string) => a === b);
  return <span>{`${state} ${percent} ${pending}`}</span>;
}

function SyncButton() {
  const { sync, syncState, syncError, isLoading } = useSync();
  const state: SyncStatus['state'] | null = syncState;
  const code: string | undefined = syncError?.code;
  const summary: Promise<SyncSummary> = sync();
  // @ts-expect-error sync takes no options (onClick={sync} must not pass the event on)
  sync({ manual: false });
  const { manualSync, isSyncing } = useSyncTriggers();
  const again: Promise<SyncSummary> = manualSync();
  void summary;
  void again;
  return (
    <button disabled={isLoading || isSyncing} onClick={sync}>
      {state} {code}
    </button>
  );
}

function Conflicts() {
  const { conflicts, resolve } = useConflicts();
  const first: Conflict | undefined = conflicts[0];
  if (first) {
    void resolve(first.id, { use: 'merged', data: { ...(first.remote ?? {}), title: 'both' } });
    void resolve(first.id, { use: 'local' });
    // @ts-expect-error merged needs data
    void resolve(first.id, { use: 'merged' });
    // @ts-expect-error conflict ids are numbers
    void resolve(String(first.id), { use: 'remote' });
  }
  return <p>{conflicts.length}</p>;
}

function Writer() {
  const client = useSyncClient<SyncClient>();
  const written = client.put('note', 'n1', { title: 'a', n: 1 });
  const renderer = useSyncClient<RendererSyncClient>();
  const later: Promise<unknown> = renderer.put('note', 'n2', { title: 'b', n: 2 });
  void written;
  void later;
  return null;
}

const inProcess = new SyncClient({ path: ':memory:' });
declare const bridged: RendererSyncClient;

export const apps = [
  <StrictMode key="a">
    <SyncProvider client={inProcess}>
      <NoteList />
      <NoteView id="n1" />
      <Badge />
      <SyncButton />
      <Conflicts />
      <Writer />
    </SyncProvider>
  </StrictMode>,
  <SyncProvider key="b" client={bridged}>
    <NoteList />
  </SyncProvider>,
  // @ts-expect-error a client is required
  <SyncProvider key="c">
    <NoteList />
  </SyncProvider>,
  // @ts-expect-error not a client
  <SyncProvider key="d" client={{ get: () => null }} />,
];
