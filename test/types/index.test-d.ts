// Type test: compiled with `tsc --noEmit`; a line marked @ts-expect-error must fail to type-check.
import { SyncClient, SyncError, type QueuedChange, type QueueStats, type EnqueueResult } from 'deltasync';

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
client.close();

try {
  client.queue.stats();
} catch (error) {
  if (error instanceof SyncError) {
    const code: 'CLOSED' | string = error.code;
    void code;
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
