import { RoleBindings, ServiceAccounts } from '../../src/kube/resources.js';
import type { HttpFixture } from '../support/services.js';
import { admin } from '../support/cluster.js';
import { gatewayCall } from './support/tenant.js';

/**
 * A workload of `ns` allowed to use its connections through the real gateway
 * of `atoll dev`: a ServiceAccount, a RoleBinding to atoll-connection-user,
 * a projected-style token with audience atoll-gateway.
 */
export async function gatewayWorkload(
  ns: string,
): Promise<(connection: string, path?: string) => Promise<{ status: number; body: string }>> {
  const client = admin();
  await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
  await client.create(RoleBindings, {
    metadata: { name: 'app-uses-connections', namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
    subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
  });
  const review = await client.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${ns}/serviceaccounts/app/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['atoll-gateway'], expirationSeconds: 3600 },
    },
  );
  const token = review.status.token;
  return async (connection, path = '/check') => {
    // Over HTTPS, verified against the dev CA.
    const res = await gatewayCall(`/v1/connections/${connection}/proxy${path}`, token);
    return { status: res.status, body: await res.text() };
  };
}

/** Every request a recording server received that carried `secret` anywhere (headers, URL or body). */
export function carrying(fixture: HttpFixture, secret: string) {
  return fixture.requests.filter(
    (r) => JSON.stringify(r.headers).includes(secret) || r.url.includes(secret) || r.body.includes(secret),
  );
}

/** The Authorization bearer tokens a recording server received, in order. */
export function bearers(fixture: HttpFixture): string[] {
  return fixture.requests.map((r) => String(r.headers.authorization ?? '').replace(/^Bearer /, ''));
}

export const LOOPBACK_EGRESS = { egress: { allowCIDRs: ['127.0.0.0/8'] } };
