import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { loadOperatorConfig } from '../../src/config/operator-config.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import { admin, createWorkspace, eventually, randomSecret, uniqueName } from '../support/cluster.js';

/**
 * Attack (red team, invariant 9): probes of every workspace share one pool of
 * ATOLL_PROBE_CONCURRENCY slots, served first come first served. A workspace
 * that points its connections at a host that accepts TCP and never answers
 * (with spec.probe.timeout at its 60s maximum) holds every slot for a minute
 * per batch; with its default quota of 500 connections that is half an hour
 * during which no other workspace's connection is probed: a new connection
 * stays unverified, a rotated credential is not tested.
 *
 * Held when another workspace's probe runs without waiting behind the
 * attacker's queue: the attacker holds at most its per-workspace share of
 * slots (ATOLL_PROBE_CONCURRENCY_PER_WORKSPACE), and the victim gets one of
 * the others at once.
 */

type Conn = ExternalConnection & KubeObject;

const SLOTS = loadOperatorConfig({}).probes.concurrency;
const ATTACKER_CONNECTIONS = SLOTS + 8;

/** A TCP server that accepts and never answers: each probe aimed at it holds a slot until its timeout. */
class Tarpit {
  readonly open = new Set<Socket>();
  accepted = 0;
  closed = 0;
  private constructor(readonly server: Server) {}
  static async start(): Promise<Tarpit> {
    const server = createServer();
    const pit = new Tarpit(server);
    server.on('connection', (s) => {
      pit.accepted++;
      pit.open.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        pit.open.delete(s);
        pit.closed++;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return pit;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('attack: one workspace holds every probe slot', () => {
  const attackerNs = uniqueName('tarpit');
  const victimNs = uniqueName('starved');
  const victimToken = randomSecret('victim');
  let pit: Tarpit;
  let upstream: HttpFixture;

  beforeAll(async () => {
    pit = await Tarpit.start();
    upstream = await startHttpFixture();
    await createWorkspace(attackerNs, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
    await createWorkspace(victimNs, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  });
  afterAll(async () => {
    await pit?.stop();
    await upstream?.stop();
  });

  it("another workspace's new connection is probed while the attacker's probes still hang", async () => {
    for (let i = 0; i < ATTACKER_CONNECTIONS; i++) {
      await admin().create(ExternalConnections, {
        metadata: { name: `pit-${i}`, namespace: attackerNs },
        spec: {
          type: 'http-api',
          settings: { baseURL: pit.url, auth: 'bearer' },
          credentials: { token: { value: randomSecret('pit') } },
          probe: { interval: '0', timeout: '60s' },
        },
      } as never);
    }
    // The tarpit holds as many probes as the operator runs at once (fewer if the pool is per workspace).
    await eventually(
      'attacker probes hanging',
      async () => pit.accepted,
      (n) => n >= 2,
    );

    await admin().create(ExternalConnections, {
      metadata: { name: 'victim', namespace: victimNs },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: victimToken } },
        probe: { interval: '0' },
      },
    } as never);
    let acceptedWhenVictimProbed = -1;
    await eventually(
      'victim probed',
      async () => {
        const seen = upstream.requests.some((r) => r.headers.authorization === `Bearer ${victimToken}`);
        if (seen && acceptedWhenVictimProbed < 0) acceptedWhenVictimProbed = pit.accepted;
        return seen;
      },
      Boolean,
      150_000,
    );
    // Before the fix the victim's probe queued behind every attacker probe (FIFO over one shared pool)
    // and ran only after the first batch timed out a minute later: by then the tarpit had taken all of them.
    expect(acceptedWhenVictimProbed, 'attacker probes started before the victim was probed').toBeLessThan(SLOTS);
    const victim = await eventually(
      'victim status',
      () => admin().get<Conn>(ExternalConnections, 'victim', victimNs),
      (c) => c.status?.lastProbe?.result === 'Succeeded',
    );
    expect(JSON.stringify(victim)).not.toContain(victimToken);

    for (let i = 0; i < ATTACKER_CONNECTIONS; i++) await admin().delete(ExternalConnections, `pit-${i}`, attackerNs);
  }, 300_000);
});
