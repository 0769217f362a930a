// Type test: compiled with `tsc --noEmit`; a line marked @ts-expect-error must fail to type-check.
import { SyncClient, SyncError, SyncServer, httpTransport, TransportError, type QueuedChange, type QueueStats, type EnqueueResult } from 'deltasync';
import type { ClientConflictResolver, ClientResolverContext, JsonObject, ServerConflictResolver } from 'deltasync';
import { createSyncRouter } from 'deltasync/express';
import { createInspector } from 'deltasync/inspector';
import type { InspectedChanges, InspectedEntity, InspectedUsers } from 'deltasync/inspector';
import express from 'express';

const client = new SyncClient({ path: ':memory:', durability: 'full', coalesce: false, limits: { maxDepth: 32 } });
const id: string = client.deviceId;
const result: EnqueueResult = client.queue.enqueue({
  type: 'CREATED',
  entityType: 'note',
  entityId: 'n1',
  data: { title: 'Hello', tags: ['a'], nested: { n: 1, ok: true, none: null } },
});
const outcome: 'queued' | 'coalesced' | 'cancelled' = result.outcome;
const many = client.queue.enqueueMany([{ type: 'DELETED', entityType: 'note', entityId: 'n1' }]);
const ids: string[] = many.changeIds;
const pending: QueuedChange[] = client.queue.pending({ limit: 10, entityType: 'note' });
const status: 'pending' | 'syncing' | 'synced' | 'failed' = pending[0].status;
const stats: QueueStats = client.queue.stats();
const oldest: number | null = stats.oldestPendingAt;
const exported = client.queue.export();
const format: 'deltasync.queue-export' = exported.format;
const imported: number = client.queue.importLegacy([{ id: 1, action: 'create', entity_type: 'note', entity_id: 7, payload_json: '{}' }]).imported;
const fromText = client.queue.importLegacy('[]');
client.queue.discard('x');
const retried: number = client.queue.retryFailed();
// ---- document store and pulled changes
interface Note { title: string; n: number }
const store = new SyncClient({ path: ':memory:', conflicts: 'manual', applyChunkSize: 500 });
const written = store.put('note', 'n1', { title: 'a', n: 1 });
const writtenType: 'CREATED' | 'UPDATED' | 'DELETED' = written.type;
store.patch('note', 'n1', { n: 2 });
const note: Note | undefined = store.get<Note>('note', 'n1');
const withMeta = store.get<Note>('note', 'n1', { meta: true });
const dirty: boolean | undefined = withMeta?.meta.dirty;
const notes: Note[] = store.list<Note>('note', { where: { n: { $gte: 1 }, title: 'a' }, orderBy: ['-n', { field: 'title' }], limit: 10 });
store.createIndex('note', 'n');
const count: number = store.transaction(() => {
  store.put('note', 'n2', { title: 'b', n: 3 });
  return 1;
});
const removed: boolean = store.delete('note', 'n2');
store.on('change', (event) => {
  if (event.source === 'local') void event.changes[0].changeId;
  else if (event.source === 'remote') void event.applied;
  else if (event.source === 'ingest') void event.inserted;
  else void event.entityId;
});
store.on('conflict', (conflict) => void conflict.winner);
store.on('progress', (progress) => void progress.bytesParsed);
async function pull(bytes: Buffer): Promise<number> {
  const result = await store.applyRemote(bytes);
  for (const conflict of store.conflicts()) {
    store.resolveConflict(conflict.id, { use: 'merged', data: { ...(conflict.remote ?? {}), title: 'both' } });
  }
  return result.applied + result.skipped + store.serverVersion;
}
void pull;

// ---- resolvers an app writes itself
const unionOfTags: ClientConflictResolver = ({ local, remote, base, localChange, remoteChange }) => {
  const tags = (doc: JsonObject | null) => (Array.isArray(doc?.tags) ? doc.tags : []);
  void [base, localChange?.changeId, remoteChange.version];
  return { use: 'merged', data: { ...remote, ...local, tags: [...tags(remote), ...tags(local)] } };
};
new SyncClient({ path: ':memory:', conflicts: unionOfTags, resolverTimeoutMs: 500 });
new SyncClient({ path: ':memory:', conflicts: { '*': 'manual', note: unionOfTags, task: async () => ({ needsManualReview: true }) } });
for (const open of store.conflicts()) {
  const why: string | null = open.resolverError;
  const waiting: boolean = open.awaitingResolver;
  void [why, waiting, open.base];
}
// @ts-expect-error a resolver answers with a resolution
new SyncClient({ path: ':memory:', conflicts: () => 'local' });
// @ts-expect-error merged needs data, from a resolver too
new SyncClient({ path: ':memory:', conflicts: () => ({ use: 'merged' }) });
const keepLarger: ServerConflictResolver = ({ server: theirs, client: mine, clientChange }) =>
  Number(mine?.quantity ?? 0) >= Number(theirs?.quantity ?? 0) && clientChange.type !== 'DELETED' ? { use: 'local' } : { use: 'remote' };
