import { CONNECTION_READER_CLUSTER_ROLE, CONNECTION_USER_CLUSTER_ROLE } from '../../api/v1alpha1/index.js';
import type { WorkspaceMember } from '../../api/v1alpha1/index.js';

export type TenantRole = 'viewer' | 'editor' | 'admin';
export const TENANT_ROLES: readonly TenantRole[] = ['viewer', 'editor', 'admin'];

const ATOLL = 'atoll.dev';
const RBAC = 'rbac.authorization.k8s.io';

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const READ = ['get', 'list', 'watch'];

/**
 * The rules of each tenant role (spec section 2). No rule ever names
 * `secrets`: tenants handle credentials only through ExternalConnections,
 * whose values are write-only.
 */
export function tenantRules(role: TenantRole): PolicyRule[] {
  const viewer: PolicyRule[] = [
    { apiGroups: [ATOLL], resources: ['externalconnections', 'workspaces'], verbs: READ },
    { apiGroups: [''], resources: ['events'], verbs: READ },
    { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: READ },
  ];
  if (role === 'viewer') return viewer;
  const editor: PolicyRule[] = [
    ...viewer,
    { apiGroups: [ATOLL], resources: ['externalconnections'], verbs: ['create', 'update', 'patch', 'delete'] },
  ];
  if (role === 'editor') return editor;
  return [
    ...editor,
    {
      apiGroups: [RBAC],
      resources: ['rolebindings'],
      verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    },
    // Admins may bind exactly two ClusterRoles for their workloads: `use` (proxy) and `read-credentials` (plaintext).
    {
      apiGroups: [RBAC],
      resources: ['clusterroles'],
      verbs: ['bind'],
      resourceNames: [CONNECTION_USER_CLUSTER_ROLE, CONNECTION_READER_CLUSTER_ROLE],
    },
  ];
}

export function tenantRoleName(role: TenantRole): string {
  return `atoll-${role}`;
}

export function subjectsFor(members: readonly WorkspaceMember[] | undefined, role: TenantRole, namespace: string) {
  return (members ?? [])
    .filter((m) => m.role === role)
    .map((m) =>
      m.kind === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: m.name, namespace }
        : { kind: m.kind, name: m.name, apiGroup: RBAC },
    )
    .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
}
