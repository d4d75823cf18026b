/**
 * Attack: a tenant editor overruns spec.policy.maxConnections with a
 * parallel burst of creates (a limit counted from a cache let 7 through
 * under a limit of 3). The Workspace reconciler keeps ResourceQuota
 * atoll-connections, which the API server of `atoll dev` enforces exactly
 * (kube-controller-manager computes its usage).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/errors.js';
import { ExternalConnections, ResourceQuotas, Workspaces } from '../../src/kube/resources.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';

const COUNT = 'count/externalconnections.atoll.dev';
type Quota = KubeObject & {
  spec: { hard: Record<string, string> };
  status?: { hard?: Record<string, string>; used?: Record<string, string> };
};
type Ws = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
};

const connection = (ns: string, name: string) => ({
  metadata: { name, namespace: ns },
  spec: {
    type: 'http-api',
    settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
    credentials: { token: { value: randomSecret('burst') } },
  },
});

async function names(ns: string): Promise<string[]> {
  return (await admin().list<KubeObject>(ExternalConnections, { namespace: ns })).items
    .map((c) => c.metadata!.name!)
    .sort();
}

describe('attack: a parallel burst of creates overruns maxConnections', () => {
  const ns = uniqueName('burst');
  const editor = () => userClient('burst-editor');

  beforeAll(async () => {
    await createWorkspace(ns, {
      policy: { maxConnections: 3 },
      members: [
        { kind: 'User', name: 'burst-editor', role: 'editor' },
        { kind: 'User', name: 'burst-admin', role: 'admin' },
      ],
    });
  });

  it('keeps a ResourceQuota with the limit and says so in QuotaReady', async () => {
    const quota = await admin().get<Quota>(ResourceQuotas, 'atoll-connections', ns);
    expect(quota.spec.hard).toEqual({ [COUNT]: '3' });
    expect(quota.status?.hard?.[COUNT]).toBe('3');
    const ws = await admin().get<Ws>(Workspaces, ns, ns);
    expect(condition(ws, 'QuotaReady')).toMatchObject({
      status: 'True',
      reason: 'Succeeded',
      message: 'ResourceQuota atoll-connections limits the workspace to 3 connections (spec.policy.maxConnections)',
    });
  });

  it('stores exactly 3 of 10 concurrent creates; the rest get an error naming the quota', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => editor().create(ExternalConnections, connection(ns, `c${i}`) as never)),
    );
    const refused = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason as KubeApiError);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(refused).toHaveLength(7);
    for (const err of refused) {
      expect(err).toBeInstanceOf(KubeApiError);
      expect(err.status).toBe(403);
      expect(err.message).toContain('exceeded quota: atoll-connections');
      expect(err.message).toContain(`limited: ${COUNT}=3`);
    }
    expect(await names(ns)).toHaveLength(3);
    // A create one at a time fails the same way: the API server counts, not a cache.
    await expect(editor().create(ExternalConnections, connection(ns, 'one-more') as never)).rejects.toMatchObject({
      status: 403,
    });
    expect(await names(ns)).toHaveLength(3);
  });

  it('tenants cannot loosen the quota', async () => {
    for (const user of ['burst-editor', 'burst-admin']) {
      await expect(
        userClient(user).mergePatch(ResourceQuotas, 'atoll-connections', ns, { spec: { hard: { [COUNT]: '1000' } } }),
      ).rejects.toMatchObject({ status: 403 });
      await expect(userClient(user).delete(ResourceQuotas, 'atoll-connections', ns)).rejects.toMatchObject({
        status: 403,
      });
    }
  });

  it('raising maxConnections raises the quota; lowering it refuses new connections and deletes none', async () => {
    await admin().mergePatch(Workspaces, ns, ns, { spec: { policy: { maxConnections: 5 } } });
    await eventually(
      'quota at 5 and in force',
      () => admin().get<Quota>(ResourceQuotas, 'atoll-connections', ns),
      (q) => q.spec.hard[COUNT] === '5' && q.status?.hard?.[COUNT] === '5',
    );
    await eventually(
      'QuotaReady names 5',
      () => admin().get<Ws>(Workspaces, ns, ns),
      (w) =>
        condition(w, 'QuotaReady')?.message?.includes('to 5 connections') === true &&
        condition(w, 'Ready')?.status === 'True',
    );
    await editor().create(ExternalConnections, connection(ns, 'fourth') as never);
    await editor().create(ExternalConnections, connection(ns, 'fifth') as never);
    await expect(editor().create(ExternalConnections, connection(ns, 'sixth') as never)).rejects.toMatchObject({
      status: 403,
    });
    expect(await names(ns)).toHaveLength(5);

    await admin().mergePatch(Workspaces, ns, ns, { spec: { policy: { maxConnections: 2 } } });
    await eventually(
      'quota at 2 and in force',
      () => admin().get<Quota>(ResourceQuotas, 'atoll-connections', ns),
      (q) => q.status?.hard?.[COUNT] === '2',
    );
    await expect(editor().create(ExternalConnections, connection(ns, 'over') as never)).rejects.toMatchObject({
      status: 403,
    });
    expect(await names(ns)).toHaveLength(5);
  });

  it('gives a Workspace without maxConnections the operator default (500)', async () => {
    const other = uniqueName('default-limit');
    await createWorkspace(other);
    const quota = await admin().get<Quota>(ResourceQuotas, 'atoll-connections', other);
    expect(quota.spec.hard).toEqual({ [COUNT]: '500' });
    const ws = await admin().get<Ws>(Workspaces, other, other);
    expect(condition(ws, 'QuotaReady')?.message).toContain(
      "limits the workspace to 500 connections (the operator's default; set spec.policy.maxConnections to change it)",
    );
  });
});
