import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Envelope } from '../crypto/index.js';
import type { KubeClient } from '../kube/client.js';
import type { DialOverride } from '../integrations/probe-types.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { Logger } from '../runtime/logger.js';
import { GatewayAuthorizer } from './authorizer.js';
import { GATEWAY_AUDIENCE } from './caller.js';
import { ConnectionDirectory } from './connection-directory.js';
import { ConnectionPlans } from './connection-plans.js';
import type { GatewayContext } from './context.js';
import { requestListener } from './request-pipeline.js';
import { UpstreamClient } from './upstream-client.js';
import { UsageRecorder } from './usage-recorder.js';

export interface GatewayOptions {
  /** The gateway's own identity: TokenReview, SubjectAccessReview, and list/watch of atoll's objects. */
  client: KubeClient;
  envelope: Envelope;
  log: Logger;
  metrics: OperatorMetrics;
  host: string;
  port: number;
  /** Serve HTTPS with this certificate. Required unless `insecurePlaintext` (tokens and plaintext credentials travel in requests). */
  tls?: { certPem: string; keyPem: string };
  /** Serve plain HTTP: an explicit, logged opt-out for a network that already encrypts (a mesh) or tests. */
  insecurePlaintext?: boolean;
  /** TokenReviews of unverified tokens per source address; default burst 30, 3 per second. */
  unknownTokens?: { burst: number; perSecond: number };
  /** Token audience required; only ever `atoll-gateway` outside tests. */
  audience?: typeof GATEWAY_AUDIENCE;
  /** Extra PEM CAs trusted for upstream TLS besides the system ones. */
  upstreamCAs?: string[];
  /** Tests and benchmarks only: connect here instead of the upstream host (egress applies to this address). */
  dial?: (host: string, port: number) => DialOverride | undefined;
  /** Idle time allowed while waiting for an upstream; default 30 s. */
  upstreamTimeoutMs?: number;
  /** How long authentication and authorization answers are reused; default 10 s. */
  authCacheTtlMs?: number;
  /** Credentials-stream keep-alive and re-authorization period; default 15 s. */
  heartbeatMs?: number;
  /** status.usage recording: minimum time between writes of one connection (default 60 s) and this replica's name. */
  usage?: { flushIntervalMs?: number; replica?: string };
}

export interface Gateway {
  url: string;
  /** Caches synced and the API server answering. */
  ready(): boolean;
  /** Serves this certificate to new connections from now on (no-op for a plain-HTTP gateway). */
  updateTLS(tls: { certPem: string; keyPem: string }): void;
  close(): Promise<void>;
}

/**
 * `atoll gateway`: an HTTP proxy through which a workload uses a connection
 * by name without ever seeing its credential (spec section 5). Every request
 * is authenticated by TokenReview (audience atoll-gateway) and authorized by
 * SubjectAccessReview (verb `use` on the connection); the namespace comes
 * from the token only, so a connection is looked up in the caller's own
 * namespace and nowhere else, whatever RBAC grants elsewhere.
 *
 * The parts: `request-pipeline.ts` (framing, health, dispatch, access log),
 * `access.ts` (authentication and grants), one module per route
 * (`proxy-route.ts`, `credentials-route.ts`, `catalogue.ts`), and here the
 * shared state and the HTTP(S) server's life cycle.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  if (opts.tls === undefined && opts.insecurePlaintext !== true) {
    throw new Error(
      'the gateway serves HTTPS: give it a certificate (tls), or opt out explicitly with insecurePlaintext',
    );
  }
  const ctx = gatewayContext(opts);
  await ctx.directory.start();
  ctx.usage.start();
  const server = await listen(opts, requestListener(ctx, opts.metrics), ctx.log);
  const addr = server.address() as AddressInfo;
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    ready: () => ctx.directory.healthy(),
    updateTLS: (tls) => {
      if (server instanceof https.Server) server.setSecureContext({ cert: tls.certPem, key: tls.keyPem });
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await ctx.usage.close();
      await ctx.upstream.close();
      await ctx.directory.stop();
    },
  };
}

/** The state the gateway's requests share: watches, review caches, upstream pools, plans, usage. */
function gatewayContext(opts: GatewayOptions): GatewayContext {
  const log = opts.log.child({ component: 'gateway' });
  return {
    log,
    directory: new ConnectionDirectory({ client: opts.client, envelope: opts.envelope, log }),
    authorizer: new GatewayAuthorizer({
      client: opts.client,
      audience: opts.audience ?? GATEWAY_AUDIENCE,
      cacheTtlMs: opts.authCacheTtlMs ?? 10_000,
      ...(opts.unknownTokens ? { unknownTokens: opts.unknownTokens } : {}),
    }),
    upstream: new UpstreamClient({
      upstreamCAs: opts.upstreamCAs,
      dial: opts.dial,
      timeoutMs: opts.upstreamTimeoutMs ?? 30_000,
    }),
    plans: new ConnectionPlans(),
    usage: new UsageRecorder({ client: opts.client, log, ...opts.usage }),
    heartbeatMs: opts.heartbeatMs ?? 15_000,
  };
}

async function listen(
  opts: GatewayOptions,
  listener: http.RequestListener,
  log: Logger,
): Promise<http.Server | https.Server> {
  // Every request reaches the listener, so the framing check (and the end of the connection after a refusal) applies
  // to all of them: not Node's own 400 for a missing Host, nor its 417 for an unknown Expect, which keep serving what follows.
  const serverOptions = { requireHostHeader: false };
  const server = opts.tls
    ? https.createServer({ ...serverOptions, cert: opts.tls.certPem, key: opts.tls.keyPem }, listener)
    : http.createServer(serverOptions, listener);
  server.on('checkExpectation', listener);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  log.info({ address: addr.address, port: addr.port, tls: opts.tls !== undefined }, 'gateway listening');
  if (opts.tls === undefined)
    log.warn(
      'gateway serves plain HTTP (insecure plaintext opt-out): tokens and credentials cross the network unencrypted',
    );
  return server;
}
