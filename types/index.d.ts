// Type definitions for deltasync. Hand-written; they mirror the JSDoc in lib/.

// No Node types are needed: a renderer bundling deltasync/react or deltasync/electron-preload
// (whose types import these) compiles without @types/node.

/** Stable error codes carried by SyncError.code. */
export type SyncErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'CLOSED'
  | 'STORAGE'
  | 'BUSY'
  | 'LIMIT_EXCEEDED'
  | 'NOT_A_DATABASE'
  | 'UNAVAILABLE'
  | 'TRANSPORT'
  | 'AUTH'
  | 'ABORTED'
  | 'UNAUTHENTICATED'
  | 'OVERLOADED'
  | 'REQUEST_TIMEOUT'
  | 'TOO_MANY_STREAMS'
  | 'NATIVE_MODULE'
  | 'FORBIDDEN'
  | 'INTERNAL';

/** The error every deltasync operation throws: a message for people, a stable code for programs. */
export class SyncError extends Error {
  constructor(message: string, code: SyncErrorCode | string);
  readonly name: 'SyncError' | 'TransportError';
  readonly code: SyncErrorCode;
}

export type ChangeType = 'CREATED' | 'UPDATED' | 'DELETED';
export type ChangeStatus = 'pending' | 'syncing' | 'synced' | 'failed';

/** A JSON object: what a document and a change's data are. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/**
 * What put() and patch() accept: an object whose fields are JSON values, nested objects of
 * them, or undefined (dropped). Interfaces are accepted (JsonObject's index signature would
 * refuse them); functions, Dates, Maps and the like are not.
 */
export type JsonFields<T> = {
  [K in keyof T]: T[K] extends JsonValue | undefined
    ? T[K]
    : T[K] extends (...args: any[]) => any
      ? never
      : T[K] extends object
        ? JsonFields<T[K]>
        : never;
};

/** A change handed to the queue. */
export interface ChangeInput {
  /** Client UUID, the server's idempotency key; generated when absent. */
  changeId?: string;
  type: ChangeType;
  /** [A-Za-z0-9_.-]{1,64} */
  entityType: string;
  /** 1 to 256 bytes */
  entityId: string;
  /** The full object (CREATED), only the changed fields (UPDATED); optional for DELETED. */
  data?: JsonObject | null;
  /** The server version the change was made against, when known. */
  baseVersion?: number | null;
  /** When the change was made, ms since the epoch; defaults to now. */
  timestamp?: number;
  /** Defaults to the client's tenantId / userId. */
  tenantId?: string | null;
  userId?: string | null;
}

/** A change as stored in the queue. */
export interface QueuedChange {
  /** Local queue order. */
  id: number;
  changeId: string;
  type: ChangeType;
  entityType: string;
  entityId: string;
  data: JsonObject | null;
  baseVersion: number | null;
  timestamp: number;
  tenantId: string | null;
  userId: string | null;
  status: ChangeStatus;
  retryCount: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  syncedAt: number | null;
  serverVersion: number | null;
}

export interface EnqueueResult {
  /** The change's id (generated when the input had none). */
  changeId: string;
  /** queued: a new row; coalesced: folded into the entity's pending change; cancelled: a DELETED met a pending CREATED. */
  outcome: 'queued' | 'coalesced' | 'cancelled';
  /** With coalesced: the changeId of the pending change that absorbed this one. */
  into?: string;
}

export interface EnqueueManyResult {
  queued: number;
  coalesced: number;
  cancelled: number;
  /** One per input change, in order. */
  changeIds: string[];
}

export interface EntityTypeCounts {
  pending: number;
  syncing: number;
  failed: number;
}

export interface QueueStats {
  pending: number;
  syncing: number;
  failed: number;
  /** Synced rows still retained. */
  synced: number;
  byEntityType: Record<string, EntityTypeCounts>;
  /** createdAt of the oldest pending change, or null. */
  oldestPendingAt: number | null;
  lastSyncTime: number | null;
}

export interface QueueExport {
  format: 'deltasync.queue-export';
  formatVersion: 1;
  exportedAt: number;
  deviceId: string;
  userId: string | null;
  tenantId: string | null;
  schemaVersion: number;
  stats: QueueStats;
  changes: QueuedChange[];
}

