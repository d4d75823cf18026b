import { beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { LAST_CHANGE_ANNOTATION } from '../../src/api/v1alpha1/index.js';
import { parseLastChange } from '../../src/domain/last-change.js';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { CoreEvents, ExternalConnections } from '../../src/kube/resources.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';

type Conn = ExternalConnection & KubeObject;
interface CoreEvent extends KubeObject {
  reason?: string;
  message?: string;
  involvedObject?: { kind?: string; name?: string };
}

/**
 * Attack: a tenant editor tries to make the audit trail name someone else
 * (forging atoll.dev/last-change-by), or to rewrite status.usage to hide who
 * uses a connection or fake consumers. Admission owns the annotation and
 * tenants cannot write status.
 */
describe('attack: forging the audit trail or the usage record', () => {
  const ns = uniqueName('forge');
  let client: KubeClient;
  let mallory: KubeClient;
  const first = randomSecret('first');
  const second = randomSecret('second');

  beforeAll(async () => {
    client = admin();
    await createWorkspace(ns, {
      members: [
        { kind: 'User', name: 'mallory', role: 'editor' },
        { kind: 'User', name: 'alice', role: 'editor' },
      ],
    });
    mallory = userClient('mallory');
    await eventually(
      'mallory may edit',
      () =>
        mallory.list(ExternalConnections, { namespace: ns }).then(
          () => true,
          () => false,
        ),
      (ok) => ok,
      30_000,
    );
    await mallory.create(ExternalConnections, {
      metadata: { name: 'billing-api', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
        credentials: { token: { value: first } },
      },
    } as never);
    await eventually(
      'sealed',
      () => client.get<Conn>(ExternalConnections, 'billing-api', ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
      30_000,
    );
  }, 90_000);

  it('a rotation carrying a forged actor is recorded under the real one', async () => {
    const forged = JSON.stringify({
      user: 'alice',
      at: new Date().toISOString(),
      operation: 'UPDATE',
      changed: ['spec.credentials.token'],
    });
    const stored = await mallory.mergePatch<Conn>(ExternalConnections, 'billing-api', ns, {
      metadata: { annotations: { [LAST_CHANGE_ANNOTATION]: forged } },
      spec: { credentials: { token: { value: second, sealed: null } } },
    });
    expect(parseLastChange(stored.metadata?.annotations)?.user).toBe('mallory');
    const events = await eventually(
      'rotation event',
      () => eventsOf('billing-api'),
      (evs) => evs.some((e) => e.reason === 'CredentialsRotated'),
      30_000,
    );
    const rotated = events.find((e) => e.reason === 'CredentialsRotated')!;
    expect(rotated.message).toContain('by mallory');
    expect(rotated.message).not.toContain('alice');
    // Nothing of either value reached an Event or the annotation.
    const text = JSON.stringify(events) + JSON.stringify(stored.metadata);
    expect(text).not.toContain(first);
    expect(text).not.toContain(second);
  });

  it('rewriting only the annotation is undone by admission', async () => {
    const before = (await client.get<Conn>(ExternalConnections, 'billing-api', ns)).metadata?.annotations?.[
      LAST_CHANGE_ANNOTATION
    ];
    const forged = JSON.stringify({
      user: 'alice',
      at: new Date().toISOString(),
      operation: 'UPDATE',
      changed: ['spec.credentials.token'],
    });
    const stored = await mallory.mergePatch<Conn>(ExternalConnections, 'billing-api', ns, {
      metadata: { annotations: { [LAST_CHANGE_ANNOTATION]: forged } },
    });
    expect(stored.metadata?.annotations?.[LAST_CHANGE_ANNOTATION]).toBe(before);
    const removed = await mallory.mergePatch<Conn>(ExternalConnections, 'billing-api', ns, {
      metadata: { annotations: { [LAST_CHANGE_ANNOTATION]: null } },
    });
    expect(removed.metadata?.annotations?.[LAST_CHANGE_ANNOTATION]).toBe(before);
  });

  it('a tenant editor cannot write status.usage (to hide consumers or invent them)', async () => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const attempt = mallory.mergePatch(
      ExternalConnections,
      'billing-api',
      ns,
      {
        status: { usage: { lastUsedAt: now, consumers: [{ serviceAccount: 'ghost', via: 'proxy', lastUsedAt: now }] } },
      },
      { subresource: 'status' },
    );
    await expect(attempt).rejects.toMatchObject({ status: 403 });
    expect((await client.get<Conn>(ExternalConnections, 'billing-api', ns)).status?.usage).toBeUndefined();
  });

  async function eventsOf(name: string): Promise<CoreEvent[]> {
    const list = await client.list<CoreEvent>(CoreEvents, { namespace: ns });
    return list.items.filter((e) => e.involvedObject?.kind === 'ExternalConnection' && e.involvedObject.name === name);
  }
});
