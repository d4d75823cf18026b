import { afterEach, describe, expect, it } from 'vitest';
import { capturedLogger, FakeKubeApi, hang, until } from '../../test/support/fake-kube-api.js';
import type { KubeObject } from '../kube/client.js';
import { Leases } from '../kube/resources.js';
import { LeaderElector, type Clock } from './leader-election.js';

type Lease = KubeObject & {
  spec: {
    holderIdentity?: string | null;
    renewTime?: string;
    leaseDurationSeconds?: number;
    leaseTransitions?: number;
  };
};

const NS = 'atoll-system';
const NAME = 'atoll-controller';
/** Short but well-ordered durations: lease > renew deadline > 1.2 × retry. */
const FAST = { leaseDurationMs: 2_000, renewDeadlineMs: 1_000, retryPeriodMs: 100 };

/** A clock that moves only when the test says so. */
class ManualClock implements Clock {
  private t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

let api: FakeKubeApi | undefined;
const electors: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
  await api?.close();
  api = undefined;
});

function elector(identity: string, extra: { clock?: Clock } = {}) {
  const { log, lines } = capturedLogger();
  const e = new LeaderElector({ client: api!.client(), namespace: NS, name: NAME, identity, log, ...FAST, ...extra });
  electors.push(e);
  return { e, lines };
}

const lease = () => api!.get<Lease>(Leases, NAME, NS)!;
const leaseRequests = (method: string) =>
  api!.requests.filter((r) => r.method === method && r.path.endsWith(`/leases/${NAME}`));

describe('LeaderElector', () => {
  it.each([
    ['an hour behind (or long dead)', -3_600_000],
    ['an hour ahead', 3_600_000],
  ])(
    'judges expiry from when it saw the Lease change, not from a renewTime %s of the local clock',
    async (_what, skewMs) => {
      api = await FakeKubeApi.start();
      const renewTime = new Date(Date.now() + skewMs).toISOString();
      api.upsert(Leases, {
        metadata: { name: NAME, namespace: NS },
        spec: {
          holderIdentity: 'other',
          leaseDurationSeconds: 2,
          renewTime,
          acquireTime: renewTime,
          leaseTransitions: 3,
        },
      });
      const clock = new ManualClock();
      const { e } = elector('me', { clock });
      const won = e.run(() => undefined);

      await until('several attempts', () => leaseRequests('GET').length >= 5);
      expect(leaseRequests('PUT')).toEqual([]);
      expect(e.isLeader()).toBe(false);

      clock.advance(1_999); // still within a lease duration of the first observation
      const seen = leaseRequests('GET').length;
      await until('more attempts', () => leaseRequests('GET').length >= seen + 3);
      expect(leaseRequests('PUT')).toEqual([]);

      clock.advance(2);
      await won;
      expect(e.isLeader()).toBe(true);
      expect(lease().spec.holderIdentity).toBe('me');
      expect(lease().spec.leaseTransitions).toBe(4);
    },
  );

  it('a leader whose renewal hangs stops leading at its renew deadline, before another candidate takes over', async () => {
    api = await FakeKubeApi.start();
    const order: string[] = [];
    const a = elector('a');
    await a.e.run(() => order.push('a stopped leading'));
    const b = elector('b');
    const bWon = b.e.run(() => undefined).then(() => order.push('b leads'));
    await until('b watches the lease', () => leaseRequests('GET').length >= 2);

    // From now on a's renewals reach the server and are never answered.
    const since = api.requests.length;
    api.script((r) => r.method === 'PUT' && (r.body as Lease).spec.holderIdentity === 'a', hang);
    await bWon;
    expect(order).toEqual(['a stopped leading', 'b leads']);
    expect(a.e.isLeader()).toBe(false);
    expect(lease().spec.holderIdentity).toBe('b');
    // Each hung renewal was abandoned when the deadline passed, not left for the socket timeout.
    const hung = api.requests
      .slice(since)
      .filter((r) => r.method === 'PUT' && (r.body as Lease).spec.holderIdentity === 'a');
    expect(hung.length).toBeGreaterThan(0);
    await until('a abandoned its hung renewals', () => hung.every((r) => r.abandoned));
    expect(a.lines.some((l) => l.includes('"lost leadership: lease not renewed in time"'))).toBe(true);
    expect([...a.lines, ...b.lines].join('\n')).not.toContain(api.token);
  });

  it('candidates racing for a free Lease: optimistic concurrency lets exactly one win', async () => {
    api = await FakeKubeApi.start();
    api.upsert(Leases, {
      metadata: { name: NAME, namespace: NS },
      spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 7 },
    });
    const candidates = ['c1', 'c2', 'c3'].map((id) => elector(id).e);
    await Promise.race(candidates.map((c) => c.run(() => undefined)));
    const gets = leaseRequests('GET').length;
    await until('the others kept trying', () => leaseRequests('GET').length >= gets + 6);
    expect(candidates.filter((c) => c.isLeader())).toHaveLength(1);
    const winner = ['c1', 'c2', 'c3'][candidates.findIndex((c) => c.isLeader())];
    expect(lease().spec.holderIdentity).toBe(winner);
    expect(lease().spec.leaseTransitions).toBe(8);
    // Every write carried the resourceVersion it was based on.
    expect(leaseRequests('PUT').every((r) => (r.body as Lease).metadata?.resourceVersion)).toBe(true);
  });

  it('releases the Lease on a graceful stop, so a candidate takes over without waiting for expiry', async () => {
    api = await FakeKubeApi.start();
    const a = elector('a');
    await a.e.run(() => expect.unreachable('a must not lose the lease'));
    const frozen = new ManualClock(); // b's clock never moves: it can only take a released lease
    const b = elector('b', { clock: frozen });
    const bWon = b.e.run(() => undefined);
    await until('b watches the lease', () => leaseRequests('GET').length >= 3);
    await a.e.stop();
    expect(lease().spec.holderIdentity).not.toBe('a');
    await bWon;
    expect(lease().spec.holderIdentity).toBe('b');
  });

  it('refuses durations that would allow two leaders', () => {
    const { log } = capturedLogger();
    const base = { client: undefined as never, namespace: NS, name: NAME, identity: 'x', log };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      /leaseDuration must be greater than renewDeadline/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(
      /renewDeadline must be greater than retryPeriod/,
    );
  });
});
