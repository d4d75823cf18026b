import { ConditionType, Reason, findCondition, type Workspace } from '../api/v1alpha1/index.js';

/**
 * Whether the operator's and the gateway's Secret access in a Workspace's
 * namespace is in place. The Workspace reconciler applies those RoleBindings
 * before it reports RBACReady in any way but RBACFailed, so the condition says
 * so to every replica. A Secret watch started before then collects 403s and a
 * restart backoff that grows to 20 s: on a burst of new workspaces that
 * backoff, not the bindings, decided when caching began (ADR 0032).
 */
export function secretAccessGranted(ws: Workspace): boolean {
  const rbac = findCondition(ws.status?.conditions, ConditionType.RBACReady);
  return rbac !== undefined && rbac.reason !== Reason.RBACFailed;
}
