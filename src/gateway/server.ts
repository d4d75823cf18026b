import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Envelope } from '../crypto/index.js';
import type { KubeClient } from '../kube/client.js';
import type { DialOverride } from '../integrations/probe-types.js';
import { validateSettings } from '../integrations/settings.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { Logger } from '../runtime/logger.js';
import { GatewayAuthorizer, type ConnectionVerb } from './authorizer.js';
import { bearerToken, GATEWAY_AUDIENCE, type Caller } from './caller.js';
import { ConnectionDirectory } from './connection-directory.js';
import { sendCredentialsOnce, streamCredentials } from './credentials-stream.js';
import {
  ambiguousFraming,
  badRequest,
  deliveryNotAllowed,
  forbidden,
  GatewayError,
  GatewayErrorCode,
  GatewayErrorMessage,
  notFound,
  notReady,
  unauthorized,
} from './errors.js';
import { checkFraming, type FramingVerdict, type RequestBody } from './framing.js';
import { proxyRequest } from './proxy.js';
import { sourceKey } from './source-limiter.js';
import { parseRoute, type Route } from './routes.js';
import { UpstreamClient } from './upstream-client.js';
import { UsageRecorder } from './usage-recorder.js';
import { planUpstream } from './upstream-plan.js';

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

/** Fields of the one access-log line per request: never the token, a header, a path or a query value. */
interface AccessEntry {
  route: Route['kind'];
  method: string;
  namespace?: string;
  serviceAccount?: string;
  connection?: string;
  code?: string;
}

