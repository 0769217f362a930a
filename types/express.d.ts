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
    /** Requests in flight at once; past it, 503 OVERLOADED with Retry-After: 1. Default 64. Live streams do not count. */
    maxConcurrentRequests?: number;
    /** Requests of one user in flight at once; past it, 503 OVERLOADED with Retry-After: 1. Default half of maxConcurrentRequests (32). Live streams do not count. */
    maxConcurrentRequestsPerUser?: number;
    /** A request body of which no byte arrives for this long is answered 408 REQUEST_TIMEOUT and its connection closed. Default 30000. */
    bodyIdleTimeoutMs?: number;
    /** Live streams open at once on this router; past it, 429 TOO_MANY_STREAMS with Retry-After. Default 1000. */
    maxStreams?: number;
    /** Live streams of one user; past it, 429 TOO_MANY_STREAMS. Default 16. */
    maxStreamsPerUser?: number;
  };
  /** A comment line on each idle live stream this often, so proxies keep it open. Default 15000. */
  heartbeatMs?: number;
  /** For the compatible routes: the id field of each entity type. */
  idFields?: Record<string, string>;
}

/**
 * POST /v2, GET /v2/events (live updates, Server-Sent Events), GET /v2/status, POST /v2/migrate, and the compatible routes POST /push, /pull, /full, /resolve-conflict,
 * GET /status/:deviceId and GET /changes?since=.
 */
export function createSyncRouter(server: SyncServer, options: SyncRouterOptions): Router;
