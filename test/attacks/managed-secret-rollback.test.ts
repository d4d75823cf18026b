import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, RoleBindings, Secrets } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';
import { bearers, gatewayWorkload, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string>; type?: string };

/**
 * Issue 10.6: someone who may write Secrets in the namespace (the built-in
 * edit role, a CI deployer) rolls a connection's managed Secret back to an
 * older credential: the old `sealed` value from Git history, or a whole
 * earlier copy of the Secret. The gateway never serves the old credential
 * (a recording upstream sees only the current one), the operator repairs the
 * Secret from the source, and status stays truthful.
 */
describe('attack: rolling back a managed Secret', () => {
  const ns = uniqueName('rollback');
  const v1 = randomSecret('old');
  const v2 = randomSecret('new');
  let upstream: HttpFixture;
  let call: Awaited<ReturnType<typeof gatewayWorkload>>;
  let gitV1 = '';
  let secretV1: Secret;
  const get = () => admin().get<Conn>(ExternalConnections, 'rolled', ns);
  const deployer = () => userClient('ci-deployer');

  beforeAll(async () => {
    upstream = await startHttpFixture();
    await createWorkspace(ns, { policy: LOOPBACK_EGRESS });
    await admin().create(RoleBindings, {
      metadata: { name: 'ci-deployer-edit', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: 'ci-deployer', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    await admin().create(ExternalConnections, {
      metadata: { name: 'rolled', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: v1 } },
        probe: { interval: '0' },
      },
    } as never);
    const c1 = await eventually('version 1 Ready', get, (c) => condition(c, 'Ready')?.status === 'True');
    gitV1 = c1.spec.credentials!.token!.sealed!; // what Git holds for version 1
    secretV1 = await admin().get<Secret>(Secrets, 'rolled-credentials', ns); // what a snapshot of the Secret holds
    call = await gatewayWorkload(ns);
    expect((await call('rolled')).status).toBe(200);
    await admin().mergePatch(ExternalConnections, 'rolled', ns, {
      spec: { credentials: { token: { value: v2, sealed: null } } },
    });
    await eventually(
      'version 2 Ready',
      get,
      (c) => c.status?.credentials?.token?.version === 2 && condition(c, 'Ready')?.status === 'True',
    );
    await eventually(
      'gateway serves version 2',
      () => call('rolled'),
      (r) => r.status === 200 && bearers(upstream).at(-1) === v2,
    );
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  /** Calls the gateway while the attack is in place and the operator repairs it; returns what the upstream saw. */
  async function hammer(ms: number): Promise<string[]> {
    const start = upstream.requests.length;
    const until = Date.now() + ms;
    while (Date.now() < until) await call('rolled');
    return bearers(upstream).slice(start);
  }

  it('the sealed value from Git history copied into the managed Secret is never served', async () => {
    await deployer().mergePatch(Secrets, 'rolled-credentials', ns, {
      data: { token: Buffer.from(gitV1).toString('base64') },
    });
    const seen = await hammer(3_000);
    expect(seen).not.toContain(v1);
    // Repaired from the source: the operator's own copy of version 2 is back.
    await eventually(
      'repaired',
      () => call('rolled'),
      (r) => r.status === 200 && bearers(upstream).at(-1) === v2,
    );
    const c = await get();
    expect(c.status?.credentials?.token).toMatchObject({ version: 2, hint: `…${v2.slice(-4)}` });
    expect(condition(c, 'CredentialsSealed')?.status).toBe('True');
  });

  it('a whole earlier copy of the Secret (data and bookkeeping) is never served', async () => {
    const current = await admin().get<Secret>(Secrets, 'rolled-credentials', ns);
    await deployer().replace(Secrets, {
      ...secretV1,
      metadata: { ...secretV1.metadata, resourceVersion: current.metadata!.resourceVersion },
    });
    const seen = await hammer(3_000);
    expect(seen).not.toContain(v1);
    await eventually(
      'repaired',
      () => call('rolled'),
      (r) => r.status === 200 && bearers(upstream).at(-1) === v2,
    );
    const c = await get();
    // Status never claims the old credential, and the version never goes back.
    expect(c.status?.credentials?.token?.hint).toBe(`…${v2.slice(-4)}`);
    expect(c.status?.credentials?.token?.version).toBeGreaterThanOrEqual(2);
  });

  it('the upstream never received the old credential after the rotation', () => {
    const all = bearers(upstream);
    const firstV2 = all.indexOf(v2);
    expect(firstV2).toBeGreaterThan(-1);
    expect(all.slice(firstV2)).not.toContain(v1);
  });
});
