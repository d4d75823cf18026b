/**
 * Resource descriptors: the one place that knows how a kind maps to a REST
 * path, so no caller ever builds a URL by hand (or from tenant input).
 */
export interface ResourceType {
  readonly group: string; // '' for the core group
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

function rt(group: string, version: string, kind: string, plural: string, namespaced: boolean): ResourceType {
  return Object.freeze({ group, version, kind, plural, namespaced });
}

export const Namespaces = rt('', 'v1', 'Namespace', 'namespaces', false);
export const Secrets = rt('', 'v1', 'Secret', 'secrets', true);
export const ServiceAccounts = rt('', 'v1', 'ServiceAccount', 'serviceaccounts', true);
export const CoreEvents = rt('', 'v1', 'Event', 'events', true);
export const Roles = rt('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true);
export const RoleBindings = rt('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true);
export const ClusterRoles = rt('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false);
// Used by manifest installation (src/cli/install.ts maps every descriptor here by kind).
export const ClusterRoleBindings = rt(
  'rbac.authorization.k8s.io',
  'v1',
  'ClusterRoleBinding',
  'clusterrolebindings',
  false,
);
export const Leases = rt('coordination.k8s.io', 'v1', 'Lease', 'leases', true);
export const CustomResourceDefinitions = rt(
  'apiextensions.k8s.io',
  'v1',
  'CustomResourceDefinition',
  'customresourcedefinitions',
  false,
);
export const MutatingWebhookConfigurations = rt(
  'admissionregistration.k8s.io',
  'v1',
  'MutatingWebhookConfiguration',
  'mutatingwebhookconfigurations',
  false,
);
export const ValidatingWebhookConfigurations = rt(
  'admissionregistration.k8s.io',
  'v1',
  'ValidatingWebhookConfiguration',
  'validatingwebhookconfigurations',
  false,
);
// The operator fence (config/policy), installed by `atoll dev` through src/cli/install.ts.
export const ValidatingAdmissionPolicies = rt(
  'admissionregistration.k8s.io',
  'v1',
  'ValidatingAdmissionPolicy',
  'validatingadmissionpolicies',
  false,
);
export const ValidatingAdmissionPolicyBindings = rt(
  'admissionregistration.k8s.io',
  'v1',
  'ValidatingAdmissionPolicyBinding',
  'validatingadmissionpolicybindings',
  false,
);
export const ResourceQuotas = rt('', 'v1', 'ResourceQuota', 'resourcequotas', true);
export const TokenReviews = rt('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false);
export const SubjectAccessReviews = rt(
  'authorization.k8s.io',
  'v1',
  'SubjectAccessReview',
  'subjectaccessreviews',
  false,
);
export const SelfSubjectAccessReviews = rt(
  'authorization.k8s.io',
  'v1',
  'SelfSubjectAccessReview',
  'selfsubjectaccessreviews',
  false,
);

export const Workspaces = rt('atoll.dev', 'v1alpha1', 'Workspace', 'workspaces', true);
export const ExternalConnections = rt('atoll.dev', 'v1alpha1', 'ExternalConnection', 'externalconnections', true);
export const IntegrationTypes = rt('atoll.dev', 'v1alpha1', 'IntegrationType', 'integrationtypes', false);

/** `apiVersion` string of a resource type. */
export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Builds a REST path. Names are checked against the DNS-1123 grammar so a
 * crafted name can never smuggle `/`, `..` or a query into the path.
 */
export function resourcePath(
  t: ResourceType,
  opts: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  let path = base;
  if (t.namespaced && opts.namespace !== undefined) path += `/namespaces/${checked(opts.namespace)}`;
  path += `/${t.plural}`;
  if (opts.name !== undefined) path += `/${checked(opts.name)}`;
  if (opts.subresource !== undefined) path += `/${opts.subresource}`;
  return path;
}

function checked(segment: string): string {
  if (!NAME.test(segment)) throw new Error(`invalid object name or namespace: must be a DNS-1123 subdomain`);
  return segment;
}
