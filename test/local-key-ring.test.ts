/**
 * Issue 10 item 8: with the `local` KMS provider (the `atoll dev` default)
 * the operator says what that means, where people look: the Workspace's
 * EncryptionReady condition, a Warning Event and a /metrics gauge.
 */
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../src/kube/client.js';
import { CoreEvents, Workspaces } from '../src/kube/resources.js';
import { admin, condition, createWorkspace, devState, eventually, uniqueName } from './support/cluster.js';

type Ws = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
};
type Event = KubeObject & {
  reason?: string;
  type?: string;
  message?: string;
  involvedObject?: { kind?: string; name?: string };
};

describe('local key ring: reported, not only documented', () => {
  it('keeps EncryptionReady True with reason LocalKeyRing and a message saying where the key sits', async () => {
    const ns = uniqueName('local-kr');
    await createWorkspace(ns);
    const ws = await admin().get<Ws>(Workspaces, ns, ns);
    const encryption = condition(ws, 'EncryptionReady');
    expect(encryption).toMatchObject({ status: 'True', reason: 'LocalKeyRing' });
    expect(encryption?.message).toContain('Secret atoll-local-kms of namespace atoll-system');
    expect(encryption?.message).toContain('etcd snapshot or backup');
    expect(condition(ws, 'Ready')?.status).toBe('True');

    const events = await eventually(
      'a LocalKeyRing Warning Event',
      () => admin().list<Event>(CoreEvents, { namespace: ns }),
      (es) => es.items.some((e) => e.reason === 'LocalKeyRing'),
    );
    const warning = events.items.filter((e) => e.reason === 'LocalKeyRing');
    expect(warning).toHaveLength(1);
    expect(warning[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Workspace', name: ns } });
    expect(warning[0]!.message).toBe(encryption?.message);
  });

  it('exports atoll_kms_provider_info{provider="local"} 1 and counts workspaces on the local key ring', async () => {
    const text = await (await fetch(devState().controller.metrics)).text();
    expect(text).toMatch(/^atoll_kms_provider_info\{provider="local"\} 1$/m);
    const count = Number(/^atoll_local_key_ring_workspaces (\d+)$/m.exec(text)?.[1]);
    expect(count).toBeGreaterThanOrEqual(1);
  });
});
