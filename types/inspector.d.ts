// deltasync/inspector: the web inspector of a sync server, for admins.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject, SyncServer } from './index';

export { SyncServer } from './index';

export interface InspectorOptions {
  /**
   * Decides who is an admin: a truthy admin identity (a name, or an object with name/email/id,
   * shown in the page) or a promise of one; a falsy value (or a throw) refuses the request
   * with 403 FORBIDDEN. Every request passes through it, the page and its assets included.
   */
  authenticate: (req: IncomingMessage & { [key: string]: any }) => unknown;
}

/** An Express-compatible handler: app.use('/inspect', createInspector(server, { authenticate })). It also runs under node:http. */
export type InspectorHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * The server's inspector: one web page (users, devices and their lag, the change log, entity
 * history with field diffs, open conflicts resolved by clicking, activity charts) and its JSON
 * API under `api/`. State-changing calls need the `X-Deltasync-Csrf` header from `GET api/session`.
 */
export function createInspector(server: SyncServer, options: InspectorOptions): InspectorHandler;

// ---- the JSON API's answers (GET <mount>/api/...)

export interface InspectorSession {
  admin: string;
  csrfToken: string;
  mode: 'server' | 'device';
  readOnly: boolean;
}

export interface InspectedUser {
  userId: string;
  headVersion: number;
  deviceCount: number;
  lastActivityAt: number | null;
  openConflicts: number;
}

/** GET api/users?after=&limit= */
export interface InspectedUsers {
  users: InspectedUser[];
  /** Pass as `after` for the next page; null on the last. */
  next: string | null;
}

export interface InspectedDevice {
  deviceId: string;
  lastPushAt: number | null;
  lastPullAt: number | null;
  lastSeenVersion: number;
  /** headVersion - lastSeenVersion */
  lag: number;
  changesPushed: number;
  conflictsReported: number;
  openConflicts: number;
}

/** GET api/users/:userId/devices */
export interface InspectedDevices {
  userId: string;
  headVersion: number;
  openConflicts: number;
  devices: InspectedDevice[];
  next: string | null;
}

export interface InspectedChange {
  version: number;
  changeId: string;
  deviceId: string | null;
  type: 'CREATED' | 'UPDATED' | 'DELETED';
  entityType: string;
  entityId: string;
  /** What the change set (for UPDATED, only its fields). */
  data: JsonObject | null;
  baseVersion: number | null;
  clientTimestamp: number;
  serverTimestamp: number;
  resolution: string | null;
}

/** GET api/users/:userId/changes?before=&limit=&entityType=&entityId=&deviceId=&changeType=, newest first */
export interface InspectedChanges {
  changes: InspectedChange[];
  /** Pass as `before` for the older page; null on the last. */
  next: number | null;
}

/** GET api/users/:userId/entities/:entityType/:entityId, newest version first */
export interface InspectedEntity {
  entityType: string;
  entityId: string;
  current: { version: number; deleted: boolean; data: JsonObject | null } | null;
  /** Each with `state`, the whole document after it (null when deleted). */
  versions: Array<InspectedChange & { state: JsonObject | null }>;
  olderOmitted: number;
}

/** GET api/activity?days=&userId= (days are UTC; `day` is its first millisecond) */
export interface InspectedActivity {
  since: number;
  days: number;
  changesPerDay: Array<{ day: number; count: number }>;
  conflictsPerDay: Array<{ day: number; count: number }>;
  deviceLag: Array<{ userId: string; deviceId: string; lag: number }>;
}
