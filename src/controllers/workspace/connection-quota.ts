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
  return own === undefined
    ? { limit: defaultMax, source: "the operator's default; set spec.policy.maxConnections to change it" }
    : { limit: own, source: 'spec.policy.maxConnections' };
}

export function connectionQuota(
  namespace: string,
  limit: number,
  metadata: Pick<NonNullable<KubeObject['metadata']>, 'labels' | 'ownerReferences'>,
): ResourceQuota {
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
  return (
    countOf(quota?.status?.hard?.[CONNECTION_COUNT]) === limit && quota?.status?.used?.[CONNECTION_COUNT] !== undefined
  );
}

const DECIMAL_SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/**
 * The value of an object-count quantity as the API server writes it back: in
 * canonical form, so 1000 comes back as "1k" and 10000 as "10k" (a string
 * comparison with "10000" never matched, and such a Workspace stayed
 * QuotaPending). Undefined for anything that is not a whole count.
 */
export function countOf(quantity: string | undefined): number | undefined {
  const m = quantity === undefined ? null : /^(\d+)(?:([kMGTPE])|e(\d+))?$/.exec(quantity);
  if (!m) return undefined;
  return Number(m[1]) * (m[3] !== undefined ? 10 ** Number(m[3]) : DECIMAL_SUFFIX[m[2] ?? '']!);
}

/**
 * True when quota admission counts connections against this quota now: it
 * matches a quota only by the resources in status.hard, so a quota the
 * controller has not taken up yet limits nothing.
 */
export function quotaEnforcing(quota: ResourceQuota | undefined): boolean {
  return quota?.status?.hard?.[CONNECTION_COUNT] !== undefined && quota.status.used?.[CONNECTION_COUNT] !== undefined;
}
