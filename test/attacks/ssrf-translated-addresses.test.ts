import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import { admin, condition, createWorkspace, eventually, randomSecret, uniqueName } from '../support/cluster.js';

/**
 * Attack (issue 9): a connection pointed at a cloud metadata service or at
 * an IPv6 address that a NAT64 gateway, the IPv4-compatible form or 6to4
 * translates to a forbidden IPv4 host made the probe send its credential
 * there. Each target is now refused before any packet is sent, through the
 * real probe of the `atoll dev` operator.
 */

type Conn = ExternalConnection & KubeObject;

const TARGETS: Array<[string, string]> = [
  ['azure-wireserver', 'http://168.63.129.16'],
  ['alibaba-metadata', 'http://100.100.100.200'],
  ['aws-metadata-ipv6', 'http://[fd00:ec2::254]'],
  ['gcp-metadata-ipv6', 'http://[fd20:ce::254]'],
  ['nat64-metadata', 'http://[64:ff9b::a9fe:a9fe]'],
  ['nat64-local-metadata', 'http://[64:ff9b:1::a9fe:a9fe]'],
  ['v4compat-metadata', 'http://[::a9fe:a9fe]'],
  ['v4mapped-metadata', 'http://[::ffff:a9fe:a9fe]'],
  ['sixtofour-metadata', 'http://[2002:a9fe:a9fe::1]'],
];

describe('attack: SSRF to metadata services through translated addresses', () => {
  const ns = uniqueName('ssrf');
  const token = randomSecret('ssrf');
  let loopback: HttpFixture;

  beforeAll(async () => {
    loopback = await startHttpFixture();
    // Loopback and private ranges stay closed: only the workspace policy could open them.
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: [] } } });
  });
  afterAll(async () => loopback?.stop());

  it('refuses every metadata and translated target with EgressDenied, naming the rule', async () => {
    const targets: Array<[string, string]> = [
      ...TARGETS,
      ['nat64-loopback', `http://[64:ff9b:1::7f00:1]:${loopback.port}`],
      ['v4compat-loopback', `http://[::127.0.0.1]:${loopback.port}`],
    ];
    for (const [name, baseURL] of targets) {
      await admin().create(ExternalConnections, {
        metadata: { name, namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL, auth: 'bearer' },
          credentials: { token: { value: token } },
          probe: { interval: '0', timeout: '5s' },
        },
      } as never);
    }
    for (const [name] of targets) {
      const c = await eventually(
        `${name} probed`,
        () => admin().get<Conn>(ExternalConnections, name, ns),
        (x) => x.status?.lastProbe !== undefined,
      );
      expect(c.status?.lastProbe?.result, `${name}: ${c.status?.lastProbe?.message}`).toBe('EgressDenied');
      expect(condition(c, 'Reachable')).toMatchObject({ status: 'False', reason: 'EgressDenied' });
      const expected = name.endsWith('loopback')
        ? "the Workspace's spec.policy.egress.allowCIDRs"
        : 'cloud metadata endpoints are never allowed';
      expect(c.status?.lastProbe?.message).toContain(expected);
      expect(JSON.stringify(c.status)).not.toContain(token);
    }
    expect(loopback.connections()).toBe(0);
  });
});