/**
 * `atoll gateway`: an HTTP proxy through which a workload uses a connection
 * by name without ever seeing its credential (spec section 5). Every request
 * is authenticated by TokenReview (audience atoll-gateway) and authorized by
 * SubjectAccessReview (verb `use` on the connection); the namespace comes
 * from the token only, so a connection is looked up in the caller's own
 * namespace and nowhere else, whatever RBAC grants elsewhere.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log.child({ component: 'gateway' });
  if (opts.tls === undefined && opts.insecurePlaintext !== true) {
    throw new Error('the gateway serves HTTPS: give it a certificate (tls), or opt out explicitly with insecurePlaintext');
  }
  const directory = new ConnectionDirectory({ client: opts.client, envelope: opts.envelope, log });
  const authorizer = new GatewayAuthorizer({
    client: opts.client,
    audience: opts.audience ?? GATEWAY_AUDIENCE,
    cacheTtlMs: opts.authCacheTtlMs ?? 10_000,
    ...(opts.unknownTokens ? { unknownTokens: opts.unknownTokens } : {}),
  });
  const upstream = new UpstreamClient({ upstreamCAs: opts.upstreamCAs, dial: opts.dial, timeoutMs: opts.upstreamTimeoutMs ?? 30_000 });
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const usage = new UsageRecorder({ client: opts.client, log, ...opts.usage });
  await directory.start();
  usage.start();

  async function authenticate(req: http.IncomingMessage, entry: AccessEntry): Promise<{ caller: Caller; token: string }> {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw unauthorized(GatewayErrorMessage.missingToken);
    const caller = await authorizer.authenticate(token, sourceKey(req.socket.remoteAddress));
    entry.namespace = caller.namespace;
    entry.serviceAccount = caller.serviceAccount;
    return { caller, token };
  }

  async function authorizeConnection(caller: Caller, connection: string, verb: ConnectionVerb) {
    if (!(await authorizer.may(caller, verb, connection))) {
      throw forbidden(verb === 'use' ? GatewayErrorMessage.notAllowed : GatewayErrorMessage.readCredentialsNotAllowed);
    }
    const found = directory.connection(caller.namespace, connection);
    if (found === undefined) throw notFound();
    return found;
  }

  function requireMethod(req: http.IncomingMessage, allowed: string[]): void {
    if (!allowed.includes(req.method ?? '')) throw new GatewayError(405, GatewayErrorCode.MethodNotAllowed, GatewayErrorMessage.methodNotAllowed);
  }

  async function catalogue(caller: Caller, res: http.ServerResponse): Promise<number> {
    const everything = await authorizer.may(caller, 'use', undefined);
    const items = [];
    for (const conn of directory.connections(caller.namespace)) {
      const name = String(conn.metadata?.name);
      if (!everything && !(await authorizer.may(caller, 'use', name))) continue;
      const type = directory.integrationType(conn.spec?.type ?? '');
      items.push({
        name,
        type: conn.spec?.type,
        displayName: conn.spec?.displayName ?? name,
        ready: conn.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
        hint: conn.status?.credentialHint ?? null,
        proxy: type?.spec?.gateway !== undefined && deliveries(type?.spec?.delivery).includes('proxy'),
      });
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ namespace: caller.namespace, items }));
    return 200;
  }

  async function proxy(caller: Caller, route: Extract<Route, { kind: 'proxy' }>, req: http.IncomingMessage, res: http.ServerResponse, body: RequestBody): Promise<number> {
    const conn = await authorizeConnection(caller, route.connection, 'use');
    usage.record(caller.namespace, route.connection, conn.metadata?.uid, caller.serviceAccount, 'proxy');
    const workspace = directory.workspace(caller.namespace);
    if (workspace === undefined) throw notReady(GatewayErrorMessage.noWorkspace);
    const type = directory.integrationType(conn.spec?.type ?? '');
    const gateway = type?.spec?.gateway;
    if (type === undefined || gateway === undefined) throw new GatewayError(400, GatewayErrorCode.NotProxyable, GatewayErrorMessage.notProxyable);
    if (!deliveries(type.spec?.delivery).includes('proxy')) throw deliveryNotAllowed(GatewayErrorMessage.proxyNotAllowedByType);
    const credentials = await directory.credentials(caller.namespace, route.connection);
    const settings = validateSettings({ metadata: type.metadata, spec: type.spec }, conn.spec?.settings);
    if (!settings.ok) throw notReady(GatewayErrorMessage.invalidSettings);
    const plan = planUpstream(gateway, { settings: settings.settings, credentials: credentials.values }, route.path, route.search);
    const owner = { namespace: caller.namespace, name: route.connection, uid: String(conn.metadata?.uid), credentialVersion: JSON.stringify(credentials.versions) };
    return proxyRequest(req, res, plan, { client: upstream, egress: { allowCIDRs: workspace.spec?.policy?.egress?.allowCIDRs ?? [] }, owner, body });
  }

  /** Plaintext delivery needs read-credentials, a type that declares files, and a workspace that allows them. */
  async function authorizeFiles(caller: Caller, connection: string): Promise<void> {
    const conn = await authorizeConnection(caller, connection, 'read-credentials');
    const type = directory.integrationType(conn.spec?.type ?? '');
    if (!deliveries(type?.spec?.delivery).includes('files')) throw deliveryNotAllowed(GatewayErrorMessage.filesNotAllowedByType);
    const workspace = directory.workspace(caller.namespace);
    if (workspace === undefined) throw notReady(GatewayErrorMessage.noWorkspace);
    if (workspace.spec?.policy?.delivery?.files === false) throw deliveryNotAllowed(GatewayErrorMessage.filesNotAllowedByWorkspace);
  }

  async function credentials(caller: Caller, token: string, route: Extract<Route, { kind: 'credentials' }>, res: http.ServerResponse): Promise<number> {
    await authorizeFiles(caller, route.connection);
    const snapshot = await directory.credentials(caller.namespace, route.connection);
    const uid = directory.connection(caller.namespace, route.connection)?.metadata?.uid;
    usage.record(caller.namespace, route.connection, uid, caller.serviceAccount, 'files');
    if (!route.watch) return sendCredentialsOnce(res, route.connection, snapshot);
    const streamClosed = usage.streamOpened(caller.namespace, route.connection, uid, caller.serviceAccount);
    return streamCredentials(res, {
      directory,
      namespace: caller.namespace,
      connection: route.connection,
      initial: snapshot,
      heartbeatMs,
      log,
      stillAllowed: async () => {
        const again = await authorizer.authenticate(token);
        if (again.username !== caller.username) return false;
        // Losing the grant, the connection, the type's files delivery or the workspace's permission ends the stream.
        return authorizeFiles(again, route.connection).then(() => true, () => false);
      },
    }).finally(streamClosed);
  }

  /**
   * Client connections on which a request's framing was refused. Where that
   * request ended is unknowable, so no byte after it may be served: Node has
   * already parsed (and emitted) whatever it read as the next requests, with
   * its own idea of the body's end; behind a front proxy that shares one
   * connection between clients, that "next request" may be an attacker's
   * prefix to someone else's request (RFC 9112 §6.3: respond 400, then close).
   */
  const refusedConnections = new WeakSet<object>();

  async function dispatch(route: Route, req: http.IncomingMessage, res: http.ServerResponse, entry: AccessEntry, framing: FramingVerdict): Promise<number> {
    // Before anything else, so an ambiguous request never reaches an upstream (nor the API server).
    if (!framing.ok) {
      res.shouldKeepAlive = false;
      throw ambiguousFraming(framing.message);
    }
    if (route.kind === 'unknown') throw notFound(GatewayErrorMessage.unknownRoute);
    if (!directory.healthy()) throw notReady(GatewayErrorMessage.notReady);
    const { caller, token } = await authenticate(req, entry);
    switch (route.kind) {
      case 'catalogue':
        requireMethod(req, ['GET']);
        return catalogue(caller, res);
      case 'invalid-path':
        entry.connection = route.connection;
        throw badRequest(GatewayErrorMessage.invalidPath);
      case 'proxy':
        entry.connection = route.connection;
        // TRACE asks the service to echo the request it received, injected credential included (Apache httpd does by default).
        if (req.method === 'TRACE') throw new GatewayError(405, GatewayErrorCode.MethodNotAllowed, GatewayErrorMessage.traceNotForwarded);
        return proxy(caller, route, req, res, framing.body);
      case 'credentials':
        entry.connection = route.connection;
        requireMethod(req, ['GET']);
        return credentials(caller, token, route, res);
      default:
        throw notFound(GatewayErrorMessage.unknownRoute);
    }
  }

  function health(route: Route, res: http.ServerResponse): boolean {
    if (route.kind !== 'healthz' && route.kind !== 'readyz') return false;
    const ok = route.kind === 'healthz' || directory.healthy();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(ok ? 'ok' : 'not ready');
    return true;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Pipelined behind a refused request: never answered (the connection closes after the 400), never served.
    if (refusedConnections.has(req.socket)) {
      req.resume();
      return;
    }
    const route = parseRoute(req.url ?? '/');
    // On every route, health included, and synchronously: the mark must be set before Node parses (and emits) a pipelined request.
    const framing = checkFraming(req);
    if (!framing.ok) refusedConnections.add(req.socket);
    else if (health(route, res)) return;
    const started = performance.now();
    const entry: AccessEntry = { route: route.kind, method: req.method ?? '' };
    let status = 500;
    let cause: ReturnType<typeof describeCause>;
    try {
      status = await dispatch(route, req, res, entry, framing);
    } catch (err) {
      const failure = err instanceof GatewayError
        ? err
        : new GatewayError(500, GatewayErrorCode.Internal, GatewayErrorMessage.internal, { cause: err });
      status = failure.status;
      entry.code = failure.code;
      if (failure.status >= 500) cause = describeCause(failure.cause);
      sendError(res, failure);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const labels = { route: route.kind, code: String(status) };
      opts.metrics.gatewayRequests.inc(labels);
      opts.metrics.gatewayDuration.observe(labels, seconds);
      const line = { ...entry, status, durationMs: Math.round(seconds * 1000), ...(cause ? { cause } : {}) };
      if (status >= 500) log.warn(line, 'gateway request');
      else log.info(line, 'gateway request');
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void handle(req, res);
  };
  // Every request reaches handle(), so the framing check (and the end of the connection after a refusal) applies
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
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  log.info({ address: addr.address, port: addr.port, tls: opts.tls !== undefined }, 'gateway listening');
  if (opts.tls === undefined) log.warn('gateway serves plain HTTP (insecure plaintext opt-out): tokens and credentials cross the network unencrypted');

  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    ready: () => directory.healthy(),
    updateTLS: (tls) => {
      if (server instanceof https.Server) server.setSecureContext({ cert: tls.certPem, key: tls.keyPem });
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await usage.close();
      await upstream.close();
      await directory.stop();
    },
  };
}

function sendError(res: http.ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...(err.status === 401 ? { 'www-authenticate': `Bearer realm="${GATEWAY_AUDIENCE}"` } : {}),
    ...(err.retryAfterSeconds !== undefined ? { 'retry-after': String(err.retryAfterSeconds) } : {}),
  });
  res.end(JSON.stringify(err.body()));
}

/** What is safe to log about a failure's cause: its class and code, never its message (it may quote input). */
function describeCause(cause: unknown): { name?: string; code?: unknown; reason?: unknown } | undefined {
  if (!(cause instanceof Error)) return undefined;
  const c = cause as Error & { code?: unknown; reason?: unknown; status?: unknown };
  return { name: c.name, code: c.code ?? c.status, reason: c.reason };
}

/** A type's allowed deliveries; the CRD defaults an unset list to proxy only. */
function deliveries(declared: readonly string[] | undefined): readonly string[] {
  return declared ?? ['proxy'];
}
