import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';
import { URGENT_PER_ROUTINE, WorkQueue } from './workqueue.js';

describe('WorkQueue', () => {
  it('de-duplicates keys and never hands out a key twice at once', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a'); // re-added while processing: comes back after done()
    expect(await q.get()).toBe('b');
    q.done('b');
    expect(q.length).toBe(0);
    q.done('a');
    expect(await q.get()).toBe('a');
  });

  it('hands out every urgent key before any routine one, each lane first in first out', async () => {
    const q = new WorkQueue();
    for (const k of ['p1', 'p2', 'p3']) q.add(k, 'routine');
    q.add('u1');
    q.add('u2', 'urgent');
    q.add('p4', 'routine');
    const order = [];
    while (q.length > 0) order.push(await q.get());
    expect(order).toEqual(['u1', 'u2', 'p1', 'p2', 'p3', 'p4']);
  });

  it('does not starve the routine lane: one routine key after every URGENT_PER_ROUTINE urgent ones while both wait', async () => {
    const q = new WorkQueue();
    for (const k of ['p1', 'p2']) q.add(k, 'routine');
    const urgent = Array.from({ length: 2 * URGENT_PER_ROUTINE + 2 }, (_, i) => `u${i}`);
    for (const k of urgent) q.add(k);
    const order = [];
    while (q.length > 0) order.push(await q.get());
    expect(order).toEqual([
      ...urgent.slice(0, URGENT_PER_ROUTINE),
      'p1',
      ...urgent.slice(URGENT_PER_ROUTINE, 2 * URGENT_PER_ROUTINE),
      'p2',
      ...urgent.slice(2 * URGENT_PER_ROUTINE),
    ]);
    // With no routine key waiting, urgent keys never wait for a turn that is not needed.
    for (const k of urgent) q.add(`${k}-again`);
    q.add('late', 'routine');
    expect(await q.get()).toBe('u0-again');
  });

  it('moves a key waiting in the routine lane up when it becomes urgent, and hands it out once', async () => {
    const q = new WorkQueue();
    for (const k of ['p1', 'p2', 'k', 'p3']) q.add(k, 'routine');
    q.add('k', 'routine'); // still one entry
    q.add('k', 'urgent');
    q.add('k', 'routine'); // an urgent key does not move back down
    expect(q.length).toBe(4);
    expect(await q.get()).toBe('k');
    q.done('k');
    const rest = [];
    while (q.length > 0) rest.push(await q.get());
    expect(rest).toEqual(['p1', 'p2', 'p3']); // the stale routine entry of k is skipped
  });

  it('a key made urgent while it is processed goes back in the urgent lane, still never to two workers', async () => {
    const q = new WorkQueue();
    q.add('k', 'routine');
    expect(await q.get()).toBe('k');
    q.add('p1', 'routine');
    q.add('k', 'routine');
    q.add('k', 'urgent'); // the more urgent of the two re-adds wins
    expect(await q.get()).toBe('p1'); // k is in flight: not handed out again
    q.add('p2', 'routine');
    q.done('k');
    expect(await q.get()).toBe('k');
    expect(await q.get()).toBe('p2');
  });

  it('a waiting worker takes a new key at once, whatever its lane', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('k', 'routine');
    expect(await next).toBe('k');
    q.add('k', 'urgent'); // in flight: only marked for another pass
    expect(q.length).toBe(0);
    q.done('k');
    expect(q.length).toBe(1);
  });

  it('a worker kept for urgent keys never takes a routine one, and takes an urgent key at once', async () => {
    const q = new WorkQueue();
    q.add('periodic', 'routine');
    let reservedGot: string | undefined;
    const reserved = q.get({ urgentOnly: true }).then((k) => (reservedGot = k));
    await Promise.resolve();
    expect(reservedGot).toBeUndefined(); // the waiting routine key is not for it
    q.add('later-periodic', 'routine'); // nor one added while it waits
    await Promise.resolve();
    expect(reservedGot).toBeUndefined();
    q.add('rotated', 'urgent');
    expect(await reserved).toBe('rotated');
    // Ordinary workers still take the routine keys, in order.
    expect(await q.get()).toBe('periodic');
    expect(await q.get()).toBe('later-periodic');
    // An idle ordinary worker is handed a routine key; an idle reserved one is passed over.
    const r2 = q.get({ urgentOnly: true });
    const ordinary = q.get();
    q.add('third-periodic', 'routine');
    expect(await ordinary).toBe('third-periodic');
    q.add('second-rotation', 'urgent');
    expect(await r2).toBe('second-rotation');
    q.shutDown();
  });

  it('requeues conflicts in the lane the key was taken from and failures in the routine lane', async () => {
    const q = new WorkQueue(new RateLimiter(1, 1, 1000, 1000, { baseMs: 1, maxMs: 1, random: () => 1 }));
    q.add('conflicted', 'urgent');
    q.add('failed', 'urgent');
    expect(await q.get()).toBe('conflicted');
    expect(await q.get()).toBe('failed');
    q.addConflicted('conflicted');
    q.addRateLimited('failed');
    q.done('conflicted');
    q.done('failed');
    q.add('periodic', 'routine');
    await new Promise((r) => setTimeout(r, 20));
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['conflicted', 'periodic', 'failed']);
  });

  it('a pending timer keeps the earliest time and the more urgent lane', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 10, 'routine');
    q.addAfter('a', 10_000, 'urgent'); // later: only its lane is kept
    q.addAfter('b', 10_000, 'urgent');
    q.addAfter('b', 10, 'routine'); // earlier: replaces the time, keeps urgent
    q.add('p', 'routine');
    await new Promise((r) => setTimeout(r, 40));
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'p']);
    q.shutDown();
  });

  it('keeps the earliest delay for a key', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 10_000);
    q.addAfter('k', 20);
    expect(await q.get()).toBe('k');
    q.shutDown();
    expect(await q.get()).toBeUndefined();
  });
});

