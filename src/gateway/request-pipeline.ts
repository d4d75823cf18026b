import type http from 'node:http';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { authenticate } from './access.js';
import { GATEWAY_AUDIENCE } from './caller.js';
import { serveCatalogue } from './catalogue.js';
import type { AccessEntry, GatewayContext } from './context.js';
import { serveCredentials } from './credentials-route.js';
import {
  ambiguousFraming,
  badRequest,
  GatewayError,
  GatewayErrorCode,
  GatewayErrorMessage,
  notFound,
  notReady,
} from './errors.js';
import { checkFraming, type FramingVerdict } from './framing.js';
import { serveProxy } from './proxy-route.js';
import { parseRoute, type Route } from './routes.js';

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * The gateway's request listener: framing check, health, authentication,
 * then the route's handler; every request ends with one access-log line and
 * its metrics, and every failure with a constant error body.
 */
export function requestListener(ctx: GatewayContext, metrics: OperatorMetrics): Listener {
  /**
   * Client connections on which a request's framing was refused. Where that
   * request ended is unknowable, so no byte after it may be served: Node has
   * already parsed (and emitted) whatever it read as the next requests, with
   * its own idea of the body's end; behind a front proxy that shares one
   * connection between clients, that "next request" may be an attacker's
   * prefix to someone else's request (RFC 9112 §6.3: respond 400, then close).
   */
  const refusedConnections = new WeakSet<object>();

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
    else if (serveHealth(ctx, route, res)) return;
    const started = performance.now();
    const entry: AccessEntry = { route: route.kind, method: req.method ?? '' };
    let status = 500;
    let cause: ReturnType<typeof describeCause>;
    try {
      status = await dispatch(ctx, route, req, res, entry, framing);
    } catch (err) {
      const failure =
        err instanceof GatewayError
          ? err
          : new GatewayError(500, GatewayErrorCode.Internal, GatewayErrorMessage.internal, { cause: err });
      status = failure.status;
      entry.code = failure.code;
      if (failure.status >= 500) cause = describeCause(failure.cause);
      sendError(res, failure);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const labels = metricLabels(route.kind, status);
      metrics.gatewayRequests.inc(labels);
      metrics.gatewayDuration.observe(labels, seconds);
      const level = status >= 500 ? 'warn' : 'info';
      if (ctx.log.isLevelEnabled(level)) {
        const line = { ...entry, status, durationMs: Math.round(seconds * 1000), ...(cause ? { cause } : {}) };
        ctx.log[level](line, 'gateway request');
      }
    }
  }

  return (req, res) => {
    void handle(req, res);
  };
}

/** One label object per route and status (prom-client keeps the first it sees anyway): requests need not build one each. */
const labelsOf = new Map<string, Readonly<{ route: string; code: string }>>();

function metricLabels(route: string, status: number): Readonly<{ route: string; code: string }> {
  const key = `${route} ${status}`;
  let labels = labelsOf.get(key);
  if (labels === undefined) labelsOf.set(key, (labels = { route, code: String(status) }));
  return labels;
}

async function dispatch(
  ctx: GatewayContext,
  route: Route,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  entry: AccessEntry,
  framing: FramingVerdict,
): Promise<number> {
  // Before anything else, so an ambiguous request never reaches an upstream (nor the API server).
  if (!framing.ok) {
    res.shouldKeepAlive = false;
    throw ambiguousFraming(framing.message);
  }
  if (route.kind === 'unknown') throw notFound(GatewayErrorMessage.unknownRoute);
  if (!ctx.directory.healthy()) throw notReady(GatewayErrorMessage.notReady);
  const { caller, token } = await authenticate(ctx, req, entry);
  switch (route.kind) {
    case 'catalogue':
      requireMethod(req, ['GET']);
      return serveCatalogue(ctx, caller, res);
    case 'invalid-path':
      entry.connection = route.connection;
      throw badRequest(GatewayErrorMessage.invalidPath);
    case 'proxy':
      entry.connection = route.connection;
      // TRACE asks the service to echo the request it received, injected credential included (Apache httpd does by default).
      if (req.method === 'TRACE')
        throw new GatewayError(405, GatewayErrorCode.MethodNotAllowed, GatewayErrorMessage.traceNotForwarded);
      return serveProxy(ctx, caller, route, req, res, framing.body);
    case 'credentials':
      entry.connection = route.connection;
      requireMethod(req, ['GET']);
      return serveCredentials(ctx, caller, token, route, res);
    default:
      throw notFound(GatewayErrorMessage.unknownRoute);
  }
}

function requireMethod(req: http.IncomingMessage, allowed: string[]): void {
  if (!allowed.includes(req.method ?? ''))
    throw new GatewayError(405, GatewayErrorCode.MethodNotAllowed, GatewayErrorMessage.methodNotAllowed);
}

/** `/healthz` (`/livez`) and `/readyz`, answered without authentication; false for any other route. */
function serveHealth(ctx: GatewayContext, route: Route, res: http.ServerResponse): boolean {
  if (route.kind !== 'healthz' && route.kind !== 'readyz') return false;
  const ok = route.kind === 'healthz' || ctx.directory.healthy();
  res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
  res.end(ok ? 'ok' : 'not ready');
  return true;
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
