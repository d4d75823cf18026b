import type { Workspace } from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';

/** The ResourceQuota in each workspace namespace that caps its connections. */
export const CONNECTION_QUOTA = 'atoll-connections';
/** Object-count quota of the ExternalConnection custom resource. */
export const CONNECTION_COUNT = 'count/externalconnections.atoll.dev';

export interface ResourceQuota extends KubeObject {
  spec?: { hard?: Record<string, string> };
  status?: { hard?: Record<string, string>; used?: Record<string, string> };
}

/**
 * The connection limit of a workspace: its `spec.policy.maxConnections`, else
 * the operator's default. The API server enforces it through a ResourceQuota,
 * so a parallel burst of creates cannot overrun it (a count from a cache could).
 */
export function connectionLimit(ws: Pick<Workspace, 'spec'>, defaultMax: number): { limit: number; source: string } {
  const own = ws.spec?.policy?.maxConnections;
  return own === undefined ? { limit: defaultMax, source: "the operator's default; set spec.policy.maxConnections to change it" } : { limit: own, source: 'spec.policy.maxConnections' };
}

export function connectionQuota(namespace: string, limit: number, metadata: Pick<NonNullable<KubeObject['metadata']>, 'labels' | 'ownerReferences'>): ResourceQuota {
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: CONNECTION_QUOTA, namespace, ...metadata },
    spec: { hard: { [CONNECTION_COUNT]: String(limit) } },
  };
}

/**
 * True once kube-controller-manager has taken this limit into the quota's
 * status: until then the API server applies the previous limit, or none (see
 * quotaEnforcing), so the workspace is not Ready yet.
 */
export function quotaInForce(quota: ResourceQuota | undefined, limit: number): boolean {
  return quota?.status?.hard?.[CONNECTION_COUNT] === String(limit) && quota.status.used?.[CONNECTION_COUNT] !== undefined;
}

/**
 * True when quota admission counts connections against this quota now: it
 * matches a quota only by the resources in status.hard, so a quota the
 * controller has not taken up yet limits nothing.
 */
export function quotaEnforcing(quota: ResourceQuota | undefined): boolean {
  return quota?.status?.hard?.[CONNECTION_COUNT] !== undefined && quota.status.used?.[CONNECTION_COUNT] !== undefined;
}
