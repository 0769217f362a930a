// Types for deltasync/react: React hooks over a SyncClient or the Electron renderer client.
import type { ReactElement, ReactNode } from 'react';
import type {
  ApplyProgress,
  Conflict,
  ConflictResolution,
  JsonObject,
  ListOptions,
  SyncClient,
  SyncStatus,
  SyncSummary,
} from './index';
import type { RendererSyncClient } from './electron-preload';

export type { RendererSyncClient };

/** A client SyncProvider accepts: the in-process SyncClient, or the Electron renderer client (window.deltasync). */
export type SyncClientLike = SyncClient | RendererSyncClient;

/** What useSyncStatus selects from: the client's status plus the progress of the page being applied. */
export interface SyncStatusSnapshot extends SyncStatus {
  /** The last 'progress' event while a page is applied; null when none is (cleared by the page's 'change' event or a status that is not 'syncing'). */
  progress: ApplyProgress | null;
}

export interface SyncProviderProps<C extends SyncClientLike = SyncClientLike> {
  client: C;
  children?: ReactNode;
}

/**
 * Makes `client` available to the hooks below it. Components under providers of the same
 * client share one cache of reads.
 * @throws TypeError when `client` is neither a SyncClient nor the renderer client
 */
export function SyncProvider<C extends SyncClientLike>(props: SyncProviderProps<C>): ReactElement;

/**
 * The client given to the nearest SyncProvider.
 * @throws Error when called outside a SyncProvider (as every hook here does)
 */
export function useSyncClient<C extends SyncClientLike = SyncClientLike>(): C;

/**
 * The status snapshot, or null before the first status is known (the renderer client
 * answers asynchronously; an in-process client never gives null).
 */
export function useSyncStatus(): SyncStatusSnapshot | null;
/**
 * What `selector` picks from the status snapshot (which is null before the first status is
 * known: the selector must accept null). The component re-renders only when the selection
 * changes by `isEqual` (default Object.is): `useSyncStatus((s) => s?.state)` does not
 * re-render on a progress tick.
 */
export function useSyncStatus<T>(selector: (snapshot: SyncStatusSnapshot | null) => T, isEqual?: (a: T, b: T) => boolean): T;

/**
 * The document, or undefined when there is none or before the first read is back (renderer
 * client). Re-renders only when the document's JSON changes. A failed read throws during render.
 */
export function useDocument<T = JsonObject>(entityType: string, entityId: string): T | undefined;

/**
 * The documents `list(entityType, options)` returns, refetched after every change that may
 * touch them; the same empty array before the first read is back. The array keeps its
 * reference while its JSON is unchanged. A failed read throws during render.
 */
export function useQuery<T = JsonObject>(entityType: string, options?: ListOptions): readonly T[];

export interface UseConflictsResult {
  /** The open conflicts (the 'manual' strategy); the same empty array while none is known. */
  conflicts: readonly Conflict[];
  /** Resolves one; the conflict list and the entity's documents are read again after it. */
  resolve(conflictId: number, resolution: ConflictResolution): Promise<JsonObject | undefined>;
}

/** The open conflicts and a resolve function. */
export function useConflicts(): UseConflictsResult;

export interface UseSyncResult {
  /** Runs a manual cycle and resolves with its summary; rejects with the cycle's error (also shown in syncError). Takes no arguments, so `onClick={sync}` works. */
  sync(): Promise<SyncSummary>;
  /** status.state, or null before the first status is known. */
  syncState: SyncStatus['state'] | null;
  /** status.lastError. */
  syncError: SyncStatus['lastError'];
  /** A cycle is running, or a sync() from this component is in flight. */
  isLoading: boolean;
}

/** Manual sync and the sync state. */
export function useSync(): UseSyncResult;

export interface UseSyncTriggersResult {
  /** Runs a manual cycle, as useSync().sync. */
  manualSync(): Promise<SyncSummary>;
  /** A cycle is running, or a manualSync() from this component is in flight. */
  isSyncing: boolean;
}

/**
 * Manual sync, and with an in-process client the window's focus/blur, visibility and
 * online/offline reported to client.notify() while mounted (failures, e.g. no transport,
 * ignored). With the renderer client the preload already reports them.
 */
export function useSyncTriggers(): UseSyncTriggersResult;