describe('WorkQueue delays', () => {
  it('a delay brought forward again and again leaves no pile of superseded entries, and the key comes once', async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 5_000; i++) q.addAfter('k', 3_600_000 - i);
    q.addAfter('k', 15);
    const heap = (q as unknown as { due: { size: number } }).due;
    expect(heap.size).toBeLessThanOrEqual(2 + 64 + 1);
    expect(await q.get()).toBe('k');
    q.done('k');
    await new Promise((r) => setTimeout(r, 30));
    expect(q.length).toBe(0);
    q.shutDown();
  });

  it('keys come in the order they fall due, whatever the order they were delayed in', async () => {
    const q = new WorkQueue();
    for (const [key, ms] of [
      ['c', 45],
      ['a', 15],
      ['b', 30],
    ] as const)
      q.addAfter(key, ms);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'c']);
    q.shutDown();
  });
});

describe('WorkQueue waits', () => {
  it('reports each key once when taken, with the lane it was taken from and the time since its first add', async () => {
    const q = new WorkQueue();
    const seen: Array<[string, number]> = [];
    q.observeWaits((lane, ms) => seen.push([lane, ms]));
    q.add('r', 'routine');
    q.add('u');
    const queuedAt = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    q.add('r', 'urgent'); // moves up: its wait still counts from the first add
    expect(await q.get()).toBe('u');
    expect(await q.get()).toBe('r');
    const elapsed = performance.now() - queuedAt;
    expect(seen.map(([lane]) => lane)).toEqual(['urgent', 'urgent']);
    for (const [, ms] of seen) {
      expect(ms).toBeGreaterThanOrEqual(15);
      expect(ms).toBeLessThanOrEqual(elapsed + 1);
    }
    // A key handed straight to an idle worker waited for nothing.
    const taken = q.get();
    q.add('idle', 'routine');
    expect(await taken).toBe('idle');
    expect(seen.at(-1)).toEqual(['routine', 0]);
    expect(seen).toHaveLength(3);
  });
});

describe('RateLimiter', () => {
  it('backs off exponentially per key and forgets on success', () => {
    const r = new RateLimiter(100, 1000, 1000, 1000);
    expect([r.when('x'), r.when('x'), r.when('x'), r.when('x'), r.when('x')]).toEqual([100, 200, 400, 800, 1000]);
    expect(r.when('y')).toBe(100);
    r.forget('x');
    expect(r.when('x')).toBe(100);
  });
});
