import type http from 'node:http';
import { authorizeConnection, deliveries } from './access.js';
import type { Caller } from './caller.js';
import type { GatewayContext } from './context.js';
import { deliveryNotAllowed, GatewayError, GatewayErrorCode, GatewayErrorMessage, notReady } from './errors.js';
import type { RequestBody } from './framing.js';
import { proxyRequest } from './proxy.js';
import type { Route } from './routes.js';
import { requestPlan } from './upstream-plan.js';

/**
 * `/v1/connections/<name>/proxy/...`: forwards the request with the
 * connection's credential injected. Every request is checked in full (use
 * grant, workspace, type and delivery, credentials current, egress policy at
 * dial time); only the rendering of what the connection's requests share is
 * reused between requests (ConnectionPlans).
 */
export async function serveProxy(
  ctx: GatewayContext,
  caller: Caller,
  route: Extract<Route, { kind: 'proxy' }>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: RequestBody,
): Promise<number> {
  const conn = await authorizeConnection(ctx, caller, route.connection, 'use');
  ctx.usage.record(caller.namespace, route.connection, conn.metadata?.uid, caller.serviceAccount, 'proxy');
  const workspace = ctx.directory.workspace(caller.namespace);
  if (workspace === undefined) throw notReady(GatewayErrorMessage.noWorkspace);
  const type = ctx.directory.integrationType(conn.spec?.type ?? '');
  if (type === undefined || type.spec?.gateway === undefined)
    throw new GatewayError(400, GatewayErrorCode.NotProxyable, GatewayErrorMessage.notProxyable);
  if (!deliveries(type.spec?.delivery).includes('proxy'))
    throw deliveryNotAllowed(GatewayErrorMessage.proxyNotAllowedByType);
  const credentials = await ctx.directory.credentials(caller.namespace, route.connection);
  const plan = ctx.plans.plan(caller.namespace, conn, type, workspace, credentials);
  return proxyRequest(req, res, requestPlan(plan.target, route.path, route.search), {
    client: ctx.upstream,
    egress: plan.egress,
    owner: plan.owner,
    body,
  });
}