new SyncServer({ path: ':memory:', conflicts: keepLarger, perType: { stock: keepLarger, note: 'merge' }, resolverTimeoutMs: 200 });
// @ts-expect-error a server resolver sees server/client, not local/remote
new SyncServer({ path: ':memory:', conflicts: ({ local }: ClientResolverContext) => ({ use: local ? 'local' : 'remote' }) });

// @ts-expect-error merged needs data
store.resolveConflict(1, { use: 'merged' });
// @ts-expect-error an unknown strategy
new SyncClient({ path: ':memory:', conflicts: 'last_write_wins' });
// @ts-expect-error list options are checked
store.list('note', { where: { n: { $regex: 'x' } } });
// @ts-expect-error pages cross as bytes, not objects
store.applyRemote({ newChanges: [] });
// @ts-expect-error transaction functions are synchronous
store.transaction(async () => 1);
void [writtenType, note, dirty, notes, count, removed];

// ---- ingestion
async function ingestLogs(): Promise<number> {
  store.on('ingest-progress', (progress) => void progress.filesDone);
  const preview = await store.previewIngest('./logs', { pattern: '**/*.jsonl', entityType: 'session', idField: 'uuid' });
  const report = await store.ingest('./logs', { entityType: 'session', idField: 'uuid', maxFiles: 10, forceFullSync: false });
  const status = store.ingestStatus();
  if (status && status.status === 'failed') store.resetIngest();
  return preview.filesNew + report.recordsInserted + report.errors.filter((e) => e.line > 0).length;
}
void ingestLogs;
// @ts-expect-error maxFiles is a number
store.ingest('./logs', { maxFiles: '10' });

// ---- sync engine
const syncing = new SyncClient({
  path: ':memory:',
  transport: httpTransport({ url: 'http://127.0.0.1:8080/api/sync', headers: async () => ({ Authorization: 'Bearer t' }) }),
  triggers: { periodicMs: 30000, minIntervalMs: 5000, localChangeDelayMs: 1000 },
  retry: { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 300000 },
  batch: { push: 100, pull: 1000 },
});
syncing.start();
syncing.notify('online');
syncing.on('status', (s) => void s.nextSyncAt);
syncing.on('error', (error) => {
  if (error instanceof TransportError) void error.retryAfterMs;
});
async function runOnce(): Promise<number> {
  const summary = await syncing.sync({ manual: true });
  const state: 'idle' | 'syncing' | 'backoff' | 'offline' | 'stopped' = syncing.status.state;
  void state;
  return summary.pushed + summary.pulled;
}
void runOnce;
const custom = new SyncClient({ path: ':memory:', transport: async (request, { signal }) => JSON.stringify({ request, aborted: signal.aborted }) });
void custom;
// @ts-expect-error not a notify event
syncing.notify('sleep');
// ---- live updates
const live = new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'https://example.test/api/sync' }), live: { pokeDebounceMs: 10, fallbackAfter: 3 } });
const isLive: boolean = live.status.live;
void isLive;
new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'https://example.test' }), live: false });
// @ts-expect-error live options are checked
new SyncClient({ path: ':memory:', transport: httpTransport({ url: 'https://example.test' }), live: { debounce: 5 } });
// @ts-expect-error a transport resolves with bytes
new SyncClient({ path: ':memory:', transport: async () => 42 });