export interface ImportResult {
  imported: number;
  /** Already queued (by changeId), folded earlier, or marked synced in the dump. */
  skipped: number;
}

/** A record of an older client's queue, as importLegacy accepts it. */
export interface LegacyChangeRecord {
  changeId?: string;
  change_id?: string;
  id?: string | number;
  type?: string;
  action?: 'create' | 'update' | 'delete' | string;
  entityType?: string;
  entity_type?: string;
  entityId?: string | number;
  entity_id?: string | number;
  data?: JsonObject | null;
  payload?: JsonObject | null;
  payload_json?: string;
  baseVersion?: number | null;
  timestamp?: number;
  created_at?: string | number;
  createdAt?: string | number;
  status?: string;
  retryCount?: number;
  retry_count?: number;
  error_message?: string;
  lastError?: string;
  tenant_id?: string | null;
  user_id?: string | null;
  [extra: string]: unknown;
}

export interface ChangeQueue {
  enqueue(change: ChangeInput): EnqueueResult;
  enqueueMany(changes: ChangeInput[]): EnqueueManyResult;
  pending(options?: { limit?: number; entityType?: string }): QueuedChange[];
  failed(): QueuedChange[];
  stats(): QueueStats;
  export(): QueueExport;
  retryFailed(): number;
  discard(changeId: string): void;
  importLegacy(records: string | LegacyChangeRecord[]): ImportResult;
}

/** What a local write did. */
export interface WriteResult {
  entityType: string;
  entityId: string;
  /** The change type queued for this write. */
  type: ChangeType;
  changeId: string;
  outcome: 'queued' | 'coalesced' | 'cancelled';
}

/** One write of SyncClient.batch(): the data form of put, patch and delete. */
export type BatchOp =
  | { op: 'put'; entityType: string; entityId: string; doc: JsonObject }
  | { op: 'patch'; entityType: string; entityId: string; fields: JsonObject }
  | { op: 'delete'; entityType: string; entityId: string };

export type JsonScalar = string | number | boolean;

/** A condition on one field: a value (equality), null (missing or null), or operators. */
export type WhereCondition =
  | JsonScalar
  | null
  | {
      $eq?: JsonScalar | null;
      $ne?: JsonScalar | null;
      $lt?: JsonScalar;
      $lte?: JsonScalar;
      $gt?: JsonScalar;
      $gte?: JsonScalar;
      $in?: JsonScalar[];
    };

export type OrderByEntry = string | { field: string; direction?: 'asc' | 'desc' };

export interface ListOptions {
  /** Field paths ("title", "meta.author") to conditions; all must hold. */
  where?: Record<string, WhereCondition>;
  /** "field", "-field" (descending), or several. */
  orderBy?: OrderByEntry | OrderByEntry[];
  limit?: number;
  offset?: number;
}

export interface DocumentMeta {
  /** Server version of the last pulled change of this document, or null. */
  version: number | null;
  /** Has local changes the server has not acknowledged. */
  dirty: boolean;
  deleted: boolean;
  lastSyncedAt: number | null;
  updatedAt: number;
}

export interface DocumentWithMeta<T = JsonObject> {
  /** null for a tombstone */
  data: T | null;
  meta: DocumentMeta;
}

export type ConflictStrategy = 'newest_wins' | 'server_wins' | 'client_wins' | 'merge' | 'manual';

/** What a resolver decides: one side, a merged document, or to leave the conflict to a person. */
export type ResolverResolution =
  | { use: 'local' }
  | { use: 'remote' }
  | { use: 'merged'; data: JsonObject }
  | { needsManualReview: true };

/** A local change of the conflicting entity, as a client resolver sees it. */
export interface ResolverLocalChange {
  changeId: string;
  type: ChangeType;
  data: JsonObject | null;
  timestamp: number;
}

/** The pulled change that met the local ones. */
export interface ResolverRemoteChange {
  changeId: string;
  version: number;
  type: ChangeType;
  data: JsonObject | null;
  timestamp: number;
  deviceId: string | null;
}

/** What a client's resolver is given, as plain data. */
export interface ClientResolverContext {
  entityType: string;
  entityId: string;
  /** The entity as the device shows it (its local changes on top); null when deleted locally. */
  local: JsonObject | null;
  /** The server's state; null when deleted on the server. */
  remote: JsonObject | null;
  /** The server's state the local changes were made on; null when there was none. */
  base: JsonObject | null;
  /** The newest local change the server has not acknowledged, or null. */
  localChange: ResolverLocalChange | null;
  remoteChange: ResolverRemoteChange;
}

