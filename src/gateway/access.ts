import type http from 'node:http';
import type { ConnectionVerb } from './authorizer.js';
import { bearerToken, type Caller } from './caller.js';
import type { AccessEntry, GatewayContext } from './context.js';
import { deliveryNotAllowed, forbidden, GatewayErrorMessage, notFound, notReady, unauthorized } from './errors.js';
import { sourceKey } from './source-limiter.js';

/**
 * Who is calling and what they may do: every route after the health checks
 * goes through these. The namespace comes from the token only, so a
 * connection is looked up in the caller's own namespace and nowhere else,
 * whatever RBAC grants elsewhere.
 */
export async function authenticate(
  ctx: GatewayContext,
  req: http.IncomingMessage,
  entry: AccessEntry,
): Promise<{ caller: Caller; token: string }> {
  const token = bearerToken(req.headers.authorization);
  if (token === undefined) throw unauthorized(GatewayErrorMessage.missingToken);
  const caller = await ctx.authorizer.authenticate(token, () => sourceKey(req.socket.remoteAddress));
  entry.namespace = caller.namespace;
  entry.serviceAccount = caller.serviceAccount;
  return { caller, token };
}

/** The connection `name` of the caller's namespace, once the caller holds `verb` on it (403 before 404: a guess reveals nothing). */
export async function authorizeConnection(ctx: GatewayContext, caller: Caller, name: string, verb: ConnectionVerb) {
  if (!(await ctx.authorizer.may(caller, verb, name))) {
    throw forbidden(verb === 'use' ? GatewayErrorMessage.notAllowed : GatewayErrorMessage.readCredentialsNotAllowed);
  }
  const found = ctx.directory.connection(caller.namespace, name);
  if (found === undefined) throw notFound();
  return found;
}

/** Plaintext delivery needs read-credentials, a type that declares files, and a workspace that allows them. */
export async function authorizeFiles(ctx: GatewayContext, caller: Caller, connection: string): Promise<void> {
  const conn = await authorizeConnection(ctx, caller, connection, 'read-credentials');
  const type = ctx.directory.integrationType(conn.spec?.type ?? '');
  if (!deliveries(type?.spec?.delivery).includes('files'))
    throw deliveryNotAllowed(GatewayErrorMessage.filesNotAllowedByType);
  const workspace = ctx.directory.workspace(caller.namespace);
  if (workspace === undefined) throw notReady(GatewayErrorMessage.noWorkspace);
  if (workspace.spec?.policy?.delivery?.files === false)
    throw deliveryNotAllowed(GatewayErrorMessage.filesNotAllowedByWorkspace);
}

/** A type's allowed deliveries; the CRD defaults an unset list to proxy only. */
export function deliveries(declared: readonly string[] | undefined): readonly string[] {
  return declared ?? ['proxy'];
}
