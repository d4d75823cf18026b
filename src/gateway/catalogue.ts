import type http from 'node:http';
import { deliveries } from './access.js';
import type { Caller } from './caller.js';
import type { GatewayContext } from './context.js';

/** `GET /v1/connections`: the connections of the caller's namespace it may use, with no credential or hint beyond status. */
export async function serveCatalogue(ctx: GatewayContext, caller: Caller, res: http.ServerResponse): Promise<number> {
  const everything = await ctx.authorizer.may(caller, 'use', undefined);
  const items = [];
  for (const conn of ctx.directory.connections(caller.namespace)) {
    const name = String(conn.metadata?.name);
    if (!everything && !(await ctx.authorizer.may(caller, 'use', name))) continue;
    const type = ctx.directory.integrationType(conn.spec?.type ?? '');
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