/**
 * An app's own conflict resolver on the client. It runs on the main thread after the page is
 * applied (off it); a throw, a rejection, a wrong answer or one later than resolverTimeoutMs
 * leaves the conflict open in conflicts() with resolverError.
 */
export type ClientConflictResolver = (context: ClientResolverContext) => ResolverResolution | Promise<ResolverResolution>;

/** A strategy name or a resolver; as a map, per entity type, with '*' for the other types. */
export type ClientConflicts =
  | ConflictStrategy
  | ClientConflictResolver
  | { [entityType: string]: ConflictStrategy | ClientConflictResolver };

/** A pulled change that met local changes the server had not acknowledged. */
export interface AppliedConflict {
  entityType: string;
  entityId: string;
  /** The pulled change. */
  changeId: string;
  version: number;
  /** 'custom': the app's resolver decided. */
  strategy: ConflictStrategy | 'custom';
  /**
   * local: the local state stays; remote: the pulled state replaced it; merged: field by field
   * (or the resolver's document); manual: kept open; custom: still awaiting the resolver (its
   * verdict went stale while the entity changed; it is asked again with the next page).
   */
  winner: 'local' | 'remote' | 'merged' | 'manual' | 'custom';
  /** With manual and custom: the id to pass to resolveConflict. */
  conflictId?: number;
}

export interface ApplyResult {
  applied: number;
  /** Changes not newer than the stored document. */
  skipped: number;
  conflicts: AppliedConflict[];
  /** The stored cursor after the page. */
  latestServerVersion: number | null;
  /** The page said "resync": the server's history went back in time and the client was reset to it. */
  resynced: boolean;
}

/** An open conflict: kept by the 'manual' strategy, or by a resolver that left it to a person. */
export interface Conflict {
  id: number;
  entityType: string;
  entityId: string;
  /** The local state as the device shows it now (the local changes on top of the pulled state); null when deleted locally. */
  local: JsonObject | null;
  /** The server's state; null when deleted on the server. */
  remote: JsonObject | null;
  /** The server's state the local changes were made on; null when there was none. */
  base: JsonObject | null;
  remoteVersion: number;
  remoteChangeId: string;
  remoteTimestamp: number;
  createdAt: number;
  /** The app's resolver has yet to see it (true only between a page and its settling, or after a crash). */
  awaitingResolver: boolean;
  /** Why the resolver did not settle it (it threw, answered wrongly or late); null otherwise. */
  resolverError: string | null;
}

export type ConflictResolution = { use: 'local' } | { use: 'remote' } | { use: 'merged'; data: JsonObject };

export interface ApplyProgress {
  applied: number;
  total: number;
  bytesParsed: number;
}

export type ChangeEvent =
  | { source: 'local'; changes: WriteResult[] }
  | { source: 'remote'; applied: number; skipped: number; latestServerVersion: number | null }
  | { source: 'resolution'; conflictId: number; entityType: string; entityId: string }
  | { source: 'ingest'; entityType: string; inserted: number; updated: number };

/** A sync request, as a transport carries it to the server's POST {url}/v2. */
export interface TransportRequest {
  deviceId: string;
  lastKnownServerVersion: number;
  changes: WireChange[];
  limit: number;
}

/**
 * Carries one request and resolves with the response body (bytes or text), which goes to C++ unparsed.
 * During a long pull the next page's request may be sent while the last page applies (its bytes are
 * read where they lie, so resolve each call with bytes of its own); it is aborted through `signal`
 * when it turns out unneeded (see "Pulling ahead" in docs/api.md).
 */
export type Transport = ((
  request: TransportRequest,
  context: { signal: AbortSignal },
) => Promise<Uint8Array | ArrayBuffer | string>) & { events?: LiveEvents };

export interface HttpTransportOptions {
  /** The base URL of the sync routes, e.g. 'https://api.example.com/api/sync' (requests go to {url}/v2). */
  url: string;
  /** Extra headers, or a function returning them (e.g. a fresh bearer token) for each request. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Per-request timeout. Default 30000. */
  timeoutMs?: number;
  /** A fetch to carry every request (a proxy agent, a test double); then there is no live stream. Default: requests go over node:http(s). */
  fetch?: typeof fetch;
}

