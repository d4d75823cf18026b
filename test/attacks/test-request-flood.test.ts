import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { TEST_REQUESTED_AT_ANNOTATION } from '../../src/api/v1alpha1/index.js';
import { loadOperatorConfig } from '../../src/config/operator-config.js';
import type { KubeObject } from '../../src/kube/client.js';
import { CoreEvents, ExternalConnections } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  createWorkspace,
  eventually,
  randomSecret,
  rawApiRequest,
  uniqueName,
  userCertificate,
} from '../support/cluster.js';

/**
 * Attack (issue 9): every write of the on-demand test annotation sent one
 * credentialed request to the connection's host (300 writes, 268 requests):
 * an editor could aim a connection's credential at its own service at will,
 * or hammer a third party with it. Test requests are now coalesced per
 * connection: at most one probe per window, the latest request runs when the
 * window ends, and an Event says so.
 */

type Conn = ExternalConnection & KubeObject;
type Event = KubeObject & { reason?: string; message?: string; involvedObject?: { name?: string } };

const WRITES = 300;
// Writes to one object conflict and are retried by the API server: more in flight is slower, not faster.
const IN_FLIGHT = 2;
const WINDOW_MS = loadOperatorConfig({}).probes.testMinIntervalMs;

describe('attack: flooding a third party through on-demand tests', () => {
  const ns = uniqueName('testflood');
  const token = randomSecret('flood');
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

  it(`${WRITES} annotation writes yield at most one probe per window, and an Event says they were coalesced`, async () => {
    await admin().create(ExternalConnections, {
      metadata: { name: 'target', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '0' },
      },
    } as never);
    const first = await eventually(
      'first probe',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) => c.status?.lastProbe?.result === 'Succeeded',
    );
    expect(withToken()).toHaveLength(1);

    const editor = userCertificate('tester', [`${ns}-editors`]);
    let written = 0;
    const burstStart = Date.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (written < WRITES) {
          const n = written++;
          const r = await rawApiRequest(
            editor,
            'PATCH',
            `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections/target`,
            { metadata: { annotations: { [TEST_REQUESTED_AT_ANNOTATION]: `${new Date().toISOString()}-${n}` } } },
            'application/merge-patch+json',
          );
          expect(r.status, r.body).toBe(200);
        }
      }),
    );
    const burstEnd = Date.now();

    // The last request is honoured: a probe finishes after the burst.
    await eventually(
      'a probe after the burst',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) =>
        Date.parse(c.status?.lastProbe?.time ?? '') > burstEnd &&
        c.status?.lastProbe?.time !== first.status?.lastProbe?.time,
      3 * WINDOW_MS + 30_000,
    );
    // One probe may start at once, then one per window while the burst lasts, then the coalesced last one.
    const bound = Math.floor((burstEnd - burstStart) / WINDOW_MS) + 2;
    const onDemand = withToken().length - 1;
    expect(onDemand).toBeGreaterThanOrEqual(1);
    expect(onDemand).toBeLessThanOrEqual(bound);
    expect(bound).toBeLessThan(WRITES / 10);

    const events = await admin().list<Event>(CoreEvents, { namespace: ns });
    const coalesced = events.items.filter(
      (e) => e.reason === 'TestRequestCoalesced' && e.involvedObject?.name === 'target',
    );
    expect(coalesced.length).toBeGreaterThanOrEqual(1);
    expect(coalesced[0]!.message).toContain(`at most one probe every ${WINDOW_MS / 1000}s per connection`);
    expect(JSON.stringify(events)).not.toContain(token);
    // Conditions did not flap to "pending" while test requests waited: the last result stands.
    const now = await admin().get<Conn>(ExternalConnections, 'target', ns);
    expect(now.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  }, 300_000);
});