// ---- server
const server = new SyncServer({ path: ':memory:', conflicts: 'newest_wins', toleranceMs: 1000, maxClockSkewMs: 60_000, perType: { goal: 'merge' }, limits: { maxResponseBytes: 1 << 22 } });
const onPostgres = new SyncServer({ postgres: { connectionString: 'postgresql://app@db/app', schema: 'sync', poolSize: 16 }, conflicts: 'merge' });
const storeKind: 'sqlite' | 'postgres' = onPostgres.store;
const noFile: string | undefined = onPostgres.path;
new SyncServer({ postgres: { host: 'db', port: 5432, user: 'app', password: 'secret', database: 'app', ssl: true } });
declare const pool: { query: (sql: string) => Promise<unknown>; options: { connectionString?: string; max?: number } };
new SyncServer({ postgres: pool });
// @ts-expect-error a port is a number
new SyncServer({ postgres: { host: 'db', port: '5432' } });
void storeKind;
void noFile;
const app = express();
app.use('/api/sync', createSyncRouter(server, { authenticate: (req) => req.header('x-user') ?? null, limits: { maxConcurrentRequests: 32, maxConcurrentRequestsPerUser: 8, bodyIdleTimeoutMs: 10_000 } }));
app.use('/live', createSyncRouter(server, { authenticate: () => 'u', heartbeatMs: 10_000, limits: { maxStreams: 100, maxStreamsPerUser: 4 } }));
async function serve(): Promise<number> {
  const response = await server.sync('u1', { deviceId: 'd1', lastKnownServerVersion: 0, changes: [] });
  const winner: 'client' | 'server' | 'merged' | 'manual' | undefined = response.conflicts[0]?.winner;
  const page = await server.pull('u1', { since: 0, limit: 100 });
  await server.resolveConflict('u1', 1, { use: 'merged', data: { title: 'x' } });
  const open = await server.conflicts('u1', { after: 3 });
  const omitted: true | undefined = response.conflicts[0]?.serverDataOmitted;
  const resync: true | undefined = response.resync;
  void winner;
  void omitted;
  void resync;
  return page.latestServerVersion + page.headVersion + response.newChanges.length + open.length;
}
void serve;
// @ts-expect-error authenticate is required
createSyncRouter(server, {});
app.use('/inspect', createInspector(server, { authenticate: (req) => (req.headers['x-admin'] === 'yes' ? { name: 'ops' } : null) }));
app.use('/inspect-async', createInspector(server, { authenticate: async () => 'ops@example.com' }));
// @ts-expect-error authenticate is required
createInspector(server, {});
declare const users: InspectedUsers;
declare const changes: InspectedChanges;
declare const entity: InspectedEntity;
const nextUser: string | null = users.next;
const olderPage: number | null = changes.next;
const firstState = entity.versions[0]?.state;
void nextUser;
void olderPage;
void firstState;
// @ts-expect-error resolution needs data when merged
server.resolveConflict('u1', 1, { use: 'merged' });

client.close();

try {
  client.queue.stats();
} catch (error) {
  if (error instanceof SyncError) {
    const code: 'CLOSED' | string = error.code;
    void code;
    if (error.code === 'NATIVE_MODULE') console.error('no binary for this platform:', error.message);
  }
}

// @ts-expect-error path is required
new SyncClient({});
// @ts-expect-error durability is 'normal' | 'full'
new SyncClient({ path: 'x', durability: 'paranoid' });
// @ts-expect-error type must be a change type
client.queue.enqueue({ type: 'MOVED', entityType: 'note', entityId: 'n1' });
// @ts-expect-error data must be JSON
client.queue.enqueue({ type: 'CREATED', entityType: 'note', entityId: 'n1', data: { at: new Date() } });
// @ts-expect-error the queue is read-only
client.queue = client.queue;

void [id, outcome, ids, status, oldest, format, imported, fromText, retried];

// The health check.
const checked = new SyncClient({
  path: 'h.db',
  transport: httpTransport({ url: 'http://localhost:3000/api/sync' }),
  healthCheck: { intervalMs: 5000, timeoutMs: 2000, unreachableAfter: 3 },
});
const why: 'notified' | 'unreachable' | null = checked.status.offlineReason;
new SyncClient({ path: 'h2.db', transport: async () => '{}', healthCheck: { url: 'https://api.example.com/health' } });
// @ts-expect-error intervalMs is a number
new SyncClient({ path: 'h3.db', transport: async () => '{}', healthCheck: { intervalMs: '5s' } });
const reached: Promise<boolean> = httpTransport({ url: 'http://localhost:3000/api/sync' }).probe({ deviceId: 'd', timeoutMs: 1000 });
void why;
void reached;