/**
 * The health check: after `unreachableAfter` consecutive cycles that got no answer from the
 * server (and while offline was notified), the client counts as offline and probes instead
 * of syncing, `intervalMs` later and then with backoff. A probe the server answers (below 500)
 * marks it online and syncs at once.
 */
export interface HealthCheckOptions {
  /** What to GET. Default: httpTransport's {url}/v2/status; required with another transport. */
  url?: string;
  /** Default 5000. */
  intervalMs?: number;
  /** Default 5000. */
  timeoutMs?: number;
  /** Default 3. */
  unreachableAfter?: number;
}

/**
 * Opens a transport's live stream and reads it until it ends: call onOpen once the server
 * accepted it, onEvent for each event ({ latestServerVersion }), and settle when it ends
 * (reject when it could not open or broke). A transport with `events` gets live updates.
 */
export type LiveEvents = (options: {
  deviceId: string;
  signal: AbortSignal;
  /** Whether the open connection may keep the process alive (the client's keepAlive). */
  keepAlive: boolean;
  onOpen: () => void;
  onEvent: (event: { latestServerVersion?: number }) => void;
}) => Promise<void>;

/** httpTransport's transport, which also carries the health check's probe and, without a custom fetch, the live stream. */
export interface HttpTransport extends Transport {
  /** GETs probeUrl (default {url}/v2/status); true when the server answered below 500. Never rejects. */
  probe(options: { deviceId: string; timeoutMs: number; signal?: AbortSignal; probeUrl?: string }): Promise<boolean>;
  /** GET {url}/v2/events over node:http(s). Absent when a custom fetch was given. */
  events?: LiveEvents;
}

/** Live updates: the client holds the server's event stream and pulls when told of a change. */
export interface LiveOptions {
  /** Pokes this close together become one pull. Default 20. */
  pokeDebounceMs?: number;
  /** Failed connections in a row before the client falls back to periodic sync. Default 5. */
  fallbackAfter?: number;
}

export function httpTransport(options: HttpTransportOptions): HttpTransport;

/** A transport failure: `status` when the server answered, `retryAfterMs` when it sent Retry-After. code is 'AUTH' for 401/403. */
export class TransportError extends SyncError {
  readonly name: 'TransportError';
  readonly status?: number;
  readonly retryAfterMs?: number;
}

export interface SyncStatus {
  state: 'idle' | 'syncing' | 'backoff' | 'offline' | 'stopped';
  /** Pending or in flight. */
  pendingChanges: number;
  failedChanges: number;
  lastSyncTime: number | null;
  lastError: { code: string; message: string; at: number } | null;
  nextSyncAt: number | null;
  serverVersion: number;
  /** Why state is 'offline': notify('offline') was told, or the health check found the server unreachable; null otherwise. */
  offlineReason: 'notified' | 'unreachable' | null;
  /** The live stream is open: changes on the server arrive without polling. */
  live: boolean;
}

export interface SyncSummary {
  /** Changes the server applied. */
  pushed: number;
  /** Conflicts reported by the server and met while applying pulled changes. */
  conflicts: number;
  /** Changes the server rejected (each counts a retry). */
  rejected: number;
  /** changeIds that ran out of retries in this cycle. */
  failed: string[];
  /** Pulled changes applied. */
  pulled: number;
  requests: number;
}

/** A pushed change the server judged a conflict. */
export interface ServerConflictEvent {
  source: 'server';
  changeId: string;
  entityType: string;
  entityId: string;
  winner: 'client' | 'server' | 'merged' | 'manual';
  resolution: string;
  reason: string;
  conflictId?: number;
  serverVersion: number | null;
}

export type SyncNotifyEvent = 'online' | 'offline' | 'focus' | 'blur' | 'visible' | 'hidden';

