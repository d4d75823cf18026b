import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { loadOperatorConfig } from '../../src/config/operator-config.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import { admin, createWorkspace, eventually, randomSecret, uniqueName, userClient } from '../support/cluster.js';

/**
 * Attack (red team, follow-up to test-request-flood): the per-connection
 * probe window was forgotten with the connection. An editor deletes an unused
 * connection and creates it again under the same name with the same `sealed`
 * value copied from the old object (same binding, so it opens; no sealing
 * budget spent, no KMS data key): the new connection's first probe runs at
 * once, sending the stored credential upstream on every cycle, around the
 * coalescing that limits test requests.
 *
 * Held when delete-and-recreate cycles start at most one probe per window
 * (plus the first and the last).
 */

type Conn = ExternalConnection & KubeObject;

const CYCLES = 12;
const WINDOW_MS = loadOperatorConfig({}).probes.testMinIntervalMs;

describe('attack: flooding a third party by deleting and recreating a connection', () => {
  const ns = uniqueName('recreate');
  const token = randomSecret('recreate');
  let upstream: HttpFixture;
  const withToken = () => upstream.requests.filter((r) => r.headers.authorization === `Bearer ${token}`);

  beforeAll(async () => {
    upstream = await startHttpFixture();
    await createWorkspace(ns, {
      policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } },
      members: [{ kind: 'Group', name: `${ns}-editors`, role: 'editor' }],
    });
  });
  afterAll(async () => upstream?.stop());

  it(`${CYCLES} delete-and-recreate cycles with the same sealed value start at most one probe per window`, async () => {
    const spec = (credentials: unknown) => ({
      type: 'http-api',
      settings: { baseURL: upstream.url, auth: 'bearer' },
      credentials,
      probe: { interval: '0' },
    });
    await admin().create(ExternalConnections, {
      metadata: { name: 'target', namespace: ns },
      spec: spec({ token: { value: token } }),
    } as never);
    const first = await eventually(
      'first probe',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) => c.status?.lastProbe?.result === 'Succeeded',
    );
    expect(withToken()).toHaveLength(1);
    const sealed = first.spec.credentials!['token']!.sealed!;

    const editor = userClient('recreator', [`${ns}-editors`]);
    const start = Date.now();
    for (let n = 0; n < CYCLES; n++) {
      await editor.delete(ExternalConnections, 'target', ns);
      await eventually(
        'gone',
        () => admin().tryGet(ExternalConnections, 'target', ns),
        (c) => c === undefined,
      );
      await editor.create(ExternalConnections, {
        metadata: { name: 'target', namespace: ns },
        spec: spec({ token: { sealed } }),
      } as never);
      // Each copy opens (same binding): it is probed, or waits for the window.
      await eventually(
        'sealed accepted',
        () => admin().get<Conn>(ExternalConnections, 'target', ns),
        (c) => c.status?.conditions?.some((x) => x.type === 'CredentialsSealed' && x.status === 'True') ?? false,
      );
    }
    const end = Date.now();
    await eventually(
      'probe of the last copy',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) => c.status?.lastProbe?.result === 'Succeeded',
      3 * WINDOW_MS + 30_000,
    );
    const bound = Math.floor((end - start) / WINDOW_MS) + 2;
    expect(
      withToken().length - 1,
      `credentialed requests caused by ${CYCLES} cycles in ${end - start}ms`,
    ).toBeLessThanOrEqual(bound);
  }, 300_000);
});
