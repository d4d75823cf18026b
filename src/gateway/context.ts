import type { Logger } from '../runtime/logger.js';
import type { GatewayAuthorizer } from './authorizer.js';
import type { ConnectionDirectory } from './connection-directory.js';
import type { ConnectionPlans } from './connection-plans.js';
import type { UpstreamClient } from './upstream-client.js';
import type { UsageRecorder } from './usage-recorder.js';

/** The long-lived parts every route handler of one gateway shares (built once by startGateway). */
export interface GatewayContext {
  /** Workspaces, connections, types and managed Secrets, from watches. */
  directory: ConnectionDirectory;
  /** TokenReview and SubjectAccessReview, cached. */
  authorizer: GatewayAuthorizer;
  /** Per-connection upstream pools behind the egress guard. */
  upstream: UpstreamClient;
  /** Per-connection forwarding plans, rebuilt when any object they derive from changes. */
  plans: ConnectionPlans;
  usage: UsageRecorder;
  log: Logger;
  /** Credentials-stream keep-alive and re-authorization period. */
  heartbeatMs: number;
}

/** Fields of the one access-log line per request: never the token, a header, a path or a query value. */
export interface AccessEntry {
  route: string;
  method: string;
  namespace?: string;
  serviceAccount?: string;
  connection?: string;
  code?: string;
}