export interface IngestOptions {
  /** Glob relative to the directory: `**` spans directories, `*` and `?` do not. Default '**\/*.jsonl'. */
  pattern?: string;
  /** The entity type records are stored as. Default 'record'. */
  entityType?: string;
  /** The record field holding the entity id (a string or an integer). Default 'id'. */
  idField?: string;
  /** Use the manifest to skip unchanged files. Default true. */
  incremental?: boolean;
  /** Count what would happen, write nothing. */
  dryRun?: boolean;
  /** At most this many new or updated files per run; the rest wait for the next run. */
  maxFiles?: number;
  /** Only add new records; never overwrite a stored one. */
  skipExisting?: boolean;
  /** Ignore the manifest for this run: read every matching file again. */
  forceFullSync?: boolean;
}

export interface IngestError {
  /** Relative to the ingested directory. */
  file: string;
  /** 1-based; 0 for an error about the whole file. */
  line: number;
  code: string;
  message: string;
}

export interface IngestReport {
  filesNew: number;
  filesUpdated: number;
  filesUnchanged: number;
  /** Beyond maxFiles, left for a later run. */
  filesSkipped: number;
  recordsInserted: number;
  recordsUpdated: number;
  recordsUnchanged: number;
  bytesRead: number;
  errors: IngestError[];
}

export interface IngestStatus {
  status: 'in_progress' | 'completed' | 'failed';
  dir: string;
  startedAt: number;
  finishedAt: number | null;
  report: IngestReport | null;
  error: string | null;
}

export interface IngestProgress {
  filesDone: number;
  filesTotal: number;
  records: number;
  bytes: number;
}

export interface SyncClientOptions {
  /** SQLite file path; ':memory:' for a throw-away database. */
  path: string;
  /** Persisted; generated once when omitted. */
  deviceId?: string;
  userId?: string;
  tenantId?: string;
  /** Fold a pending change with the next change of the same entity. Default true. */
  coalesce?: boolean;
  /** 'normal' (default) survives an application crash; 'full' also survives power loss. */
  durability?: 'normal' | 'full';
  /** How long a write waits for another connection's lock before BUSY. Default 10000. */
  busyTimeoutMs?: number;
  limits?: {
    /** Nesting of objects and arrays in a document. Default 64. */
    maxDepth?: number;
    /** Canonical JSON size of one document. Default 1 MiB. */
    maxDocumentBytes?: number;
  };
  /**
   * How pulled changes that meet local unacknowledged changes are settled: a strategy, your own
   * resolver, or a map of entity types to either ('*' for the others). Default 'newest_wins'.
   */
  conflicts?: ClientConflicts;
  /** How long a resolver may take before its conflict is left open for review. Default 1000. */
  resolverTimeoutMs?: number;
  /** Synced tombstones older than this are purged after each applied page. Default 30 days. */
  tombstoneRetentionMs?: number;
  /** Changes per transaction when applying a pulled page. Default 1000. */
  applyChunkSize?: number;
  /** Enables start/stop/sync/notify: httpTransport({ url }) or your own function. */
  transport?: Transport;
  triggers?: {
    /** A cycle this long after the last one. Default 30000; 0 turns it off. */
    periodicMs?: number;
    /** Automatic cycles at least this far apart. Default 5000. */
    minIntervalMs?: number;
    /** A cycle this long after a local write. Default 1000. */
    localChangeDelayMs?: number;
  };
  retry?: {
    /** Rejections before a change is failed. Default 5. */
    maxRetries?: number;
    /** Default 1000. */
    baseDelayMs?: number;
    /** Default 300000. */
    maxDelayMs?: number;
    /** A server's Retry-After is honoured up to this long. Default 3600000 (one hour). */
    maxRetryAfterMs?: number;
  };
  batch?: {
    /** Changes per request. Default 100. */
    push?: number;
    /** Pulled changes per response. Default 1000. */
    pull?: number;
  };
  /** Keep the process alive while started. Default false. */
  keepAlive?: boolean;
  /** Checks connectivity itself: true for the defaults, or its options. Off by default; without a transport only false. */
  healthCheck?: boolean | HealthCheckOptions;
  /**
   * Live updates while started and online: on by default when the transport has `events`
   * (httpTransport without a custom fetch); false polls instead. Without a transport only false.
   */
  live?: boolean | LiveOptions;
  /** Open an existing database only: a missing file is NOT_FOUND and is not created. Default false. */
  mustExist?: boolean;
  /**
   * Look at a file an app may have open, without taking part (a support tool, the device
   * inspector): changes in flight are never returned to pending and no checkpoint runs. No
   * transport with it. Default false.
   */
  observer?: boolean;
}

