import { expect } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, Secrets } from '../../src/kube/resources.js';
import { waitFor } from '../../src/dev/ports.js';
import { condition, randomSecret } from './cluster.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

export interface OutageScene {
  client: KubeClient;
  /** A workspace namespace holding a sealed connection `steady` (managed Secret `steady-credentials`). */
  ns: string;
  /** The envelope's provider name, as in `atoll:v1:<provider>:`. */
  provider: string;
  connection(name: string, credentials: Record<string, unknown>): object;
  /** Makes the KMS stop answering (a frozen process: connections hang, nothing is refused). */
  pause(): void;
  resume(): void;
  /** Told every credential value the scenario stores, for the caller's plaintext scans. */
  stored?(value: string): void;
}

/**
 * The KMS outage every provider must survive: admission refuses to store what
 * it cannot seal and says why, the controller reports KMSUnavailable without
 * a managed Secret or a plaintext fallback, what was sealed before is not
 * touched, and sealing resumes by itself when the KMS is back.
 */
export async function expectFailsClosedThroughOutage(s: OutageScene): Promise<void> {
  const { client, ns } = s;
  const get = (name: string) => client.get<Conn>(ExternalConnections, name, ns);
  const steadyBefore = await client.get<Secret>(Secrets, 'steady-credentials', ns);
  s.pause();
  try {
    const refused = await client
      .create(ExternalConnections, s.connection('during-outage', { token: { value: randomSecret('out') } }) as never)
      .catch((e: Error) => e);
    expect(refused.message).toContain('the KMS is unavailable; nothing was stored');
    expect(await client.tryGet(ExternalConnections, 'during-outage', ns)).toBeUndefined();

    const referenced = randomSecret('src');
    s.stored?.(referenced);
    await client.create(Secrets, {
      metadata: { name: 'eso', namespace: ns, annotations: { 'atoll.dev/allowed-connections': 'from-ref' } },
      stringData: { token: referenced },
    } as never);
    await client.create(
      ExternalConnections,
      s.connection('from-ref', { token: { secretKeyRef: { name: 'eso', key: 'token' } } }) as never,
    );
    await waitFor(
      'KMSUnavailable',
      async () => condition(await get('from-ref'), 'CredentialsSealed')?.reason === 'KMSUnavailable',
      30_000,
    );
    expect(condition(await get('from-ref'), 'Ready')).toMatchObject({ status: 'False', reason: 'KMSUnavailable' });
    expect(await client.tryGet(Secrets, 'from-ref-credentials', ns)).toBeUndefined();
    const steadyDuring = await client.get<Secret>(Secrets, 'steady-credentials', ns);
    expect(steadyDuring.data).toEqual(steadyBefore.data);
    expect(steadyDuring.metadata?.resourceVersion).toBe(steadyBefore.metadata?.resourceVersion);
  } finally {
    s.resume();
  }
  // Reconciliation resumes by itself (backoff retry).
  await waitFor(
    'recovered',
    async () => condition(await get('from-ref'), 'CredentialsSealed')?.status === 'True',
    60_000,
    250,
  );
  const managed = await client.get<Secret>(Secrets, 'from-ref-credentials', ns);
  expect(Buffer.from(managed.data!.token!, 'base64').toString()).toMatch(new RegExp(`^atoll:v1:${s.provider}:`));
  expect((await get('from-ref')).status?.credentials?.token?.version).toBe(1);
  expect((await client.get<Secret>(Secrets, 'steady-credentials', ns)).data).toEqual(steadyBefore.data);
}
