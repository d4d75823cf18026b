import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/kube/client.js';
import { RoleBindings, Secrets } from '../../src/kube/resources.js';
import { admin, randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import {
  createConnection,
  createTestType,
  gatewayCall,
  loopbackWorkspace,
  rawGatewayExchange,
  statuses,
  workload,
} from './support/tenant.js';

/**
 * Red-team pass on issue 9: a workload of workspace B plays with tokens to
 * reach workspace A's connection: a token minted for another audience, B's
 * token on a name that exists only in A, B's ServiceAccount granted `use` in
 * A by a RoleBinding there, a token whose bound object is gone, alternating
 * A's and B's tokens to confuse the decision caches, the catalogue with a
 * namespace parameter, and spoofed client-address headers against the
 * per-source limit on unknown tokens. Each asserts that A's key is never on
 * the upstream's wire except in A's own requests.
 */
describe('attack: token tricks against the gateway', () => {
  let upstream: RawUpstream;
  let nsA: string;
  let nsB: string;
  let tokenA: string;
  let tokenB: string;
  const secretA = randomSecret('tokena');
  const secretB = randomSecret('tokenb');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    nsA = await loopbackWorkspace('tok-a');
    nsB = await loopbackWorkspace('tok-b');
    await createConnection(nsA, 'api', type, upstream.url, secretA);
    await createConnection(nsA, 'only-a', type, upstream.url, secretA);
    await createConnection(nsB, 'api', type, upstream.url, secretB);
    tokenA = await workload(nsA, 'app', { use: true });
    tokenB = await workload(nsB, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  /** A's key appears on the wire only in requests A made, at the given paths. */
  function expectSecretAOnlyAt(paths: string[]): void {
    for (const r of upstream.requests) {
      if (r.raw.toString('latin1').includes(secretA)) {
        expect(paths).toContain(r.path);
        expect(r.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secretA]]);
      }
    }
    const onWire = upstream.wire.map((w) => w.toString('latin1').split(secretA).length - 1).reduce((a, b) => a + b, 0);
    expect(onWire).toBe(upstream.requests.filter((r) => r.raw.toString('latin1').includes(secretA)).length);
  }

  it("refuses a token minted for another audience (the API server's), even of a ServiceAccount with use", async () => {
    const minted = await admin().request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${nsA}/serviceaccounts/app/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      },
    );
    const res = await gatewayCall('/v1/connections/api/proxy/other-audience', minted.status.token);
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain(secretA);
    expect(upstream.requests.some((r) => r.path === '/other-audience')).toBe(false);
  });

  it("B's token on a connection that exists only in A is not found, and on a name both have reaches B's own", async () => {
    const onlyA = await gatewayCall('/v1/connections/only-a/proxy/b-on-only-a', tokenB);
    expect([403, 404]).toContain(onlyA.status);
    const shared = await gatewayCall('/v1/connections/api/proxy/b-on-api', tokenB);
    expect(shared.status).toBe(200);
    const got = upstream.requests.find((r) => r.path === '/b-on-api')!;
    expect(got.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secretB]]);
    expect(upstream.requests.some((r) => r.path === '/b-on-only-a')).toBe(false);
    expectSecretAOnlyAt([]);
  });

  it("a RoleBinding in A granting B's ServiceAccount use changes nothing: the namespace comes from the token", async () => {
    await admin().create(RoleBindings, {
      metadata: { name: 'b-app-uses-a', namespace: nsA },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: nsB }],
    });
    const res = await gatewayCall('/v1/connections/only-a/proxy/b-granted-in-a', tokenB);
    expect(res.status).toBe(404);
    const catalogue = (await (await gatewayCall('/v1/connections', tokenB)).json()) as {
      namespace: string;
      items: Array<{ name: string }>;
    };
    expect(catalogue.namespace).toBe(nsB);
    expect(catalogue.items.map((i) => i.name)).toEqual(['api']);
    expectSecretAOnlyAt([]);
  });

  it('the catalogue ignores any namespace the caller names in the query or path', async () => {
    for (const path of [`/v1/connections?namespace=${nsA}`, `/v1/connections/?ns=${nsA}&namespace=${nsA}`]) {
      const res = await gatewayCall(path, tokenB);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { namespace: string; items: Array<{ name: string }> };
      expect(body.namespace).toBe(nsB);
      expect(body.items.map((i) => i.name)).toEqual(['api']);
    }
    const crafted = await gatewayCall(`/v1/connections/${nsA}/only-a/proxy/x`, tokenB);
    expect(crafted.status).toBe(404);
    expectSecretAOnlyAt([]);
  });

  it("alternating A's and B's tokens never crosses their cached decisions", async () => {
    const paths: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [who, token] = i % 2 === 0 ? ['a', tokenA] : ['b', tokenB];
      const path = `/alt-${who}-${i}`;
      const res = await gatewayCall(`/v1/connections/api/proxy${path}`, token);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      if (who === 'a') paths.push(path);
      const got = upstream.requests.find((r) => r.path === path)!;
      expect(got.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', who === 'a' ? secretA : secretB]]);
    }
    expectSecretAOnlyAt(paths);
  });

  it("a token bound to an object that is deleted stops working (within the decision cache's lifetime)", async () => {
    const anchor = await admin().create<KubeObject>(Secrets, {
      metadata: { name: 'token-anchor', namespace: nsB },
      stringData: { x: 'y' },
    } as never);
    const bound = await admin().request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${nsB}/serviceaccounts/app/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: ['atoll-gateway'],
          expirationSeconds: 3600,
          boundObjectRef: { kind: 'Secret', apiVersion: 'v1', name: 'token-anchor', uid: anchor.metadata?.uid },
        },
      },
    );
    expect((await gatewayCall('/v1/connections/api/proxy/bound-before', bound.status.token)).status).toBe(200);
    await admin().delete(Secrets, 'token-anchor', nsB);
    let status = 200;
    for (let i = 0; i < 60 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = (await gatewayCall('/v1/connections/api/proxy/bound-after', bound.status.token)).status;
    }
    expect(status).toBe(401);
    expectSecretAOnlyAt(upstream.requests.filter((r) => r.path.startsWith('/alt-a-')).map((r) => r.path));
  });

  it('spoofed X-Forwarded-For, X-Real-IP and Forwarded do not give a flood of unknown tokens fresh budgets', async () => {
    const request = (bearer: string, i: number) =>
      `GET /v1/connections/api/proxy/flood HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${bearer}\r\nX-Forwarded-For: 10.9.${i >> 8}.${i & 255}\r\nX-Real-IP: 10.8.${i >> 8}.${i & 255}\r\nForwarded: for=10.7.${i >> 8}.${i & 255}\r\nConnection: close\r\n\r\n`;
    const flood = Array.from({ length: 60 }, () => `made-up.${randomBytes(24).toString('base64url')}.token`);
    const answers = await Promise.all(
      flood.map((bearer, i) => rawGatewayExchange(request(bearer, i), { localAddress: '127.0.0.4', quietMs: 5_000 })),
    );
    const codes = answers.map((a) => statuses(a)[0]);
    expect(codes.every((c) => c === 401 || c === 429)).toBe(true);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(10);
    expect(upstream.requests.some((r) => r.path === '/flood')).toBe(false);
  });
});
