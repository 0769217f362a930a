// deltasync/express: the sync routes for an Express app.
import type { Router, Request } from 'express';
import type { SyncServer } from './index';

export { SyncServer } from './index';

export interface SyncRouterOptions {
  /** Returns the user id of the request (or a falsy value / throws: 401). Required: the user id never comes from the body. */
  authenticate: (req: Request) => string | null | undefined | Promise<string | null | undefined>;
  limits?: {
    /** Largest request body, in bytes. Default: the server's limits.maxBodyBytes (10 MiB). */
    maxBodyBytes?: number;
    /** Requests in flight at once; past it, 503 OVERLOADED with Retry-After: 1. Default 64. */
    maxConcurrentRequests?: number;
  };
  /** For the compatible routes: the id field of each entity type. */
  idFields?: Record<string, string>;
}

/**
 * POST /v2, GET /v2/status, POST /v2/migrate, and the compatible routes POST /push, /pull, /full, /resolve-conflict,
 * GET /status/:deviceId and GET /changes?since=.
 */
export function createSyncRouter(server: SyncServer, options: SyncRouterOptions): Router;
