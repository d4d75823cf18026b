import type { OperatorContext } from '../controllers/context.js';
import { EventRecorder } from '../kube/events.js';
import { ExternalConnections, Namespaces, Workspaces, type ResourceType } from '../kube/resources.js';
import type { Logger } from '../runtime/logger.js';
import type { DeleteProtectionDeps } from './delete-protection.js';

const KINDS: Record<'ExternalConnection' | 'Workspace' | 'Namespace', ResourceType> = {
  ExternalConnection: ExternalConnections,
  Workspace: Workspaces,
  Namespace: Namespaces,
};

/**
 * The operator's side of delete protection: the configured window, the
 * namespace's state from the API server (a terminating namespace is never
 * blocked), and Events recorded as atoll-webhook. Events about a namespace
 * being deleted are attached to the Namespace itself and so live in
 * `default`, as the API server requires for cluster-scoped objects (nothing
 * new can be created in a terminating namespace anyway).
 */
export function deleteProtectionDeps(ctx: OperatorContext, log: Logger): DeleteProtectionDeps {
  const events = new EventRecorder(ctx.client, 'atoll-webhook', log);
  return {
    windowMs: ctx.config.usage.deleteProtectionWindowMs,
    namespaceTerminating: async (ns) => {
      const namespace = await ctx.client.tryGet(Namespaces, ns);
      return namespace === undefined || namespace.metadata?.deletionTimestamp !== undefined;
    },
    connectionsIn: (ns) => ctx.connections.list(ns),
    record: (about, type, reason, message) => events.record(KINDS[about.kind], about.object, type, reason, message),
  };
}