/** The EventEmitter methods SyncClient has (it is a Node EventEmitter), declared here so no Node types are needed. */
export interface EventEmitterLike {
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
  removeAllListeners(event?: string | symbol): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  emit(event: string | symbol, ...args: any[]): boolean;
  listenerCount(event: string | symbol): number;
  listeners(event: string | symbol): Function[];
  eventNames(): Array<string | symbol>;
  setMaxListeners(n: number): this;
  getMaxListeners(): number;
}

export interface SyncClient extends EventEmitterLike {}
export class SyncClient {
  constructor(options: SyncClientOptions);
  readonly path: string;
  readonly deviceId: string;
  readonly isOpen: boolean;
  readonly queue: ChangeQueue;
  /** The server version this client has pulled up to (0 before the first pull). */
  readonly serverVersion: number;

  put<T extends JsonFields<T>>(entityType: string, entityId: string, doc: T): WriteResult;
  patch<T extends JsonFields<T>>(entityType: string, entityId: string, fields: T): WriteResult;
  delete(entityType: string, entityId: string): boolean;
  get<T = JsonObject>(entityType: string, entityId: string, options?: { meta?: false }): T | undefined;
  get<T = JsonObject>(entityType: string, entityId: string, options: { meta: true }): DocumentWithMeta<T> | undefined;
  list<T = JsonObject>(entityType: string, options?: ListOptions): T[];
  createIndex(entityType: string, field: string): void;
  transaction<T>(fn: (client: this) => T extends PromiseLike<unknown> ? never : T): T;
  /** Several writes in one transaction, all or none; results in order (a delete: whether there was a document). */
  batch(ops: BatchOp[]): Array<WriteResult | boolean>;
  purgeTombstones(retentionMs?: number): number;

  /**
   * Applies a pulled page on a worker thread, validated whole first, then in chunks. A Buffer or
   * ArrayBuffer is read in place while the page applies: do not modify, transfer or detach it
   * until the promise settles (a resizable ArrayBuffer is copied first).
   */
  applyRemote(page: Uint8Array | ArrayBuffer | DataView | string): Promise<ApplyResult>;
  conflicts(): Conflict[];
  resolveConflict(conflictId: number, resolution: ConflictResolution): JsonObject | undefined;

  ingest(dir: string, options?: IngestOptions): Promise<IngestReport>;
  previewIngest(dir: string, options?: Omit<IngestOptions, 'dryRun'>): Promise<IngestReport>;
  ingestStatus(): IngestStatus | null;
  resetIngest(): void;

  /** Starts syncing by itself. Needs the transport option. */
  start(): void;
  /** Stops automatic syncing; a cycle in flight is aborted and its changes stay queued. */
  stop(): void;
  /** Runs a cycle (manual by default: now, bypassing the interval and backoff, retrying failed changes). */
  sync(options?: { manual?: boolean }): Promise<SyncSummary>;
  notify(event: SyncNotifyEvent): void;
  readonly status: SyncStatus;

  close(): void;

