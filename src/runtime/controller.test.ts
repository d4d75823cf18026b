import { afterEach, describe, expect, it } from 'vitest';
import { capturedLogger, FakeKubeApi, reply, until } from '../../test/support/fake-kube-api.js';
import type { KubeObject } from '../kube/client.js';
import { Leases } from '../kube/resources.js';
import { Controller } from './controller.js';
import { createOperatorMetrics } from './metrics.js';
import { RateLimiter } from './rate-limiter.js';
import { WorkQueue } from './workqueue.js';

/** Node timers may fire a millisecond early; lower bounds allow for it. */
const SLACK_MS = 5;

let api: FakeKubeApi | undefined;
let controller: Controller | undefined;
afterEach(async () => {
  await controller?.stop();
  await api?.close();
  api = controller = undefined;
});

describe('Controller under a 409 storm', () => {
  it('requeues a conflicting key with growing waits, not at a fixed rate forever', async () => {
    api = await FakeKubeApi.start();
    api.upsert(Leases, { metadata: { name: 'x', namespace: 'ns' }, spec: { holderIdentity: 'n0' } });
    // Another writer keeps winning: the first seven updates conflict.
    api.script((r) => r.method === 'PUT', reply(409, 'Conflict'), 7);
    const client = api.client();
    const { log, lines } = capturedLogger();
    let n = 0;
    const queue = new WorkQueue(new RateLimiter(1000, 300_000, 10, 100, { baseMs: 50, maxMs: 5_000, random: () => 0 }));
    controller = new Controller({
      name: 'storm',
      log,
      metrics: createOperatorMetrics(),
      queue,
      reconcile: async (req) => {
        const cur = await client.get<KubeObject & { spec: object }>(Leases, req.name, req.namespace);
        await client.replace(Leases, { ...cur, spec: { holderIdentity: `n${++n}` } });
      },
    });
    controller.start();
    controller.enqueue('ns/x');
    await until(
      'the update landed',
      () =>
        api!.get<KubeObject & { spec: { holderIdentity: string } }>(Leases, 'x', 'ns')?.spec.holderIdentity === 'n8',
    );
    const puts = api.requests.filter((r) => r.method === 'PUT').map((r) => r.at);
    expect(puts).toHaveLength(8);
    // Waits of 50 ms × 2^n, jittered down by at most half (here: exactly half).
    [25, 50, 100, 200, 400, 800, 1600].forEach((min, i) =>
      expect(puts[i + 1]! - puts[i]!).toBeGreaterThanOrEqual(min - SLACK_MS),
    );
    // Conflicts are normal: logged at debug, never as failures.
    expect(lines.filter((l) => l.includes('"conflict, requeueing"'))).toHaveLength(7);
    expect(lines.some((l) => l.includes('reconcile failed'))).toBe(false);
  });
});

describe('RateLimiter conflict backoff', () => {
  it('doubles per key up to its cap, jitters within [half, full], and starts over after a success', () => {
    const r = new RateLimiter(1000, 300_000, 1000, 1000, { baseMs: 100, maxMs: 1_000, random: () => 1 });
    expect([1, 2, 3, 4, 5, 6].map(() => r.whenConflict('k'))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(r.whenConflict('other')).toBe(100);
    r.forget('k');
    expect(r.whenConflict('k')).toBe(100);
    const low = new RateLimiter(1000, 300_000, 1000, 1000, { baseMs: 100, maxMs: 1_000, random: () => 0 });
    expect([1, 2, 3].map(() => low.whenConflict('k'))).toEqual([50, 100, 200]);
  });

  it('keeps conflicts and failures apart but forgets both on success', () => {
    const r = new RateLimiter(100, 10_000, 1000, 1000, { baseMs: 10, maxMs: 1_000, random: () => 1 });
    r.whenConflict('k');
    r.whenConflict('k');
    expect(r.when('k')).toBe(100);
    expect(r.whenConflict('k')).toBe(40);
    r.forget('k');
    expect([r.when('k'), r.whenConflict('k')]).toEqual([100, 10]);
  });
});
