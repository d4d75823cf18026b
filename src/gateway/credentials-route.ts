import type http from 'node:http';
import { authorizeFiles } from './access.js';
import type { Caller } from './caller.js';
import type { GatewayContext } from './context.js';
import { sendCredentialsOnce, streamCredentials } from './credentials-stream.js';
import type { Route } from './routes.js';

/** `GET /v1/connections/<name>/credentials[?watch=1]`: plaintext delivery to an agent (read-credentials, files allowed). */
export async function serveCredentials(
  ctx: GatewayContext,
  caller: Caller,
  token: string,
  route: Extract<Route, { kind: 'credentials' }>,
  res: http.ServerResponse,
): Promise<number> {
  await authorizeFiles(ctx, caller, route.connection);
  const snapshot = await ctx.directory.credentials(caller.namespace, route.connection);
  const uid = ctx.directory.connection(caller.namespace, route.connection)?.metadata?.uid;
  ctx.usage.record(caller.namespace, route.connection, uid, caller.serviceAccount, 'files');
  if (!route.watch) return sendCredentialsOnce(res, route.connection, snapshot);
  const streamClosed = ctx.usage.streamOpened(caller.namespace, route.connection, uid, caller.serviceAccount);
  return streamCredentials(res, {
    directory: ctx.directory,
    namespace: caller.namespace,
    connection: route.connection,
    initial: snapshot,
    heartbeatMs: ctx.heartbeatMs,
    log: ctx.log,
    stillAllowed: async () => {
      const again = await ctx.authorizer.authenticate(token);
      if (again.username !== caller.username) return false;
      // Losing the grant, the connection, the type's files delivery or the workspace's permission ends the stream.
      return authorizeFiles(ctx, again, route.connection).then(
        () => true,
        () => false,
      );
    },
  }).finally(streamClosed);
}
