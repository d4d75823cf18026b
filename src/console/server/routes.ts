/**
 * The Kubernetes requests the Integrations panel may forward, and nothing
 * else. The console adds no power of its own (every request carries the
 * person's token), but an allowlist keeps it from becoming a general
 * Kubernetes proxy: Secrets, pods, RBAC writes, watches and impersonation
 * are unreachable through it whatever the person's own RBAC allows.
 */

const NAME = '[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?';
const ATOLL = '/apis/atoll\\.dev/v1alpha1';

interface Route {
  methods: readonly string[];
  pattern: RegExp;
  /** Query parameters forwarded for this route; every other one is dropped. */
  query: readonly string[];
  /** Content types a request body may have. */
  bodyTypes?: readonly string[];
}

const LIST_QUERY = ['labelSelector', 'limit', 'continue'];
const WRITE_QUERY = ['fieldManager', 'fieldValidation'];
const JSON_BODY = ['application/json'];

const ROUTES: Route[] = [
  { methods: ['GET'], pattern: new RegExp(`^${ATOLL}/integrationtypes$`), query: LIST_QUERY },
  { methods: ['GET'], pattern: new RegExp(`^${ATOLL}/integrationtypes/${NAME}$`), query: [] },
  { methods: ['GET'], pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/workspaces$`), query: LIST_QUERY },
  { methods: ['GET'], pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/workspaces/${NAME}$`), query: [] },
  { methods: ['GET'], pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/externalconnections$`), query: LIST_QUERY },
  {
    methods: ['POST'],
    pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/externalconnections$`),
    query: WRITE_QUERY,
    bodyTypes: JSON_BODY,
  },
  {
    methods: ['GET', 'DELETE'],
    pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/externalconnections/${NAME}$`),
    query: [],
  },
  {
    methods: ['PATCH'],
    pattern: new RegExp(`^${ATOLL}/namespaces/${NAME}/externalconnections/${NAME}$`),
    query: WRITE_QUERY,
    bodyTypes: ['application/merge-patch+json'],
  },
  {
    methods: ['POST'],
    pattern: /^\/apis\/authorization\.k8s\.io\/v1\/selfsubjectaccessreviews$/,
    query: [],
    bodyTypes: JSON_BODY,
  },
  {
    methods: ['POST'],
    pattern: /^\/apis\/authorization\.k8s\.io\/v1\/selfsubjectrulesreviews$/,
    query: [],
    bodyTypes: JSON_BODY,
  },
];

export interface AllowedRequest {
  /** Path and filtered query to send to the API server. */
  path: string;
  contentType?: string;
}

/**
 * Decides whether `method path?query` may be forwarded. Paths are matched
 * raw: percent-encoding, dot segments and doubled slashes are refused rather
 * than normalised, so what is checked is exactly what the API server sees.
 */
export function allowKubeRequest(
  method: string,
  rawPath: string,
  contentType: string | undefined,
): AllowedRequest | undefined {
  const q = rawPath.indexOf('?');
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  if (/[%\\]|\/\/|\/\.\.?(\/|$)/.test(path)) return undefined;
  const route = ROUTES.find((r) => r.methods.includes(method) && r.pattern.test(path));
  if (!route) return undefined;
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (route.bodyTypes && (!type || !route.bodyTypes.includes(type))) return undefined;
  const params = new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1));
  const kept = new URLSearchParams();
  for (const name of route.query) {
    const v = params.get(name);
    if (v !== null) kept.set(name, v);
  }
  const query = kept.toString();
  return { path: query ? `${path}?${query}` : path, ...(type && route.bodyTypes ? { contentType: type } : {}) };
}
