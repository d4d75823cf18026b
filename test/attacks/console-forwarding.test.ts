import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { RoleBindings, Secrets } from '../../src/kube/resources.js';
import { admin, createWorkspace, devState, randomSecret, uniqueName } from '../support/cluster.js';
import { serviceAccountToken } from '../console/browser.js';

/**
 * Attacks on the console's backend (`atoll console` from the shared
 * `atoll dev`): it must not become a general Kubernetes proxy, a way around
 * RBAC, or a place a token or Secret comes back from. The person here is a
 * namespace admin who CAN read Secrets with kubectl: the console still never
 * forwards such a request.
 */
describe('attack: using the console as a Kubernetes proxy', () => {
  const ns = uniqueName('console-attack');
  const other = uniqueName('console-attack-other');
  const secretValue = randomSecret('consoleattack');
  let token: string;
  let cookie: string;
  const url = () => devState().console.url;
  const headers = (extra: Record<string, string> = {}) => ({ Cookie: cookie, 'X-Atoll-Console': '1', ...extra });

  beforeAll(async () => {
    await createWorkspace(ns, { members: [{ kind: 'ServiceAccount', name: 'nsadmin', role: 'admin' }] } as never);
    await createWorkspace(other, {});
    token = await serviceAccountToken(ns, 'nsadmin');
    // The attacker may read Secrets in its own namespace through the API server directly.
    await admin().create(RoleBindings, {
      metadata: { name: 'nsadmin-admin', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'nsadmin', namespace: ns }],
    } as never);
    await admin().create(Secrets, {
      metadata: { name: 'db', namespace: ns },
      stringData: { password: secretValue },
    } as never);
    const res = await fetch(`${url()}/api/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Atoll-Console': '1' },
      body: JSON.stringify({ token }),
    });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(token);
    expect(await res.text()).not.toContain(token);
    cookie = setCookie.split(';')[0]!;
  });

  /** A request with its path exactly as written (fetch would resolve dot segments first). */
  function raw(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    const target = new URL(url());
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          method,
          path,
          headers: { ...headers(), ...(body ? { 'Content-Type': 'application/json' } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it.each([
    ['GET', `/api/v1/namespaces/NS/secrets`],
    ['GET', `/api/v1/namespaces/NS/secrets/db`],
    [
      'GET',
      `/apis/atoll.dev/v1alpha1/namespaces/NS/externalconnections/../../../../../api/v1/namespaces/NS/secrets/db`,
    ],
    [
      'GET',
      `/apis/atoll.dev/v1alpha1/namespaces/NS/externalconnections/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/api/v1/namespaces/NS/secrets/db`,
    ],
    [
      'GET',
      `/apis/atoll.dev/v1alpha1/namespaces/NS/externalconnections/x%2F..%2F..%2F..%2F..%2F..%2Fapi%2Fv1%2Fnamespaces%2FNS%2Fsecrets`,
    ],
    ['GET', `/api/v1/namespaces/NS/pods`],
    ['POST', `/api/v1/namespaces/NS/serviceaccounts/nsadmin/token`],
  ])('refuses %s %s and returns nothing of the Secret', async (method, template) => {
    const res = await raw(method, `/api/kube${template.replaceAll('NS', ns)}`, method === 'POST' ? '{}' : undefined);
    expect(res.status).toBe(403);
    const body = res.body;
    expect(body).not.toContain(secretValue);
    expect(body).not.toContain(Buffer.from(secretValue).toString('base64'));
  });

  it('sends only the person’s token: Impersonate-* headers from the browser are dropped', async () => {
    const res = await fetch(`${url()}/api/kube/apis/atoll.dev/v1alpha1/namespaces/${other}/externalconnections`, {
      headers: headers({ 'Impersonate-User': 'system:admin', 'Impersonate-Group': 'system:masters' }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toContain(`system:serviceaccount:${ns}:nsadmin`);
  });

  it('refuses writes without the console’s header or from another origin (cross-site request forgery)', async () => {
    const path = `${url()}/api/kube/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections`;
    const body = JSON.stringify({
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'ExternalConnection',
      metadata: { name: 'csrf' },
      spec: { type: 'http-api', settings: { baseURL: 'https://example.com' } },
    });
    expect(
      (await fetch(path, { method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body }))
        .status,
    ).toBe(403);
    expect(
      (
        await fetch(path, {
          method: 'POST',
          headers: headers({ 'Content-Type': 'application/json', Origin: 'https://evil.example' }),
          body,
        })
      ).status,
    ).toBe(403);
    expect(
      (await fetch(path, { method: 'POST', headers: headers({ 'Content-Type': 'text/plain' }), body })).status,
    ).toBe(403);
    const list = (await (await fetch(path, { headers: headers() })).json()) as {
      items: Array<{ metadata: { name: string } }>;
    };
    expect(list.items.map((c) => c.metadata.name)).not.toContain('csrf');
  });

  it('a forged or missing session gets nothing', async () => {
    const path = `${url()}/api/kube/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections`;
    expect((await fetch(path)).status).toBe(401);
    expect((await fetch(path, { headers: { Cookie: 'atoll_session=forged' } })).status).toBe(401);
    const bad = await fetch(`${url()}/api/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Atoll-Console': '1' },
      body: JSON.stringify({ token: `${token.slice(0, -4)}AAAA` }),
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
  });
});
