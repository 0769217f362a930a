// Type definitions for deltasync. Hand-written; they mirror the JSDoc in lib/.

import { EventEmitter } from 'node:events';

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
  | 'INTERNAL';

/** The error every deltasync operation throws: a message for people, a stable code for programs. */
export class SyncError extends Error {
  constructor(message: string, code: SyncErrorCode | string);
  readonly name: 'SyncError';
  readonly code: SyncErrorCode;
}

export type ChangeType = 'CREATED' | 'UPDATED' | 'DELETED';
export type ChangeStatus = 'pending' | 'syncing' | 'synced' | 'failed';

/** A JSON object: what a document and a change's data are. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

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
}

export class SyncClient extends EventEmitter {
  constructor(options: SyncClientOptions);
  readonly path: string;
  readonly deviceId: string;
  readonly isOpen: boolean;
  readonly queue: ChangeQueue;
  close(): void;
}
