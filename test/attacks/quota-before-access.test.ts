/**
 * Attack: a tenant writes connections before its workspace's quota is in
 * force. The API server's quota admission counts an object only against a
 * quota whose status (filled in by kube-controller-manager) names the
 * resource; a ResourceQuota that is missing or not yet taken up limits
 * nothing. If the Workspace reconciler binds the tenant roles before
 * ResourceQuota atoll-connections is in force, a tenant who fires creates the
 * moment its RoleBinding appears (or while kube-controller-manager is slow or
 * down) stores as many connections as it likes.
 *
 * The test watches the tenant RoleBindings appear and, on each event, reads
 * the quota: it must already be enforcing (status.hard and status.used carry
 * the connection count). Reading the quota after the RoleBinding event is the
 * conservative order: a quota enforcing nothing then enforced nothing when
 * the RoleBinding was written either.
 */
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, Namespaces, ResourceQuotas, RoleBindings, Workspaces } from '../../src/kube/resources.js';
import { admin, condition, eventually, randomSecret, uniqueName, userClient } from '../support/cluster.js';

const COUNT = 'count/externalconnections.atoll.dev';
const TENANT_BINDINGS = ['atoll-viewer', 'atoll-editor', 'atoll-admin'];
type Quota = KubeObject & { status?: { hard?: Record<string, string>; used?: Record<string, string> } };

const connection = (ns: string, name: string) => ({
  metadata: { name, namespace: ns },
  spec: {
    type: 'http-api',
    settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
    credentials: { token: { value: randomSecret('early') } },
  },
});

describe('attack: a tenant writes connections before the workspace quota is in force', () => {
  it('binds no tenant role until ResourceQuota atoll-connections enforces the limit; an early burst stores at most the limit', async () => {
    const ns = uniqueName('early-burst');
    await admin().create(Namespaces, { metadata: { name: ns } });
    const start = await admin().list<KubeObject>(RoleBindings, { namespace: ns });
    const seen: Array<{ binding: string; quotaEnforcing: boolean }> = [];
    const reads: Array<Promise<void>> = [];
    const abort = new AbortController();
    const watching = admin()
      .watch<KubeObject>(
        RoleBindings,
        { namespace: ns, resourceVersion: start.metadata?.resourceVersion ?? '0', signal: abort.signal },
        (ev) => {
          const name = ev.object.metadata?.name ?? '';
          if (ev.type !== 'ADDED' || !TENANT_BINDINGS.includes(name)) return;
          reads.push(
            admin()
              .tryGet<Quota>(ResourceQuotas, 'atoll-connections', ns)
              .then((q) => {
                seen.push({
                  binding: name,
                  quotaEnforcing: q?.status?.hard?.[COUNT] === '1' && q.status.used?.[COUNT] !== undefined,
                });
              }),
          );
        },
      )
      .catch(() => undefined);

    // The tenant fires creates from the moment the Workspace exists.
    const editor = userClient('early-editor');
    await admin().create(Workspaces, {
      metadata: { name: ns, namespace: ns },
      spec: { policy: { maxConnections: 1 }, members: [{ kind: 'User', name: 'early-editor', role: 'editor' }] },
    } as never);
    let i = 0;
    const burst = Array.from({ length: 4 }, async () => {
      for (;;) {
        const ws = await admin().get<
          KubeObject & {
            status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
          }
        >(Workspaces, ns, ns);
        const done = condition(ws, 'Ready')?.status === 'True';
        await editor.create(ExternalConnections, connection(ns, `c${i++}`) as never).catch(() => undefined);
        if (done) return;
      }
    });
    await Promise.all(burst);
    await eventually(
      'all tenant RoleBindings were seen',
      async () => seen.length,
      (n) => n === TENANT_BINDINGS.length,
    );
    abort.abort();
    await watching;
    await Promise.all(reads);

    expect(
      seen.filter((s) => !s.quotaEnforcing),
      JSON.stringify(seen),
    ).toEqual([]);
    expect((await admin().list<KubeObject>(ExternalConnections, { namespace: ns })).items.length).toBeLessThanOrEqual(
      1,
    );
    await admin().delete(Namespaces, ns);
  });
});
