import { WORKSPACE_LABEL } from '../../api/v1alpha1/well-known.js';
import type { KubeUpstream } from './kube-upstream.js';

/** A workspace the person may open, and what they may do there. */
export interface WorkspaceAccess {
  namespace: string;
  displayName?: string;
  canEdit: boolean;
}

export interface Identity {
  username: string;
  groups: string[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_CANDIDATES = 100;

/** Who the token belongs to, as the API server sees it (SelfSubjectReview), or undefined if it refuses the token. */
export async function whoAmI(upstream: KubeUpstream, token: string): Promise<Identity | undefined> {
  const res = await upstream.request(
    token,
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    Buffer.from(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' })),
  );
  if (res.status !== 201 && res.status !== 200) return undefined;
  const user = (res.body as { status?: { userInfo?: { username?: string; groups?: string[] } } }).status?.userInfo;
  return user?.username ? { username: user.username, groups: user.groups ?? [] } : undefined;
}

async function allowed(upstream: KubeUpstream, token: string, namespace: string, verb: string): Promise<boolean> {
  const res = await upstream.request(
    token,
    'POST',
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    Buffer.from(
      JSON.stringify({
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace, verb, group: 'atoll.dev', resource: 'externalconnections' } },
      }),
    ),
  );
  return (res.body as { status?: { allowed?: boolean } }).status?.allowed === true;
}

/**
 * The workspaces where this person may list connections. Candidates come
 * from what the person's own token can see: workspace namespaces, if they may
 * list namespaces; the namespace of a ServiceAccount token; and names the
 * person opened before or followed a link to (`known`). Each candidate is
 * then confirmed by a SelfSubjectAccessReview, so a name typed by the person
 * only appears if RBAC lets them in, and a refusal looks the same whether or
 * not the workspace exists.
 */
export async function discoverWorkspaces(
  upstream: KubeUpstream,
  token: string,
  identity: Identity,
  known: string[],
): Promise<WorkspaceAccess[]> {
  const candidates = new Set<string>();
  const listed = await upstream.request(
    token,
    'GET',
    `/api/v1/namespaces?labelSelector=${encodeURIComponent(WORKSPACE_LABEL)}`,
  );
  if (listed.status === 200) {
    for (const ns of (listed.body as { items?: Array<{ metadata?: { name?: string } }> }).items ?? [])
      if (ns.metadata?.name) candidates.add(ns.metadata.name);
  }
  const sa = /^system:serviceaccount:([^:]+):[^:]+$/.exec(identity.username);
  if (sa?.[1]) candidates.add(sa[1]);
  for (const name of known) if (DNS_LABEL.test(name)) candidates.add(name);

  const checked = await Promise.all(
    [...candidates]
      .slice(0, MAX_CANDIDATES)
      .sort()
      .map(async (namespace) => {
        if (!(await allowed(upstream, token, namespace, 'list'))) return undefined;
        const [canCreate, canPatch, canDelete, ws] = await Promise.all([
          allowed(upstream, token, namespace, 'create'),
          allowed(upstream, token, namespace, 'patch'),
          allowed(upstream, token, namespace, 'delete'),
          upstream.request(token, 'GET', `/apis/atoll.dev/v1alpha1/namespaces/${namespace}/workspaces`),
        ]);
        const items =
          ws.status === 200 ? ((ws.body as { items?: Array<{ spec?: { displayName?: string } }> }).items ?? []) : [];
        const displayName = items[0]?.spec?.displayName;
        return { namespace, ...(displayName ? { displayName } : {}), canEdit: canCreate && canPatch && canDelete };
      }),
  );
  return checked.filter((w): w is WorkspaceAccess => w !== undefined);
}
