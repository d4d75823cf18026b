import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { loadOperatorConfig } from '../../src/config/operator-config.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
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
 * Attack (red team, follow-up to test-request-flood): on-demand tests are
 * coalesced to one probe per connection per window, but only when nothing
 * but the test annotation changed. An editor who toggles spec.probe.timeout
 * (or any setting that keeps the destination, so the stored credential still
 * opens) between two values changes the probe's subject on every write, and
 * every write sent the stored credential to the connection's host at once:
 * the same third-party flood (lockouts, rate-limit bans on the team's API key)
 * with a credential the editor may never have seen.
 *
 * Held when such writes, like test requests, start at most one probe per
 * window (plus the first and the last).
 */

type Conn = ExternalConnection & KubeObject;

const WRITES = 40;
const WINDOW_MS = loadOperatorConfig({}).probes.testMinIntervalMs;

describe('attack: flooding a third party by toggling probe settings', () => {
  const ns = uniqueName('toggle');
  const token = randomSecret('toggle');
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

  it(`${WRITES} writes alternating spec.probe.timeout start at most one probe per window`, async () => {
    await admin().create(ExternalConnections, {
      metadata: { name: 'target', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '0', timeout: '5s' },
      },
    } as never);
    await eventually(
      'first probe',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) => c.status?.lastProbe?.result === 'Succeeded',
    );
    expect(withToken()).toHaveLength(1);

    const editor = userCertificate('toggler', [`${ns}-editors`]);
    const start = Date.now();
    for (let n = 0; n < WRITES; n++) {
      const r = await rawApiRequest(
        editor,
        'PATCH',
        `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections/target`,
        { spec: { probe: { timeout: n % 2 === 0 ? '6s' : '5s' } } },
        'application/merge-patch+json',
      );
      expect(r.status, r.body).toBe(200);
      // Give each write time to reach the controller, as a slow script would.
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    // A last write to settings never probed before: its probe must still come (the latest change is honoured).
    const last = await rawApiRequest(
      editor,
      'PATCH',
      `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections/target`,
      { spec: { probe: { timeout: '7s' } } },
      'application/merge-patch+json',
    );
    expect(last.status, last.body).toBe(200);
    const end = Date.now();
    // Let whatever the burst started or scheduled finish.
    await eventually(
      'probe of the final settings',
      () => admin().get<Conn>(ExternalConnections, 'target', ns),
      (c) => c.status?.lastProbe?.time !== undefined && Date.parse(c.status.lastProbe.time) > end,
      3 * WINDOW_MS + 30_000,
    );
    const bound = Math.floor((end - start) / WINDOW_MS) + 2;
    expect(
      withToken().length - 1,
      `credentialed requests caused by ${WRITES} writes in ${end - start}ms`,
    ).toBeLessThanOrEqual(bound);
  }, 300_000);
});