  on(event: 'change', listener: (event: ChangeEvent) => void): this;
  on(event: 'conflict', listener: (conflict: AppliedConflict | ServerConflictEvent) => void): this;
  on(event: 'progress', listener: (progress: ApplyProgress) => void): this;
  on(event: 'status', listener: (status: SyncStatus) => void): this;
  on(event: 'sync', listener: (summary: SyncSummary) => void): this;
  on(event: 'error', listener: (error: SyncError) => void): this;
  on(event: 'ingest-progress', listener: (progress: IngestProgress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'change', listener: (event: ChangeEvent) => void): this;
  once(event: 'conflict', listener: (conflict: AppliedConflict) => void): this;
  once(event: 'progress', listener: (progress: ApplyProgress) => void): this;
  once(event: 'status', listener: (status: SyncStatus) => void): this;
  once(event: 'sync', listener: (summary: SyncSummary) => void): this;
  once(event: 'error', listener: (error: SyncError) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

// ---- server

export interface SyncServerLimits {
  /** Changes in one push. Default 100000 (the router's body limit is the real guard). */
  maxChangesPerPush?: number;
  /** Largest `limit` of a pull. Default 10000. */
  maxPullLimit?: number;
  /** Pull page size when none is asked for. Default 1000. */
  defaultPullLimit?: number;
  /** Bytes of pulled changes, records and conflicts' serverData in one response (one always goes). Default 4 MiB. */
  maxResponseBytes?: number;
  /** Nesting of a document. Default 64. */
  maxDepth?: number;
  /** Canonical size of one document. Default 1 MiB. */
  maxDocumentBytes?: number;
  /** Request body read by the router. Default 10 MiB. */
  maxBodyBytes?: number;
}

/** What a server's resolver is given, as plain data. */
export interface ServerResolverContext {
  entityType: string;
  entityId: string;
  /** The server's current document; null when absent or deleted. */
  server: JsonObject | null;
  /** The document the client's change proposes; null for a delete. */
  client: JsonObject | null;
  /** The document at the change's baseVersion, from the log; null without one. */
  base: JsonObject | null;
  /** The server's version of the entity the resolver decides on. */
  serverVersion: number;
  clientChange: {
    changeId: string;
    type: ChangeType;
    data: JsonObject | null;
    baseVersion: number | null;
    timestamp: number;
    deviceId: string;
  };
}

/**
 * An app's own conflict resolver on the server: 'local' is the client's side, 'remote' the
 * server's, needsManualReview a manual conflict. It runs on the main thread for conflicting
 * changes only; a throw, a rejection, a wrong answer or one later than resolverTimeoutMs makes
 * a manual conflict whose reason says so. Its verdict is recorded with the change.
 */
export type ServerConflictResolver = (context: ServerResolverContext) => ResolverResolution | Promise<ResolverResolution>;

/**
 * Where a PostgreSQL-backed SyncServer keeps its data. Give a connection string, or the fields a
 * `pg` user writes, or a `pg.Pool` (its options are read; deltasync opens its own connections
 * through libpq, which must be installed: `apt install libpq5`).
 */
export interface PostgresOptions {
  /** A libpq connection string or URL: `postgresql://user:pass@host:5432/db?sslmode=require`. */
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** true: sslmode=require; false: disable. To verify certificates use sslmode=verify-full in connectionString. */
  ssl?: boolean | { rejectUnauthorized: false };
  /** The schema of deltasync's tables, created when missing. Default 'deltasync'. */
  schema?: string;
  /** Connections opened at most by this process. Default 8. */
  poolSize?: number;
  /** The libpq shared library to load. Default: the system's libpq.so.5. */
  libpq?: string;
}

/** A `pg.Pool`, as far as deltasync reads it. */
export interface PgPoolLike {
  query: (...args: any[]) => unknown;
  options: Omit<PostgresOptions, 'poolSize'> & { max?: number };
}

export interface SyncServerOptions {
  /** SQLite file; ':memory:' allowed. Give either path or postgres. */
  path?: string;
  /** PostgreSQL instead of a file: any number of processes may share the database. */
  postgres?: PostgresOptions | PgPoolLike;
  /** Default strategy for changes that meet a concurrent change, or your own resolver. Default 'newest_wins'. */
  conflicts?: ConflictStrategy | ServerConflictResolver;
  /** How long a resolver may take before its conflict becomes a manual one. Default 1000. */
  resolverTimeoutMs?: number;
  /** newest_wins: timestamps closer than this are a tie, and a tie goes to the server. Default 1000. */
  toleranceMs?: number;
  /**
   * A change timestamped more than this ahead of the server's clock is stamped with the time the
   * server received it, so a wrong clock cannot pin an entity. Default 60000.
   */
  maxClockSkewMs?: number;
  /** Strategy or resolver per entity type, e.g. { goal: 'merge', list: unionOfItems }. */
  perType?: Record<string, ConflictStrategy | ServerConflictResolver>;
  limits?: SyncServerLimits;
  /**
   * 'full' syncs every commit to disk. On SQLite, requests that queue for the one connection share
   * a transaction and a commit, so under load that is one fsync per group of requests. Default 'normal'.
   */
  durability?: 'normal' | 'full';
  busyTimeoutMs?: number;
  /** For the compatible routes and importSnapshot: the id field of each entity type (default `id`, else `<singular>_id`). */
  idFields?: Record<string, string>;
}

/** A change as a device sends it. */
export interface WireChange {
  changeId: string;
  type: ChangeType;
  entityType: string;
  entityId: string;
  data?: JsonObject | null;
  baseVersion?: number | null;
  timestamp?: number;
  [extra: string]: unknown;
}

/** A change as the server's log holds it. */
export interface LoggedChange {
  version: number;
  changeId: string;
  type: ChangeType;
  entityType: string;
  entityId: string;
  data: JsonObject | null;
  timestamp: number;
  deviceId: string | null;
}

export interface SyncRequest {
  deviceId: string;
  lastKnownServerVersion?: number;
  changes?: WireChange[];
  limit?: number;
}

export interface ServerConflictReport {
  changeId: string;
  /** With manual: the id to resolve. */
  conflictId?: number;
  entityType: string;
  entityId: string;
  reason: string;
  /** The strategy that decided ('custom': the app's resolver). */
  resolution: ConflictStrategy | 'custom';
  winner: 'client' | 'server' | 'merged' | 'manual';
  serverVersion: number | null;
  /** The server's current data, so the client can roll back; null when deleted. Absent when serverDataOmitted. */
  serverData?: JsonObject | null;
  /** The entity's data is in an earlier conflict of this response, or was over the response's byte budget. */
  serverDataOmitted?: true;
}

export interface PushResponse {
  applied: Array<{ changeId: string; version: number }>;
  conflicts: ServerConflictReport[];
  errors: Array<{ changeId: string; code: string; message: string }>;
  latestServerVersion: number;
}

export interface PullResponse {
  newChanges: LoggedChange[];
  /** The version this response brings the device to: the next lastKnownServerVersion. */
  latestServerVersion: number;
  /** The user's newest version. */
  headVersion: number;
  hasMore: boolean;
  /** lastKnownServerVersion was ahead of the server's history: this page starts from 0. */
  resync?: true;
  /** With resync: the server's head before this request's own changes. */
  resyncFrom?: number;
}

export type SyncResponse = Omit<PushResponse, 'latestServerVersion'> & PullResponse;

export interface DeviceStatus {
  deviceId: string;
  lastPushAt: number | null;
  lastPullAt: number | null;
  changesPushed: number;
  conflictsReported: number;
  lastSeenVersion: number;
  openConflicts: number;
  latestServerVersion: number;
}

export interface ServerConflict {
  id: number;
  changeId: string;
  deviceId: string | null;
  entityType: string;
  entityId: string;
  type: ChangeType;
  clientData: JsonObject | null;
  baseVersion: number | null;
  clientTimestamp: number;
  createdAt: number;
  serverData: JsonObject | null;
  serverVersion: number | null;
}

export type ServerResolution = { use: 'client' | 'server' } | { use: 'merged'; data: JsonObject };

export interface ResolveResult {
  conflictId: number;
  resolution: 'client' | 'server' | 'merged';
  /** The version the resolution created, or null for 'server'. */
  version: number | null;
  entityType: string;
  entityId: string;
  serverVersion: number | null;
  serverData: JsonObject | null;
}

export class SyncServer {
  constructor(options: SyncServerOptions);
  /** The SQLite file; undefined on PostgreSQL. */
  readonly path: string | undefined;
  /** Which store holds the data. */
  readonly store: 'sqlite' | 'postgres';
  readonly isOpen: boolean;
  readonly limits: Required<SyncServerLimits>;
  sync(userId: string, request: SyncRequest | string | Uint8Array): Promise<SyncResponse>;
  push(userId: string, deviceId: string, changes: WireChange[]): Promise<PushResponse>;
  pull(userId: string, options?: { since?: number; limit?: number; deviceId?: string }): Promise<PullResponse>;
  status(userId: string, deviceId: string): Promise<DeviceStatus>;
  /** Open conflicts with an id above `after`, oldest first, up to limits.maxResponseBytes (at least one). */
  conflicts(userId: string, options?: { after?: number }): Promise<ServerConflict[]>;
  resolveConflict(userId: string, conflictId: number, resolution: ServerResolution): Promise<ResolveResult>;
  importSnapshot(
    userId: string,
    state: Record<string, JsonObject[]> | string | Uint8Array,
    options?: { idFields?: Record<string, string> },
  ): Promise<{ imported: number; skipped: number; latestServerVersion: number }>;
  close(): void;
}
