import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { CoreEvents, ExternalConnections, Secrets } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';
import { bearers, gatewayWorkload, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

async function kmsFailures(): Promise<number> {
  const text = await (await fetch(devState().controller.metrics)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('atoll_kms_failures_total'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

/**
 * Issue 10.4: a tenant-supplied `sealed` value that can never open is refused
 * at admission where that can be told without decrypting, and otherwise is a
 * terminal, clear CiphertextRejected: no retries, no KMS failure counted, and
 * the previous credential is no longer served.
 */
describe('attack: wedging a connection with a bad sealed value', () => {
  const ns = uniqueName('badct');
  const editors = `${ns}-editors`;
  const good = randomSecret('good');
  let upstream: HttpFixture;
  let call: Awaited<ReturnType<typeof gatewayWorkload>>;
  let sealed = '';
  const get = (name: string) => admin().get<Conn>(ExternalConnections, name, ns);
  const spec = (credentials: Record<string, unknown>) => ({
    type: 'http-api',
    settings: { baseURL: upstream.url, auth: 'bearer' },
    credentials,
    probe: { interval: '0' },
  });

  beforeAll(async () => {
    upstream = await startHttpFixture();
    await createWorkspace(ns, { members: [{ kind: 'Group', name: editors, role: 'editor' }], policy: LOOPBACK_EGRESS });
    for (const name of ['victim', 'donor']) {
      await admin().create(ExternalConnections, {
        metadata: { name, namespace: ns },
        spec: spec({ token: { value: name === 'victim' ? good : randomSecret('donor') } }),
      } as never);
    }
    await eventually(
      'victim Ready',
      () => get('victim'),
      (c) => condition(c, 'Ready')?.status === 'True',
    );
    sealed = (
      await eventually(
        'donor sealed',
        () => get('donor'),
        (c) => condition(c, 'CredentialsSealed')?.status === 'True',
      )
    ).spec.credentials!.token!.sealed!;
    call = await gatewayWorkload(ns);
    expect((await call('victim')).status).toBe(200);
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  it('admission refuses values that can never open, naming the field and never echoing the value', async () => {
    const editor = userClient('mallory', [editors]);
    const p = sealed.split(':');
    const cases: Array<[string, string]> = [
      ['atoll:v1:local:truncated', 'spec.credentials.token.sealed is not a complete atoll ciphertext'],
      [
        [...p.slice(0, 2), 'vault-transit', ...p.slice(3)].join(':'),
        'names KMS provider "vault-transit", which this atoll is not configured with',
      ],
      [
        [
          ...p.slice(0, 3),
          Buffer.from('arn:aws:kms:us-east-1:123456789012:key/1').toString('base64url'),
          ...p.slice(4),
        ].join(':'),
        `names a key id that is not a ${p[2]} key id`,
      ],
    ];
    for (const [value, says] of cases) {
      const err = (await editor
        .mergePatch(ExternalConnections, 'victim', ns, { spec: { credentials: { token: { sealed: value } } } })
        .catch((e: Error) => e)) as Error;
      expect(err.message).toContain(says);
      expect(err.message).not.toContain(value);
    }
  });

  it('a value sealed for another connection is CiphertextRejected: terminal, not a KMS failure, and no longer served', async () => {
    const failures = await kmsFailures();
    const editor = userClient('mallory', [editors]);
    await editor.mergePatch(ExternalConnections, 'victim', ns, { spec: { credentials: { token: { sealed } } } });
    const c = await eventually(
      'CiphertextRejected',
      () => get('victim'),
      (x) =>
        x.status?.observedGeneration === x.metadata.generation &&
        condition(x, 'CredentialsSealed')?.reason === 'CiphertextRejected',
    );
    expect(condition(c, 'CredentialsSealed')?.message).toContain(
      'spec.credentials.token.sealed was not sealed for this workspace, connection, field and destination',
    );
    expect(condition(c, 'Ready')?.status).toBe('False');
    // The previous credential is gone from the managed Secret, and the gateway stops serving it.
    expect((await admin().get<Secret>(Secrets, 'victim-credentials', ns)).data?.token).toBeUndefined();
    await eventually(
      'gateway refuses',
      () => call('victim'),
      (r) => r.status !== 200,
      10_000,
    );
    const served = upstream.requests.length;
    expect((await call('victim')).status).not.toBe(200);
    expect(upstream.requests).toHaveLength(served);
    expect(bearers(upstream)).not.toContain(sealed);
    // Terminal: not counted as a KMS outage, and not retried (one Warning Event, the status stays put).
    expect(await kmsFailures()).toBe(failures);
    // (status.usage may still be flushed by the gateway; the conditions must not move.)
    const conditionsBefore = (await get('victim')).status?.conditions;
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await get('victim')).status?.conditions).toEqual(conditionsBefore);
    const events = await admin().list<
      KubeObject & { reason?: string; involvedObject?: { name?: string }; count?: number }
    >(CoreEvents, { namespace: ns });
    const rejected = events.items.filter(
      (e) => e.reason === 'CiphertextRejected' && e.involvedObject?.name === 'victim',
    );
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.count ?? 1).toBe(1);
  });

  it('supplying the credential again recovers', async () => {
    const again = randomSecret('again');
    await admin().mergePatch(ExternalConnections, 'victim', ns, {
      spec: { credentials: { token: { value: again, sealed: null } } },
    });
    await eventually(
      'Ready',
      () => get('victim'),
      (c) => condition(c, 'Ready')?.status === 'True',
    );
    expect((await call('victim')).status).toBe(200);
    expect(bearers(upstream).at(-1)).toBe(again);
  });
});
